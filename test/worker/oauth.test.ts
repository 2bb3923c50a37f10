import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { findVisible, openSecret } from "../../src/credentials/service.ts";
import type { CredentialRow } from "../../src/db/schema.ts";
import { createLogger } from "../../src/log.ts";
import { refreshAccessToken, revokeUpstream } from "../../src/oauth/service.ts";
import { createServices, type Services } from "../../src/services.ts";
import { Timing } from "../../src/timing.ts";
import { admin, CREDENTIAL_KEYS, userWithKey } from "./fixtures.ts";
import { BASE, call, clockedApp, expectError, testEnv } from "./helpers.ts";
import {
	type Authorization,
	as,
	authorize,
	callbackPath,
	connect,
	connectIdOf,
	drive,
	finalize,
	introspect,
	PROVIDER,
	providerBody,
	putProvider,
	RETURN_TO,
} from "./oauth-helpers.ts";

const FRONTEND_CALLBACK = "https://app.example.com/oauth/callback";

interface CredentialJson {
	id: string;
	provider: string;
	type: string;
	title: string;
	scopes: string[];
	username: string | null;
	version: number;
	access_token_expires_at: string | null;
}

async function credential(key: string, id: string): Promise<CredentialJson> {
	const res = await call(`/v1/credentials/${id}`, { token: key });
	expect(res.status).toBe(200);
	return (await res.json()) as CredentialJson;
}

async function oauthCredentials(key: string, provider = PROVIDER): Promise<CredentialJson[]> {
	const res = await call(`/v1/credentials?provider=${provider}`, { token: key });
	expect(res.status).toBe(200);
	return ((await res.json()) as { data: CredentialJson[] }).data;
}

let services: Services;
let disposeServices: () => Promise<void>;

async function storedTokens(userId: string, id: string) {
	const row = (await findVisible(services, userId, id)) as CredentialRow & { type: "oauth2" };
	return openSecret(services, row);
}

beforeAll(async () => {
	const res = await putProvider(PROVIDER, providerBody());
	if (res.status !== 200) throw new Error(`register provider: ${res.status} ${await res.text()}`);
	const built = createServices(loadConfig(testEnv), createLogger("error"), new Timing());
	services = built.services;
	disposeServices = built.dispose;
});

afterAll(async () => {
	await disposeServices?.();
});

