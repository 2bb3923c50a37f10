import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { html } from "hono/html";
import { loadConfig } from "../config.ts";
import { sha256Hex } from "../crypto/hash.ts";
import type { AppEnv } from "../http/context.ts";
import { type ApiFetch, type ApiResult, callApi } from "./api.ts";
import { ASSET_PATHS, CONSOLE_CSS, CONSOLE_ICON, CONSOLE_JS } from "./assets.ts";
import { Layout, type LayoutProps, Pager } from "./layout.tsx";
import {
	AuditPage,
	ConnectedKeyPage,
	IntegrationsPage,
	JobsPage,
	KeysPage,
	SignInPage,
	UsersPage,
	WebhookPage,
	WebhooksPage,
} from "./pages.tsx";
import {
	ADMIN_SESSION_TTL_S,
	accessClaims,
	adminSessionKey,
	type ConsoleSession,
	clearPreSession,
	clearSessionCookie,
	csrfToken,
	csrfValid,
	needsRefresh,
	newAdminSessionId,
	preSessionOf,
	readPreSession,
	readSessionCookie,
	seal,
	type UserSession,
	unseal,
	writeSessionCookie,
} from "./session.ts";
import type {
	ApiKey,
	AuditEvent,
	Credential,
	Delivery,
	Job,
	List,
	Provider,
	TokenPair,
	User,
	Webhook,
} from "./types.ts";

/**
 * The console: server-rendered pages over the API (docs/console.md). Nothing here decides who may
 * do what; each action is the API call a platform would make, with the signed-in user's own
 * access token (or, for the admin, the admin token the worker holds), and the API's refusal is
 * shown as it is.
 */
export interface ConsoleOptions {
	/** The app's own fetch, for in-process API calls. */
	api: ApiFetch;
}

// No third-party anything: the console's own stylesheet and script only. form-action 'self':
// Connect is a link (a form's redirect to the provider would be blocked by it).
const PAGE_CSP =
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

type Ctx = Context<AppEnv>;

/** How long a refresh's claim, and the session it leaves, stay in Redis. */
const REFRESH_CLAIM_S = 30;
/** How long a request waits for another's refresh, and how often it looks. */
const REFRESH_WAIT_MS = 5_000;
const REFRESH_POLL_MS = 25;
const PENDING = "pending";
const consoleRefreshKey = (digest: string) => `lk:console:refresh:${digest}`;

interface Signed {
	session: ConsoleSession;
	csrf: string;
	/** The bearer this session's API calls carry. */
	bearer: string;
}

/** Messages a redirect may ask a page to show, by name: no text travels in the URL. */
const NOTICES: Record<string, string> = {
	signed_out: "You are signed out.",
	session_ended: "Your session ended. Sign in again.",
	connected: "The account is connected.",
	connect_denied: "The provider refused the connection (you declined, or it failed).",
	connect_expired: "That connection expired or was already used. Start again.",
	deleted: "The credential is deleted.",
	revoked: "The key is revoked. It stops working at once.",
	user_created: "The user is created.",
	user_updated: "The user is updated.",
	user_deleted: "The user's deletion has started.",
	job_retried: "The job is pending again; the next run takes it.",
	redelivered: "The delivery is queued again.",
};

const noticeOf = (c: Ctx) => NOTICES[c.req.query("notice") ?? ""] ?? null;

const see = (c: Ctx, path: string, notice?: string) =>
	c.redirect(notice ? `${path}?notice=${notice}` : path, 303);

function render(
	c: Ctx,
	status: 200 | 400 | 403 | 404 | 409 | 429 | 500 | 502 | 503,
	props: LayoutProps,
) {
	// JSX has no doctype; without one the browser renders in quirks mode.
	return c.html(html`<!doctype html>${<Layout {...props} />}`, status);
}

function errorStatus(status: number): 400 | 403 | 404 | 409 | 429 | 500 | 502 | 503 {
	if ([400, 403, 404, 409, 429, 502, 503].includes(status))
		return status as 400 | 403 | 404 | 409 | 429 | 502 | 503;
	if (status === 412 || status === 410 || status === 413) return 409;
	return status >= 500 ? 500 : 400;
}

