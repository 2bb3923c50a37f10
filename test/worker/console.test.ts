import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { unseal } from "../../src/console/session.ts";
import { newId } from "../../src/crypto/encoding.ts";
import { credentials, jobs, webhookDeliveries } from "../../src/db/schema.ts";
import { admin, createKeyJson, userWithKey } from "./fixtures.ts";
import { BASE, call, clockedApp, testEnv } from "./helpers.ts";
import { connected, db, registerProviders } from "./lease-helpers.ts";
import { as } from "./oauth-helpers.ts";

/**
 * The console's forms and pages over HTTP, through the worker's real fetch handler: CSRF on every
 * form (a missing or foreign token, or another origin, is refused and changes nothing), sessions
 * (cookie attributes, tampering, sign-out, admin/user separation), headers, and escaping of every
 * user-controlled string on every page. The browser walk-through is test/node/console-browser.test.ts.
 */

const MARKUP = `<img src=x onerror="alert('x')">`;

/** A browser's cookie jar for one origin, reduced to what the console sets. */
class Browser {
	cookies = new Map<string, string>();

	header(): string {
		return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
	}

	keep(res: Response): void {
		for (const line of res.headers.getSetCookie()) {
			const [pair = ""] = line.split(";");
			const at = pair.indexOf("=");
			const name = pair.slice(0, at);
			const value = pair.slice(at + 1);
			if (value === "" || /max-age=0/i.test(line)) this.cookies.delete(name);
			else this.cookies.set(name, value);
		}
	}

	async get(path: string): Promise<Response> {
		const res = await call(path, { headers: { cookie: this.header() }, redirect: "manual" });
		this.keep(res);
		return res;
	}

	async post(
		path: string,
		form: Record<string, string | string[]>,
		headers: Record<string, string> = {},
	): Promise<Response> {
		const body = new URLSearchParams();
		for (const [k, v] of Object.entries(form)) for (const one of [v].flat()) body.append(k, one);
		const res = await call(path, {
			method: "POST",
			headers: {
				cookie: this.header(),
				"content-type": "application/x-www-form-urlencoded",
				origin: BASE,
				...headers,
			},
			body,
			redirect: "manual",
		});
		this.keep(res);
		return res;
	}

	/** The CSRF token of the forms on a page. */
	async csrf(path: string): Promise<string> {
		const html = await (await this.get(path)).text();
		const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
		if (!token) throw new Error(`no form on ${path}: ${html.slice(0, 300)}`);
		return token;
	}

	async signIn(key: string): Promise<Response> {
		const token = await this.csrf("/console/sign-in");
		return this.post("/console/sign-in", { _csrf: token, key });
	}
}

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** `token` with its character at `at` replaced by another. */
const flip = (token: string, at: number) =>
	`${token.slice(0, at)}${token[at] === "A" ? "B" : "A"}${token.slice(at + 1)}`;
/**
 * A 43-character base64url token holds 256 bits: its last character carries 4 of them and 2
 * unused ones. Changing only those spells the same bytes differently.
 */
const flipPadding = (token: string) => {
	const last = B64URL.indexOf(token.at(-1) as string);
	return `${token.slice(0, -1)}${B64URL[last ^ 1]}`;
};

async function signedIn(key: string): Promise<Browser> {
	const browser = new Browser();
	const res = await browser.signIn(key);
	expect(res.status).toBe(303);
	return browser;
}

async function json<T>(path: string, token: string, init: RequestInit & { json?: unknown } = {}) {
	const res = await call(path, { ...init, token });
	expect(res.status, `${path}: ${res.status}`).toBeLessThan(300);
	return (await res.json()) as T;
}