describe("provider registry", () => {
	it("lists built-in and custom providers; the registered one is configured", async () => {
		const { key } = await userWithKey(["credentials:read"]);
		// The suite's files share one database, and the proxy's tests register a provider each:
		// one full page holds them all (paging has a test of its own below).
		const res = await call("/v1/providers?limit=100", { token: key });
		expect(res.status).toBe(200);
		const body = (await res.json()) as {
			data: Record<string, unknown>[];
			next_cursor: string | null;
		};
		expect(body.next_cursor).toBeNull();
		expect(body.data.find((p) => p.id === PROVIDER)).toEqual({
			id: PROVIDER,
			name: "Test IdP",
			auth_types: ["oauth2"],
			default_scopes: ["openid", "profile"],
			configured: true,
			managed: false,
		});
		const ids = body.data.map((p) => p.id);
		for (const builtin of [
			"atlassian",
			"discord",
			"github",
			"google",
			"hubspot",
			"linear",
			"microsoft",
			"notion",
			"salesforce",
			"slack",
		]) {
			expect(ids).toContain(builtin);
		}
		expect(body.data.find((p) => p.id === "google")).toMatchObject({
			configured: false,
			default_scopes: ["openid", "email"],
		});
	});

	it("pages with limit and cursor", async () => {
		const { key } = await userWithKey();
		const first = (await (await call("/v1/providers?limit=3", { token: key })).json()) as {
			data: { id: string }[];
			next_cursor: string;
		};
		expect(first.data).toHaveLength(3);
		const second = (await (
			await call(`/v1/providers?limit=3&cursor=${first.next_cursor}`, { token: key })
		).json()) as { data: { id: string }[] };
		expect(String(second.data[0]?.id) > String(first.data[2]?.id)).toBe(true);
		await expectError(
			await call("/v1/providers?cursor=bogus", { token: key }),
			400,
			"invalid_request",
		);
	});

	it("takes a built-in provider's client from OAUTH_<ID>_CLIENT_ID/_SECRET", async () => {
		const { key } = await userWithKey();
		const list = async (env: Record<string, string>) =>
			(
				(await (await call("/v1/providers", { token: key }, env)).json()) as {
					data: { id: string; configured: boolean }[];
				}
			).data.find((p) => p.id === "github")?.configured;
		expect(await list({ OAUTH_GITHUB_CLIENT_ID: "gh-client" })).toBe(false);
		expect(
			await list({ OAUTH_GITHUB_CLIENT_ID: "gh-client", OAUTH_GITHUB_CLIENT_SECRET: "gh-secret" }),
		).toBe(true);

		const res = await call(
			"/v1/oauth/github/authorize",
			{ method: "POST", token: key, json: { scopes: ["repo"] } },
			{ OAUTH_GITHUB_CLIENT_ID: "gh-client", OAUTH_GITHUB_CLIENT_SECRET: "gh-secret" },
		);
		expect(res.status).toBe(200);
		const url = new URL(((await res.json()) as Authorization).authorization_url);
		expect(url.origin + url.pathname).toBe("https://github.com/login/oauth/authorize");
		expect(url.searchParams.get("client_id")).toBe("gh-client");
		expect(url.searchParams.get("scope")).toBe("repo");
		expect(JSON.stringify([...url.searchParams])).not.toContain("gh-secret");
	});

	it("refuses a LATCHKEY_ALLOWED_REDIRECT_ORIGINS that is not a list of origins, without echoing it", async () => {
		const { key } = await userWithKey();
		const value = "https://ok.example, https://app.example.com/with-path-planted";
		const res = await call(
			"/v1/providers",
			{ token: key },
			{ LATCHKEY_ALLOWED_REDIRECT_ORIGINS: value },
		);
		const body = await expectError(res, 500, "misconfigured");
		expect(body.error.message).toContain("LATCHKEY_ALLOWED_REDIRECT_ORIGINS");
		expect(JSON.stringify(body)).not.toContain("planted");
	});

	it("PUT validates the id, the URLs and the client, and needs admin", async () => {
		const { key } = await userWithKey();
		// An id that cannot name a provider is not found, like every malformed path id.
		for (const id of ["Bad", "-lead", "has space", "x".repeat(65), "nul\u0000"]) {
			await expectError(
				await putProvider(encodeURIComponent(id), providerBody()),
				404,
				"not_found",
			);
		}
		for (const url of ["ftp://files.example/token", "not a url", "javascript:alert(1)"]) {
			const body = await expectError(
				await putProvider("custom-a", providerBody({ token_url: url })),
				400,
				"invalid_request",
			);
			expect(JSON.stringify(body.error.detail)).toContain("token_url");
		}
		const { client_id: _omitted, ...noClient } = providerBody();
		const missing = await expectError(
			await putProvider("custom-a", noClient),
			400,
			"invalid_request",
		);
		expect(JSON.stringify(missing.error.detail)).toContain("client_id");
		const { authorize_url: _a, ...noAuthorize } = providerBody();
		await expectError(await putProvider("custom-a", noAuthorize), 400, "invalid_request");
		await expectError(
			await putProvider("custom-a", { ...providerBody(), surprise: true }),
			400,
			"invalid_request",
		);
		await expectError(
			await putProvider("custom-a", providerBody(), key),
			403,
			"insufficient_scope",
		);
	});

	it("PUT answers the provider without its client secret", async () => {
		const secret = `secret-${crypto.randomUUID()}`;
		const res = await putProvider("custom.b", providerBody({ client_secret: secret, name: "B" }));
		expect(res.status).toBe(200);
		const text = await res.text();
		expect(text).not.toContain(secret);
		const body = JSON.parse(text) as Record<string, unknown>;
		expect(body).not.toHaveProperty("client_secret");
		expect(body).toMatchObject({
			id: "custom.b",
			name: "B",
			builtin: false,
			configured: true,
			client_id: as.clientId,
			client_source: "admin",
			token_url: as.tokenUrl,
			issuer: as.issuer,
		});
	});

	it("PUT of a built-in id takes the documented full body: its endpoints can be overridden", async () => {
		const secret = `secret-${crypto.randomUUID()}`;
		// A self-hosted instance of a built-in provider: the full body of API.md, endpoints included.
		const res = await putProvider("slack", providerBody({ name: "Slack (self-hosted)" }));
		expect(res.status).toBe(200);
		expect(JSON.parse(await res.text())).toMatchObject({
			id: "slack",
			builtin: true,
			configured: true,
			name: "Slack (self-hosted)",
			authorize_url: as.authorizeUrl,
			token_url: as.tokenUrl,
			userinfo_url: as.userinfoUrl,
			issuer: as.issuer,
			scope_separator: " ",
			pkce: true,
			client_auth: "basic",
		});
		// The overrides are what the flow uses: a connect through the built-in id reaches them.
		const { key } = await userWithKey();
		const started = await authorize(key, { return_to: RETURN_TO }, "slack");
		expect(started.authorization_url.startsWith(as.authorizeUrl)).toBe(true);
		const back = await call(
			callbackPath(await drive(started.authorization_url, "enterprise-user")),
		);
		const finished = await finalize(key, connectIdOf(back));
		expect(finished.status).toBe(201);
		expect(((await finished.json()) as CredentialJson).provider).toBe("slack");

		// Only the client: every field left out is the built-in value again.
		const reset = await putProvider("slack", { client_id: "slack-client", client_secret: secret });
		expect(reset.status).toBe(200);
		const text = await reset.text();
		expect(text).not.toContain(secret);
		expect(JSON.parse(text)).toMatchObject({
			id: "slack",
			builtin: true,
			configured: true,
			name: "Slack",
			token_url: "https://slack.com/api/oauth.v2.access",
			scope_separator: ",",
			client_id: "slack-client",
		});
		await expectError(
			await putProvider("slack", { client_id: "c", client_secret: "s", token_url: "ftp://x" }),
			400,
			"invalid_request",
		);
	});
});

