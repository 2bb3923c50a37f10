import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { credentials } from "../../src/db/schema.ts";
import { recoverStashes, refreshExpiring } from "../../src/leases/proactive.ts";
import { ensureFresh, type OAuthRow } from "../../src/leases/refresh.ts";
import { createLease, releaseLease, renewLease } from "../../src/leases/service.ts";
import { LeaseStore, leaseKeys, STASH_INDEX } from "../../src/leases/store.ts";
import type { Services } from "../../src/services.ts";
import { admin, userWithKey } from "./fixtures.ts";
import { call, expectError, failWrites } from "./helpers.ts";
import {
	accessTokenOf,
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
	recordingLogger,
	rowOf,
	storeCredential,
	tokensOf,
} from "./lease-helpers.ts";
import { connect, ledger, refreshAttempts } from "./oauth-helpers.ts";

/**
 * The refresh engine's invariants (docs/leases.md, "Invariants"), each raced with barriers
 * (the engine's hooks) and injected faults (a trigger that fails a row's write, a transport
 * that loses a reply), against oidc-provider with refresh-token rotation on, real Postgres and
 * real Redis. Providers of their own, so other files' registrations cannot change them mid-test.
 */

const PLAIN = "engine-idp";
const INVALIDATING = "engine-idp-inv";
const DOWN = "engine-idp-down";

const env = leaseTestProviders({ plain: PLAIN, invalidating: INVALIDATING, down: DOWN });
// Read at call time: the services exist from beforeAll on.
let services: Services;
beforeAll(() => {
	services = env.services;
});

const tokens = (id: string) => tokensOf(services, id);

/** Makes the database writes of this credential's row fail (a row-scoped trigger). */
const failWritesOf = (id: string) =>
	failWrites(db, "credentials", "update", `old.id = '${id}'`, `cred_${id.slice(5)}`);

/**
 * A transport fault at the network edge: requests whose body matches either fail outright or
 * reach Redis and lose their reply (the REST client then retries them).
 */
function faultyRedis(match: (body: string) => boolean, mode: "fail" | "lose-reply", times = 1) {
	const real = globalThis.fetch;
	let fired = 0;
	globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
		const body = typeof init?.body === "string" ? init.body : "";
		if (fired < times && match(body)) {
			fired++;
			if (mode === "lose-reply") await (await real(input, init)).arrayBuffer();
			throw new TypeError("Network connection lost.");
		}
		return real(input, init);
	}) as typeof fetch;
	return {
		get fired() {
			return fired;
		},
		restore: () => {
			globalThis.fetch = real;
		},
	};
}

/** The stash's write (not its read): a SET of the stash key. */
const stashWrite = (body: string) =>
	body.includes(":stash") && body.toLowerCase().includes('"set"');

async function patch(key: string, id: string, json: Record<string, unknown>) {
	const res = await call(`/v1/credentials/${id}`, { method: "PATCH", token: key, json });
	expect(res.status).toBe(200);
}

type Connected = Awaited<ReturnType<typeof connected>>;

/**
 * A credential whose token is aged into its refresh margin, then leased: `during` runs once the
 * provider has answered (and rotated the refresh token), before the database write. Resolves
 * with the lease, or the error the lease failed with.
 */
async function raceRefresh(during: (c: Connected) => unknown) {
	const c = await connected(PLAIN);
	const before = await tokens(c.id);
	await age(c.id, 3570, 30);
	const outcome = await createLease(services, {
		userId: c.user.id,
		credentialId: c.id,
		ttlSeconds: 60,
		hooks: {
			afterProviderCall: async () => {
				await during(c);
			},
		},
	}).then(
		(lease) => ({ lease, error: undefined }),
		(error: unknown) => ({ lease: undefined, error }),
	);
	return { ...c, before, ...outcome };
}