export function registerConsoleRoutes(app: OpenAPIHono<AppEnv>, options: ConsoleOptions): void {
	const { api } = options;
	const secretOf = (c: Ctx) => loadConfig(c.env).LATCHKEY_HMAC_SECRET;
	const nowOf = (c: Ctx) => c.get("services").now();

	const call = <T,>(c: Ctx, bearer: string | null, method: string, path: string, body?: unknown) =>
		callApi<T>(c, api, bearer, method, path, body);

	/** The signed-in session, refreshed when its access token is about to lapse; null when none. */
	async function signedIn(c: Ctx): Promise<Signed | null> {
		const secret = secretOf(c);
		const now = nowOf(c);
		let session = await unseal(secret, readSessionCookie(c), now);
		if (!session) return null;
		if (session.kind === "admin") {
			const live = await c.get("services").redis.exists(adminSessionKey(session.sid));
			if (!live) return null;
			return {
				session,
				csrf: await csrfToken(secret, session.sid),
				bearer: loadConfig(c.env).LATCHKEY_ADMIN_TOKEN,
			};
		}
		if (needsRefresh(session, now)) {
			session = await refreshOnce(c, session);
			if (!session) return null;
			await writeSessionCookie(c, secret, session, now);
		}
		return { session, csrf: await csrfToken(secret, session.sid), bearer: session.accessToken };
	}

	/**
	 * The session with a fresh access token, refreshed once however many of the browser's requests
	 * find it due at the same moment (two tabs, a page and a form). Refresh tokens rotate: had each
	 * request refreshed, the API would have answered the later ones as a client's retry and voided
	 * the pairs before them, and the browser could keep a voided one, whose next use revokes the
	 * whole session. So the first request claims the refresh in Redis (under the refresh token's
	 * digest, 30 s) and leaves the new session there, sealed; the others wait for it, briefly.
	 */
	async function refreshOnce(c: Ctx, session: UserSession): Promise<UserSession | null> {
		const { redis } = c.get("services");
		const secret = secretOf(c);
		const key = consoleRefreshKey(await sha256Hex(session.refreshToken));
		const deadline = Date.now() + REFRESH_WAIT_MS;
		for (;;) {
			const claimed = await redis.set(key, PENDING, { nx: true, ex: REFRESH_CLAIM_S });
			if (claimed === "OK") {
				const refreshed = await call<TokenPair>(c, null, "POST", "/v1/auth/token", {
					grant_type: "refresh_token",
					refresh_token: session.refreshToken,
				});
				if (!refreshed.ok) {
					await redis.del(key);
					if (refreshed.status === 401 || refreshed.status === 403) return null;
					throw new ConsoleUnavailable(refreshed.error);
				}
				const next = userSession(refreshed.body, nowOf(c)) ?? null;
				if (next) await redis.set(key, await seal(secret, next), { ex: REFRESH_CLAIM_S });
				return next;
			}
			const stored = await redis.get<string>(key);
			if (stored && stored !== PENDING) {
				const next = await unseal(secret, stored, nowOf(c));
				return next?.kind === "user" ? next : null;
			}
			if (Date.now() > deadline) {
				throw new ConsoleUnavailable({
					message: "The session is being refreshed by another request.",
					hint: "Reload the page.",
				});
			}
			await new Promise((resolve) => setTimeout(resolve, REFRESH_POLL_MS));
		}
	}

	class ConsoleUnavailable extends Error {
		constructor(readonly apiError: { message: string; hint: string }) {
			super(apiError.message);
		}
	}

	// Headers of every console response; a page never lands in a shared cache.
	const consoleHeaders: MiddlewareHandler<AppEnv> = async function consoleHeaders(c, next) {
		await next();
		c.res.headers.set("Content-Security-Policy", PAGE_CSP);
		// same-origin, not the API's no-referrer: under no-referrer a browser sends `Origin: null`
		// with a form, and the origin check could not tell our own forms from a sandboxed attacker.
		// Nothing leaves for another origin either way.
		c.res.headers.set("Referrer-Policy", "same-origin");
		if (!c.req.path.startsWith("/console/assets/")) c.res.headers.set("Cache-Control", "no-store");
	};
	app.use("/console", consoleHeaders);
	app.use("/console/*", consoleHeaders);

	/**
	 * Every POST: same-origin (when the browser says where it came from) and a CSRF token bound to
	 * this session. Runs before the handler reads anything else of the form.
	 */
	async function checkForm(
		c: Ctx,
		binding: string,
	): Promise<
		| { ok: true; form: Record<string, string | string[]> }
		| { ok: false; res: Response | Promise<Response> }
	> {
		// The browser's Origin, when it sends one, must be this console's: the public URL's origin
		// (what a browser sees), or the request's own (the same unless a local runtime rewrote it).
		const origin = c.req.header("origin");
		const own = [new URL(c.req.url).origin, new URL(loadConfig(c.env).LATCHKEY_PUBLIC_URL).origin];
		if (origin && !own.includes(origin)) {
			return { ok: false, res: forbiddenForm(c) };
		}
		const type = c.req.header("content-type") ?? "";
		if (!/^(application\/x-www-form-urlencoded|multipart\/form-data)\b/i.test(type)) {
			return { ok: false, res: forbiddenForm(c) };
		}
		const form = (await c.req.parseBody({ all: true })) as Record<string, string | string[]>;
		if (!(await csrfValid(secretOf(c), binding, form._csrf))) {
			return { ok: false, res: forbiddenForm(c) };
		}
		return { ok: true, form };
	}

	const forbiddenForm = (c: Ctx) =>
		render(c, 403, {
			title: "Form refused",
			nav: "none",
			error: {
				message: "This form was refused: it was not sent from this console session.",
				hint: "Reload the page and submit the form again.",
			},
			children: (
				<p>
					<a href="/console">Back to the console</a>
				</p>
			),
		});

	const field = (form: Record<string, string | string[]>, name: string): string => {
		const value = form[name];
		return (Array.isArray(value) ? value[0] : value)?.toString().trim() ?? "";
	};
	const fields = (form: Record<string, string | string[]>, name: string): string[] => {
		const value = form[name];
		if (value === undefined) return [];
		return (Array.isArray(value) ? value : [value]).map(String);
	};

	/**
	 * The pages behind sign-in. A user page for the admin (or the reverse) is not there: 404, as
	 * another user's object is.
	 */
	function page(
		kind: "user" | "admin" | "any",
		handler: (c: Ctx, s: Signed) => Response | Promise<Response>,
	) {
		return async (c: Ctx): Promise<Response> => {
			let signed: Signed | null;
			try {
				signed = await signedIn(c);
			} catch (err) {
				if (err instanceof ConsoleUnavailable) return unavailable(c, err.apiError);
				// Redis (the admin's session, a refresh's claim) failing: a page, not the API's JSON.
				c.get("logger").error("console: the session could not be checked", {
					error: err instanceof Error ? err.name : "unknown",
				});
				return unavailable(c, {
					message: "The console cannot check your session right now.",
					hint: "Try again in a moment.",
				});
			}
			if (!signed) {
				if (readSessionCookie(c)) clearSessionCookie(c);
				return see(c, "/console/sign-in", readSessionCookie(c) ? "session_ended" : undefined);
			}
			if (kind !== "any" && signed.session.kind !== kind) return notFound(c, signed);
			return handler(c, signed);
		};
	}

	/** A POST behind sign-in: checked form, then the handler. */
	function action(
		kind: "user" | "admin" | "any",
		handler: (
			c: Ctx,
			s: Signed,
			form: Record<string, string | string[]>,
		) => Response | Promise<Response>,
	) {
		return page(kind, async (c, s) => {
			const checked = await checkForm(c, s.session.sid);
			if (!checked.ok) return checked.res;
			return handler(c, s, checked.form);
		});
	}

	/** A page of a signed-in principal: their navigation, their forms' token, the notice asked for. */
	const show = (
		c: Ctx,
		s: Signed,
		page: Omit<LayoutProps, "nav" | "csrf" | "notice"> & { status?: 200 | 400 | 403 },
	) => {
		const { status = 200, ...props } = page;
		return render(c, status, { ...props, nav: s.session.kind, csrf: s.csrf, notice: noticeOf(c) });
	};

	const unavailable = (c: Ctx, error: { message: string; hint: string }) =>
		render(c, 503, { title: "Unavailable", nav: "none", error });

	const notFound = (c: Ctx, s: Signed | null) =>
		render(c, 404, {
			title: "Not found",
			nav: s ? s.session.kind : "none",
			csrf: s?.csrf,
			error: { message: "There is nothing here.", hint: "Use the navigation to find your way." },
		});

	/**
	 * An API refusal as the page shows it. A 401 means the session ended under the page (key
	 * revoked, user suspended): back to sign-in.
	 */
	function refused(
		c: Ctx,
		s: Signed,
		result: Extract<ApiResult<unknown>, { ok: false }>,
		title = "Not done",
	) {
		if (result.status === 401) {
			clearSessionCookie(c);
			return see(c, "/console/sign-in", "session_ended");
		}
		return render(c, errorStatus(result.status), {
			title,
			nav: s.session.kind,
			csrf: s.csrf,
			error: { message: result.error.message, hint: result.error.hint },
			children: (
				<p>
					<a href={s.session.kind === "admin" ? "/console/admin/users" : "/console/integrations"}>
						Back to the console
					</a>
				</p>
			),
		});
	}

	// ---- assets and entry -------------------------------------------------------------------

	app.get(ASSET_PATHS.css, (c) => {
		c.header("Cache-Control", "public, max-age=300");
		return c.body(CONSOLE_CSS, 200, { "Content-Type": "text/css; charset=utf-8" });
	});
	app.get(ASSET_PATHS.js, (c) => {
		c.header("Cache-Control", "public, max-age=300");
		return c.body(CONSOLE_JS, 200, { "Content-Type": "text/javascript; charset=utf-8" });
	});

	app.get(ASSET_PATHS.icon, (c) => {
		c.header("Cache-Control", "public, max-age=86400");
		return c.body(CONSOLE_ICON, 200, { "Content-Type": "image/svg+xml" });
	});

	app.get(
		"/console",
		page("any", (c, s) =>
			see(c, s.session.kind === "admin" ? "/console/admin/users" : "/console/integrations"),
		),
	);

	// ---- sign-in and sign-out ----------------------------------------------------------------

	app.get("/console/sign-in", async (c) => {
		const pre = preSessionOf(c);
		return render(c, 200, {
			title: "Sign in",
			nav: "none",
			notice: noticeOf(c),
			children: <SignInPage csrf={await csrfToken(secretOf(c), `signin:${pre}`)} />,
		});
	});

	app.post("/console/sign-in", async (c) => {
		const pre = readPreSession(c);
		if (!pre) return forbiddenForm(c);
		const checked = await checkForm(c, `signin:${pre}`);
		if (!checked.ok) return checked.res;
		const secret = secretOf(c);
		const now = nowOf(c);
		const key = field(checked.form, "key");
		const again = async (message: string, hint: string, status: 400 | 403 | 429 | 503) =>
			render(c, status, {
				title: "Sign in",
				nav: "none",
				error: { message, hint },
				children: <SignInPage csrf={await csrfToken(secret, `signin:${pre}`)} />,
			});
		if (!key) return again("Enter an API key.", "Paste a key that starts with lk_.", 400);

		if (key.startsWith("lk_") || key.startsWith("sk-")) {
			const result = await call<TokenPair>(c, null, "POST", "/v1/auth/token", {
				grant_type: "api_key",
				api_key: key,
			});
			if (!result.ok) {
				if (result.status === 429 || result.status === 503 || result.status === 403)
					return again(result.error.message, result.error.hint, result.status);
				return again(
					"That key was not accepted.",
					"Check the key; a revoked or expired key cannot sign in.",
					403,
				);
			}
			const session = userSession(result.body, now);
			if (!session) return again("The key's session could not be read.", "Try again.", 503);
			await writeSessionCookie(c, secret, session, now);
			clearPreSession(c);
			return see(c, "/console/integrations");
		}

		// The admin token: checked by the API (constant time, failed attempts limited), then a
		// console session of its own; the token itself never leaves the worker again.
		const probe = await call<List<User>>(c, key, "GET", "/v1/admin/users?limit=1");
		if (!probe.ok) {
			if (probe.status === 429 || probe.status === 503)
				return again(probe.error.message, probe.error.hint, probe.status);
			return again(
				"That key was not accepted.",
				"Check the key; a revoked or expired key cannot sign in.",
				403,
			);
		}
		const sid = newAdminSessionId();
		await c.get("services").redis.set(adminSessionKey(sid), "1", { ex: ADMIN_SESSION_TTL_S });
		await writeSessionCookie(
			c,
			secret,
			{ kind: "admin", sid, exp: Math.floor(now.getTime() / 1000) + ADMIN_SESSION_TTL_S },
			now,
		);
		clearPreSession(c);
		return see(c, "/console/admin/users");
	});

	app.post(
		"/console/sign-out",
		action("any", async (c, s) => {
			if (s.session.kind === "admin") {
				await c.get("services").redis.del(adminSessionKey(s.session.sid));
			} else {
				await call(c, null, "POST", "/v1/auth/revoke", { refresh_token: s.session.refreshToken });
			}
			clearSessionCookie(c);
			return see(c, "/console/sign-in", "signed_out");
		}),
	);

	// ---- the user's pages --------------------------------------------------------------------

	app.get(
		"/console/integrations",
		page("user", async (c, s) => {
			const [credentials, providers] = await Promise.all([
				call<List<Credential>>(c, s.bearer, "GET", `/v1/credentials?${pageQuery(c, 100)}`),
				call<List<Provider>>(c, s.bearer, "GET", "/v1/providers?limit=100"),
			]);
			if (!credentials.ok) return refused(c, s, credentials, "Integrations");
			if (!providers.ok) return refused(c, s, providers, "Integrations");
			return show(c, s, {
				title: "Integrations",
				active: "/console/integrations",
				children: (
					<>
						<IntegrationsPage
							credentials={credentials.body.data}
							providers={providers.body.data}
							csrf={s.csrf}
						/>
						<Pager next={credentials.body.next_cursor} base="/console/integrations" />
					</>
				),
			});
		}),
	);

	// A link, not a form: the CSP's form-action 'self' would block a form's redirect to the
	// provider. It starts a flow, so it carries the CSRF token as a form would.
	app.get(
		"/console/connect/:provider",
		page("user", async (c, s) => {
			if (!(await csrfValid(secretOf(c), s.session.sid, c.req.query("csrf"))))
				return forbiddenForm(c);
			const credentialId = c.req.query("credential_id");
			const started = await call<{ authorization_url: string }>(
				c,
				s.bearer,
				"POST",
				`/v1/oauth/${encodeURIComponent(paramOf(c, "provider"))}/authorize`,
				{
					return_to: new URL("/console/connected", loadConfig(c.env).LATCHKEY_PUBLIC_URL).href,
					...(credentialId ? { credential_id: credentialId } : {}),
				},
			);
			if (!started.ok) return refused(c, s, started, "Connect");
			return c.redirect(started.body.authorization_url, 303);
		}),
	);

	// Where the provider's redirect lands (through the API's callback). Finishing is bound to the
	// user who started: another user's connect_id is the API's 404, and stays usable by its owner.
	app.get(
		"/console/connected",
		page("user", async (c, s) => {
			const connectId = c.req.query("connect_id");
			if (!connectId) return see(c, "/console/integrations", "connect_denied");
			const done = await call<Credential>(
				c,
				s.bearer,
				"POST",
				`/v1/oauth/connections/${encodeURIComponent(connectId)}`,
			);
			if (!done.ok) {
				if (done.status === 404) return see(c, "/console/integrations", "connect_expired");
				return refused(c, s, done, "Connect");
			}
			return see(c, "/console/integrations", "connected");
		}),
	);

	const keysPage = async (
		c: Ctx,
		s: Signed,
		extra: {
			shown?: ApiKey;
			error?: { message: string; hint: string };
			status?: 200 | 400 | 403;
		} = {},
	) => {
		const keys = await call<List<ApiKey>>(c, s.bearer, "GET", `/v1/api-keys?${pageQuery(c, 100)}`);
		if (!keys.ok && keys.status === 401 && extra.shown) {
			// Rolling the key this session came from ended the session (a key's sessions end with
			// it): the new key is still shown, its only time, and the browser signs in again.
			clearSessionCookie(c);
			return render(c, 200, {
				title: "API keys",
				nav: "none",
				notice: "You signed in with the key you rolled, so this session has ended.",
				children: (
					<>
						<ConnectedKeyPage created={extra.shown} />
						<p>
							<a href="/console/sign-in">Sign in with the new key</a>
						</p>
					</>
				),
			});
		}
		if (!keys.ok) return refused(c, s, keys, "API keys");
		return show(c, s, {
			title: "API keys",
			status: extra.status ?? 200,
			active: "/console/keys",
			error: extra.error ?? null,
			children: (
				<>
					{extra.shown && <ConnectedKeyPage created={extra.shown} />}
					<KeysPage keys={keys.body.data} csrf={s.csrf} />
					<Pager next={keys.body.next_cursor} base="/console/keys" />
				</>
			),
		});
	};

	app.get(
		"/console/keys",
		page("user", (c, s) => keysPage(c, s)),
	);

	app.post(
		"/console/keys",
		action("user", async (c, s, form) => {
			const expires = field(form, "expires_on");
			const body: Record<string, unknown> = { name: field(form, "name") };
			const scopes = fields(form, "scopes");
			if (scopes.length > 0) body.scopes = scopes;
			if (expires) {
				if (!/^\d{4}-\d{2}-\d{2}$/.test(expires) || Number.isNaN(Date.parse(expires)))
					return keysPage(c, s, {
						status: 400,
						error: { message: "The expiry date is not a date.", hint: "Use YYYY-MM-DD." },
					});
				body.expires_at = `${expires}T23:59:59Z`;
			}
			const created = await call<ApiKey>(c, s.bearer, "POST", "/v1/api-keys", body);
			if (!created.ok) {
				if (created.status === 401) return refused(c, s, created);
				return keysPage(c, s, {
					status: created.status === 403 ? 403 : 400,
					error: { message: created.error.message, hint: created.error.hint },
				});
			}
			return keysPage(c, s, { shown: created.body });
		}),
	);

	app.post(
		"/console/keys/:id/roll",
		action("user", async (c, s) => {
			const rolled = await call<ApiKey>(
				c,
				s.bearer,
				"POST",
				`/v1/api-keys/${encodeURIComponent(paramOf(c, "id"))}/roll`,
				{},
			);
			if (!rolled.ok) return refused(c, s, rolled, "Roll key");
			return keysPage(c, s, { shown: rolled.body });
		}),
	);

	// ---- audit (the user's own trail; the admin's whole log) --------------------------------

	app.get(
		"/console/audit",
		page("any", async (c, s) => {
			const filters: Record<string, string> = {};
			for (const name of ["action", "target", "from", "to"]) {
				const value = c.req.query(name)?.trim();
				if (value) filters[name] = value;
			}
			const query = pageQuery(c);
			if (filters.action) query.set("action", filters.action);
			if (filters.target) query.set("target", filters.target);
			// Whole UTC days, as the date fields give them: from the first day's start to the end
			// of the last (the API's `until` is exclusive). Anything else goes on as given, for the
			// API to refuse with its own message.
			if (filters.from) query.set("since", dayStart(filters.from, 0));
			if (filters.to) query.set("until", dayStart(filters.to, 1));
			const events = await call<List<AuditEvent>>(c, s.bearer, "GET", `/v1/audit?${query}`);
			const title = s.session.kind === "admin" ? "Audit log" : "Audit trail";
			if (!events.ok && events.status !== 400) return refused(c, s, events, title);
			return show(c, s, {
				title,
				status: events.ok ? 200 : 400,
				active: "/console/audit",
				error: events.ok ? null : { message: events.error.message, hint: events.error.hint },
				children: (
					<AuditPage
						events={events.ok ? events.body.data : []}
						next={events.ok ? events.body.next_cursor : null}
						filters={filters}
					/>
				),
			});
		}),
	);

	// ---- the admin's pages -------------------------------------------------------------------

	app.get(
		"/console/admin/users",
		page("admin", async (c, s) => {
			const query = pageQuery(c);
			const users = await call<List<User>>(c, s.bearer, "GET", `/v1/admin/users?${query}`);
			if (!users.ok) return refused(c, s, users, "Users");
			return show(c, s, {
				title: "Users",
				active: "/console/admin/users",
				children: <UsersPage users={users.body.data} next={users.body.next_cursor} csrf={s.csrf} />,
			});
		}),
	);

	app.post(
		"/console/admin/users",
		action("admin", async (c, s, form) => {
			const body: Record<string, string> = { email: field(form, "email") };
			const name = field(form, "name");
			if (name) body.name = name;
			const created = await call<User>(c, s.bearer, "POST", "/v1/admin/users", body);
			if (!created.ok) return refused(c, s, created, "Create user");
			return see(c, "/console/admin/users", "user_created");
		}),
	);

	app.get(
		"/console/admin/jobs",
		page("admin", async (c, s) => {
			const status = c.req.query("status") ?? "failed";
			const query = pageQuery(c);
			if (status !== "all") query.set("status", status);
			const jobs = await call<List<Job>>(c, s.bearer, "GET", `/v1/admin/jobs?${query}`);
			if (!jobs.ok) return refused(c, s, jobs, "Jobs");
			return show(c, s, {
				title: "Jobs",
				active: "/console/admin/jobs",
				children: (
					<JobsPage
						jobs={jobs.body.data}
						next={jobs.body.next_cursor}
						status={status}
						csrf={s.csrf}
					/>
				),
			});
		}),
	);

	app.get(
		"/console/admin/webhooks",
		page("admin", async (c, s) => {
			const hooks = await call<List<Webhook>>(
				c,
				s.bearer,
				"GET",
				`/v1/admin/webhooks?${pageQuery(c, 100)}`,
			);
			if (!hooks.ok) return refused(c, s, hooks, "Webhooks");
			return show(c, s, {
				title: "Webhooks",
				active: "/console/admin/webhooks",
				children: (
					<>
						<WebhooksPage webhooks={hooks.body.data} />
						<Pager next={hooks.body.next_cursor} base="/console/admin/webhooks" />
					</>
				),
			});
		}),
	);

	app.get(
		"/console/admin/webhooks/:id",
		page("admin", async (c, s) => {
			const id = encodeURIComponent(paramOf(c, "id"));
			const query = pageQuery(c);
			const [hook, deliveries] = await Promise.all([
				call<Webhook>(c, s.bearer, "GET", `/v1/admin/webhooks/${id}`),
				call<List<Delivery>>(c, s.bearer, "GET", `/v1/admin/webhooks/${id}/deliveries?${query}`),
			]);
			if (!hook.ok) return refused(c, s, hook, "Webhook");
			if (!deliveries.ok) return refused(c, s, deliveries, "Webhook");
			return show(c, s, {
				title: `Webhook ${hook.body.id}`,
				active: "/console/admin/webhooks",
				children: (
					<WebhookPage
						webhook={hook.body}
						deliveries={deliveries.body.data}
						next={deliveries.body.next_cursor}
						csrf={s.csrf}
					/>
				),
			});
		}),
	);

	/**
	 * The forms that are one API call each: on success, back to their page with a notice; on a
	 * refusal, the API's message. Path parameters are encoded into the API path.
	 */
	const SIMPLE_ACTIONS: {
		path: string;
		kind: "user" | "admin";
		method: "POST" | "PATCH" | "DELETE";
		api: (p: (name: string) => string) => string;
		body?: (form: Record<string, string | string[]>) => Record<string, string>;
		title: string;
		back: (p: (name: string) => string) => string;
		notice: keyof typeof NOTICES;
	}[] = [
		{
			path: "/console/credentials/:id/delete",
			kind: "user",
			method: "DELETE",
			api: (p) => `/v1/credentials/${p("id")}`,
			title: "Delete credential",
			back: () => "/console/integrations",
			notice: "deleted",
		},
		{
			path: "/console/keys/:id/revoke",
			kind: "user",
			method: "DELETE",
			api: (p) => `/v1/api-keys/${p("id")}`,
			title: "Revoke key",
			back: () => "/console/keys",
			notice: "revoked",
		},
		{
			path: "/console/admin/users/:id/status",
			kind: "admin",
			method: "PATCH",
			api: (p) => `/v1/admin/users/${p("id")}`,
			body: (form) => ({ status: field(form, "status") }),
			title: "Update user",
			back: () => "/console/admin/users",
			notice: "user_updated",
		},
		{
			path: "/console/admin/users/:id/delete",
			kind: "admin",
			method: "DELETE",
			api: (p) => `/v1/admin/users/${p("id")}`,
			title: "Delete user",
			back: () => "/console/admin/users",
			notice: "user_deleted",
		},
		{
			path: "/console/admin/jobs/:id/retry",
			kind: "admin",
			method: "POST",
			api: (p) => `/v1/admin/jobs/${p("id")}/retry`,
			title: "Retry job",
			back: () => "/console/admin/jobs",
			notice: "job_retried",
		},
		{
			path: "/console/admin/webhooks/:id/deliveries/:delivery/redeliver",
			kind: "admin",
			method: "POST",
			api: (p) => `/v1/admin/webhooks/${p("id")}/deliveries/${p("delivery")}/redeliver`,
			title: "Redeliver",
			back: (p) => `/console/admin/webhooks/${p("id")}`,
			notice: "redelivered",
		},
	];
	for (const spec of SIMPLE_ACTIONS) {
		app.post(
			spec.path,
			action(spec.kind, async (c, s, form) => {
				const p = (name: string) => encodeURIComponent(paramOf(c, name));
				const result = await call(c, s.bearer, spec.method, spec.api(p), spec.body?.(form));
				if (!result.ok) return refused(c, s, result, spec.title);
				return see(c, spec.back(p), spec.notice);
			}),
		);
	}

	documentConsole(app);

	// Anything else under /console: the console's own 404 page, not the API's JSON.
	app.all("/console/*", async (c) => notFound(c, await signedIn(c).catch(() => null)));
}

