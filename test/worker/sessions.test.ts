import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { createRoute, z } from "@hono/zod-openapi";
import { and, eq, isNull } from "drizzle-orm";
import {
	createLocalJWKSet,
	decodeJwt,
	decodeProtectedHeader,
	exportJWK,
	generateKeyPair,
	importJWK,
	type JWK,
	jwtVerify,
	SignJWT,
} from "jose";
import { describe, expect, inject, it } from "vitest";
import { createApp } from "../../src/app.ts";
import { authenticate, requireLiveCredential } from "../../src/auth/middleware.ts";
import { apiKeys, refreshTokens, sessions } from "../../src/db/schema.ts";
import {
	admin,
	createKeyJson,
	createUser,
	exchange,
	type TokenPairJson,
	userWithKey,
} from "./fixtures.ts";
import {
	call,
	clockedApp,
	expectError,
	holdTransaction,
	randomIp,
	testDb,
	testEnv,
} from "./helpers.ts";

const signingKeys = () => (JSON.parse(testEnv.LATCHKEY_JWT_SIGNING_KEYS) as { keys: JWK[] }).keys;

async function forge(
	claims: Record<string, unknown>,
	header: Record<string, unknown> = {},
	key = signingKeys()[0] as JWK,
) {
	const alg = "EdDSA";
	return new SignJWT(claims)
		.setProtectedHeader({ alg, kid: key.kid, typ: "at+jwt", ...header })
		.sign(await importJWK({ ...key, alg }, alg));
}

const refresh = (token: string, via: (p: string, i: object) => Promise<Response> = call) =>
	via("/v1/auth/token", {
		method: "POST",
		json: { grant_type: "refresh_token", refresh_token: token },
	});