describe("a token write fences a refresh; nothing else does", () => {
	it("a title and metadata edit racing a refresh: the lease carries the new token, the next refresh succeeds", async () => {
		// The provider has rotated the refresh token; the user renames the credential.
		const {
			user,
			id,
			before,
			lease: l,
		} = await raceRefresh(({ user, id }) =>
			patch(user.key, id, { title: "Renamed", metadata: { team: "a" } }),
		);
		if (!l) throw new Error("the lease failed");
		const stored = await tokens(id);
		expect(accessTokenOf(l)).not.toBe(before.access_token);
		expect(accessTokenOf(l)).toBe(stored.access_token);
		expect(stored.refresh_token).not.toBe(before.refresh_token);
		const after = await rowOf(services, id);
		expect(after.title).toBe("Renamed");
		expect(after.metadata).toEqual({ team: "a" });
		await expectLiveRefreshToken(services, id);

		// And the next refresh is accepted by the provider (the stored refresh token is its live one).
		await age(id, 3570, 30);
		const next = await leased(await lease(user.key, id, { ttl_seconds: 60 }));
		expect(accessTokenOf(next)).not.toBe(accessTokenOf(l));
		expect(await refreshAttempts(stored.refresh_token ?? "")).toBe(1);
		expect((await rowOf(services, id)).status).toBe("active");
		await expectLiveRefreshToken(services, id);
	});

	it("the ETag still moves with the title edit and the refresh (version semantics kept)", async () => {
		let v0 = 0;
		const { id } = await raceRefresh(async ({ user, id }) => {
			v0 = (await rowOf(services, id)).version;
			await patch(user.key, id, { title: "Again" });
		});
		// One for the edit, one for the refresh: a client's If-Match from before either is stale.
		expect((await rowOf(services, id)).version).toBe(v0 + 2);
	});

	it("a reconnect racing a refresh wins: the refresh's answer is not written over it", async () => {
		// A newer token write: the user reconnects the same account meanwhile.
		let reconnected: Awaited<ReturnType<typeof tokens>> | undefined;
		const { id, lease: l } = await raceRefresh(async ({ user, username, id }) => {
			expect(await connect(user.key, username, {}, PLAIN)).toBe(id);
			reconnected = await tokens(id);
		});
		if (!l) throw new Error("the lease failed");
		const stored = await tokens(id);
		// Exactly the reconnect's tokens, stored and leased: the refresh's answer went nowhere.
		expect(stored).toEqual(reconnected);
		expect(accessTokenOf(l)).toBe(stored.access_token);
		await expectLiveRefreshToken(services, id);
	});
});

describe("a write of the access token alone during a refresh", () => {
	it("keeps the user's access token and carries the rotated refresh token over", async () => {
		// The user stores an access token while the provider has just rotated the refresh token.
		const {
			id,
			before,
			lease: l,
		} = await raceRefresh(({ user, id }) =>
			patch(user.key, id, { access_token: "at_from_the_user" }),
		);
		if (!l) throw new Error("the lease failed");
		const stored = await tokens(id);
		expect(stored.access_token).toBe("at_from_the_user");
		expect(accessTokenOf(l)).toBe("at_from_the_user");
		expect(stored.refresh_token).not.toBe(before.refresh_token);
		await expectLiveRefreshToken(services, id);
	});
});

describe("the stash is a safety net, never a gate", () => {
	it("a stash that cannot be written does not stop the database write", async () => {
		const { user, id } = await connected(PLAIN);
		const before = await tokens(id);
		await age(id, 3570, 30);
		const fault = faultyRedis(stashWrite, "fail", 10);
		let l: Awaited<ReturnType<typeof createLease>>;
		try {
			l = await createLease(services, { userId: user.id, credentialId: id, ttlSeconds: 60 });
		} finally {
			fault.restore();
		}
		expect(fault.fired).toBeGreaterThan(0);
		const stored = await tokens(id);
		expect(stored.refresh_token).not.toBe(before.refresh_token);
		expect(accessTokenOf(l)).toBe(stored.access_token);
		await expectLiveRefreshToken(services, id);
	});

	it("when neither the stash nor the database takes the tokens, it says so loudly", async () => {
		const { user, id } = await connected(PLAIN);
		await age(id, 3570, 30);
		const { logger, lines } = recordingLogger();
		const s = clockedServices({ logger });
		const fault = faultyRedis(stashWrite, "fail", 10);
		const restore = await failWritesOf(id);
		try {
			await expect(
				createLease(s.services, { userId: user.id, credentialId: id, ttlSeconds: 60 }),
			).rejects.toBeTruthy();
		} finally {
			fault.restore();
			await restore();
			await s.dispose();
		}
		const loud = lines.find((l) => l.level === "error" && l.msg.includes("at risk"));
		expect(loud?.fields?.credential_id).toBe(id);
		// Names, never the tokens.
		expect(JSON.stringify(lines)).not.toMatch(/access_token"?:|refresh_token"?:/);
	});

	it("the scheduled worker writes a stash back with no lease at all", async () => {
		let restore: (() => Promise<unknown>) | undefined;
		const {
			username,
			id,
			before,
			error: failed,
		} = await raceRefresh(async ({ id }) => {
			restore = await failWritesOf(id);
		});
		const issued = ((await ledger(username))["access_token.saved"] ?? 0) - 1;
		await restore?.();
		expect(failed).toBeTruthy();
		expect((await tokens(id)).refresh_token).toBe(before.refresh_token);
		expect(await services.redis.zscore(STASH_INDEX, id)).not.toBeNull();

		// The scheduled job (another file's cron run may get there first: the index is global).
		await recoverStashes(services, { batch: 1000 });
		const stored = await tokens(id);
		expect(stored.refresh_token).not.toBe(before.refresh_token);
		await expectLiveRefreshToken(services, id);
		// Written back, not refreshed again; the index and the stash are gone.
		expect(await refreshAttempts(before.refresh_token ?? "")).toBe(1);
		expect((await ledger(username))["access_token.saved"]).toBe(issued + 1);
		expect(await services.redis.exists(leaseKeys(id).stash)).toBe(0);
		expect(await services.redis.zscore(STASH_INDEX, id)).toBeNull();
	});

	it("a recovered access token that has expired since is refreshed, not leased as fresh", async () => {
		let restore: (() => Promise<unknown>) | undefined;
		const { user, username, id, before } = await raceRefresh(async ({ id }) => {
			restore = await failWritesOf(id);
		});
		await restore?.();
		const issued = (await ledger(username))["access_token.saved"] ?? 0;
		// Two hours later: the stashed token (an hour's life) has expired.
		const s = clockedServices();
		s.clock.t += 2 * 3600_000;
		try {
			const l = await createLease(s.services, {
				userId: user.id,
				credentialId: id,
				ttlSeconds: 60,
			});
			const row = await rowOf(services, id);
			expect(row.accessTokenExpiresAt?.getTime()).toBeGreaterThan(s.clock.t);
			expect(new Date(l.token_expires_at ?? 0).getTime()).toBeGreaterThan(s.clock.t);
			// The recovered refresh token was used once, for a new token.
			expect((await ledger(username))["access_token.saved"]).toBe(issued + 1);
			expect(await refreshAttempts(before.refresh_token ?? "")).toBe(1);
		} finally {
			await s.dispose();
		}
		await expectLiveRefreshToken(services, id);
	});
});

