import { expect, inject } from "vitest";
import { admin } from "./fixtures.ts";
import { BASE, type CallInit, call } from "./helpers.ts";

/**
 * Connecting accounts at the test authorization server (oidc-provider, test/setup/oauth-server.ts)
 * the way a user would: authorize → log in → callback. Shared by the OAuth and lease tests.
 */

export const as = inject("oauth");
/** The custom provider the OAuth tests register for the test server. */
export const PROVIDER = "testidp";
export const RETURN_TO = "https://app.example.com/connected?tab=integrations";

export interface Authorization {
	authorization_url: string;
	state: string;
	expires_at: string;
}

export type Caller = (path: string, init?: CallInit) => Promise<Response>;

/** The test authorization server as a custom provider, as an admin would register it. */
export const providerBody = (overrides: Record<string, unknown> = {}) => ({
	name: "Test IdP",
	authorize_url: as.authorizeUrl,
	token_url: as.tokenUrl,
	revoke_url: as.revokeUrl,
	userinfo_url: as.userinfoUrl,
	issuer: as.issuer,
	default_scopes: ["openid", "profile"],
	scope_separator: " ",
	pkce: true,
	client_auth: "basic",
	authorize_params: {},
	client_id: as.clientId,
	client_secret: as.clientSecret,
	...overrides,
});

/**
 * Revokes a refresh token at the test authorization server (RFC 7009, as the client): the next
 * refresh with it is refused with invalid_grant, as a provider refuses a token the user revoked.
 */
export async function revokeAtProvider(refreshToken: string | null | undefined): Promise<void> {
	const res = await fetch(as.revokeUrl, {
		method: "POST",
		headers: {
			authorization: `Basic ${btoa(`${as.clientId}:${as.clientSecret}`)}`,
			"content-type": "application/x-www-form-urlencoded",
		},
		body: new URLSearchParams({ token: refreshToken ?? "", token_type_hint: "refresh_token" }),
	});
	expect(res.status).toBe(200);
}

export const putProvider = (id: string, body: unknown, token = admin()) =>
	call(`/v1/admin/providers/${id}`, { method: "PUT", token, json: body });

export async function authorize(
	key: string,
	body: Record<string, unknown> = {},
	provider = PROVIDER,
	via: Caller = call,
): Promise<Authorization> {
	const res = await via(`/v1/oauth/${provider}/authorize`, {
		method: "POST",
		token: key,
		json: body,
	});
	if (res.status !== 200) throw new Error(`authorize: ${res.status} ${await res.text()}`);
	expect(res.headers.get("cache-control")).toBe("no-store");
	return (await res.json()) as Authorization;
}

/** Plays the user at the authorization server; returns where it sends the browser back. */
export async function drive(
	authorizationUrl: string,
	username: string,
	decision: "approve" | "deny" = "approve",
): Promise<URL> {
	const res = await fetch(as.driveUrl, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ authorization_url: authorizationUrl, username, decision }),
	});
	const body = (await res.json()) as { redirect?: string };
	if (!body.redirect) throw new Error(`drive: ${res.status} ${JSON.stringify(body)}`);
	return new URL(body.redirect);
}

/** The worker-relative path of a redirect to Latchkey's own callback. */
export function callbackPath(redirect: URL): string {
	expect(redirect.origin).toBe(BASE);
	expect(redirect.pathname).toBe("/v1/oauth/callback");
	return `${redirect.pathname}${redirect.search}`;
}

/** The one-time connect_id a GET callback redirected to return_to with. */
export function connectIdOf(callback: Response): string {
	expect(callback.status).toBe(302);
	const location = new URL(callback.headers.get("location") ?? "");
	expect(location.searchParams.has("credential_id")).toBe(false);
	const id = location.searchParams.get("connect_id");
	if (!id) throw new Error(`no connect_id in ${location.href}`);
	return id;
}

/** The second half of a browser connect: the user who started it claims the parked result. */
export const finalize = (key: string, connectId: string, via: Caller = call) =>
	via(`/v1/oauth/connections/${encodeURIComponent(connectId)}`, { method: "POST", token: key });

/**
 * authorize → log in at the provider → GET callback → POST /v1/oauth/connections/{connect_id}
 * with the same user's key → the credential id.
 */
export async function connect(
	key: string,
	username: string,
	body: Record<string, unknown> = {},
	provider = PROVIDER,
): Promise<string> {
	const started = await authorize(key, { return_to: RETURN_TO, ...body }, provider);
	const callback = await call(callbackPath(await drive(started.authorization_url, username)));
	const res = await finalize(key, connectIdOf(callback));
	if (res.status !== 201) throw new Error(`connect: ${res.status} ${await res.text()}`);
	return ((await res.json()) as { id: string }).id;
}

/** RFC 7662 introspection with the client's own credentials. */
export async function introspect(token: string): Promise<{ active: boolean; sub?: string }> {
	const res = await fetch(as.introspectionUrl, {
		method: "POST",
		headers: {
			authorization: `Basic ${btoa(`${as.clientId}:${as.clientSecret}`)}`,
			"content-type": "application/x-www-form-urlencoded",
		},
		body: new URLSearchParams({ token }),
	});
	return (await res.json()) as { active: boolean; sub?: string };
}

/** How many token-endpoint requests presented this refresh token (refused ones included). */
export async function refreshAttempts(refreshToken: string): Promise<number> {
	const res = await fetch(as.refreshAttemptsUrl, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ refresh_token: refreshToken }),
	});
	return ((await res.json()) as { attempts: number }).attempts;
}

/** Tokens the test server issued to an account, by event (`access_token.saved`, …). */
export async function ledger(account: string): Promise<Record<string, number>> {
	const res = await fetch(`${as.tokensUrl}?account=${encodeURIComponent(account)}`);
	return (await res.json()) as Record<string, number>;
}