describe("console", () => {
	let alice: { id: string; key: string };
	let bob: { id: string; key: string };
	let credentialId: string;

	beforeAll(async () => {
		alice = await userWithKey();
		bob = await userWithKey();
		credentialId = (
			await json<{ id: string }>("/v1/credentials", alice.key, {
				method: "POST",
				json: { provider: "acme", type: "api_key", title: MARKUP, api_key: "acme-secret-1" },
			})
		).id;
	});

	it("signs in with an API key into a __Host- cookie that is HttpOnly, Secure and SameSite=Lax", async () => {
		const browser = new Browser();
		const res = await browser.signIn(alice.key);
		expect(res.status).toBe(303);
		expect(res.headers.get("location")).toBe("/console/integrations");
		const cookie = res.headers.getSetCookie().find((c) => c.startsWith("__Host-latchkey_console="));
		expect(cookie).toMatch(/; Path=\/(;|$)/);
		expect(cookie).toMatch(/; HttpOnly(;|$)/);
		expect(cookie).toMatch(/; Secure(;|$)/);
		expect(cookie).toMatch(/; SameSite=Lax(;|$)/);
		expect(cookie).not.toMatch(/Domain=/i);
		// The cookie is sealed: neither the key nor the tokens can be read from it.
		expect(cookie).not.toContain(alice.key);
		expect(cookie).not.toContain("lkr_");
		expect(cookie).not.toContain("eyJ");
		const page = await browser.get("/console/integrations");
		expect(page.status).toBe(200);
	});

	it("refuses a wrong key, and a sign-in form without its own token", async () => {
		const browser = new Browser();
		const token = await browser.csrf("/console/sign-in");
		const wrong = await browser.post("/console/sign-in", {
			_csrf: token,
			key: `${alice.key.slice(0, -1)}x`,
		});
		expect(wrong.status).toBe(403);
		expect(browser.cookies.has("__Host-latchkey_console")).toBe(false);

		// Login CSRF: another browser's sign-in token, or none, does not sign this one in.
		const other = new Browser();
		const foreign = await other.csrf("/console/sign-in");
		await browser.get("/console/sign-in");
		for (const form of [{ key: alice.key }, { key: alice.key, _csrf: foreign }] as Record<
			string,
			string
		>[]) {
			const res = await browser.post("/console/sign-in", form);
			expect(res.status).toBe(403);
			expect(browser.cookies.has("__Host-latchkey_console")).toBe(false);
		}
	});

	it("serves every page with a CSP that allows this origin only, and no-store", async () => {
		const browser = await signedIn(alice.key);
		for (const path of [
			"/console/sign-in",
			"/console/integrations",
			"/console/keys",
			"/console/audit",
		]) {
			const res = await browser.get(path);
			expect(res.status, path).toBe(200);
			const csp = res.headers.get("content-security-policy") ?? "";
			expect(csp).toContain("default-src 'none'");
			expect(csp).toContain("script-src 'self'");
			expect(csp).toContain("frame-ancestors 'none'");
			expect(csp).not.toMatch(/https?:|\*|unsafe/);
			expect(res.headers.get("cache-control")).toBe("no-store");
			expect(res.headers.get("content-type")).toMatch(/^text\/html/);
			expect(await res.text()).toMatch(/^<!doctype html>/);
		}
	});

	describe("CSRF on every form", () => {
		/** Each form of a user, with what it would change and how to tell it did not. */
		const userForms = (): {
			action: string;
			form: Record<string, string>;
			unchanged: () => Promise<unknown>;
		}[] => [
			{
				action: `/console/credentials/${credentialId}/delete`,
				form: {},
				unchanged: async () =>
					expect((await call(`/v1/credentials/${credentialId}`, { token: alice.key })).status).toBe(
						200,
					),
			},
			{
				action: "/console/keys",
				form: { name: "csrf-created" },
				unchanged: async () => {
					const keys = await json<{ data: { name: string }[] }>("/v1/api-keys", alice.key);
					expect(keys.data.map((k) => k.name)).not.toContain("csrf-created");
				},
			},
			{
				action: `/console/keys/${aliceKeyId()}/revoke`,
				form: {},
				unchanged: async () =>
					expect((await call("/v1/me", { token: alice.key })).status).toBe(200),
			},
			{
				action: `/console/keys/${aliceKeyId()}/roll`,
				form: {},
				unchanged: async () => {
					const keys = await json<{ data: { id: string }[] }>("/v1/api-keys", alice.key);
					expect(keys.data).toHaveLength(1);
				},
			},
			{
				action: "/console/sign-out",
				form: {},
				unchanged: async () => undefined,
			},
		];
		const aliceKeyId = () => alice.key.slice(3, 15);

		it("refuses a form with no token, a token of another session, or from another origin, and changes nothing", async () => {
			const browser = await signedIn(alice.key);
			const own = await browser.csrf("/console/keys");
			const foreign = await (await signedIn(bob.key)).csrf("/console/keys");
			// Another session of the same user is another session: its token does not fit either.
			const sibling = await (await signedIn(alice.key)).csrf("/console/keys");
			expect(new Set([own, foreign, sibling]).size).toBe(3);
			for (const { action, form, unchanged } of userForms()) {
				const attempts: [string, Record<string, string>, Record<string, string>][] = [
					["missing", form, {}],
					["foreign", { ...form, _csrf: foreign }, {}],
					["sibling", { ...form, _csrf: sibling }, {}],
					// One character of the own token changed (in the middle: every bit there counts).
					["malformed", { ...form, _csrf: flip(own, 20) }, {}],
					// The same MAC spelled otherwise: the last character's unused low bits changed.
					["non-canonical", { ...form, _csrf: flipPadding(own) }, {}],
					["cross-origin", { ...form, _csrf: own }, { origin: "https://evil.example" }],
					["opaque origin", { ...form, _csrf: own }, { origin: "null" }],
				];
				for (const [what, body, headers] of attempts) {
					const res = await browser.post(action, body, headers);
					expect(res.status, `${what} token on ${action}`).toBe(403);
					expect(await res.text()).toContain("This form was refused");
					await unchanged();
				}
				// JSON (as a cross-site fetch could send without a preflight only as text/plain) is not a form.
				const res = await call(action, {
					method: "POST",
					headers: { cookie: browser.header(), "content-type": "text/plain" },
					body: `_csrf=${own}`,
					redirect: "manual",
				});
				expect(res.status, `text/plain on ${action}`).toBe(403);
				await unchanged();
			}
			// The same token in the same session is accepted: the refusals above were the token's.
			const ok = await browser.post(`/console/credentials/${credentialId}/delete`, { _csrf: own });
			expect(ok.status).toBe(303);
			expect(ok.headers.get("location")).toBe("/console/integrations?notice=deleted");
			expect((await call(`/v1/credentials/${credentialId}`, { token: alice.key })).status).toBe(
				404,
			);
			credentialId = (
				await json<{ id: string }>("/v1/credentials", alice.key, {
					method: "POST",
					json: { provider: "acme", type: "api_key", title: MARKUP, api_key: "acme-secret-2" },
				})
			).id;
		});

		it("refuses the admin's forms without the admin session's own token", async () => {
			const adminBrowser = await signedIn(admin());
			const own = await adminBrowser.csrf("/console/admin/users");
			const foreign = await (await signedIn(admin())).csrf("/console/admin/users");
			const email = `csrf-${crypto.randomUUID().slice(0, 8)}@example.com`;
			const forms: [string, Record<string, string>][] = [
				["/console/admin/users", { email }],
				[`/console/admin/users/${bob.id}/status`, { status: "suspended" }],
				[`/console/admin/users/${bob.id}/delete`, {}],
				["/console/admin/jobs/job_0000000000000000000000/retry", {}],
				["/console/admin/webhooks/none/deliveries/dlv_0000000000000000000000/redeliver", {}],
			];
			for (const [action, form] of forms) {
				for (const body of [form, { ...form, _csrf: foreign }]) {
					const res = await adminBrowser.post(action, body);
					expect(res.status, action).toBe(403);
				}
			}
			const bobNow = await json<{ status: string }>(`/v1/admin/users/${bob.id}`, admin());
			expect(bobNow.status).toBe("active");
			const users = await json<{ data: { email: string }[] }>("/v1/admin/users?limit=100", admin());
			expect(users.data.map((u) => u.email)).not.toContain(email);

			const created = await adminBrowser.post("/console/admin/users", { email, _csrf: own });
			expect(created.status).toBe(303);
		});

		it("refuses starting a connection without the session's token (it is a link, not a form)", async () => {
			const browser = await signedIn(alice.key);
			const foreign = await (await signedIn(bob.key)).csrf("/console/keys");
			for (const query of ["", `?csrf=${foreign}`]) {
				const res = await browser.get(`/console/connect/any-provider${query}`);
				expect(res.status).toBe(403);
			}
		});
	});

	it("escapes every user-controlled string on every page", async () => {
		const user = await json<{ id: string }>("/v1/admin/users", admin(), {
			method: "POST",
			json: { email: `esc-${crypto.randomUUID().slice(0, 8)}@example.com`, name: MARKUP },
		});
		const key = await createKeyJson(user.id, { name: MARKUP });
		await json("/v1/credentials", key.key, {
			method: "POST",
			json: {
				provider: "acme",
				type: "host_scoped",
				title: MARKUP,
				host: "api.example.com",
				headers: { "x-k": "v" },
			},
		});
		await json("/v1/credentials", key.key, {
			method: "POST",
			json: {
				provider: "acme",
				type: "user_password",
				title: "plain",
				username: MARKUP,
				password: "pw",
			},
		});
		const browser = await signedIn(key.key);
		const pages: [Browser, string][] = [
			[browser, "/console/integrations"],
			[browser, "/console/keys"],
			[browser, "/console/audit"],
		];
		// A key created in the console is shown once on its page: that page too.
		const created = await browser.post("/console/keys", {
			_csrf: await browser.csrf("/console/keys"),
			name: `${MARKUP} 2`,
		});
		const adminBrowser = await signedIn(admin());
		pages.push([adminBrowser, "/console/admin/users?limit=100"], [adminBrowser, "/console/audit"]);
		const bodies = [await created.text()];
		for (const [who, path] of pages) {
			const res = await who.get(path);
			expect(res.status, path).toBe(200);
			bodies.push(await res.text());
		}
		expect(bodies[0]).toContain("&lt;img src=x onerror=");
		for (const html of bodies) {
			expect(html).not.toContain("<img");
			expect(html).not.toContain('onerror="alert');
		}
		// The markup was there to escape, on each page that shows it.
		expect(bodies.filter((html) => html.includes("&lt;img")).length).toBeGreaterThanOrEqual(3);
	});

	it("offers Reconnect on a reconnect_required OAuth credential, and Delete only where the API allows it", async () => {
		const provider = `console-idp-${crypto.randomUUID().slice(0, 8)}`;
		await registerProviders([[provider, {}]]);
		const { user, id } = await connected(provider);
		await db
			.update(credentials)
			.set({ status: "reconnect_required" })
			.where(eq(credentials.id, id));
		const own = await json<{ id: string }>("/v1/credentials", user.key, {
			method: "POST",
			json: { provider: "acme", type: "api_key", api_key: "own-secret" },
		});
		const system = await json<{ id: string }>("/v1/admin/system-credentials", admin(), {
			method: "POST",
			json: { provider: "serp", type: "api_key", api_key: "shared-secret", title: "Shared" },
		});

		const browser = await signedIn(user.key);
		const html = await (await browser.get("/console/integrations")).text();
		const reconnect = new RegExp(
			`href="/console/connect/${provider}\\?csrf=[^"&]+&amp;credential_id=${id}"`,
		);
		expect(html).toMatch(reconnect);
		expect(html).toContain(`action="/console/credentials/${own.id}/delete"`);
		expect(html).toContain(`action="/console/credentials/${id}/delete"`);
		// The system credential is listed, read-only: no delete form, as the API refuses it (403).
		expect(html).toContain("(system)");
		expect(html).not.toContain(`/console/credentials/${system.id}/delete`);
		expect(
			(await call(`/v1/credentials/${system.id}`, { token: user.key, method: "DELETE" })).status,
		).toBe(403);

		// Reconnect starts the real flow: to the provider's authorization endpoint, for that credential.
		const href = (reconnect.exec(html)?.[0] ?? "").slice(6, -1).replaceAll("&amp;", "&");
		const started = await browser.get(href);
		expect(started.status).toBe(303);
		const location = new URL(started.headers.get("location") ?? "");
		expect(location.origin + location.pathname).toBe(as.authorizeUrl);
		expect(location.searchParams.get("state")).toBeTruthy();
		expect(location.searchParams.get("redirect_uri")).toBe(`${BASE}/v1/oauth/callback`);
	});

	it("meets hostile paths, queries and forms on every console route with a page, never a 5xx", async () => {
		const doc = (await (await call("/openapi.json")).json()) as {
			paths: Record<string, Record<string, unknown>>;
		};
		const routes = Object.entries(doc.paths)
			.filter(([path]) => path.startsWith("/console"))
			.flatMap(([path, methods]) => Object.keys(methods).map((m) => [m, path] as const));
		expect(routes.length).toBeGreaterThan(20);
		const user = await signedIn(alice.key);
		const adminBrowser = await signedIn(admin());
		const hostile = ["%00", "..", "x".repeat(300), "%C3%A9", "%F0%9F%98%80", "<b>"];
		for (const [browser, page] of [
			[user, "/console/keys"],
			[adminBrowser, "/console/admin/users"],
			[new Browser(), "/console/sign-in"],
		] as const) {
			// The session's own token, so that hostile forms reach the handlers behind the check.
			const token = await browser.csrf(page);
			for (const [method, path] of routes) {
				if (path === "/console/sign-out") continue;
				for (const value of hostile) {
					const at = path.replace(/\{[a-z_]+\}/g, encodeURIComponent(value).replace(/%25/g, "%"));
					const query = `?cursor=${encodeURIComponent(value)}&status=${encodeURIComponent(value)}&since=${encodeURIComponent(value)}&connect_id=${encodeURIComponent(value)}`;
					const res =
						method === "get"
							? await browser.get(`${at}${query}`)
							: await browser.post(at, {
									_csrf: token,
									key: value,
									name: value,
									email: value,
									status: value,
									scopes: [value, value],
									expires_on: value,
								});
					const what = `${method} ${at} → ${res.status}`;
					expect(res.status, what).toBeLessThan(500);
					if (res.status >= 400)
						expect(res.headers.get("content-type") ?? "", what).toMatch(/^text\/html/);
					await res.body?.cancel();
				}
			}
		}
	});

	it("the console's actions do what the API does: roll a key, retry a failed job, redeliver a delivery", async () => {
		// Roll: the page shows the new key once; the old one stops working at once (no grace).
		const user = await userWithKey();
		const browser = await signedIn(user.key);
		const keyId = user.key.slice(3, 15);
		const rolled = await browser.post(`/console/keys/${keyId}/roll`, {
			_csrf: await browser.csrf("/console/keys"),
		});
		expect(rolled.status).toBe(200);
		const rolledPage = await rolled.text();
		const shown = /id="new-key" type="text" readonly="" value="(lk_[^"]+)"/.exec(rolledPage)?.[1];
		// It was the key this session came from: the session ended with it, and the page says so.
		expect(rolledPage).toContain("this session has ended");
		expect(browser.cookies.has("__Host-latchkey_console")).toBe(false);
		expect(shown).toMatch(/^lk_[0-9A-Za-z]{12}_/);
		expect((await call("/v1/me", { token: shown })).status).toBe(200);
		expect((await call("/v1/me", { token: user.key, method: "PATCH", json: {} })).status).toBe(401);

		const adminBrowser = await signedIn(admin());
		const token = await adminBrowser.csrf("/console/admin/users");
		// Retry: a failed deletion job is pending again.
		const jobId = newId("job");
		await db.insert(jobs).values({
			id: jobId,
			userId: bob.id,
			kind: "revoke_oauth",
			status: "failed",
			attempts: 8,
			lastError: "the provider kept answering 503",
		});
		const failedPage = await (await adminBrowser.get("/console/admin/jobs")).text();
		expect(failedPage).toContain(`action="/console/admin/jobs/${jobId}/retry"`);
		const retried = await adminBrowser.post(`/console/admin/jobs/${jobId}/retry`, { _csrf: token });
		expect(retried.headers.get("location")).toBe("/console/admin/jobs?notice=job_retried");
		expect(await json<{ status: string }>(`/v1/admin/jobs/${jobId}`, admin())).toMatchObject({
			status: "pending",
		});
		await db.delete(jobs).where(eq(jobs.id, jobId));

		// Redeliver: a dead-lettered delivery is due again with fresh attempts.
		const hookId = `console-${crypto.randomUUID().slice(0, 8)}`;
		await json(`/v1/admin/webhooks/${hookId}`, admin(), {
			method: "PUT",
			json: { url: "http://127.0.0.1:9/hooks", events: ["user.deleted"] },
		});
		const deliveryId = newId("whd");
		await db.insert(webhookDeliveries).values({
			id: deliveryId,
			webhookId: hookId,
			eventType: "user.deleted",
			payload: "{}",
			status: "failed",
			attempts: 8,
			maxAttempts: 8,
			lastError: "the receiver was unreachable",
		});
		const page = await (await adminBrowser.get(`/console/admin/webhooks/${hookId}`)).text();
		const action = `/console/admin/webhooks/${hookId}/deliveries/${deliveryId}/redeliver`;
		expect(page).toContain(`action="${action}"`);
		const again = await adminBrowser.post(action, { _csrf: token });
		expect(again.headers.get("location")).toBe(
			`/console/admin/webhooks/${hookId}?notice=redelivered`,
		);
		const [row] = await db
			.select()
			.from(webhookDeliveries)
			.where(eq(webhookDeliveries.id, deliveryId));
		expect(row).toMatchObject({ status: "pending", attempts: 0 });
		await call(`/v1/admin/webhooks/${hookId}`, { method: "DELETE", token: admin() });
	});

	it("two pages loaded at once when the access token is due refresh it once: both keep one working session", async () => {
		const app = clockedApp();
		const user = await userWithKey();
		const jar = new Browser();
		const signIn = async () => {
			const form = await app.call("/console/sign-in", { redirect: "manual" });
			jar.keep(form);
			const token = /name="_csrf" value="([^"]+)"/.exec(await form.text())?.[1] ?? "";
			const res = await app.call("/console/sign-in", {
				method: "POST",
				redirect: "manual",
				headers: {
					cookie: jar.header(),
					origin: BASE,
					"content-type": "application/x-www-form-urlencoded",
				},
				body: new URLSearchParams({ _csrf: token, key: user.key }),
			});
			jar.keep(res);
			expect(res.status).toBe(303);
		};
		await signIn();
		// Past the access token's life: each page must refresh before calling the API.
		app.advance(16 * 60);
		const cookie = jar.header();
		const pages = await Promise.all(
			["/console/keys", "/console/integrations", "/console/audit"].map((path) =>
				app.call(path, { headers: { cookie }, redirect: "manual" }),
			),
		);
		expect(pages.map((r) => r.status)).toEqual([200, 200, 200]);
		// Each answer carries a session; they all hold the same, still valid, refresh token.
		const secret = testEnv.LATCHKEY_HMAC_SECRET;
		const refreshTokens = await Promise.all(
			pages.map(async (res) => {
				const set = res.headers
					.getSetCookie()
					.find((c) => c.startsWith("__Host-latchkey_console="));
				const value = set?.split(";")[0]?.split("=")[1];
				const session = await unseal(secret, value, app.now());
				return session?.kind === "user" ? session.refreshToken : null;
			}),
		);
		expect(new Set(refreshTokens).size).toBe(1);
		// Whichever cookie the browser keeps works on: the API session was not revoked.
		const next = await app.call("/v1/auth/token", {
			method: "POST",
			json: { grant_type: "refresh_token", refresh_token: refreshTokens[0] },
		});
		expect(next.status).toBe(200);
	});

	it("with Redis down, the admin's pages say the session cannot be checked, as a page", async () => {
		const adminBrowser = await signedIn(admin());
		const res = await call(
			"/console/admin/users",
			{ headers: { cookie: adminBrowser.header() }, redirect: "manual" },
			{ UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9" },
		);
		expect(res.status).toBe(503);
		expect(res.headers.get("content-type")).toMatch(/^text\/html/);
		expect(await res.text()).toContain("cannot check your session");
	});

	it("pages a long list: the integrations page shows 100 credentials and a link to the rest", async () => {
		const user = await userWithKey();
		const titles = Array.from({ length: 101 }, (_, i) => `paged-${String(i).padStart(3, "0")}`);
		for (const title of titles) {
			await json("/v1/credentials", user.key, {
				method: "POST",
				json: { provider: "paged", type: "api_key", title, api_key: `k-${title}` },
			});
		}
		const browser = await signedIn(user.key);
		const first = await (await browser.get("/console/integrations")).text();
		const next = /<a href="(\/console\/integrations\?cursor=[^"]+)">Next page<\/a>/.exec(
			first,
		)?.[1];
		expect(next).toBeDefined();
		const second = await (await browser.get((next as string).replaceAll("&amp;", "&"))).text();
		const shown = (html: string) => titles.filter((t) => html.includes(`>${t}<`));
		// 100 rows on the first page (system credentials other tests made are listed too).
		expect(first.split("<tr><td").length - 1).toBe(100);
		expect(shown(first).length + shown(second).length).toBe(101);
		expect(new Set([...shown(first), ...shown(second)]).size).toBe(101);
		expect(second).not.toContain("Next page");
	});

	it("filters the audit trail by whole UTC days, and shows the API's refusal of a bad one", async () => {
		// Days taken before the event, and a span of two: a run across midnight UTC still holds.
		const day = (offset: number) =>
			new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
		const [today, tomorrow, later] = [day(0), day(1), day(2)];
		const user = await userWithKey();
		await json("/v1/credentials", user.key, {
			method: "POST",
			json: { provider: "audited", type: "api_key", api_key: "day-filter" },
		});
		const browser = await signedIn(user.key);
		const page = async (query: string) => {
			const res = await browser.get(`/console/audit?${query}`);
			return { status: res.status, html: await res.text() };
		};
		const todays = await page(`from=${today}&to=${tomorrow}&action=credential.created`);
		expect(todays.status).toBe(200);
		expect(todays.html).toContain(">credential.created<");
		const afterwards = await page(`from=${later}&action=credential.created`);
		expect(afterwards.html).toContain("No events.");
		expect(afterwards.html).not.toContain(">credential.created<");
		const bad = await page("from=yesterday");
		expect(bad.status).toBe(400);
		expect(bad.html).toContain('role="alert"');
	});

	it("keeps users and the admin on their own pages, and a tampered cookie signs nobody in", async () => {
		const user = await signedIn(alice.key);
		for (const path of ["/console/admin/users", "/console/admin/jobs", "/console/admin/webhooks"]) {
			expect((await user.get(path)).status, path).toBe(404);
		}
		const adminBrowser = await signedIn(admin());
		for (const path of ["/console/integrations", "/console/keys"]) {
			expect((await adminBrowser.get(path)).status, path).toBe(404);
		}

		const forged = new Browser();
		const sealed = user.cookies.get("__Host-latchkey_console") as string;
		const flipped = `${sealed.slice(0, 40)}${sealed[40] === "A" ? "B" : "A"}${sealed.slice(41)}`;
		forged.cookies.set("__Host-latchkey_console", flipped);
		const res = await forged.get("/console/integrations");
		expect(res.status).toBe(303);
		expect(res.headers.get("location")).toMatch(/^\/console\/sign-in/);
	});

	it("signing out ends the session: the old cookie no longer works, nor its API session", async () => {
		const adminBrowser = await signedIn(admin());
		const adminCookie = adminBrowser.header();
		const out = await adminBrowser.post("/console/sign-out", {
			_csrf: await adminBrowser.csrf("/console/admin/users"),
		});
		expect(out.status).toBe(303);
		const replay = await call("/console/admin/users", {
			headers: { cookie: adminCookie },
			redirect: "manual",
		});
		expect(replay.status).toBe(303);
		expect(replay.headers.get("location")).toMatch(/^\/console\/sign-in/);

		const user = await signedIn(alice.key);
		const userCookie = user.header();
		await user.post("/console/sign-out", { _csrf: await user.csrf("/console/keys") });
		// The API session behind it is revoked: the old cookie's next write is refused.
		const stale = new Browser();
		for (const part of userCookie.split("; ")) {
			const at = part.indexOf("=");
			stale.cookies.set(part.slice(0, at), part.slice(at + 1));
		}
		const token = /name="_csrf" value="([^"]+)"/.exec(
			await (await stale.get("/console/keys")).text(),
		)?.[1];
		const attempt = await stale.post("/console/keys", {
			_csrf: token ?? "",
			name: "after sign-out",
		});
		expect(attempt.status).toBe(303);
		expect(attempt.headers.get("location")).toMatch(/^\/console\/sign-in/);
		const keys = await json<{ data: { name: string }[] }>("/v1/api-keys", alice.key);
		expect(keys.data.map((k) => k.name)).not.toContain("after sign-out");
	});
});