describe("a lost lock cannot discard valid tokens", () => {
	it("a refresher whose lock lapsed writes its tokens over reconnect_required set by the rotated-away token", async () => {
		let second: unknown;
		const {
			id,
			before,
			lease: first,
		} = await raceRefresh(async ({ user, id }) => {
			// A stall longer than the lock's lease: the lock lapses, another request takes it and
			// presents the refresh token this refresh has just rotated away.
			await services.redis.del(leaseKeys(id).lock);
			second = await createLease(services, {
				userId: user.id,
				credentialId: id,
				ttlSeconds: 60,
			}).catch((err: unknown) => err);
		});
		if (!first) throw new Error("the lease failed");
		expect((second as { code?: string }).code).toBe("reconnect_required");
		expect(await refreshAttempts(before.refresh_token ?? "")).toBe(2);
		const row = await rowOf(services, id);
		const stored = await tokens(id);
		// The only copy of the new tokens was kept, and the credential works again.
		expect(row.status).toBe("active");
		expect(stored.access_token).toBe(accessTokenOf(first));
		expect(stored.refresh_token).not.toBe(before.refresh_token);
		// (oidc-provider revokes the whole grant when a rotated-away token comes back, so their
		// liveness upstream is that provider's choice; the vault's job was not to drop them.)
	});
});