describe("authorize", () => {
	it("builds a PKCE S256 authorization URL with the provider's scopes and state", async () => {
		const { key } = await userWithKey();
		const started = await authorize(key);
		const url = new URL(started.authorization_url);
		expect(url.origin + url.pathname).toBe(as.authorizeUrl);
		const q = url.searchParams;
		expect(q.get("client_id")).toBe(as.clientId);
		expect(q.get("response_type")).toBe("code");
		expect(q.get("redirect_uri")).toBe(`${BASE}/v1/oauth/callback`);
		expect(q.get("scope")).toBe("openid profile");
		expect(q.get("state")).toBe(started.state);
		expect(q.get("code_challenge_method")).toBe("S256");
		expect(q.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
		expect(started.state).toMatch(/^[A-Za-z0-9_-]{43}$/);
		const ttl = Date.parse(started.expires_at) - Date.now();
		expect(ttl).toBeGreaterThan(590_000);
		expect(ttl).toBeLessThanOrEqual(600_000);
	});

	it("the default redirect_uri keeps the path of LATCHKEY_PUBLIC_URL; the JWT issuer stays as configured", async () => {
		const { key } = await userWithKey();
		for (const [publicUrl, expected] of [
			["https://x.example/lk", "https://x.example/lk/v1/oauth/callback"],
			["https://x.example/lk/", "https://x.example/lk/v1/oauth/callback"],
			["https://x.example", "https://x.example/v1/oauth/callback"],
		] as const) {
			const res = await call(
				`/v1/oauth/${PROVIDER}/authorize`,
				{ method: "POST", token: key, json: {} },
				{ LATCHKEY_PUBLIC_URL: publicUrl },
			);
			expect(res.status).toBe(200);
			const started = (await res.json()) as Authorization;
			expect(new URL(started.authorization_url).searchParams.get("redirect_uri")).toBe(expected);
		}
		const token = await call(
			"/v1/auth/token",
			{ method: "POST", json: { grant_type: "api_key", api_key: key } },
			{ LATCHKEY_PUBLIC_URL: "https://x.example/lk" },
		);
		expect(token.status).toBe(200);
		const jwt = ((await token.json()) as { access_token: string }).access_token;
		const claims = JSON.parse(
			atob((jwt.split(".")[1] as string).replace(/-/g, "+").replace(/_/g, "/")),
		);
		expect(claims.iss).toBe("https://x.example/lk");
	});

	it("refuses redirect_uri and return_to outside the allowed origins", async () => {
		const { key } = await userWithKey();
		const bad = [
			"https://evil.example/cb",
			"javascript:alert(1)",
			"/relative/path",
			"https://app.example.com.evil.example/cb",
			"https://app.example.com/cb#fragment",
			"https://user:pw@app.example.com/cb",
		];
		for (const field of ["redirect_uri", "return_to"]) {
			for (const value of bad) {
				const res = await call(`/v1/oauth/${PROVIDER}/authorize`, {
					method: "POST",
					token: key,
					json: { [field]: value },
				});
				const body = await expectError(res, 400, "invalid_request");
				expect(JSON.stringify(body.error.detail)).toContain(field);
			}
		}
		// Latchkey's own origin and the allowed front end are fine.
		await authorize(key, { return_to: `${BASE}/somewhere`, redirect_uri: FRONTEND_CALLBACK });
	});

	it("answers 404 for an unknown provider and 400 for one without a client", async () => {
		const { key } = await userWithKey();
		await expectError(
			await call("/v1/oauth/nobody/authorize", { method: "POST", token: key, json: {} }),
			404,
			"not_found",
		);
		await expectError(
			await call("/v1/oauth/hubspot/authorize", { method: "POST", token: key, json: {} }),
			400,
			"invalid_request",
		);
	});

	it("needs credentials:write and a user", async () => {
		const { key } = await userWithKey(["credentials:read"]);
		await expectError(
			await call(`/v1/oauth/${PROVIDER}/authorize`, { method: "POST", token: key, json: {} }),
			403,
			"insufficient_scope",
		);
		await expectError(
			await call(`/v1/oauth/${PROVIDER}/authorize`, { method: "POST", token: admin(), json: {} }),
			403,
			"forbidden",
		);
	});
});

describe("callback", () => {
	it("GET: exchanges the code, parks the account and redirects to return_to with a connect_id; the owner's POST stores it", async () => {
		const { key } = await userWithKey();
		const started = await authorize(key, { return_to: RETURN_TO });
		const redirect = await drive(started.authorization_url, "alice");
		expect(redirect.searchParams.get("iss")).toBe(as.issuer);
		const res = await call(callbackPath(redirect));
		expect(res.status).toBe(302);
		expect(res.headers.get("cache-control")).toBe("no-store");
		const location = new URL(res.headers.get("location") ?? "");
		expect(`${location.origin}${location.pathname}`).toBe("https://app.example.com/connected");
		expect(location.searchParams.get("tab")).toBe("integrations");
		const connectId = connectIdOf(res);
		expect(await oauthCredentials(key)).toEqual([]);

		const finished = await finalize(key, connectId);
		expect(finished.status).toBe(201);
		const { id } = (await finished.json()) as CredentialJson;
		const cred = await credential(key, id);
		expect(cred).toMatchObject({
			provider: PROVIDER,
			type: "oauth2",
			username: "alice",
			title: "Test IdP (alice)",
			scopes: ["openid", "profile"],
		});
		const expiresIn = Date.parse(cred.access_token_expires_at ?? "") - Date.now();
		expect(expiresIn).toBeGreaterThan(3500_000);
		expect(expiresIn).toBeLessThanOrEqual(3600_000);
	});

	it("GET without return_to answers a small page with its own CSP saying how to finish", async () => {
		const { key } = await userWithKey();
		const started = await authorize(key);
		const res = await call(callbackPath(await drive(started.authorization_url, "alice")));
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toContain("text/html");
		expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
		const page = await res.text();
		expect(page).toContain("POST /v1/oauth/connections/");
		expect(page).not.toContain("Account connected");
		expect(await oauthCredentials(key)).toEqual([]);
	});

	it("POST: a front end's redirect completes with 201 and the credential, no secret in it", async () => {
		const { key, id: userId } = await userWithKey();
		const started = await authorize(key, {
			redirect_uri: FRONTEND_CALLBACK,
			scopes: ["openid", "email"],
		});
		const redirect = await drive(started.authorization_url, "carol");
		expect(`${redirect.origin}${redirect.pathname}`).toBe(FRONTEND_CALLBACK);
		const res = await call("/v1/oauth/callback", {
			method: "POST",
			token: key,
			json: {
				code: redirect.searchParams.get("code"),
				state: redirect.searchParams.get("state"),
				iss: redirect.searchParams.get("iss"),
			},
		});
		expect(res.status).toBe(201);
		expect(res.headers.get("cache-control")).toBe("no-store");
		const text = await res.text();
		const body = JSON.parse(text) as CredentialJson;
		expect(Object.keys(body).sort()).toEqual(CREDENTIAL_KEYS);
		expect(res.headers.get("etag")).toBe(`"${body.version}"`);
		// Without the profile scope, userinfo names the account by its e-mail.
		expect(body).toMatchObject({
			provider: PROVIDER,
			type: "oauth2",
			username: "carol@example.test",
			scopes: ["openid", "email"],
		});
		const tokens = await storedTokens(userId, body.id);
		expect(tokens.token_type).toBe("Bearer");
		expect(text).not.toContain(tokens.access_token);
		expect(text).not.toContain(tokens.refresh_token as string);
		expect(await introspect(tokens.access_token)).toMatchObject({ active: true, sub: "carol" });
	});

	it("works with client_secret_post and without PKCE", async () => {
		const res = await putProvider(
			"testidp-post",
			providerBody({
				client_auth: "post",
				pkce: false,
				client_id: as.postClientId,
				client_secret: as.postClientSecret,
			}),
		);
		expect(res.status).toBe(200);
		const { key } = await userWithKey();
		const started = await authorize(key, { return_to: RETURN_TO }, "testidp-post");
		const query = new URL(started.authorization_url).searchParams;
		expect(query.get("client_id")).toBe(as.postClientId);
		expect(query.has("code_challenge")).toBe(false);
		const callback = await call(callbackPath(await drive(started.authorization_url, "rita")));
		const finished = await finalize(key, connectIdOf(callback));
		expect(finished.status).toBe(201);
		expect(((await finished.json()) as CredentialJson).username).toBe("rita");
	});

	it("a scope upgrade (credential_id) keeps the id and adds the scopes", async () => {
		const { key } = await userWithKey();
		const id = await connect(key, "dave");
		expect((await credential(key, id)).scopes).toEqual(["openid", "profile"]);

		const started = await authorize(key, {
			credential_id: id,
			scopes: ["email"],
			return_to: RETURN_TO,
		});
		expect(new URL(started.authorization_url).searchParams.get("scope")).toBe(
			"openid profile email",
		);
		const res = await call(callbackPath(await drive(started.authorization_url, "dave")));
		const finished = await finalize(key, connectIdOf(res));
		expect(finished.status).toBe(201);
		expect(((await finished.json()) as CredentialJson).id).toBe(id);
		const upgraded = await credential(key, id);
		expect([...upgraded.scopes].sort()).toEqual(["email", "openid", "profile"]);
		expect(await oauthCredentials(key)).toHaveLength(1);
	});

	it("a scope upgrade of a credential that is not the caller's OAuth2 credential is 404", async () => {
		const owner = await userWithKey();
		const other = await userWithKey();
		const id = await connect(owner.key, "erin");
		await expectError(
			await call(`/v1/oauth/${PROVIDER}/authorize`, {
				method: "POST",
				token: other.key,
				json: { credential_id: id },
			}),
			404,
			"not_found",
		);
	});

	it("reconnecting the same account with more scopes updates in place; another account is new", async () => {
		const { key, id: userId } = await userWithKey();
		const first = await connect(key, "frank");
		const before = await credential(key, first);
		const firstRefresh = (await storedTokens(userId, first)).refresh_token;

		const again = await connect(key, "frank", { scopes: ["openid", "profile", "email"] });
		expect(again).toBe(first);
		const after = await credential(key, first);
		expect(after.title).toBe(before.title);
		expect([...after.scopes].sort()).toEqual(["email", "openid", "profile"]);
		expect((await storedTokens(userId, first)).refresh_token).not.toBe(firstRefresh);

		const other = await connect(key, "grace");
		expect(other).not.toBe(first);
		expect(await oauthCredentials(key)).toHaveLength(2);
	});

	it("a replayed state is 400 invalid_state", async () => {
		const { key } = await userWithKey();
		const started = await authorize(key, { return_to: RETURN_TO });
		const path = callbackPath(await drive(started.authorization_url, "heidi"));
		const connectId = connectIdOf(await call(path));
		await expectError(await call(path), 400, "invalid_state");
		expect((await finalize(key, connectId)).status).toBe(201);
		expect(await oauthCredentials(key)).toHaveLength(1);
	});

	it("a tampered, unknown or missing state is 400 invalid_state, and the real one still works", async () => {
		const { key } = await userWithKey();
		const started = await authorize(key, { return_to: RETURN_TO });
		const redirect = await drive(started.authorization_url, "ivan");
		const state = redirect.searchParams.get("state") ?? "";
		const flipped = `${state.slice(0, -1)}${state.endsWith("A") ? "B" : "A"}`;
		for (const bad of [flipped, "short", `${state}x`]) {
			const tampered = new URL(redirect);
			tampered.searchParams.set("state", bad);
			await expectError(await call(callbackPath(tampered)), 400, "invalid_state");
		}
		const without = new URL(redirect);
		without.searchParams.delete("state");
		await expectError(await call(callbackPath(without)), 400, "invalid_state");
		expect((await call(callbackPath(redirect))).status).toBe(302);
	});

	it("a state older than 10 minutes by the service clock is 400 invalid_state", async () => {
		const { key } = await userWithKey();
		const clock = clockedApp();
		const fresh = await authorize(key, { return_to: RETURN_TO }, PROVIDER, clock.call);
		const stale = await authorize(key, { return_to: RETURN_TO }, PROVIDER, clock.call);
		const freshPath = callbackPath(await drive(fresh.authorization_url, "judy"));
		const stalePath = callbackPath(await drive(stale.authorization_url, "judy"));

		clock.advance(599);
		const connectId = connectIdOf(await clock.call(freshPath));
		clock.advance(2);
		await expectError(await clock.call(stalePath), 400, "invalid_state");
		expect((await finalize(key, connectId, clock.call)).status).toBe(201);
		expect(await oauthCredentials(key)).toHaveLength(1);
	});

	it("a refusal at the provider redirects with error=access_denied and stores nothing", async () => {
		const { key } = await userWithKey();
		const started = await authorize(key, { return_to: RETURN_TO });
		const redirect = await drive(started.authorization_url, "mallory", "deny");
		expect(redirect.searchParams.get("error")).toBe("access_denied");
		const res = await call(callbackPath(redirect));
		expect(res.status).toBe(302);
		const location = new URL(res.headers.get("location") ?? "");
		expect(location.searchParams.get("error")).toBe("access_denied");
		expect(location.searchParams.has("connect_id")).toBe(false);
		expect(location.searchParams.has("credential_id")).toBe(false);
		// The provider's free text is not passed on.
		expect(location.searchParams.has("error_description")).toBe(false);
		expect(await oauthCredentials(key)).toEqual([]);
		// The state is spent.
		await expectError(await call(callbackPath(redirect)), 400, "invalid_state");
	});

	it("a refusal without return_to answers a page, not a credential", async () => {
		const { key } = await userWithKey();
		const started = await authorize(key);
		const res = await call(callbackPath(await drive(started.authorization_url, "mallory", "deny")));
		expect(res.status).toBe(400);
		expect(res.headers.get("content-type")).toContain("text/html");
		expect(await res.text()).toContain("access_denied");
		expect(await oauthCredentials(key)).toEqual([]);
	});

	it("another user's POST of the state is 400 invalid_state and leaves it to its owner", async () => {
		const owner = await userWithKey();
		const intruder = await userWithKey();
		const started = await authorize(owner.key, { redirect_uri: FRONTEND_CALLBACK });
		const redirect = await drive(started.authorization_url, "kate");
		const json = {
			code: redirect.searchParams.get("code"),
			state: redirect.searchParams.get("state"),
			iss: redirect.searchParams.get("iss"),
		};
		await expectError(
			await call("/v1/oauth/callback", { method: "POST", token: intruder.key, json }),
			400,
			"invalid_state",
		);
		expect(await oauthCredentials(intruder.key)).toEqual([]);
		const res = await call("/v1/oauth/callback", { method: "POST", token: owner.key, json });
		expect(res.status).toBe(201);
		await expectError(
			await call("/v1/oauth/callback", { method: "POST", token: owner.key, json }),
			400,
			"invalid_state",
		);
	});

	it("a code the provider rejects is 400 invalid_request and stores nothing", async () => {
		const { key } = await userWithKey();
		const started = await authorize(key, { redirect_uri: FRONTEND_CALLBACK });
		const redirect = await drive(started.authorization_url, "leo");
		const res = await call("/v1/oauth/callback", {
			method: "POST",
			token: key,
			json: { code: "not-a-code", state: redirect.searchParams.get("state"), iss: as.issuer },
		});
		const body = await expectError(res, 400, "invalid_request");
		expect(body.error.detail).toEqual({ provider_error: "invalid_grant" });
		expect(await oauthCredentials(key)).toEqual([]);
	});

	it("an authorization response from another issuer is refused (RFC 9207)", async () => {
		const res = await putProvider(
			"testidp-mixup",
			providerBody({ issuer: "https://other.example" }),
		);
		expect(res.status).toBe(200);
		const { key } = await userWithKey();
		const started = await authorize(key, { return_to: RETURN_TO }, "testidp-mixup");
		const callback = await call(callbackPath(await drive(started.authorization_url, "mike")));
		expect(callback.status).toBe(302);
		expect(new URL(callback.headers.get("location") ?? "").searchParams.get("error")).toBe(
			"invalid_request",
		);
		expect(await oauthCredentials(key, "testidp-mixup")).toEqual([]);
	});

	it("a client secret the provider refuses is 502 provider_unavailable naming the client", async () => {
		const wrong = `wrong-${crypto.randomUUID()}`;
		const res = await putProvider("testidp-badsecret", providerBody({ client_secret: wrong }));
		expect(res.status).toBe(200);
		const { key } = await userWithKey();
		const started = await authorize(key, { redirect_uri: FRONTEND_CALLBACK }, "testidp-badsecret");
		const redirect = await drive(started.authorization_url, "olga");
		const failed = await call("/v1/oauth/callback", {
			method: "POST",
			token: key,
			json: {
				code: redirect.searchParams.get("code"),
				state: redirect.searchParams.get("state"),
				iss: redirect.searchParams.get("iss"),
			},
		});
		const body = await expectError(failed, 502, "provider_unavailable");
		expect(body.error.message).toContain("client credentials");
		expect(JSON.stringify(body)).not.toContain(wrong);
		expect(await oauthCredentials(key, "testidp-badsecret")).toEqual([]);
	});

	it("a token endpoint that cannot be reached is 502 provider_unavailable", async () => {
		const res = await putProvider(
			"testidp-down",
			providerBody({ token_url: "http://127.0.0.1:1/token" }),
		);
		expect(res.status).toBe(200);
		const { key } = await userWithKey();
		const started = await authorize(key, { redirect_uri: FRONTEND_CALLBACK }, "testidp-down");
		const redirect = await drive(started.authorization_url, "nina");
		await expectError(
			await call("/v1/oauth/callback", {
				method: "POST",
				token: key,
				json: {
					code: redirect.searchParams.get("code"),
					state: redirect.searchParams.get("state"),
					iss: redirect.searchParams.get("iss"),
				},
			}),
			502,
			"provider_unavailable",
		);
	});
});

describe("tokens at the provider", () => {
	it("revokeUpstream revokes both tokens at the server (RFC 7009, checked by introspection)", async () => {
		const { key, id: userId } = await userWithKey();
		const id = await connect(key, "oscar");
		const tokens = await storedTokens(userId, id);
		expect(tokens.refresh_token).toBeTruthy();
		expect((await introspect(tokens.access_token)).active).toBe(true);
		expect((await introspect(tokens.refresh_token as string)).active).toBe(true);

		const revoked = await revokeUpstream(services, PROVIDER, {
			accessToken: tokens.access_token,
			refreshToken: tokens.refresh_token,
		});
		expect(revoked).toBe(true);
		expect((await introspect(tokens.access_token)).active).toBe(false);
		expect((await introspect(tokens.refresh_token as string)).active).toBe(false);
	});

	it("DELETE /v1/credentials/{id} revokes at the server, reports it, and deletes", async () => {
		const { key, id: userId } = await userWithKey();
		const id = await connect(key, "rupert");
		const tokens = await storedTokens(userId, id);
		const res = await call(`/v1/credentials/${id}`, { method: "DELETE", token: key });
		expect(res.status).toBe(200);
		expect(await res.json()).toEqual({ deleted: true, revoked: true });
		expect((await introspect(tokens.access_token)).active).toBe(false);
		expect((await introspect(tokens.refresh_token as string)).active).toBe(false);
		expect((await call(`/v1/credentials/${id}`, { token: key })).status).toBe(404);
	});

	it("DELETE still deletes when the provider's revocation fails, and says so", async () => {
		const { key } = await userWithKey();
		expect(
			(
				await putProvider(
					"testidp-deadrevoke",
					providerBody({ revoke_url: "http://127.0.0.1:1/revoke" }),
				)
			).status,
		).toBe(200);
		const created = await call("/v1/credentials", {
			method: "POST",
			token: key,
			json: { provider: "testidp-deadrevoke", type: "oauth2", access_token: "imported-token" },
		});
		expect(created.status).toBe(201);
		const { id } = (await created.json()) as { id: string };
		const res = await call(`/v1/credentials/${id}`, { method: "DELETE", token: key });
		expect(await res.json()).toEqual({ deleted: true, revoked: false });
		expect((await call(`/v1/credentials/${id}`, { token: key })).status).toBe(404);
	});

	it("a connect finished after the user was suspended stores nothing", async () => {
		const { key, id: userId } = await userWithKey();
		const started = await authorize(key, { return_to: RETURN_TO });
		const redirect = await drive(started.authorization_url, "sybil");
		expect(
			(
				await call(`/v1/admin/users/${userId}`, {
					method: "PATCH",
					token: admin(),
					json: { status: "suspended" },
				})
			).status,
		).toBe(200);
		const res = await call(callbackPath(redirect));
		expect(res.status).toBe(302);
		const location = new URL(res.headers.get("location") ?? "");
		expect(location.searchParams.get("error")).toBe("user_suspended");
		expect(location.searchParams.get("connect_id")).toBeNull();
		expect(location.searchParams.get("credential_id")).toBeNull();
		// The tokens the exchange minted were handed back to the provider.
		const ledger = (await (await fetch(`${as.tokensUrl}?account=sybil`)).json()) as Record<
			string,
			number
		>;
		// Revoking the refresh token revokes its grant, access token included (RFC 7009 §2.1).
		expect(ledger).toMatchObject({ "refresh_token.saved": 1, "refresh_token.destroyed": 1 });
		await call(`/v1/admin/users/${userId}`, {
			method: "PATCH",
			token: admin(),
			json: { status: "active" },
		});
		expect(await oauthCredentials(key)).toHaveLength(0);
	});

	it("revokeUpstream is null without a revocation endpoint and false when the provider fails", async () => {
		expect(await revokeUpstream(services, "github", { accessToken: "x" })).toBeNull();
		expect(await revokeUpstream(services, "nobody", { accessToken: "x" })).toBeNull();
		const res = await putProvider(
			"testidp-norevoke",
			providerBody({ revoke_url: "http://127.0.0.1:1/revoke" }),
		);
		expect(res.status).toBe(200);
		expect(await revokeUpstream(services, "testidp-norevoke", { accessToken: "x" })).toBe(false);
	});

	it("refreshAccessToken rotates; the spent refresh token then needs a reconnect", async () => {
		const { key, id: userId } = await userWithKey();
		const id = await connect(key, "peggy");
		const tokens = await storedTokens(userId, id);
		const fresh = await refreshAccessToken(services, PROVIDER, tokens.refresh_token as string);
		expect(fresh.accessToken).not.toBe(tokens.access_token);
		expect(fresh.refreshToken).toBeTruthy();
		expect(fresh.refreshToken).not.toBe(tokens.refresh_token);
		expect(fresh.tokenType).toBe("Bearer");
		expect(fresh.expiresAt?.getTime()).toBeGreaterThan(Date.now());
		expect((await introspect(fresh.accessToken)).active).toBe(true);

		await expect(
			refreshAccessToken(services, PROVIDER, tokens.refresh_token as string),
		).rejects.toMatchObject({ code: "reconnect_required" });
	});
});