describe("access tokens", () => {
	it("are EdDSA JWTs any standard client verifies through the JWKS", async () => {
		const { id, key } = await userWithKey(["credentials:read", "keys:write"]);
		const pair = await exchange(key);
		expect(pair).toMatchObject({
			token_type: "Bearer",
			expires_in: 900,
			refresh_expires_in: 604_800,
		});
		expect(pair.scope.split(" ").sort()).toEqual(["credentials:read", "keys:write"]);
		expect(pair.refresh_token).toMatch(/^lkr_/);

		const jwksRes = await call("/.well-known/jwks.json");
		const jwks = (await jwksRes.json()) as { keys: JWK[] };
		for (const k of jwks.keys) expect(k).not.toHaveProperty("d");
		const header = decodeProtectedHeader(pair.access_token);
		expect(header).toMatchObject({ alg: "EdDSA", typ: "at+jwt", kid: signingKeys()[0]?.kid });
		const { payload } = await jwtVerify(pair.access_token, createLocalJWKSet(jwks), {
			issuer: testEnv.LATCHKEY_PUBLIC_URL,
			audience: "latchkey",
			typ: "at+jwt",
		});
		expect(payload.sub).toBe(id);
		expect(payload.scope).toBe(pair.scope);
		expect(typeof payload.sid).toBe("string");
		expect(typeof payload.jti).toBe("string");
		expect((payload.exp as number) - (payload.iat as number)).toBe(900);

		const who = await call("/v1/whoami", { token: pair.access_token });
		expect(await who.json()).toMatchObject({
			user_id: id,
			method: "access_token",
			session_id: payload.sid,
		});
	});

	it("carry no-store on the token response", async () => {
		const { key } = await userWithKey();
		const res = await call("/v1/auth/token", {
			method: "POST",
			json: { grant_type: "api_key", api_key: key },
		});
		expect(res.headers.get("cache-control")).toBe("no-store");
	});

	it("reject wrong audience, wrong issuer, alg none, expiry, tampering and unknown kids", async () => {
		const { id, key } = await userWithKey();
		const good = await exchange(key);
		const { payload } = await jwtVerify(
			good.access_token,
			createLocalJWKSet((await (await call("/.well-known/jwks.json")).json()) as { keys: JWK[] }),
		);
		const now = Math.floor(Date.now() / 1000);
		const base = {
			sub: id,
			sid: payload.sid,
			scope: "keys:write",
			jti: "j1",
			iss: testEnv.LATCHKEY_PUBLIC_URL,
			aud: "latchkey",
			iat: now,
			exp: now + 600,
		};

		expect((await call("/v1/whoami", { token: await forge(base) })).status).toBe(200);
		const bad: [string, string][] = [
			["aud", await forge({ ...base, aud: "someone-else" })],
			["iss", await forge({ ...base, iss: "https://evil.example" })],
			["expired", await forge({ ...base, iat: now - 3600, exp: now - 60 })],
			["typ", await forge(base, { typ: "JWT" })],
		];
		const [h, p] = good.access_token.split(".") as [string, string, string];
		const none = `${btoa(JSON.stringify({ alg: "none", typ: "at+jwt" })).replace(/=+$/, "")}.${p}.`;
		bad.push(["none", none]);
		const claims = JSON.parse(atob(p.replace(/-/g, "+").replace(/_/g, "/"))) as Record<
			string,
			unknown
		>;
		const tamperedPayload = btoa(JSON.stringify({ ...claims, scope: "admin keys:write" }))
			.replace(/=+$/, "")
			.replace(/\+/g, "-")
			.replace(/\//g, "_");
		bad.push(["tampered", `${h}.${tamperedPayload}.${good.access_token.split(".")[2]}`]);
		const stranger = await generateKeyPair("EdDSA", { extractable: true });
		const strangerJwk = { ...(await exportJWK(stranger.privateKey)), kid: signingKeys()[0]?.kid };
		bad.push(["foreign key, same kid", await forge(base, {}, strangerJwk)]);
		bad.push(["unknown kid", await forge(base, {}, { ...strangerJwk, kid: "nobody" })]);
		for (const [label, token] of bad) {
			const res = await call("/v1/whoami", { token });
			expect(res.status, label).toBe(401);
			await expectError(res, 401, "unauthorized");
		}
		// Inside the 30 s tolerance an expired token still passes.
		expect(
			(await call("/v1/whoami", { token: await forge({ ...base, exp: now - 10 }) })).status,
		).toBe(200);
	});

	it("that claim admin in a valid signature get no admin route: the scope is stripped (403)", async () => {
		const { id, key } = await userWithKey(["credentials:read", "keys:write"]);
		const pair = await exchange(key);
		const now = Math.floor(Date.now() / 1000);
		// Signed with the service's own key for a live session: only the claim is out of bounds.
		const token = await forge({
			sub: id,
			sid: decodeJwt(pair.access_token).sid,
			scope: "admin credentials:read keys:write",
			jti: `jti-${crypto.randomUUID()}`,
			iss: testEnv.LATCHKEY_PUBLIC_URL,
			aud: "latchkey",
			iat: now,
			exp: now + 600,
		});
		const who = await call("/v1/whoami", { token });
		expect(who.status).toBe(200);
		expect(((await who.json()) as { scopes: string[] }).scopes.sort()).toEqual([
			"credentials:read",
			"keys:write",
		]);
		const attempts: [string, string, unknown?][] = [
			["/v1/admin/users", "GET"],
			["/v1/admin/users", "POST", { email: `stripped-${crypto.randomUUID()}@example.com` }],
			[`/v1/admin/users/${id}`, "PATCH", { name: "promoted" }],
			[`/v1/admin/users/${id}/api-keys`, "POST", { name: "escalated" }],
			[
				"/v1/admin/system-credentials",
				"POST",
				{ provider: "p", type: "api_key", api_key: "sk-escalated" },
			],
		];
		for (const [path, method, json] of attempts) {
			const res = await call(path, { method, token, json });
			expect(res.status, `${method} ${path}`).toBe(403);
			await expectError(res, 403, "insufficient_scope");
		}
	});

	it("survive a signing-key rotation", async () => {
		const { key } = await userWithKey();
		const before = await exchange(key);
		const next = await generateKeyPair("EdDSA", { extractable: true });
		const nextJwk = {
			...(await exportJWK(next.privateKey)),
			kid: `rot-${Date.now()}`,
			alg: "EdDSA",
		};
		const old = signingKeys()[0] as JWK;
		const { d: _d, ...oldPublic } = old;
		const rotated = { LATCHKEY_JWT_SIGNING_KEYS: JSON.stringify({ keys: [nextJwk, oldPublic] }) };

		expect((await call("/v1/whoami", { token: before.access_token }, rotated)).status).toBe(200);
		const after = (await (
			await call(
				"/v1/auth/token",
				{ method: "POST", json: { grant_type: "api_key", api_key: key } },
				rotated,
			)
		).json()) as TokenPairJson;
		expect(decodeProtectedHeader(after.access_token).kid).toBe(nextJwk.kid);
		expect((await call("/v1/whoami", { token: after.access_token }, rotated)).status).toBe(200);
		const jwks = (await (await call("/.well-known/jwks.json", {}, rotated)).json()) as {
			keys: JWK[];
		};
		expect(jwks.keys.map((k) => k.kid)).toEqual([nextJwk.kid, old.kid]);
		// Before the rotation reaches this deployment, the new key's tokens are unknown.
		expect((await call("/v1/whoami", { token: after.access_token })).status).toBe(401);
	});

	it("of a suspended user are dead (401: the suspension ended the session); the key gets 403", async () => {
		const { id, key } = await userWithKey();
		const pair = await exchange(key);
		const patch = await call(`/v1/admin/users/${id}`, {
			method: "PATCH",
			token: admin(),
			json: { status: "suspended" },
		});
		expect(patch.status).toBe(200);
		const body = await expectError(
			await call("/v1/whoami", { token: pair.access_token }),
			401,
			"unauthorized",
		);
		expect(body.error.message).toMatch(/suspended/);
		await expectError(await call("/v1/whoami", { token: key }), 403, "user_suspended");
		await expectError(await refresh(pair.refresh_token), 403, "user_suspended");
		// Lifting the suspension restores the key, not the session it ended.
		await call(`/v1/admin/users/${id}`, {
			method: "PATCH",
			token: admin(),
			json: { status: "active" },
		});
		expect((await call("/v1/whoami", { token: key })).status).toBe(200);
		await expectError(await refresh(pair.refresh_token), 401, "invalid_grant");
		await expectError(await call("/v1/whoami", { token: pair.access_token }), 401, "unauthorized");
	});
});

describe("refresh tokens", () => {
	it("rotate on every use", async () => {
		const { key } = await userWithKey();
		const first = await exchange(key);
		const res = await refresh(first.refresh_token);
		expect(res.status).toBe(200);
		expect(res.headers.get("cache-control")).toBe("no-store");
		const second = (await res.json()) as TokenPairJson;
		expect(second.refresh_token).not.toBe(first.refresh_token);
		expect((await refresh(second.refresh_token)).status).toBe(200);
	});

	it("a retry within 30 s succeeds and invalidates the lost pair; reusing that pair kills the session", async () => {
		const { key } = await userWithKey();
		const first = await exchange(key);
		const lost = (await (await refresh(first.refresh_token)).json()) as TokenPairJson;
		const retry = await refresh(first.refresh_token);
		expect(retry.status).toBe(200);
		const kept = (await retry.json()) as TokenPairJson;
		expect(kept.refresh_token).not.toBe(lost.refresh_token);
		// The lost pair was invalidated by the retry: presenting it is theft.
		await expectError(await refresh(lost.refresh_token), 401, "refresh_token_reused");
		// ... and the whole session is gone, including the pair the retry issued.
		await expectError(await refresh(kept.refresh_token), 401, "invalid_grant");
	});

	it("reuse after the successor was used revokes the session", async () => {
		const { key } = await userWithKey();
		const first = await exchange(key);
		const second = (await (await refresh(first.refresh_token)).json()) as TokenPairJson;
		const third = (await (await refresh(second.refresh_token)).json()) as TokenPairJson;
		await expectError(await refresh(first.refresh_token), 401, "refresh_token_reused");
		await expectError(await refresh(third.refresh_token), 401, "invalid_grant");
	});

	it("reuse after the 30 s grace revokes the session", async () => {
		const clock = clockedApp();
		const { key } = await userWithKey();
		const first = (await (
			await clock.call("/v1/auth/token", {
				method: "POST",
				json: { grant_type: "api_key", api_key: key },
			})
		).json()) as TokenPairJson;
		const second = (await (await refresh(first.refresh_token, clock.call)).json()) as TokenPairJson;
		clock.advance(31);
		await expectError(await refresh(first.refresh_token, clock.call), 401, "refresh_token_reused");
		await expectError(await refresh(second.refresh_token, clock.call), 401, "invalid_grant");
	});

	it("concurrent presentations of one token leave exactly one live successor", async () => {
		const { key } = await userWithKey();
		const first = await exchange(key);
		const results = await Promise.all([
			refresh(first.refresh_token),
			refresh(first.refresh_token),
			refresh(first.refresh_token),
		]);
		// Each lands within the grace and finds the previous successor unused, so each succeeds
		// as a retry; the row lock makes them take turns.
		expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
		const tokens = await Promise.all(
			results.map(async (r) => ((await r.json()) as TokenPairJson).refresh_token),
		);
		expect(new Set(tokens).size).toBe(3);
		const sid = decodeJwt(first.access_token).sid as string;
		const handle = testDb();
		const live = await handle.db
			.select({ id: refreshTokens.id })
			.from(refreshTokens)
			.where(
				and(
					eq(refreshTokens.sessionId, sid),
					isNull(refreshTokens.usedAt),
					isNull(refreshTokens.invalidatedAt),
				),
			);
		await handle.end();
		expect(live).toHaveLength(1);
	});

	it("two presentations proven to overlap: both succeed, the later as the retry, one pair stays live", async () => {
		const { key } = await userWithKey();
		const first = await exchange(key);
		const sid = decodeJwt(first.access_token).sid as string;
		// Both requests queue on the token's row behind the test's lock, so they are in flight
		// at the same time and only the refresh path's own row lock can order them.
		const holder = await holdTransaction();
		let pending: Promise<Response[]>;
		try {
			await holder.query("select id from refresh_tokens where session_id = $1 for update", [sid]);
			pending = Promise.all([refresh(first.refresh_token), refresh(first.refresh_token)]);
			await holder.waitForBlocked(2);
		} finally {
			await holder.release();
		}
		const results = await pending;
		// API.md: a second presentation within 30 s, while the first use's successor is unused,
		// is a retry: it succeeds and invalidates the pair of the first use.
		expect(results.map((r) => r.status)).toEqual([200, 200]);
		const pairs = await Promise.all(results.map(async (r) => (await r.json()) as TokenPairJson));
		expect(pairs[0]?.refresh_token).not.toBe(pairs[1]?.refresh_token);

		const handle = testDb();
		const rows = await handle.db
			.select()
			.from(refreshTokens)
			.where(eq(refreshTokens.sessionId, sid));
		await handle.end();
		const live = rows.filter((r) => !r.usedAt && !r.invalidatedAt);
		const invalidated = rows.filter((r) => r.invalidatedAt);
		// Without the row lock both would have taken the first-use branch: two live successors,
		// a forked session.
		expect(rows).toHaveLength(3);
		expect(live).toHaveLength(1);
		expect(invalidated).toHaveLength(1);
		// The live pair acts; the invalidated pair's access token is refused by a write.
		const liveJti = live[0]?.accessJti;
		for (const pair of pairs) {
			const patch = await call("/v1/me", {
				method: "PATCH",
				token: pair.access_token,
				json: { name: "racer" },
			});
			expect(patch.status).toBe(decodeJwt(pair.access_token).jti === liveJti ? 200 : 401);
		}
	});

	it("a session ends 30 days after the key exchange, whatever the rotations", async () => {
		const clock = clockedApp();
		const { key } = await userWithKey();
		let pair = (await (
			await clock.call("/v1/auth/token", {
				method: "POST",
				json: { grant_type: "api_key", api_key: key },
			})
		).json()) as TokenPairJson;
		for (let day = 6; day < 30; day += 6) {
			clock.advance(6 * 86_400);
			const res = await refresh(pair.refresh_token, clock.call);
			expect(res.status, `day ${day}`).toBe(200);
			pair = (await res.json()) as TokenPairJson;
		}
		// Day 24: the next refresh token cannot outlive the session.
		expect(pair.refresh_expires_in).toBe(6 * 86_400);
		clock.advance(6 * 86_400);
		await expectError(await refresh(pair.refresh_token, clock.call), 401, "invalid_grant");
	});

	it("expire after 7 days unused", async () => {
		const clock = clockedApp();
		const { key } = await userWithKey();
		const pair = (await (
			await clock.call("/v1/auth/token", {
				method: "POST",
				json: { grant_type: "api_key", api_key: key },
			})
		).json()) as TokenPairJson;
		clock.advance(7 * 86_400 + 1);
		await expectError(await refresh(pair.refresh_token, clock.call), 401, "invalid_grant");
	});

	it("POST /v1/auth/revoke ends the session with no bearer", async () => {
		const { key } = await userWithKey();
		const pair = await exchange(key);
		const res = await call("/v1/auth/revoke", {
			method: "POST",
			json: { refresh_token: pair.refresh_token },
		});
		expect(res.status).toBe(200);
		await expectError(await refresh(pair.refresh_token), 401, "invalid_grant");
		expect(
			(await call("/v1/auth/revoke", { method: "POST", json: { refresh_token: "lkr_unknown" } }))
				.status,
		).toBe(200);
		await expectError(
			await call("/v1/auth/revoke", { method: "POST", json: {} }),
			400,
			"invalid_request",
		);
	});

	it("revoking the API key revokes its sessions", async () => {
		const user = await createUser();
		const k = await createKeyJson(user.id);
		const manager = await createKeyJson(user.id);
		const pair = await exchange(k.key);
		expect(
			(await call(`/v1/api-keys/${k.id}`, { method: "DELETE", token: manager.key })).status,
		).toBe(204);
		await expectError(await refresh(pair.refresh_token), 401, "invalid_grant");
	});

	for (const [label, remove] of [
		[
			"DELETE /v1/me",
			(_id: string, pair: TokenPairJson) =>
				call("/v1/me", { method: "DELETE", token: pair.access_token }),
		],
		[
			"DELETE /v1/admin/users/{id}",
			(id: string) => call(`/v1/admin/users/${id}`, { method: "DELETE", token: admin() }),
		],
	] as const) {
		it(`after ${label}, the session's refresh token is 401 invalid_grant`, async () => {
			const { id, key } = await userWithKey();
			const pair = await exchange(key);
			expect((await remove(id, pair)).status).toBe(202);
			// API.md: a bad token at the token endpoint is invalid_grant, whatever made it bad; the
			// account's end is said in the message.
			const body = await expectError(await refresh(pair.refresh_token), 401, "invalid_grant");
			expect(body.error.message).toMatch(/being deleted/);
			await expectError(
				await call("/v1/auth/token", {
					method: "POST",
					json: { grant_type: "api_key", api_key: key },
				}),
				401,
				"invalid_grant",
			);
		});
	}

	it("bad grants are 401 invalid_grant, bad bodies 400", async () => {
		await expectError(
			await call("/v1/auth/token", {
				method: "POST",
				json: { grant_type: "api_key", api_key: "lk_nope" },
			}),
			401,
			"invalid_grant",
		);
		await expectError(await refresh("lkr_doesnotexist"), 401, "invalid_grant");
		for (const json of [
			{},
			{ grant_type: "password" },
			{ grant_type: "api_key" },
			{ grant_type: "refresh_token", api_key: "x" },
		]) {
			await expectError(
				await call("/v1/auth/token", { method: "POST", json }),
				400,
				"invalid_request",
			);
		}
		// The admin token is not an API key.
		await expectError(
			await call("/v1/auth/token", {
				method: "POST",
				json: { grant_type: "api_key", api_key: admin() },
			}),
			401,
			"invalid_grant",
		);
	});
});

describe("live-credential check for secret-returning routes", () => {
	function secretApp() {
		const app = createApp();
		app.openapi(
			createRoute({
				method: "get",
				path: "/scratch/secret",
				middleware: [authenticate(), requireLiveCredential()],
				responses: {
					200: {
						description: "ok",
						content: { "application/json": { schema: z.object({ ok: z.boolean() }) } },
					},
				},
			}),
			(c) => c.json({ ok: true }, 200),
		);
		return async (token: string) => {
			const ctx = createExecutionContext();
			const res = await app.fetch(
				new Request("http://latchkey.test/scratch/secret", {
					headers: { authorization: `Bearer ${token}`, "cf-connecting-ip": randomIp() },
				}),
				testEnv,
				ctx,
			);
			await waitOnExecutionContext(ctx);
			return res;
		};
	}

	it("refuses an unexpired access token whose session was revoked, and so do plain reads", async () => {
		const get = secretApp();
		const { key } = await userWithKey();
		const pair = await exchange(key);
		expect((await get(pair.access_token)).status).toBe(200);
		expect((await call("/v1/whoami", { token: pair.access_token })).status).toBe(200);
		await call("/v1/auth/revoke", { method: "POST", json: { refresh_token: pair.refresh_token } });
		// The revocation happened in this isolate, which forgot the session at once.
		await expectError(await call("/v1/whoami", { token: pair.access_token }), 401, "unauthorized");
		await expectError(await get(pair.access_token), 401, "unauthorized");
	});

	it("refuses a session revoked behind the isolate cache, while plain reads may ride it for 10 s", async () => {
		const get = secretApp();
		const { key } = await userWithKey();
		const pair = await exchange(key);
		expect((await call("/v1/whoami", { token: pair.access_token })).status).toBe(200);
		const handle = testDb();
		await handle.db
			.update(sessions)
			.set({ revokedAt: new Date(), revokedReason: "test" })
			.where(eq(sessions.id, decodeJwt(pair.access_token).sid as string));
		await handle.end();
		expect((await call("/v1/whoami", { token: pair.access_token })).status).toBe(200);
		await expectError(await get(pair.access_token), 401, "unauthorized");
	});

	it("refuses the access token of a pair replaced by a refresh retry", async () => {
		const get = secretApp();
		const { key } = await userWithKey();
		const first = await exchange(key);
		const lost = (await (await refresh(first.refresh_token)).json()) as TokenPairJson;
		const kept = (await (await refresh(first.refresh_token)).json()) as TokenPairJson;
		await expectError(await get(lost.access_token), 401, "unauthorized");
		expect((await get(kept.access_token)).status).toBe(200);
	});

	it("re-checks an API key past the isolate cache", async () => {
		const get = secretApp();
		const user = await createUser();
		const k = await createKeyJson(user.id);
		expect((await get(k.key)).status).toBe(200);
		// Revoke behind this isolate's back, straight in the database, as another isolate would.
		const handle = testDb();
		await handle.db.update(apiKeys).set({ revokedAt: new Date() }).where(eq(apiKeys.id, k.id));
		await handle.end();
		// Plain reads may ride the cache for up to 10 s; the secret path may not.
		expect((await call("/v1/whoami", { token: k.key })).status).toBe(200);
		await expectError(await get(k.key), 401, "unauthorized");
	});
});

describe("failed-authentication rate limit", () => {
	it("answers 429 with Retry-After past 10 failures a minute, and never refuses a valid key", async () => {
		const ip = randomIp();
		const { key } = await userWithKey();
		for (let i = 0; i < 10; i++) {
			await expectError(await call("/v1/whoami", { token: "lk_garbage", ip }), 401, "unauthorized");
		}
		const limited = await call("/v1/whoami", { token: "lk_garbage", ip });
		await expectError(limited, 429, "rate_limited");
		expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
		expect((await call("/v1/whoami", { token: key, ip })).status).toBe(200);
		// Another source is unaffected.
		await expectError(
			await call("/v1/whoami", { token: "lk_garbage", ip: randomIp() }),
			401,
			"unauthorized",
		);
		// Failed grants at the token endpoint count too.
		await expectError(
			await call("/v1/auth/token", {
				method: "POST",
				ip,
				json: { grant_type: "api_key", api_key: "lk_nope" },
			}),
			429,
			"rate_limited",
		);
	});
});

describe("external identity provider", () => {
	const idp = inject("idp");
	const externalEnv = {
		EXTERNAL_JWT_JWKS_URL: idp.jwksUrl,
		EXTERNAL_JWT_ISSUER: idp.issuer,
		EXTERNAL_JWT_AUDIENCE: "latchkey-platform",
	};

	async function idToken(
		claims: Record<string, unknown>,
		opts: { kid?: string; alg?: string; aud?: string } = {},
	) {
		const jwk = idp.privateJwks.find((k) => k.kid === (opts.kid ?? "idp-rsa")) as JWK;
		const alg = opts.alg ?? (jwk.alg as string);
		const now = Math.floor(Date.now() / 1000);
		return new SignJWT({
			iat: now,
			exp: now + 300,
			iss: idp.issuer,
			aud: opts.aud ?? "latchkey-platform",
			...claims,
		})
			.setProtectedHeader({ alg, kid: jwk.kid })
			.sign(await importJWK(jwk, alg));
	}

	it("creates the user on first sight and maps the same subject to it afterwards", async () => {
		const sub = `ext-${crypto.randomUUID()}`;
		const email = `${sub}@idp.example`;
		const token = await idToken({ sub, email, email_verified: true });
		const first = await call("/v1/whoami", { token }, externalEnv);
		expect(first.status).toBe(200);
		const who = (await first.json()) as { user_id: string; method: string; scopes: string[] };
		expect(who.method).toBe("external");
		expect(who.scopes).not.toContain("admin");
		const again = await call(
			"/v1/whoami",
			{ token: await idToken({ sub, email }, { kid: "idp-ec" }) },
			externalEnv,
		);
		expect(((await again.json()) as { user_id: string }).user_id).toBe(who.user_id);
		const me = await call(`/v1/admin/users/${who.user_id}`, { token: admin() });
		expect(await me.json()).toMatchObject({ email, email_verified: true });
	});

	it("names a missing sub or email claim", async () => {
		const noEmail = await call(
			"/v1/whoami",
			{ token: await idToken({ sub: `ext-${crypto.randomUUID()}` }) },
			externalEnv,
		);
		expect((await expectError(noEmail, 401, "unauthorized")).error.message).toContain("email");
		const noSub = await call(
			"/v1/whoami",
			{ token: await idToken({ email: "x@idp.example" }) },
			externalEnv,
		);
		expect((await expectError(noSub, 401, "unauthorized")).error.message).toContain("sub");
	});

	it("links an existing email only when the token says it is verified", async () => {
		const existing = await createUser();
		const unverified = await idToken({
			sub: `ext-${crypto.randomUUID()}`,
			email: existing.email.toUpperCase(),
			email_verified: false,
		});
		await expectError(
			await call("/v1/whoami", { token: unverified }, externalEnv),
			409,
			"email_conflict",
		);
		const verified = await idToken({
			sub: `ext-${crypto.randomUUID()}`,
			email: existing.email,
			email_verified: true,
		});
		const res = await call("/v1/whoami", { token: verified }, externalEnv);
		expect(((await res.json()) as { user_id: string }).user_id).toBe(existing.id);
	});

	it("refuses wrong audience, HS256 and tokens when the provider is not configured", async () => {
		const sub = `ext-${crypto.randomUUID()}`;
		const claims = { sub, email: `${sub}@idp.example` };
		await expectError(
			await call("/v1/whoami", { token: await idToken(claims, { aud: "other" }) }, externalEnv),
			401,
			"unauthorized",
		);
		const now = Math.floor(Date.now() / 1000);
		const hs = await new SignJWT({
			...claims,
			iss: idp.issuer,
			aud: "latchkey-platform",
			iat: now,
			exp: now + 60,
		})
			.setProtectedHeader({ alg: "HS256" })
			.sign(new TextEncoder().encode("x".repeat(32)));
		await expectError(await call("/v1/whoami", { token: hs }, externalEnv), 401, "unauthorized");
		await expectError(
			await call("/v1/whoami", { token: await idToken(claims) }),
			401,
			"unauthorized",
		);
	});
});