describe("writer priority cannot be abused", () => {
	/** A system credential of the invalidating provider: 600 s left of a 3600 s token. */
	async function sharedInvalidating() {
		const c = await connected(INVALIDATING);
		const secret = await tokens(c.id);
		const res = await call("/v1/admin/system-credentials", {
			method: "POST",
			token: admin(),
			json: {
				provider: INVALIDATING,
				type: "oauth2",
				access_token: secret.access_token,
				refresh_token: secret.refresh_token,
				access_token_expires_at: new Date(Date.now() + 600_000).toISOString(),
			},
		});
		expect(res.status).toBe(201);
		const { id } = (await res.json()) as { id: string };
		await age(id, 3000, 600);
		return id;
	}

	it("a long-TTL lease by one user of a shared credential makes no other user wait", async () => {
		const id = await sharedInvalidating();
		const [a, b] = [await userWithKey(), await userWithKey()];
		const waited: string[] = [];
		const hooks = (who: string) => ({
			waitingForHolders: () => waited.push(`${who} waited for holders`),
			waitingForRefresh: () => waited.push(`${who} waited for a refresh`),
		});
		const bFirst = await createLease(services, {
			userId: b.id,
			credentialId: id,
			ttlSeconds: 60,
			hooks: hooks("b"),
		});
		const aLong = await createLease(services, {
			userId: a.id,
			credentialId: id,
			ttlSeconds: 900,
			hooks: hooks("a"),
		});
		const bAgain = await createLease(services, {
			userId: b.id,
			credentialId: id,
			ttlSeconds: 60,
			hooks: hooks("b"),
		});
		expect(waited).toEqual([]);
		// Nobody refreshed: A's TTL did not start a refresh; its lease ends where the margin begins.
		expect(accessTokenOf(aLong)).toBe(accessTokenOf(bFirst));
		expect(accessTokenOf(bAgain)).toBe(accessTokenOf(bFirst));
		const row = await rowOf(services, id);
		const marginStart = (row.accessTokenExpiresAt?.getTime() ?? 0) - 300_000;
		expect(new Date(aLong.expires_at).getTime()).toBeLessThanOrEqual(marginStart);
		expect(aLong.token_expires_at).toBe(row.accessTokenExpiresAt?.toISOString());
		expect(await services.redis.exists(leaseKeys(id).writer)).toBe(0);
	});

	it("when the margin comes, the refresh waits for nobody: every lease has ended", async () => {
		const id = await sharedInvalidating();
		const [a, b] = [await userWithKey(), await userWithKey()];
		const s = clockedServices();
		try {
			const long = await createLease(s.services, {
				userId: a.id,
				credentialId: id,
				ttlSeconds: 900,
			});
			s.clock.t = new Date(long.expires_at).getTime() + 1_000;
			let waited = false;
			const fresh = await createLease(s.services, {
				userId: b.id,
				credentialId: id,
				ttlSeconds: 60,
				hooks: { waitingForHolders: () => (waited = true) },
			});
			expect(waited).toBe(false);
			expect(accessTokenOf(fresh)).not.toBe(accessTokenOf(long));
		} finally {
			await s.dispose();
		}
		await expectLiveRefreshToken(services, id);
	});

	/** A lease request that gave up waiting for holders: 503 refresh_pending, its intent left. */
	async function abandonedIntent(s: Services, row: OAuthRow) {
		const err = await ensureFresh(s, row, {
			ttlMs: 60_000,
			invalidates: true,
			deadline: performance.now() + 50,
			waitForHolders: true,
		}).catch((e: unknown) => e);
		expect((err as { code?: string }).code).toBe("refresh_pending");
		expect((err as { retryAfter?: number }).retryAfter).toBeGreaterThan(0);
	}

	it("refresh_pending leaves the intent in place; renewals are refused and new leases queue behind it", async () => {
		const s = clockedServices();
		try {
			const { user, id, held } = await heldInMargin(s.services, s.clock.t, INVALIDATING);
			await abandonedIntent(s.services, await rowOf(services, id));
			const intent = await services.redis.get<string>(leaseKeys(id).writer);
			expect(intent).toBeTruthy();
			await expect(
				renewLease(s.services, { userId: user.id, leaseId: held.lease_id, ttlSeconds: 5 }),
			).rejects.toMatchObject({ code: "token_expiring" });
			// A grant is refused while it stands.
			const grant = await new LeaseStore(services.redis).grant({
				credentialId: id,
				leaseId: `${held.lease_id.slice(0, 27)}Qqqqqqqqqqqqqqqqqqqqqqqq`,
				userId: user.id,
				principal: `user:${user.id}`,
				now: s.clock.t,
				leaseEnd: s.clock.t + 5_000,
				tokenLimit: null,
				tokenVersion: (await rowOf(services, id)).tokenVersion,
				rate: { burst: 0, perSecond: 1 },
				maxLeases: 100,
			});
			expect(grant.outcome).toBe("queued");
		} finally {
			await s.dispose();
		}
	});

	it("the proactive refresh never erases another request's intent", async () => {
		const s = clockedServices();
		try {
			const { user, id } = await heldInMargin(s.services, s.clock.t, INVALIDATING);
			await abandonedIntent(s.services, await rowOf(services, id));
			const intent = await services.redis.get<string>(leaseKeys(id).writer);
			const result = await refreshExpiring(s.services, { userIds: [user.id] });
			expect(result).toMatchObject({ held: 1, refreshed: 0 });
			expect(await services.redis.get<string>(leaseKeys(id).writer)).toBe(intent);
		} finally {
			await s.dispose();
		}
	});

	it("the intent outlives a slow refresh: it is extended while the provider is called", async () => {
		const s = clockedServices();
		try {
			const { user, id, held } = await heldInMargin(s.services, s.clock.t, INVALIDATING);
			await releaseLease(s.services, { userId: user.id, leaseId: held.lease_id });
			const atCall = barrier();
			const proceed = barrier();
			const refreshing = createLease(s.services, {
				userId: user.id,
				credentialId: id,
				ttlSeconds: 5,
				hooks: {
					beforeProviderCall: async () => {
						atCall.open();
						await proceed.promise;
					},
				},
			});
			await atCall.promise;
			const key = leaseKeys(id).writer;
			expect(await services.redis.exists(key)).toBe(1);
			// Shortened below the slack (as time spent calling a slow provider would): the heartbeat,
			// every 5 s, must bring it back up while the call runs.
			await services.redis.pexpire(key, 8_000);
			const deadline = performance.now() + 7_000;
			while ((await services.redis.pttl(key)) <= 8_000 && performance.now() < deadline) {
				await new Promise((r) => setTimeout(r, 100));
			}
			expect(await services.redis.pttl(key)).toBeGreaterThan(8_000);
			proceed.open();
			await refreshing;
			expect(await services.redis.exists(key)).toBe(0);
		} finally {
			await s.dispose();
		}
	}, 15_000);
});

