import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ROOT } from "../../scripts/lib/wrangler.ts";
import { browserAvailable, launchChromium, screenshotPath } from "../browser/chromium.ts";
import { startTestWorker } from "../client/worker.ts";
import { startOAuthServer } from "../setup/oauth-server.ts";

/**
 * The console as a person meets it: Debian's Chromium driven by playwright-core against the real
 * worker on workerd, and a real OAuth authorization server (oidc-provider) with its own login and
 * consent pages. Screenshots of each page land in test-results/screenshots; the main ones are
 * copied to docs/screenshots for the README when LATCHKEY_UPDATE_SCREENSHOTS is set.
 */
const bindings = inject("bindings");
const ADMIN = bindings.LATCHKEY_ADMIN_TOKEN as string;
/** Markup in every string a user controls: a page that interpolated it raw would run it. */
const MARKUP = `<img src=x onerror="document.title='pwned'">`;

let worker: { url: string; stop(): Promise<void> };
let oauth: Awaited<ReturnType<typeof startOAuthServer>>;
let browser: Browser;
let email: string;
let userKey: string;
let userId: string;
/** Dialogs, page errors and CSP violations seen on Latchkey's pages: each test expects none. */
const incidents: string[] = [];

async function api<T = Record<string, unknown>>(
	method: string,
	path: string,
	token: string,
	body?: unknown,
): Promise<T> {
	const res = await fetch(`${worker.url}${path}`, {
		method,
		headers: {
			authorization: `Bearer ${token}`,
			...(body === undefined ? {} : { "content-type": "application/json" }),
		},
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	const text = await res.text();
	if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${text}`);
	return (text ? JSON.parse(text) : {}) as T;
}

async function newPage(context: BrowserContext): Promise<Page> {
	const page = await context.newPage();
	// A missing element fails its step with its name, rather than the whole test's timeout.
	page.setDefaultTimeout(10_000);
	page.on("dialog", (dialog) => {
		incidents.push(`dialog: ${dialog.message()}`);
		void dialog.dismiss();
	});
	page.on("pageerror", (err) => incidents.push(`page error: ${err.message}`));
	// CSP violations and script errors are console errors. A page's own error status (a refused
	// form answers 403) is logged there too, and is what some steps expect: those are told apart
	// by the response, and only a failed stylesheet, script or icon counts.
	page.on("console", (message) => {
		const text = message.text();
		if (!page.url().startsWith(worker.url)) return;
		if (message.type() === "error" && !text.startsWith("Failed to load resource"))
			incidents.push(`console: ${text}`);
	});
	page.on("response", (response) => {
		const type = response.request().resourceType();
		if (!response.url().startsWith(worker.url)) return;
		if (type !== "document" && response.status() >= 400)
			incidents.push(`${type} ${response.url()} → ${response.status()}`);
	});
	// (The authorization server's own login page asks Google for a font; not ours to judge.)
	page.on("requestfailed", (request) => {
		if (request.url().startsWith(worker.url))
			incidents.push(`failed: ${request.url()} ${request.failure()?.errorText}`);
	});
	return page;
}

async function shoot(page: Page, name: string): Promise<void> {
	const path = screenshotPath(`console-${name}`);
	await page.screenshot({ path, fullPage: true });
	if (process.env.LATCHKEY_UPDATE_SCREENSHOTS) {
		const dir = join(ROOT, "docs", "screenshots");
		mkdirSync(dir, { recursive: true });
		copyFileSync(path, join(dir, `console-${name}.png`));
	}
}

async function signIn(page: Page, key: string): Promise<void> {
	await page.goto(`${worker.url}/console`);
	await expect.poll(() => new URL(page.url()).pathname).toBe("/console/sign-in");
	await page.getByLabel("API key").fill(key);
	await page.getByRole("button", { name: "Sign in" }).click();
}

describe.skipIf(!browserAvailable())("console in a browser", { timeout: 60_000 }, () => {
	beforeAll(async () => {
		worker = await startTestWorker(bindings);
		oauth = await startOAuthServer({
			redirectUris: [`${worker.url}/v1/oauth/callback`],
			loginPages: true,
		});
		await api("PUT", "/v1/admin/providers/example-idp", ADMIN, {
			name: "Example IdP",
			authorize_url: oauth.authorizeUrl,
			token_url: oauth.tokenUrl,
			revoke_url: oauth.revokeUrl,
			userinfo_url: oauth.userinfoUrl,
			issuer: oauth.issuer,
			default_scopes: ["openid", "profile", "email"],
			scope_separator: " ",
			pkce: true,
			client_auth: "basic",
			client_id: oauth.clientId,
			client_secret: oauth.clientSecret,
		});
		email = `console-${crypto.randomUUID().slice(0, 8)}@example.com`;
		const user = await api<{ id: string }>("POST", "/v1/admin/users", ADMIN, {
			email,
			name: MARKUP,
		});
		const key = await api<{ key: string }>("POST", `/v1/admin/users/${user.id}/api-keys`, ADMIN, {
			name: "console sign-in",
		});
		userKey = key.key;
		userId = user.id;
		await api("POST", "/v1/credentials", userKey, {
			provider: "acme-crm",
			type: "api_key",
			title: MARKUP,
			api_key: `acme_${crypto.randomUUID()}`,
		});
		browser = await launchChromium();
	}, 120_000);

	afterAll(async () => {
		await browser?.close();
		await oauth?.close();
		await worker?.stop();
	});

	it("a user signs in, connects a provider through its login page, and sees the credential", async () => {
		const context = await browser.newContext();
		const page = await newPage(context);
		await signIn(page, userKey);
		await expect.poll(() => new URL(page.url()).pathname).toBe("/console/integrations");
		await expect.poll(() => page.getByRole("heading", { name: "Integrations" }).count()).toBe(1);

		// The session is a cookie the page's script cannot read.
		const cookies = await context.cookies();
		const session = cookies.find((c) => c.name === "__Host-latchkey_console");
		expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: "Lax", path: "/" });
		expect(await page.evaluate(() => document.cookie)).not.toContain("latchkey_console");

		// Keyboard first: the first Tab reaches the skip link, which moves focus to the content.
		await page.keyboard.press("Tab");
		expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content");
		await page.keyboard.press("Enter");
		expect(await page.evaluate(() => document.activeElement?.id)).toBe("main");

		// The markup title is shown as text.
		await expect.poll(() => page.getByRole("cell", { name: MARKUP, exact: true }).count()).toBe(1);
		expect(await page.title()).toBe("Integrations · Latchkey");

		await page.getByRole("link", { name: "Connect Example IdP" }).click();
		// oidc-provider's own login page, then its consent page.
		await page.locator('input[name="login"]').fill("ada");
		await page.locator('input[name="password"]').fill("any password");
		await page.locator('button[type="submit"]').click();
		await page.locator('button[type="submit"]').click();

		await expect.poll(() => new URL(page.url()).pathname).toBe("/console/integrations");
		await expect
			.poll(() => page.getByRole("status").textContent())
			.toBe("The account is connected.");
		const row = page.getByRole("row").filter({ hasText: "ada" });
		await expect.poll(() => row.count()).toBe(1);
		expect(await row.textContent()).toContain("active");
		await shoot(page, "integrations");
		expect(incidents).toEqual([]);
		await context.close();
	});

	it("a user creates a key, sees it once, copies it, and revokes it", async () => {
		const context = await browser.newContext({
			permissions: ["clipboard-read", "clipboard-write"],
		});
		const page = await newPage(context);
		await signIn(page, userKey);
		await page.getByRole("link", { name: "API keys" }).click();
		await page.getByLabel("Name").fill(`deploy bot ${MARKUP}`);
		await page.getByLabel("credentials:use").check();
		await page.getByRole("button", { name: "Create key" }).click();

		const shown = await page.locator("#new-key").inputValue();
		expect(shown).toMatch(/^lk_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}$/);
		await page.getByRole("button", { name: "Copy" }).click();
		await expect
			.poll(() => page.locator("#copy-status").textContent())
			.toBe("Copied to the clipboard.");
		expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(shown);
		await shoot(page, "keys");

		// The key works until it is revoked here, then at once no more.
		const exchange = (key: string) =>
			fetch(`${worker.url}/v1/auth/token`, {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify({ grant_type: "api_key", api_key: key }),
			}).then((r) => r.status);
		expect(await exchange(shown)).toBe(200);
		await page.getByRole("button", { name: `Revoke deploy bot ${MARKUP}` }).click();
		await expect.poll(() => page.getByRole("status").textContent()).toContain("The key is revoked");
		expect(await exchange(shown)).toBe(401);
		// Shown once: the list never holds the key itself.
		expect(await page.content()).not.toContain(shown);
		expect(incidents).toEqual([]);
		await context.close();
	});

	it("a user sees their audit trail", async () => {
		const context = await browser.newContext();
		const page = await newPage(context);
		await signIn(page, userKey);
		await page.getByRole("link", { name: "Audit trail" }).click();
		await expect
			.poll(() => page.getByRole("cell", { name: "key.revoked" }).count())
			.toBeGreaterThan(0);
		expect(await page.getByRole("cell", { name: "credential.created" }).count()).toBeGreaterThan(0);
		await shoot(page, "audit");
		expect(incidents).toEqual([]);
		await context.close();
	});

	it("the admin suspends the user, whose console session then ends", async () => {
		const userContext = await browser.newContext();
		const userPage = await newPage(userContext);
		await signIn(userPage, userKey);
		await expect.poll(() => new URL(userPage.url()).pathname).toBe("/console/integrations");

		const context = await browser.newContext();
		const page = await newPage(context);
		await signIn(page, ADMIN);
		await expect.poll(() => new URL(page.url()).pathname).toBe("/console/admin/users");
		const row = page.getByRole("row").filter({ hasText: email });
		// The user's name holds markup: shown as text.
		expect(await row.getByRole("cell", { name: MARKUP, exact: true }).count()).toBe(1);
		await row.getByRole("button", { name: `Suspend ${email}` }).click();
		await expect.poll(() => page.getByRole("status").textContent()).toBe("The user is updated.");
		expect(await page.getByRole("row").filter({ hasText: email }).textContent()).toContain(
			"suspended",
		);
		await shoot(page, "admin-users");

		// The suspension reaches the user's open console at once on anything that writes (reads
		// within the API's 10 s bound): their next form is refused, and says why.
		// The page was loaded before the suspension; its delete form is refused now.
		await userPage.getByRole("button", { name: `Delete ${MARKUP}` }).click();
		await expect.poll(() => new URL(userPage.url()).pathname).toBe("/console/sign-in");
		expect(await userPage.getByRole("status").textContent()).toBe(
			"Your session ended. Sign in again.",
		);
		await userPage.getByLabel("API key").fill(userKey);
		await userPage.getByRole("button", { name: "Sign in" }).click();
		await expect.poll(() => userPage.locator("[role=alert]").textContent()).toContain("suspended");
		await page
			.getByRole("row")
			.filter({ hasText: email })
			.getByRole("button", { name: `Reactivate ${email}` })
			.click();
		await expect.poll(() => page.getByRole("status").textContent()).toBe("The user is updated.");
		const left = await api<{ data: { title: string }[] }>("GET", "/v1/credentials", userKey);
		expect(left.data.map((c) => c.title)).toContain(MARKUP);

		// A webhook whose receiver is down, for the deletion below: the delivery's failed attempt
		// and the deletion job show on the admin's pages.
		await api("PUT", "/v1/admin/webhooks/platform-events", ADMIN, {
			url: `${worker.url.replace(/:\d+$/, ":9")}/hooks/latchkey`,
			events: ["user.deleted", "credential.reconnect_required"],
		});
		// The admin deletes the user from the console: deprovisioning (revoking the connected
		// OAuth account upstream) is queued as a job.
		await page
			.getByRole("row")
			.filter({ hasText: email })
			.getByRole("button", { name: `Delete ${email}` })
			.click();
		await expect
			.poll(() => page.getByRole("status").textContent())
			.toBe("The user's deletion has started.");
		expect(await page.getByRole("row").filter({ hasText: email }).textContent()).toContain(
			"deleting",
		);
		const deliveries = () =>
			api<{ data: { attempts: number }[] }>(
				"GET",
				"/v1/admin/webhooks/platform-events/deliveries",
				ADMIN,
			);
		// The event (and its delivery) is written after the deletion's response.
		await expect.poll(async () => (await deliveries()).data.length).toBeGreaterThan(0);
		await api("POST", "/v1/admin/maintenance/run", ADMIN, {});
		await expect.poll(async () => (await deliveries()).data[0]?.attempts).toBe(1);

		await page.getByRole("link", { name: "Jobs" }).click();
		await page.getByRole("link", { name: "all", exact: true }).click();
		await shoot(page, "admin-jobs");
		await expect.poll(() => page.getByRole("cell", { name: userId }).count()).toBe(1);
		await page.getByRole("link", { name: "Webhooks" }).click();
		await page.getByRole("link", { name: "platform-events" }).click();
		await expect.poll(() => page.getByRole("cell", { name: "user.deleted" }).count()).toBe(1);
		await shoot(page, "admin-webhooks");
		expect(incidents).toEqual([]);
		await context.close();
		await userContext.close();
	});
});
