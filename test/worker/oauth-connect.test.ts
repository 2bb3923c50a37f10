import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { findVisible, openSecret } from "../../src/credentials/service.ts";
import { randomBase62 } from "../../src/crypto/encoding.ts";
import { sha256Hex } from "../../src/crypto/hash.ts";
import type { CredentialRow } from "../../src/db/schema.ts";
import { createLogger } from "../../src/log.ts";
import { createServices, type Services } from "../../src/services.ts";
import { Timing } from "../../src/timing.ts";
import { admin, CREDENTIAL_KEYS, createKey, userWithKey } from "./fixtures.ts";
import { call, clockedApp, expectError, testEnv } from "./helpers.ts";
import {
	authorize,
	callbackPath,
	connect,
	connectIdOf,
	drive,
	finalize,
	ledger,
	PROVIDER,
	providerBody,
	putProvider,
	RETURN_TO,
} from "./oauth-helpers.ts";

/**
 * Connect binding (RFC 6749 §10.12, RFC 9700 §4.7), written as the attack: a Latchkey user starts
 * a connect and gets someone else to open the authorization URL and log in at the provider. The
 * GET callback that follows runs in the other person's browser; it must not hand their provider
 * account to the user who started. Every test runs against the real authorization server.
 */

interface CredentialJson {
	id: string;
	provider: string;
	username: string | null;
	scopes: string[];
	version: number;
}

let services: Services;
let disposeServices: () => Promise<void>;

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

afterEach(() => vi.restoreAllMocks());

async function oauthCredentials(key: string): Promise<CredentialJson[]> {
	const res = await call(`/v1/credentials?provider=${PROVIDER}`, { token: key });
	expect(res.status).toBe(200);
	return ((await res.json()) as { data: CredentialJson[] }).data;
}

/** A provider login name that no other test uses, so the server's token ledger is this test's. */
const login = (who: string) => `${who}-${randomBase62(8)}`;

/** User A starts a connect; user B's browser opens A's URL and logs in at the provider as B. */
async function hijackedCallback(startKey: string, victimLogin: string): Promise<Response> {
	const started = await authorize(startKey, { return_to: RETURN_TO });
	return call(callbackPath(await drive(started.authorization_url, victimLogin)));
}

describe("connect binding: the attack", () => {
	it("a provider login in another user's browser stores nothing on the account of the user who started", async () => {
		const alice = await userWithKey();
		const bob = await userWithKey();
		const callback = await hijackedCallback(alice.key, login("bob"));
		expect(await oauthCredentials(alice.key)).toEqual([]);
		expect(await oauthCredentials(bob.key)).toEqual([]);
		expect(callback.status).toBe(302);
		expect(callback.headers.get("cache-control")).toBe("no-store");
		const location = new URL(callback.headers.get("location") ?? "");
		expect(`${location.origin}${location.pathname}`).toBe("https://app.example.com/connected");
		expect(location.searchParams.has("credential_id")).toBe(false);
		expect(location.searchParams.get("connect_id")).toMatch(/^[A-Za-z0-9]{22,}$/);
	});

	it("another user cannot finalize the connect_id (404), and trying does not consume it", async () => {
		const alice = await userWithKey();
		const bob = await userWithKey();
		const bobLogin = login("bob");
		const connectId = connectIdOf(await hijackedCallback(alice.key, bobLogin));

		// Bob's front end, holding Bob's session, lands on return_to with the connect_id.
		for (let i = 0; i < 2; i++) {
			const refused = await expectError(await finalize(bob.key, connectId), 404, "not_found");
			expect(refused.error.hint).not.toBe("");
			expect(JSON.stringify(refused)).not.toContain(connectId);
		}
		expect(await oauthCredentials(bob.key)).toEqual([]);
		expect(await oauthCredentials(alice.key)).toEqual([]);

		// Still parked: the owner's claim is what takes it, once.
		const res = await finalize(alice.key, connectId);
		expect(res.status).toBe(201);
		expect(((await res.json()) as CredentialJson).username).toBe(bobLogin);
		await expectError(await finalize(alice.key, connectId), 404, "not_found");
	});

	it("the user who started cannot finalize without the connect_id: guesses are 404 and store nothing", async () => {
		const alice = await userWithKey();
		const connectId = connectIdOf(await hijackedCallback(alice.key, login("bob")));
		const flipped = `${connectId.slice(0, -1)}${connectId.endsWith("A") ? "B" : "A"}`;
		const guesses = [
			randomBase62(connectId.length),
			flipped,
			connectId.slice(0, -1),
			`${connectId}0`,
			connectId.toLowerCase() === connectId ? connectId.toUpperCase() : connectId.toLowerCase(),
			"0".repeat(connectId.length),
			"x",
			"a".repeat(200),
			"not-base62!",
		];
		for (const guess of guesses) {
			const res = await finalize(alice.key, guess);
			const body = await expectError(res, 404, "not_found");
			expect(body.error.hint).not.toBe("");
		}
		expect(await oauthCredentials(alice.key)).toEqual([]);
	});

	it("the parked answer is sealed in Redis under the connect_id's digest, for at most 10 minutes", async () => {
		const alice = await userWithKey();
		const bobLogin = login("bob");
		const connectId = connectIdOf(await hijackedCallback(alice.key, bobLogin));
		const key = `lk:oauth:connect:${await sha256Hex(connectId)}`;
		const parked = await services.redis.get(key);
		expect(parked).not.toBeNull();
		const raw = JSON.stringify(parked);
		const ttl = await services.redis.ttl(key);
		expect(ttl).toBeGreaterThan(590);
		expect(ttl).toBeLessThanOrEqual(600);
		expect(await services.redis.exists(`lk:oauth:connect:${connectId}`)).toBe(0);

		const res = await finalize(alice.key, connectId);
		expect(res.status).toBe(201);
		const { id } = (await res.json()) as CredentialJson;
		expect(await services.redis.exists(key)).toBe(0);
		const row = (await findVisible(services, alice.id, id)) as CredentialRow & { type: "oauth2" };
		const tokens = await openSecret(services, row);
		// Neither the tokens nor the provider account's name are readable at rest.
		expect(raw).not.toContain(tokens.access_token);
		expect(raw).not.toContain(tokens.refresh_token as string);
		expect(raw).not.toContain(bobLogin);
		expect(raw).not.toContain(connectId);
	});
});