describe("Redis calls that are retried after a lost reply", () => {
	it("a lock acquisition whose reply was lost does not wait on its own lock", async () => {
		const { user, id } = await connected(PLAIN);
		await age(id, 3570, 30);
		const lock = leaseKeys(id).lock;
		const fault = faultyRedis(
			(b) => b.includes(lock) && b.toLowerCase().includes('"nx"'),
			"lose-reply",
		);
		let waited = false;
		try {
			const l = await createLease(services, {
				userId: user.id,
				credentialId: id,
				ttlSeconds: 60,
				hooks: { waitingForRefresh: () => (waited = true) },
			});
			expect(accessTokenOf(l)).toBe((await tokens(id)).access_token);
		} finally {
			fault.restore();
		}
		expect(fault.fired).toBe(1);
		expect(waited).toBe(false);
		await expectLiveRefreshToken(services, id);
	});

	it("a release whose reply was lost is still a success, not 410", async () => {
		const { user } = await connected(PLAIN);
		const id = await storeCredential(user.key, {
			provider: "svc",
			type: "api_key",
			api_key: "k_release_retry",
		});
		const l = await createLease(services, { userId: user.id, credentialId: id, ttlSeconds: 60 });
		// Redis knows the release script (EVALSHA would otherwise answer NOSCRIPT, a no-op to lose).
		const warm = await createLease(services, { userId: user.id, credentialId: id, ttlSeconds: 60 });
		await releaseLease(services, { userId: user.id, leaseId: warm.lease_id });
		const fault = faultyRedis((b) => b.includes(l.lease_id), "lose-reply");
		try {
			await releaseLease(services, { userId: user.id, leaseId: l.lease_id });
		} finally {
			fault.restore();
		}
		expect(fault.fired).toBe(1);
		// A second, separate release is 410: the lease is gone.
		await expect(
			releaseLease(services, { userId: user.id, leaseId: l.lease_id }),
		).rejects.toMatchObject({ code: "lease_gone" });
	});

	it("a grant whose reply was lost records one lease and charges the rate once", async () => {
		const user = await userWithKey();
		const { key } = user;
		const id = await storeCredential(key, {
			provider: "svc",
			type: "api_key",
			api_key: "k_grant_retry",
		});
		// A still clock: the bucket does not refill between the calls, so every charge shows.
		const s = clockedServices();
		// Redis knows the grant script (EVALSHA would otherwise answer NOSCRIPT, a no-op to lose).
		const warm = await createLease(s.services, {
			userId: user.id,
			credentialId: id,
			ttlSeconds: 60,
		});
		await releaseLease(s.services, { userId: user.id, leaseId: warm.lease_id });
		const fault = faultyRedis(
			(b) => b.includes(leaseKeys(id).holders) && b.includes('"evalsha"'),
			"lose-reply",
		);
		try {
			await createLease(s.services, { userId: user.id, credentialId: id, ttlSeconds: 60 });
		} finally {
			fault.restore();
			await s.dispose();
		}
		expect(fault.fired).toBe(1);
		expect(await services.redis.zcard(leaseKeys(id).holders)).toBe(1);
		// Two leases charged (the warm-up and this one), not three.
		const bucket = await services.redis.hget<string>(`lk:lease:rate:user:${user.id}`, "k");
		expect(Number(bucket)).toBe(498);
	});
});