/**
 * The console's routes in the OpenAPI document, so it lists every route the worker serves. They
 * are pages for a browser (HTML, redirects, forms with a CSRF token and a session cookie), not an
 * API: docs/console.md describes them.
 */
const CONSOLE_ROUTES: [method: "get" | "post", path: string, summary: string][] = [
	["get", "/console", "The console: to the signed-in principal's first page, or to sign-in"],
	["get", "/console/sign-in", "Sign-in page (API key, or the admin token)"],
	["post", "/console/sign-in", "Exchange an API key (or the admin token) for a console session"],
	["post", "/console/sign-out", "End the console session (the API session is revoked too)"],
	[
		"get",
		"/console/integrations",
		"The user's credentials by provider, and Connect per OAuth provider",
	],
	[
		"get",
		"/console/connect/{provider}",
		"Start an OAuth connection (or a reconnect) in the browser",
	],
	["get", "/console/connected", "Where a connection returns: finishes it for the signed-in user"],
	["post", "/console/credentials/{id}/delete", "Delete a credential of the user's"],
	["get", "/console/keys", "The user's API keys"],
	["post", "/console/keys", "Create an API key, shown once"],
	["post", "/console/keys/{id}/roll", "Roll an API key, the new one shown once"],
	["post", "/console/keys/{id}/revoke", "Revoke an API key"],
	["get", "/console/audit", "The user's audit trail, or the admin's whole log"],
	["get", "/console/admin/users", "Users (admin)"],
	["post", "/console/admin/users", "Create a user (admin)"],
	["post", "/console/admin/users/{id}/status", "Suspend or reactivate a user (admin)"],
	["post", "/console/admin/users/{id}/delete", "Delete a user (admin)"],
	["get", "/console/admin/jobs", "Account-deletion jobs, failed first (admin)"],
	["post", "/console/admin/jobs/{id}/retry", "Retry a failed job (admin)"],
	["get", "/console/admin/webhooks", "Webhooks (admin)"],
	["get", "/console/admin/webhooks/{id}", "A webhook's deliveries (admin)"],
	[
		"post",
		"/console/admin/webhooks/{id}/deliveries/{delivery}/redeliver",
		"Redeliver a delivery (admin)",
	],
	["get", ASSET_PATHS.css, "The console's stylesheet"],
	["get", ASSET_PATHS.js, "The console's script (the copy button)"],
	["get", ASSET_PATHS.icon, "The console's icon"],
];

