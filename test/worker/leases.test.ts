import { eq, sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { credentials, sessions } from "../../src/db/schema.ts";
import { needsRefresh, refreshMarginMs, requiredValidityMs } from "../../src/leases/policy.ts";
import { refreshExpiring } from "../../src/leases/proactive.ts";
import { createLease, releaseLease } from "../../src/leases/service.ts";
import { leaseKeys } from "../../src/leases/store.ts";
import type { Services } from "../../src/services.ts";
import { admin, exchange, userWithKey } from "./fixtures.ts";
import { call, clockedApp, expectError } from "./helpers.ts";
import {
	account,
	age,
	barrier,
	clockedServices,
	connected,
	db,
	expectLiveRefreshToken,
	heldInMargin,
	lease,
	leased,
	leaseTestProviders,
	rowOf,
	storeCredential,
	tokensOf as tokensOfRow,
} from "./lease-helpers.ts";
import { as, connect, introspect, ledger, refreshAttempts } from "./oauth-helpers.ts";

/**
 * Leases against the real authorization server (oidc-provider), real Postgres and real Redis.
 * Time is moved by writing a token's expiry into its row (as if it had aged) or through an
 * injected clock; waits are observed through the engine's hooks, never slept through.
 */

const PLAIN = "lease-idp";
const INVALIDATING = "lease-idp-inv";
const DOWN = "lease-idp-down";

const env = leaseTestProviders({ plain: PLAIN, invalidating: INVALIDATING, down: DOWN });
// Read at call time: the services exist from beforeAll on.
let services: Services;
beforeAll(() => {
	services = env.services;
});

const row = (id: string) => rowOf(services, id);
const tokensOf = (id: string) => tokensOfRow(services, id);
const expectLive = (id: string) => expectLiveRefreshToken(services, id);

describe("refresh policy", () => {
	it("margin is min(5 minutes, a quarter of the lifetime)", () => {
		expect(refreshMarginMs(3600_000)).toBe(300_000);
		expect(refreshMarginMs(120_000)).toBe(30_000);
	});

	it("refreshes when the token would not outlast the lease plus the margin", () => {
		const now = new Date("2026-01-01T00:00:00Z");
		const issuedAt = new Date(now.getTime() - 3000_000);
		const times = (leftS: number) => ({
			issuedAt,
			expiresAt: new Date(now.getTime() + leftS * 1000),
		});
		// lifetime ~1 h: margin 5 min, so a 60 s lease needs 360 s left.
		expect(needsRefresh(times(361), issuedAt, now, 60_000)).toBe(false);
		expect(needsRefresh(times(359), issuedAt, now, 60_000)).toBe(true);
		expect(needsRefresh({ issuedAt, expiresAt: null }, issuedAt, now, 60_000)).toBe(false);
	});

	it("a token shorter-lived than the lease is not refreshed on every lease", () => {
		// lifetime 120 s, margin 30 s: a 900 s lease asks for no more than a fresh token has.
		expect(requiredValidityMs(900_000, 120_000)).toBe(90_000);
		const now = new Date();
		const issuedAt = new Date(now.getTime() - 10_000);
		const expiresAt = new Date(now.getTime() + 110_000);
		expect(needsRefresh({ issuedAt, expiresAt }, issuedAt, now, 900_000)).toBe(false);
	});
});

describe("leasing stored secrets", () => {
	it("returns exactly the secret fields of each type, no-store, with the default TTL", async () => {
		const { key } = await userWithKey();
		const cases: [Record<string, unknown>, Record<string, unknown>][] = [
			[
				{ provider: "svc", type: "api_key", api_key: "sk_live_lease_0001" },
				{ type: "api_key", api_key: "sk_live_lease_0001" },
			],
			[
				{ provider: "svc", type: "user_password", username: "bob", password: "hunter22" },
				{ type: "user_password", username: "bob", password: "hunter22" },
			],
			[
				{
					provider: "svc",
					type: "host_scoped",
					host: "api.example.com",
					headers: { "X-Api-Key": "hk_0001" },
				},
				{ type: "host_scoped", host: "api.example.com", headers: { "X-Api-Key": "hk_0001" } },
			],
		];
		for (const [body, secret] of cases) {
			const id = await storeCredential(key, body);
			const before = Date.now();
			const res = await lease(key, id);
			expect(res.headers.get("cache-control")).toBe("no-store");
			const l = await leased(res);
			expect(l.secret).toEqual(secret);
			expect(l.credential_id).toBe(id);
			expect(l.token_expires_at).toBeNull();
			const ttl = new Date(l.expires_at).getTime() - before;
			expect(ttl).toBeGreaterThan(59_000);
			expect(ttl).toBeLessThan(61_000 + 5_000);
		}
	});

	it("an OAuth lease carries access_token and token_type, never the refresh token", async () => {
		const { user, id } = await connected(PLAIN);
		const l = await leased(await lease(user.key, id, { ttl_seconds: 120 }));
		expect(Object.keys(l.secret).sort()).toEqual(["access_token", "token_type", "type"]);
		expect(l.secret).toMatchObject({ type: "oauth2", token_type: "Bearer" });
		expect((await introspect((l.secret as { access_token: string }).access_token)).active).toBe(
			true,
		);
		expect(l.token_expires_at).not.toBeNull();
	});

	it("validates the TTL and the scope; another user's credential is 404", async () => {
		const { key } = await userWithKey();
		const id = await storeCredential(key, { provider: "svc", type: "api_key", api_key: "k_1" });
		for (const bad of [{ ttl_seconds: 0 }, { ttl_seconds: 901 }, { ttl_seconds: "60" }, { x: 1 }]) {
			await expectError(await lease(key, id, bad), 400, "invalid_request");
		}
		const other = await userWithKey();
		await expectError(await lease(other.key, id), 404, "not_found");
		const { key: readOnly } = await userWithKey(["credentials:read", "credentials:write"]);
		const own = await storeCredential(readOnly, {
			provider: "svc",
			type: "api_key",
			api_key: "k_2",
		});
		await expectError(await lease(readOnly, own), 403, "insufficient_scope");
		await expectError(await lease(admin(), id), 403, "forbidden");
	});

	it("renew extends, release ends; a released, foreign or malformed lease is refused", async () => {
		const { key } = await userWithKey();
		const id = await storeCredential(key, { provider: "svc", type: "api_key", api_key: "k_3" });
		const l = await leased(await lease(key, id, { ttl_seconds: 30 }));
		const renewed = await call(`/v1/leases/${l.lease_id}/renew`, {
			method: "POST",
			token: key,
			json: { ttl_seconds: 600 },
		});
		expect(renewed.status).toBe(200);
		const { expires_at } = (await renewed.json()) as { expires_at: string };
		expect(new Date(expires_at).getTime()).toBeGreaterThan(
			new Date(l.expires_at).getTime() + 500_000,
		);

		const other = await userWithKey();
		await expectError(
			await call(`/v1/leases/${l.lease_id}/renew`, { method: "POST", token: other.key, json: {} }),
			404,
			"not_found",
		);
		await expectError(
			await call(`/v1/leases/${l.lease_id}`, { method: "DELETE", token: other.key }),
			404,
			"not_found",
		);
		await expectError(
			await call("/v1/leases/lease_nope/renew", { method: "POST", token: key, json: {} }),
			404,
			"not_found",
		);

		const released = await call(`/v1/leases/${l.lease_id}`, { method: "DELETE", token: key });
		expect(released.status).toBe(204);
		await expectError(
			await call(`/v1/leases/${l.lease_id}`, { method: "DELETE", token: key }),
			410,
			"lease_gone",
		);
		await expectError(
			await call(`/v1/leases/${l.lease_id}/renew`, { method: "POST", token: key, json: {} }),
			410,
			"lease_gone",
		);
	});

	it("a lease that ran out is gone: renew and release answer 410", async () => {
		const w = clockedApp();
		const { key } = await userWithKey();
		const id = await storeCredential(key, { provider: "svc", type: "api_key", api_key: "k_exp" });
		const res = await w.call(`/v1/credentials/${id}/leases`, {
			method: "POST",
			token: key,
			json: { ttl_seconds: 5 },
		});
		const l = await leased(res);
		w.advance(6);
		await expectError(
			await w.call(`/v1/leases/${l.lease_id}/renew`, { method: "POST", token: key, json: {} }),
			410,
			"lease_gone",
		);
		await expectError(
			await w.call(`/v1/leases/${l.lease_id}`, { method: "DELETE", token: key }),
			410,
			"lease_gone",
		);
	});

	it("every user may lease a system credential", async () => {
		const res = await call("/v1/admin/system-credentials", {
			method: "POST",
			token: admin(),
			json: { provider: "shared-svc", type: "api_key", api_key: "sys_key_0001" },
		});
		expect(res.status).toBe(201);
		const { id } = (await res.json()) as { id: string };
		for (const { key } of [await userWithKey(), await userWithKey()]) {
			const l = await leased(await lease(key, id));
			expect(l.secret).toEqual({ type: "api_key", api_key: "sys_key_0001" });
		}
	});

	it("a renewal past the token's expiry is 409 token_expiring", async () => {
		const { user, id } = await connected(PLAIN);
		// Lifetime 120 s with 110 s left: leased without a refresh, cut to the token's expiry.
		await age(id, 10, 110);
		const l = await leased(await lease(user.key, id, { ttl_seconds: 900 }));
		expect(l.expires_at).toBe(l.token_expires_at);
		await expectError(
			await call(`/v1/leases/${l.lease_id}/renew`, {
				method: "POST",
				token: user.key,
				json: { ttl_seconds: 300 },
			}),
			409,
			"token_expiring",
		);
	});

	it("deleting the credential ends its leases at once", async () => {
		const { key } = await userWithKey();
		const id = await storeCredential(key, { provider: "svc", type: "api_key", api_key: "k_4" });
		const l = await leased(await lease(key, id, { ttl_seconds: 600 }));
		expect((await call(`/v1/credentials/${id}`, { method: "DELETE", token: key })).status).toBe(
			200,
		);
		await expectError(
			await call(`/v1/leases/${l.lease_id}/renew`, { method: "POST", token: key, json: {} }),
			410,
			"lease_gone",
		);
		await expectError(await lease(key, id), 404, "not_found");
	});

	it("after an API key update, new leases get the new secret while old ones run out", async () => {
		const { key } = await userWithKey();
		const id = await storeCredential(key, { provider: "svc", type: "api_key", api_key: "old_k" });
		const first = await leased(await lease(key, id, { ttl_seconds: 300 }));
		const patched = await call(`/v1/credentials/${id}`, {
			method: "PATCH",
			token: key,
			json: { api_key: "new_k" },
		});
		expect(patched.status).toBe(200);
		const second = await leased(await lease(key, id));
		expect(second.secret).toEqual({ type: "api_key", api_key: "new_k" });
		const renewed = await call(`/v1/leases/${first.lease_id}/renew`, {
			method: "POST",
			token: key,
			json: { ttl_seconds: 60 },
		});
		expect(renewed.status).toBe(200);
	});

	it("a lease checks the caller's session and key against the database, not the cache", async () => {
		const { id: userId, key } = await userWithKey();
		const id = await storeCredential(key, { provider: "svc", type: "api_key", api_key: "k_5" });
		const pair = await exchange(key);
		// Warm this isolate's caches, then end the session and the key as another isolate would.
		expect((await call("/v1/me", { token: pair.access_token })).status).toBe(200);
		expect((await call(`/v1/credentials/${id}`, { token: key })).status).toBe(200);
		await db
			.update(sessions)
			.set({ revokedAt: new Date(), revokedReason: "revoked" })
			.where(eq(sessions.userId, userId));
		await expectError(await lease(pair.access_token, id), 401, "unauthorized");
		await db.execute(sql`update api_keys set revoked_at = now() where user_id = ${userId}`);
		await expectError(await lease(key, id), 401, "unauthorized");
	});

	it("a secret that fails to decrypt is an error naming the credential, and holds nothing", async () => {
		const { key } = await userWithKey();
		const id = await storeCredential(key, {
			provider: "svc",
			type: "api_key",
			api_key: "k_tamper",
		});
		// Moved to another row's AAD: the bytes are intact but belong elsewhere.
		const other = await storeCredential(key, {
			provider: "svc",
			type: "api_key",
			api_key: "k_other",
		});
		const source = await row(other);
		await db
			.update(credentials)
			.set({ ciphertext: source.ciphertext, dataKey: source.dataKey, keyId: source.keyId })
			.where(eq(credentials.id, id));
		const body = await expectError(await lease(key, id), 500, "decryption_failed");
		expect(body.error.message).toContain(id);
		expect(JSON.stringify(body)).not.toContain("k_other");
		expect(await services.redis.zcard(leaseKeys(id).holders)).toBe(0);
	});

	it("answers 503 dependency_unavailable with Retry-After when Redis is unreachable", async () => {
		const { key } = await userWithKey();
		const id = await storeCredential(key, { provider: "svc", type: "api_key", api_key: "k_6" });
		const res = await lease(key, id, undefined, { UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9" });
		await expectError(res, 503, "dependency_unavailable");
		expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
	});
});

describe("refresh on lease", () => {
	it("100 concurrent leases of an expiring token: one token-endpoint call, one new token", async () => {
		const { user, username, id } = await connected(PLAIN);
		const old = await tokensOf(id);
		const issued = (await ledger(username))["access_token.saved"] ?? 0;
		await age(id, 3570, 30);
		const results = await Promise.all(
			Array.from({ length: 100 }, () => lease(user.key, id, { ttl_seconds: 60 })),
		);
		const leases = await Promise.all(results.map(leased));
		const tokens = new Set(leases.map((l) => (l.secret as { access_token: string }).access_token));
		expect(tokens.size).toBe(1);
		expect(tokens.has(old.access_token)).toBe(false);
		expect(await refreshAttempts(old.refresh_token ?? "")).toBe(1);
		await expectLive(id);
		expect((await ledger(username))["access_token.saved"]).toBe(issued + 1);
		// The rotated refresh token was stored; the presented one is dead at the provider.
		const now = await tokensOf(id);
		expect(now.refresh_token).not.toBe(old.refresh_token);
		expect((await introspect(now.refresh_token ?? "")).active).toBe(true);
	});

	it("invalid_grant turns the credential reconnect_required; the dead token is never retried", async () => {
		const { user, username, id } = await connected(PLAIN);
		const old = await tokensOf(id);
		// The user revoked the grant at the provider.
		const revoked = await fetch(as.revokeUrl, {
			method: "POST",
			headers: {
				authorization: `Basic ${btoa(`${as.clientId}:${as.clientSecret}`)}`,
				"content-type": "application/x-www-form-urlencoded",
			},
			body: new URLSearchParams({
				token: old.refresh_token ?? "",
				token_type_hint: "refresh_token",
			}),
		});
		expect(revoked.status).toBe(200);
		await age(id, 3570, 30);
		await expectError(await lease(user.key, id), 409, "reconnect_required");
		const json = (await (await call(`/v1/credentials/${id}`, { token: user.key })).json()) as {
			status: string;
		};
		expect(json.status).toBe("reconnect_required");
		await expectError(await lease(user.key, id), 409, "reconnect_required");
		expect(await refreshAttempts(old.refresh_token ?? "")).toBe(1);

		// Reconnecting the same account repairs the credential in place: leases work again.
		expect(await connect(user.key, username, {}, PLAIN)).toBe(id);
		const repaired = await row(id);
		expect(repaired.status).toBe("active");
		expect(repaired.tokenIssuedAt?.getTime()).toBeGreaterThan(Date.now() - 60_000);
		const l = await leased(await lease(user.key, id));
		expect((await introspect((l.secret as { access_token: string }).access_token)).active).toBe(
			true,
		);
	});

	it("provider down: a still-valid token is leased; an expired one is 502", async () => {
		const { key } = await userWithKey();
		const id = await storeCredential(key, {
			provider: DOWN,
			type: "oauth2",
			access_token: "at_still_valid",
			refresh_token: "rt_unused",
			access_token_expires_at: new Date(Date.now() + 100_000).toISOString(),
		});
		await age(id, 3500, 100);
		const l = await leased(await lease(key, id, { ttl_seconds: 60 }));
		expect(l.secret).toMatchObject({ access_token: "at_still_valid" });
		const after = await row(id);
		expect(after.refreshFailures).toBe(1);
		expect(after.refreshRetryAt?.getTime()).toBeGreaterThan(Date.now());
		expect(after.status).toBe("active");
		await age(id, 3700, -10);
		await expectError(await lease(key, id), 502, "provider_unavailable");
	});
});

describe("refresh engine (domain level, hooks as barriers)", () => {
	/** Lifetime 120 s, 60 s left: a 20 s lease needs no refresh, a 60 s one does. */
	async function shortLived(provider: string, now: number) {
		const c = await connected(provider);
		await age(c.id, 60, 60, now);
		return c;
	}

	it("an invalidating refresh waits for held leases, and new leases queue behind it", async () => {
		const { services: s, dispose, clock } = clockedServices();
		try {
			const { user, id, held } = await heldInMargin(s, clock.t, INVALIDATING);
			const old = await tokensOf(id);
			expect(held.secret).toMatchObject({ access_token: old.access_token });

			const writerWaits = barrier();
			const refreshing = createLease(s, {
				userId: user.id,
				credentialId: id,
				ttlSeconds: 60,
				hooks: { waitingForHolders: () => writerWaits.open() },
			});
			await writerWaits.promise;
			const readerQueued = barrier();
			const queued = createLease(s, {
				userId: user.id,
				credentialId: id,
				ttlSeconds: 5,
				// Inside the margin it waits on the refresher's lock; outside, on its intent.
				hooks: { waitingForRefresh: () => readerQueued.open() },
			});
			await readerQueued.promise;
			// Nothing reached the provider while the old token is held.
			expect(await refreshAttempts(old.refresh_token ?? "")).toBe(0);

			await releaseLease(s, { userId: user.id, leaseId: held.lease_id });
			const [fresh, afterQueue] = await Promise.all([refreshing, queued]);
			const token = (fresh.secret as { access_token: string }).access_token;
			expect(token).not.toBe(old.access_token);
			expect((afterQueue.secret as { access_token: string }).access_token).toBe(token);
			expect(await refreshAttempts(old.refresh_token ?? "")).toBe(1);
			await expectLive(id);
		} finally {
			await dispose();
		}
	});

	it("a crashed holder (never released) blocks the refresh only until its TTL", async () => {
		const { services: s, dispose, clock } = clockedServices();
		try {
			const { user, id } = await heldInMargin(s, clock.t, INVALIDATING);
			const old = await tokensOf(id);
			const writerWaits = barrier();
			const refreshing = createLease(s, {
				userId: user.id,
				credentialId: id,
				ttlSeconds: 60,
				hooks: { waitingForHolders: () => writerWaits.open() },
			});
			await writerWaits.promise;
			expect(await refreshAttempts(old.refresh_token ?? "")).toBe(0);
			clock.t += 11_000;
			const fresh = await refreshing;
			expect((fresh.secret as { access_token: string }).access_token).not.toBe(old.access_token);
			expect(await refreshAttempts(old.refresh_token ?? "")).toBe(1);
			await expectLive(id);
		} finally {
			await dispose();
		}
	});

	it("a provider that keeps old tokens valid is refreshed without waiting for holders", async () => {
		const { services: s, dispose, clock } = clockedServices();
		try {
			const { user, id } = await shortLived(PLAIN, clock.t);
			const old = await tokensOf(id);
			await createLease(s, { userId: user.id, credentialId: id, ttlSeconds: 20 });
			let waited = false;
			const fresh = await createLease(s, {
				userId: user.id,
				credentialId: id,
				ttlSeconds: 60,
				hooks: { waitingForHolders: () => (waited = true) },
			});
			expect(waited).toBe(false);
			expect((fresh.secret as { access_token: string }).access_token).not.toBe(old.access_token);
			await expectLive(id);
		} finally {
			await dispose();
		}
	});

	it("fencing: a refresh whose row moved on meanwhile never overwrites the newer tokens", async () => {
		const { user, username, id } = await connected(PLAIN);
		let reconnected: Awaited<ReturnType<typeof tokensOf>> | undefined;
		await age(id, 3570, 30);
		const l = await createLease(services, {
			userId: user.id,
			credentialId: id,
			ttlSeconds: 60,
			hooks: {
				// A newer token write lands first: the user reconnects the same account.
				afterProviderCall: async () => {
					expect(await connect(user.key, username, {}, PLAIN)).toBe(id);
					reconnected = await tokensOf(id);
				},
			},
		});
		const stored = await tokensOf(id);
		expect(stored).toEqual(reconnected);
		expect(l.secret).toMatchObject({ access_token: stored.access_token });
		// The fenced answer's refresh token was not written over the reconnect's.
		expect((await introspect(stored.refresh_token ?? "")).active).toBe(true);
	});

	it("a rotated refresh token survives a failed database write (stash) and is recovered", async () => {
		const { user, username, id } = await connected(PLAIN);
		const old = await tokensOf(id);
		const issued = (await ledger(username))["access_token.saved"] ?? 0;
		await age(id, 3570, 30);
		// The database refuses the token write for this row only (a trigger), after the provider
		// has answered and rotated the refresh token.
		const trigger = `lk_test_fail_${id.slice(5).toLowerCase()}`;
		await db.execute(
			sql.raw(
				"create or replace function lk_test_fail_write() returns trigger language plpgsql as $$ begin raise exception 'simulated write failure'; end $$",
			),
		);
		const failed = await createLease(services, {
			userId: user.id,
			credentialId: id,
			ttlSeconds: 60,
			hooks: {
				afterProviderCall: async () => {
					await db.execute(
						sql.raw(
							`create trigger ${trigger} before update on credentials for each row when (old.id = '${id}') execute function lk_test_fail_write()`,
						),
					);
				},
			},
		}).then(
			() => null,
			(err: unknown) => err,
		);
		await db.execute(sql.raw(`drop trigger if exists ${trigger} on credentials`));
		expect(String((failed as Error)?.cause ?? failed)).toContain("simulated write failure");
		expect(await refreshAttempts(old.refresh_token ?? "")).toBe(1);
		// The database still has the old (now rotated away) refresh token.
		expect((await tokensOf(id)).refresh_token).toBe(old.refresh_token);

		const l = await leased(await lease(user.key, id, { ttl_seconds: 60 }));
		const stored = await tokensOf(id);
		expect(stored.refresh_token).not.toBe(old.refresh_token);
		expect((l.secret as { access_token: string }).access_token).toBe(stored.access_token);
		expect((await introspect(stored.refresh_token ?? "")).active).toBe(true);
		// Recovered, not refreshed again: the dead token was presented once, one token issued.
		expect(await refreshAttempts(old.refresh_token ?? "")).toBe(1);
		expect((await ledger(username))["access_token.saved"]).toBe(issued + 1);
	});
});

describe("proactive refresh (scheduled)", () => {
	it("refreshes tokens expiring within 15 minutes, skips backing-off, later and held ones", async () => {
		const user = await userWithKey();
		const soon = await connect(user.key, account("pro"), {}, PLAIN);
		const later = await connect(user.key, account("pro"), {}, PLAIN);
		const backingOff = await connect(user.key, account("pro"), {}, PLAIN);
		const held = await connect(user.key, account("pro"), {}, INVALIDATING);
		await age(soon, 3000, 600);
		await age(later, 60, 3540);
		await age(backingOff, 3300, 300);
		await db
			.update(credentials)
			.set({ refreshRetryAt: new Date(Date.now() + 60_000), refreshFailures: 1 })
			.where(eq(credentials.id, backingOff));
		// Inside its margin (200 s left of 3600) and still held, by a lease granted while its
		// refresh was backing off; the backoff has passed since.
		await age(held, 3400, 200);
		await db
			.update(credentials)
			.set({ refreshRetryAt: new Date(Date.now() + 60_000), refreshFailures: 1 })
			.where(eq(credentials.id, held));
		const lease = await createLease(services, {
			userId: user.id,
			credentialId: held,
			ttlSeconds: 60,
		});
		await db
			.update(credentials)
			.set({ refreshRetryAt: null, refreshFailures: 0 })
			.where(eq(credentials.id, held));
		const before = new Map<string, Awaited<ReturnType<typeof tokensOf>>>();
		for (const id of [soon, later, backingOff, held]) before.set(id, await tokensOf(id));

		const result = await refreshExpiring(services, { userIds: [user.id] });
		expect(result).toMatchObject({ candidates: 2, refreshed: 1, held: 1 });
		// Leaving a held token alone leaves Redis alone too: no writer intent of its own.
		expect(await services.redis.exists(leaseKeys(held).writer)).toBe(0);
		expect((await tokensOf(soon)).access_token).not.toBe(before.get(soon)?.access_token);
		for (const id of [later, backingOff, held]) {
			expect((await tokensOf(id)).access_token).toBe(before.get(id)?.access_token);
			expect(await refreshAttempts(before.get(id)?.refresh_token ?? "")).toBe(0);
		}
		// A deleting user's tokens are left alone: the deletion job revokes them upstream.
		const leaving = await userWithKey();
		const theirs = await connect(leaving.key, account("pro"), {}, PLAIN);
		await age(theirs, 3000, 600);
		await db.execute(sql`update users set status = 'deleting' where id = ${leaving.id}`);
		expect(await refreshExpiring(services, { userIds: [leaving.id] })).toMatchObject({
			candidates: 0,
		});

		// Once the lease is released, the next run refreshes the held one too.
		await releaseLease(services, { userId: user.id, leaseId: lease.lease_id });
		expect(await refreshExpiring(services, { userIds: [user.id] })).toMatchObject({ refreshed: 1 });
		expect((await tokensOf(held)).access_token).not.toBe(before.get(held)?.access_token);
		await expectLive(soon);
		await expectLive(held);
	});
});