describe("refresh failures", () => {
	it("Redis down on the refresh path: 503, no provider call, no failure counted", async () => {
		const { user, id } = await connected(PLAIN);
		const before = await tokens(id);
		await age(id, 3570, 30);
		const res = await lease(
			user.key,
			id,
			{ ttl_seconds: 60 },
			{
				UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9",
			},
		);
		await expectError(res, 503, "dependency_unavailable");
		expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
		expect(await refreshAttempts(before.refresh_token ?? "")).toBe(0);
		const row = await rowOf(services, id);
		expect(row.refreshFailures).toBe(0);
		expect(row.refreshRetryAt).toBeNull();
	});

	it("backoff is observable: one failure recorded, no second provider call before refresh_retry_at", async () => {
		const { key } = await userWithKey();
		const res = await call("/v1/credentials", {
			method: "POST",
			token: key,
			json: {
				provider: DOWN,
				type: "oauth2",
				access_token: "at_backoff",
				refresh_token: "rt_backoff",
				access_token_expires_at: new Date(Date.now() + 100_000).toISOString(),
			},
		});
		expect(res.status).toBe(201);
		const { id } = (await res.json()) as { id: string };
		const user = { key };
		await age(id, 3500, 100);
		await leased(await lease(user.key, id, { ttl_seconds: 60 }));
		const first = await rowOf(services, id);
		expect(first.refreshFailures).toBe(1);
		expect(first.refreshRetryAt?.getTime()).toBeGreaterThan(Date.now());
		await leased(await lease(user.key, id, { ttl_seconds: 60 }));
		const second = await rowOf(services, id);
		// Had the provider been called again, a second failure would be on the row.
		expect(second.refreshFailures).toBe(1);
		expect(second.refreshRetryAt?.getTime()).toBe(first.refreshRetryAt?.getTime());
	});

	it("an expired token without a refresh token turns reconnect_required", async () => {
		const { key } = await userWithKey();
		const res = await call("/v1/credentials", {
			method: "POST",
			token: key,
			json: {
				provider: PLAIN,
				type: "oauth2",
				access_token: "at_no_refresh",
				access_token_expires_at: new Date(Date.now() + 60_000).toISOString(),
			},
		});
		expect(res.status).toBe(201);
		const { id } = (await res.json()) as { id: string };
		await age(id, 3700, -10);
		await expectError(await lease(key, id), 409, "reconnect_required");
		expect((await rowOf(services, id)).status).toBe("reconnect_required");
	});

	it("an api_key past its expires_at is 409", async () => {
		const { key } = await userWithKey();
		const res = await call("/v1/credentials", {
			method: "POST",
			token: key,
			json: {
				provider: "svc",
				type: "api_key",
				api_key: "k_expiring",
				expires_at: new Date(Date.now() + 60_000).toISOString(),
			},
		});
		const { id } = (await res.json()) as { id: string };
		await leased(await lease(key, id));
		await db
			.update(credentials)
			.set({ accessTokenExpiresAt: new Date(Date.now() - 1000) })
			.where(eq(credentials.id, id));
		const body = await expectError(await lease(key, id), 409, "conflict");
		expect(body.error.message).toContain("expired");
	});
});

describe("stash index and superseded intents", () => {
	it("forgetting a stash's index entry spares one that a newer stash re-indexed meanwhile", async () => {
		const store = new LeaseStore(services.redis);
		const id = `cred_${"i".repeat(16)}${Math.random().toString(36).slice(2, 6).padEnd(4, "0")}`;
		await store.stash(id, 1, "sealed-1", 1_000, 60_000);
		const [seen] = (await store.pendingStashes(10_000)).filter((p) => p.credentialId === id);
		expect(seen?.indexedAt).toBe(1_000);
		// The cron saw the entry; before it forgets it, a newer refresh stashes again.
		await store.stash(id, 2, "sealed-2", 2_000, 60_000);
		await store.unindexStash(id, 1_000);
		expect(await services.redis.zscore(STASH_INDEX, id)).toBe(2_000);
		await store.unindexStash(id, 2_000);
		expect(await services.redis.zscore(STASH_INDEX, id)).toBeNull();
		await store.dropStash(id, -1);
	});

	it("a refresh whose token version was superseded announces nothing and calls no provider", async () => {
		const s = clockedServices();
		try {
			const { id } = await heldInMargin(s.services, s.clock.t, INVALIDATING);
			const row = await rowOf(services, id);
			const presented = (await tokens(id)).refresh_token ?? "";
			// Newer tokens were committed meanwhile (a refresher whose lock this one outlived).
			await new LeaseStore(services.redis).commitWrite(id, row.tokenVersion + 1);
			const outcome = await ensureFresh(s.services, row, {
				ttlMs: 5_000,
				invalidates: true,
				deadline: performance.now() + 2_000,
				waitForHolders: true,
			});
			expect(outcome.kind).toBe("fresh");
			expect(await services.redis.exists(leaseKeys(id).writer)).toBe(0);
			expect(await refreshAttempts(presented)).toBe(0);
		} finally {
			await s.dispose();
		}
	});
});

describe("the lease generation fence", () => {
	const grantAt = (store: LeaseStore, id: string, userId: string, tokenVersion: number) =>
		store.grant({
			credentialId: id,
			leaseId: `lease_${id.slice(5)}_${"x".repeat(20)}${Math.random().toString(36).slice(2, 6).padEnd(4, "0")}`,
			userId,
			principal: `user:${userId}`,
			now: Date.now(),
			leaseEnd: Date.now() + 60_000,
			tokenLimit: null,
			tokenVersion,
			rate: { burst: 0, perSecond: 1 },
			maxLeases: 100,
		});

	it("a grant for a token older than the last refresh wrote is stale; after deletion, every grant is", async () => {
		const { user, id } = await connected(PLAIN);
		const read = await rowOf(services, id);
		await age(id, 3570, 30);
		await createLease(services, { userId: user.id, credentialId: id, ttlSeconds: 60 });
		const store = new LeaseStore(services.redis);
		// A request that read the row before that refresh and grants after it.
		expect((await grantAt(store, id, user.id, read.tokenVersion)).outcome).toBe("stale");
		const now = await rowOf(services, id);
		expect((await grantAt(store, id, user.id, now.tokenVersion)).outcome).toBe("ok");
		const del = await call(`/v1/credentials/${id}`, { method: "DELETE", token: user.key });
		expect(del.status).toBe(200);
		expect((await grantAt(store, id, user.id, now.tokenVersion)).outcome).toBe("stale");
	});
});