function documentConsole(app: OpenAPIHono<AppEnv>): void {
	const page = { description: "A page", content: { "text/html": { schema: z.string() } } };
	for (const [method, path, summary] of CONSOLE_ROUTES) {
		const names = [...path.matchAll(/\{([a-z_]+)\}/g)].map((m) => m[1] as string);
		const asset = path.startsWith("/console/assets/");
		app.openAPIRegistry.registerPath({
			method,
			path,
			tags: ["Console"],
			summary,
			// No bearer token: a console page authenticates by its session cookie.
			security: [],
			description: asset
				? "Served from the worker, so the console's CSP allows its own origin only."
				: "Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.",
			...(names.length
				? { request: { params: z.object(Object.fromEntries(names.map((n) => [n, z.string()]))) } }
				: {}),
			responses: asset
				? { 200: { description: "The asset" } }
				: method === "get"
					? {
							200: page,
							303: { description: "To sign-in when there is no session" },
							404: page,
						}
					: {
							200: page,
							303: { description: "To the page showing the result" },
							403: {
								...page,
								description: "Refused: a missing or foreign CSRF token, or another origin",
							},
						},
		});
	}
}

/** A list's query: a page of `limit`, from the cursor the page's own "Next page" link carries. */
function pageQuery(c: Ctx, limit = 50): URLSearchParams {
	const query = new URLSearchParams({ limit: String(limit) });
	const cursor = c.req.query("cursor");
	if (cursor) query.set("cursor", cursor);
	return query;
}

/** `YYYY-MM-DD` → that day's (plus `days`) 00:00 UTC, ISO; anything else unchanged. */
function dayStart(day: string, days: number): string {
	if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return day;
	const at = Date.parse(`${day}T00:00:00Z`);
	return Number.isNaN(at) ? day : new Date(at + days * 86_400_000).toISOString();
}

/** A path parameter of the route that matched (plain routes are not typed by their path). */
const paramOf = (c: Ctx, name: string): string => c.req.param(name) ?? "";

/** A console session from a token pair the API has just issued. */
function userSession(pair: TokenPair, now: Date): UserSession | undefined {
	const claims = accessClaims(pair.access_token);
	if (!claims) return undefined;
	return {
		kind: "user",
		sid: claims.sid,
		sub: claims.sub,
		accessToken: pair.access_token,
		refreshToken: pair.refresh_token,
		accessExp: claims.exp,
		exp: Math.floor(now.getTime() / 1000) + pair.refresh_expires_in,
	};
}