describe("connect binding: the honest flow", () => {
	it("the same user finishes through GET callback then POST /v1/oauth/connections/{connect_id}", async () => {
		const { key } = await userWithKey();
		const started = await authorize(key, { return_to: RETURN_TO });
		const callback = await call(callbackPath(await drive(started.authorization_url, "alice")));
		const connectId = connectIdOf(callback);
		expect(new URL(callback.headers.get("location") ?? "").searchParams.get("tab")).toBe(
			"integrations",
		);
		// Nothing is on the account until the user claims it.
		expect(await oauthCredentials(key)).toEqual([]);

		const res = await finalize(key, connectId);
		expect(res.status).toBe(201);
		expect(res.headers.get("cache-control")).toBe("no-store");
		const body = (await res.json()) as CredentialJson;
		expect(Object.keys(body).sort()).toEqual(CREDENTIAL_KEYS);
		expect(res.headers.get("etag")).toBe(`"${body.version}"`);
		expect(body).toMatchObject({
			provider: PROVIDER,
			type: "oauth2",
			username: "alice",
			title: "Test IdP (alice)",
			scopes: ["openid", "profile"],
		});
		expect((await oauthCredentials(key)).map((c) => c.id)).toEqual([body.id]);
		// Single use.
		await expectError(await finalize(key, connectId), 404, "not_found");
	});

	it("a reconnect and a scope upgrade through finalize keep the credential's id", async () => {
		const { key } = await userWithKey();
		const name = login("dora");
		const first = await connect(key, name);
		expect(await connect(key, name, { credential_id: first, scopes: ["email"] })).toBe(first);
		expect(await connect(key, name, { scopes: ["openid", "profile", "email"] })).toBe(first);
		const [only, ...rest] = await oauthCredentials(key);
		expect(rest).toEqual([]);
		expect(only?.id).toBe(first);
		expect([...(only?.scopes ?? [])].sort()).toEqual(["email", "openid", "profile"]);
	});

	it("concurrent finalizes of one connect_id: exactly one 201, every other 404", async () => {
		const { key } = await userWithKey();
		const started = await authorize(key, { return_to: RETURN_TO });
		const connectId = connectIdOf(
			await call(callbackPath(await drive(started.authorization_url, login("ella")))),
		);
		// More than two, so that a claim that is not atomic has more than one chance to be seen.
		const results = await Promise.all(Array.from({ length: 4 }, () => finalize(key, connectId)));
		expect(results.map((r) => r.status).sort()).toEqual([201, 404, 404, 404]);
		for (const loser of results.filter((r) => r.status === 404)) {
			await expectError(loser, 404, "not_found");
		}
		expect(await oauthCredentials(key)).toHaveLength(1);
	});

	it("two concurrent GET callbacks with one state and code: exactly one redirect with connect_id, the other 400 invalid_state", async () => {
		const { key } = await userWithKey();
		const started = await authorize(key, { return_to: RETURN_TO });
		const path = callbackPath(await drive(started.authorization_url, login("fay")));
		const results = await Promise.all([call(path), call(path)]);
		const winners = results.filter((r) => r.status === 302);
		const losers = results.filter((r) => r.status !== 302);
		expect(winners).toHaveLength(1);
		expect(losers).toHaveLength(1);
		await expectError(losers[0] as Response, 400, "invalid_state");
		const connectId = connectIdOf(winners[0] as Response);
		expect(await oauthCredentials(key)).toEqual([]);
		expect((await finalize(key, connectId)).status).toBe(201);
		expect(await oauthCredentials(key)).toHaveLength(1);
	});

	it("without return_to, a no-store page gives the connect_id and the POST to make, and never says connected", async () => {
		const { key } = await userWithKey();
		const started = await authorize(key);
		const res = await call(callbackPath(await drive(started.authorization_url, login("gina"))));
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toContain("text/html");
		expect(res.headers.get("cache-control")).toBe("no-store");
		expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
		const page = await res.text();
		expect(page).not.toMatch(/\bconnected\b/i);
		const connectId = page.match(/POST \/v1\/oauth\/connections\/([A-Za-z0-9]{22,})/)?.[1] ?? "";
		expect(connectId).not.toBe("");
		expect(await oauthCredentials(key)).toEqual([]);
		expect((await finalize(key, connectId)).status).toBe(201);
		expect(await oauthCredentials(key)).toHaveLength(1);
	});

	it("a connect_id older than 10 minutes by the service clock is 404", async () => {
		const { key } = await userWithKey();
		const clock = clockedApp();
		const connectIds: string[] = [];
		for (const who of ["hal", "hal"]) {
			const started = await authorize(key, { return_to: RETURN_TO }, PROVIDER, clock.call);
			const path = callbackPath(await drive(started.authorization_url, login(who)));
			connectIds.push(connectIdOf(await clock.call(path)));
		}
		const [fresh, stale] = connectIds as [string, string];
		clock.advance(599);
		expect((await finalize(key, fresh, clock.call)).status).toBe(201);
		clock.advance(2);
		await expectError(await finalize(key, stale, clock.call), 404, "not_found");
		expect(await oauthCredentials(key)).toHaveLength(1);
	});
});