describe("bounded by design", () => {
	it("a lease burst beyond the key's rate is 429 rate_limited with Retry-After", async () => {
		const { key } = await userWithKey();
		const id = await storeCredential(key, { provider: "svc", type: "api_key", api_key: "k_rate" });
		const env = { LATCHKEY_LEASE_BURST: "5", LATCHKEY_LEASE_RATE_PER_SECOND: "1" };
		const results = await Promise.all(Array.from({ length: 8 }, () => lease(key, id, {}, env)));
		const statuses = results.map((r) => r.status).sort();
		expect(statuses.filter((s) => s === 201)).toHaveLength(5);
		const refused = results.filter((r) => r.status === 429);
		expect(refused).toHaveLength(3);
		const body = await expectError(refused[0] as Response, 429, "rate_limited");
		expect(body.error.hint).toContain("LATCHKEY_LEASE_BURST");
		expect(Number(refused[0]?.headers.get("retry-after"))).toBeGreaterThan(0);
		// Another key is not touched by this one's limit.
		const other = await userWithKey();
		const theirs = await call("/v1/credentials", {
			method: "POST",
			token: other.key,
			json: { provider: "svc", type: "api_key", api_key: "k_rate_2" },
		});
		const otherId = ((await theirs.json()) as { id: string }).id;
		expect((await lease(other.key, otherId, {}, env)).status).toBe(201);
	});

	it("the defaults admit a burst of 500 leases from one key", async () => {
		const { key } = await userWithKey();
		const id = await storeCredential(key, { provider: "svc", type: "api_key", api_key: "k_herd" });
		const results = await Promise.all(Array.from({ length: 500 }, () => lease(key, id)));
		const failed = results.filter((r) => r.status !== 201).map((r) => r.status);
		expect(failed).toEqual([]);
	}, 60_000);

	it("live leases per credential are capped; the 429 names the limit", async () => {
		const { key } = await userWithKey();
		const id = await storeCredential(key, { provider: "svc", type: "api_key", api_key: "k_cap" });
		const env = { LATCHKEY_MAX_LEASES_PER_CREDENTIAL: "3" };
		const held = [];
		for (let i = 0; i < 3; i++) held.push(await leased(await lease(key, id, {}, env)));
		const full = await lease(key, id, {}, env);
		const body = await expectError(full, 429, "rate_limited");
		expect(body.error.hint).toContain("LATCHKEY_MAX_LEASES_PER_CREDENTIAL");
		expect(Number(full.headers.get("retry-after"))).toBeGreaterThan(0);
		const release = await call(`/v1/leases/${held[0]?.lease_id}`, { method: "DELETE", token: key });
		expect(release.status).toBe(204);
		expect((await lease(key, id, {}, env)).status).toBe(201);
	});

	it("lease bookkeeping is gone within minutes of a lease's end", async () => {
		const user = await userWithKey();
		const { key } = user;
		const id = await storeCredential(key, {
			provider: "svc",
			type: "api_key",
			api_key: "k_bookkeeping",
		});
		const k = leaseKeys(id);
		const l = await leased(await lease(key, id, { ttl_seconds: 60 }));
		const record = k.lease(l.lease_id);
		// Live: kept for its end plus five minutes, no longer.
		expect(await services.redis.pttl(record)).toBeLessThanOrEqual(60_000 + 300_000);
		expect(await services.redis.pttl(k.holders)).toBeLessThanOrEqual(60_000 + 60_000);
		await releaseLease(services, { userId: user.id, leaseId: l.lease_id });
		// Released: five minutes, for the 410.
		expect(await services.redis.pttl(record)).toBeLessThanOrEqual(300_000);
		expect(await services.redis.zcard(k.holders)).toBe(0);
	});

	it("pruning ended holders does bounded work per call", async () => {
		const user = await userWithKey();
		const { key } = user;
		const id = await storeCredential(key, { provider: "svc", type: "api_key", api_key: "k_prune" });
		const s = clockedServices({ env: { LATCHKEY_LEASE_BURST: "0" } });
		try {
			for (let i = 0; i < 100; i++) {
				await createLease(s.services, { userId: user.id, credentialId: id, ttlSeconds: 1 });
			}
			s.clock.t += 5_000;
			await createLease(s.services, { userId: user.id, credentialId: id, ttlSeconds: 60 });
			// 64 ended ones removed by that call, the rest by the next ones, never all at once.
			expect(await services.redis.zcard(leaseKeys(id).holders)).toBe(100 - 64 + 1);
			await createLease(s.services, { userId: user.id, credentialId: id, ttlSeconds: 60 });
			expect(await services.redis.zcard(leaseKeys(id).holders)).toBe(2);
		} finally {
			await s.dispose();
		}
	});

	it("renew never shortens a lease unless ttl_seconds asks for it", async () => {
		const { key } = await userWithKey();
		const id = await storeCredential(key, { provider: "svc", type: "api_key", api_key: "k_renew" });
		const l = await leased(await lease(key, id, { ttl_seconds: 600 }));
		const renew = (body?: unknown) =>
			call(`/v1/leases/${l.lease_id}/renew`, {
				method: "POST",
				token: key,
				...(body === undefined ? {} : { json: body }),
			});
		for (const body of [undefined, {}]) {
			const r = await renew(body);
			expect(r.status).toBe(200);
			const { expires_at } = (await r.json()) as { expires_at: string };
			expect(new Date(expires_at).getTime()).toBeGreaterThanOrEqual(
				new Date(l.expires_at).getTime(),
			);
		}
		const shorter = await renew({ ttl_seconds: 30 });
		const { expires_at } = (await shorter.json()) as { expires_at: string };
		expect(new Date(expires_at).getTime()).toBeLessThan(Date.now() + 31_000);
	});
});

describe("proactive refresh is fair and purposeful", () => {
	/** `n` connected credentials of one user, expiring in 100 s, 110 s, … (within the horizon). */
	async function expiring(n: number, firstInS: number) {
		const user = await userWithKey();
		const ids: string[] = [];
		for (let i = 0; i < n; i++) {
			const id = await connect(user.key, `pro-${crypto.randomUUID().slice(0, 8)}`, {}, PLAIN);
			await age(id, 3500, firstInS + i * 10);
			ids.push(id);
		}
		return { user, ids };
	}

	it("one user's credentials cannot take every slot of a run", async () => {
		const a = await expiring(5, 100);
		const b = await expiring(1, 600);
		const s = clockedServices({ env: { LATCHKEY_PROACTIVE_REFRESH_PER_USER: "2" } });
		try {
			// Three slots: soonest first alone would give all three to A.
			const result = await refreshExpiring(s.services, {
				userIds: [a.user.id, b.user.id],
				batch: 3,
			});
			expect(result).toMatchObject({ candidates: 3, refreshed: 3 });
			const bRow = await rowOf(services, b.ids[0] as string);
			expect(bRow.accessTokenExpiresAt?.getTime()).toBeGreaterThan(Date.now() + 3000_000);
			await expectLiveRefreshToken(services, b.ids[0] as string);
		} finally {
			await s.dispose();
		}
	});

	it("tokens without a configured client, reconnect_required ones and idle ones are not candidates", async () => {
		const user = await userWithKey();
		// A built-in provider with no client set (no environment client in the tests).
		const res = await call("/v1/credentials", {
			method: "POST",
			token: user.key,
			json: {
				provider: "github",
				type: "oauth2",
				access_token: "gho_noclient",
				refresh_token: "ghr_noclient",
				access_token_expires_at: new Date(Date.now() + 300_000).toISOString(),
			},
		});
		expect(res.status).toBe(201);
		const noClient = ((await res.json()) as { id: string }).id;
		await age(noClient, 3300, 300);
		const dead = await connect(user.key, account("dead"), {}, PLAIN);
		await age(dead, 3300, 300);
		await db
			.update(credentials)
			.set({ status: "reconnect_required" })
			.where(eq(credentials.id, dead));
		const idle = await connect(user.key, account("idle"), {}, PLAIN);
		await age(idle, 3300, 300);
		const eightDaysAgo = new Date(Date.now() - 8 * 86_400_000);
		await db
			.update(credentials)
			.set({ createdAt: eightDaysAgo, lastUsedAt: eightDaysAgo })
			.where(eq(credentials.id, idle));
		const used = await connect(user.key, account("used"), {}, PLAIN);
		await age(used, 3300, 300);
		await db
			.update(credentials)
			.set({ createdAt: eightDaysAgo, lastUsedAt: new Date(Date.now() - 3600_000) })
			.where(eq(credentials.id, used));
		const result = await refreshExpiring(services, { userIds: [user.id] });
		// Only the one leased lately; nothing failed on the client-less one.
		expect(result).toMatchObject({ candidates: 1, refreshed: 1, failed: 0 });
		expect((await rowOf(services, idle)).tokenVersion).toBe(1);
		expect((await rowOf(services, used)).tokenVersion).toBe(2);
		await expectLiveRefreshToken(services, used);
	});
});