describe("connect binding: logs", () => {
	it("no log line carries the connect_id or the tokens, on success or refusal", async () => {
		const lines: string[] = [];
		for (const method of ["log", "warn", "error"] as const) {
			vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
				lines.push(args.map(String).join(" "));
			});
		}
		const alice = await userWithKey();
		const bob = await userWithKey();
		const connectId = connectIdOf(await hijackedCallback(alice.key, login("bob")));
		await expectError(await finalize(bob.key, connectId), 404, "not_found");
		const res = await finalize(alice.key, connectId);
		expect(res.status).toBe(201);
		const { id } = (await res.json()) as CredentialJson;
		vi.restoreAllMocks();
		const row = (await findVisible(services, alice.id, id)) as CredentialRow & { type: "oauth2" };
		const tokens = await openSecret(services, row);
		const logged = lines.join("\n");
		// The requests were logged, only without the id.
		expect(logged).toContain("/v1/oauth/connections/");
		expect(logged).not.toContain(connectId);
		expect(logged).not.toContain(tokens.access_token);
		expect(logged).not.toContain(tokens.refresh_token as string);
	});
});

describe("connect binding: who may finalize", () => {
	it("needs credentials:write of the same user; refusals leave it parked", async () => {
		const { key, id: userId } = await userWithKey();
		const started = await authorize(key, { return_to: RETURN_TO });
		const connectId = connectIdOf(
			await call(callbackPath(await drive(started.authorization_url, login("ivy")))),
		);
		const readOnly = await createKey(userId, ["credentials:read"]);
		await expectError(await finalize(readOnly, connectId), 403, "insufficient_scope");
		await expectError(await finalize(admin(), connectId), 403, "forbidden");
		await expectError(
			await call(`/v1/oauth/connections/${connectId}`, { method: "POST" }),
			401,
			"unauthorized",
		);
		expect((await finalize(key, connectId)).status).toBe(201);
	});

	it("a user suspended after the callback cannot finalize; the account is not stored", async () => {
		const { key, id: userId } = await userWithKey();
		const started = await authorize(key, { return_to: RETURN_TO });
		const connectId = connectIdOf(
			await call(callbackPath(await drive(started.authorization_url, login("jon")))),
		);
		const setStatus = (status: string) =>
			call(`/v1/admin/users/${userId}`, { method: "PATCH", token: admin(), json: { status } });
		expect((await setStatus("suspended")).status).toBe(200);
		await expectError(await finalize(key, connectId), 403, "user_suspended");
		expect((await setStatus("active")).status).toBe(200);
		expect(await oauthCredentials(key)).toEqual([]);
	});

	it("a finalize that cannot be stored hands the fresh tokens back to the provider", async () => {
		const { key } = await userWithKey();
		const name = login("kim");
		const first = await connect(key, name);
		const started = await authorize(key, { credential_id: first, return_to: RETURN_TO });
		const connectId = connectIdOf(
			await call(callbackPath(await drive(started.authorization_url, name))),
		);
		// The credential being upgraded goes away before the user finishes.
		expect((await call(`/v1/credentials/${first}`, { method: "DELETE", token: key })).status).toBe(
			200,
		);
		await expectError(await finalize(key, connectId), 404, "not_found");
		expect(await oauthCredentials(key)).toEqual([]);
		// Two grants (the first connect, deleted and revoked; the upgrade, refused and revoked).
		expect(await ledger(name)).toMatchObject({
			"refresh_token.saved": 2,
			"refresh_token.destroyed": 2,
		});
	});
});
