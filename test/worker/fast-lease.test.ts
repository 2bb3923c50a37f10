import { eq } from "drizzle-orm";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { BatchedCheck } from "../../src/db/client.ts";
import { users } from "../../src/db/schema.ts";
import { LatchkeyError } from "../../src/errors.ts";
import {
	createLease,
	forgetLeaseHints,
	LEASE_HINTS,
	type Lease,
	type LeaseHooks,
	releaseLease,
} from "../../src/leases/service.ts";
import { leaseKeys, rateKey } from "../../src/leases/store.ts";
import type { Services } from "../../src/services.ts";
import { userWithKey } from "./fixtures.ts";
import { call, expectError } from "./helpers.ts";
import {
	accessTokenOf,
	age,
	barrier,
	clockedServices,
	connected,
	db,
	lease,
	leased,
	leaseTestProviders,
	storeCredential,
	tokensOf,
} from "./lease-helpers.ts";

/**
 * The fast path (docs/leases.md, "The fast path"): with what the isolate last leased of a
 * credential, the provisional grant goes to Redis beside the row read. Each invariant is raced
 * with the path's own barriers (after the read, before the grant) and checked against the real
 * Redis: the refused caller gets nothing and leaves nothing, a grant planned from an older token
 * is retracted or refused as stale, a racing deletion wins, and the request's own provisional
 * grant never holds up the refresh it falls back to.
 */

const PLAIN = "fast-idp";
const INVALIDATING = "fast-idp-inv";
const DOWN = "fast-idp-down";
const env = leaseTestProviders({ plain: PLAIN, invalidating: INVALIDATING, down: DOWN });
let services: Services;
beforeAll(() => {
	services = env.services;
});
beforeEach(() => forgetLeaseHints());

// Clocked services of each test, closed after it.
const opened: (() => Promise<void>)[] = [];
afterEach(async () => {
	await Promise.all(opened.splice(0).map((dispose) => dispose()));
});
function clocked(options: Parameters<typeof clockedServices>[0] = {}) {
	const built = clockedServices(options);
	opened.push(built.dispose);
	return built;
}

/** The caller's fresh check as the auth middleware batches it: here, the user must be active. */
function userCheck(userId: string): BatchedCheck {
	return {
		query: db.select({ status: users.status }).from(users).where(eq(users.id, userId)).limit(1),
		assert(rows) {
			if ((rows as { status: string }[])[0]?.status !== "active") {
				throw new LatchkeyError("unauthorized", "The user is not active.");
			}
		},
	};
}

/** Hooks that count fast-path attempts, plus any barriers the test adds. */
function counted(extra: LeaseHooks = {}) {
	const seen = { fast: 0 };
	const hooks: LeaseHooks = {
		...extra,
		beforeFastGrant: async () => {
			seen.fast++;
			await extra.beforeFastGrant?.();
		},
	};
	return { hooks, seen };
}

const holders = (s: Services, id: string) => s.redis.zcard(leaseKeys(id).holders);
const bucket = async (s: Services, principal: string) =>
	Number(await s.redis.hget(rateKey(principal), "k"));

async function apiKeyCredential() {
	const user = await userWithKey();
	const id = await storeCredential(user.key, {
		type: "api_key",
		provider: "fast-vendor",
		title: "fast",
		api_key: "first-key-value",
	});
	return { user, id };
}

const directLease = (
	s: Services,
	userId: string,
	credentialId: string,
	extra: { hooks?: LeaseHooks; liveCheck?: BatchedCheck; principal?: string } = {},
): Promise<Lease> =>
	createLease(s, {
		userId,
		credentialId,
		ttlSeconds: 60,
		liveCheck: extra.liveCheck ?? userCheck(userId),
		...(extra.hooks ? { hooks: extra.hooks } : {}),
		...(extra.principal ? { principal: extra.principal } : {}),
	});

describe("the fast path", () => {
	it("sends the grant without waiting for the row read, and still costs one Postgres and one Redis round trip", async () => {
		const { user, id } = await apiKeyCredential();
		await directLease(services, user.id, id);
		// The read is held until the provisional grant has answered: were the grant sent after the
		// read, neither would ever finish (the test times out).
		const granted = barrier();
		let heldDuringRead = 0;
		const { hooks, seen } = counted({
			afterFastGrant: () => granted.open(),
			afterFastRead: async () => {
				await granted.promise;
				heldDuringRead = await holders(services, id);
			},
		});
		const l = await directLease(services, user.id, id, { hooks });
		expect(heldDuringRead).toBe(2);
		expect(seen.fast).toBe(1);
		expect((l.secret as { api_key: string }).api_key).toBe("first-key-value");

		// Over HTTP, a lease after the first: one statement batch, one Redis script.
		await leased(await lease(user.key, id));
		const res = await lease(user.key, id);
		expect(res.status).toBe(201);
		const timing = res.headers.get("server-timing") ?? "";
		expect(timing).toMatch(/(^|, )pg;dur=[\d.]+;desc="1 call"/);
		expect(timing).toMatch(/(^|, )redis;dur=[\d.]+;desc="1 call"/);
	});

	it("gives a refused caller nothing and leaves nothing: no lease recorded, no rate spent", async () => {
		const { user, id } = await apiKeyCredential();
		const principal = `user:${user.id}`;
		// A clock that stands still: the rate bucket refills by it, so its count is exact.
		const { services: s } = clocked();
		await directLease(s, user.id, id);
		const before = { holders: await holders(s, id), bucket: await bucket(s, principal) };
		await db.update(users).set({ status: "suspended" }).where(eq(users.id, user.id));
		// The request waits for both its read (refused) and its grant: the grant did land.
		let heldAfterGrant = 0;
		const { hooks, seen } = counted({
			afterFastGrant: async () => {
				heldAfterGrant = await holders(s, id);
			},
		});
		const err = await directLease(s, user.id, id, { hooks }).then(
			() => null,
			(e: unknown) => e,
		);
		expect(seen.fast).toBe(1);
		expect(heldAfterGrant).toBe(before.holders + 1);
		expect(err).toBeInstanceOf(LatchkeyError);
		expect((err as LatchkeyError).code).toBe("unauthorized");
		expect(await holders(s, id)).toBe(before.holders);
		expect(await bucket(s, principal)).toBe(before.bucket);
	});

	it("retracts a grant planned from an older token and leases the stored one, with its own limits", async () => {
		const { user, id } = await apiKeyCredential();
		const principal = `user:${user.id}`;
		const { services: s } = clocked();
		const first = await directLease(s, user.id, id);
		const patched = await call(`/v1/credentials/${id}`, {
			method: "PATCH",
			token: user.key,
			json: {
				api_key: "second-key-value",
				expires_at: new Date(Date.now() + 30_000).toISOString(),
			},
		});
		expect(patched.status).toBe(200);
		const before = await bucket(s, principal);
		const { hooks, seen } = counted();
		const l = await directLease(s, user.id, id, { hooks });
		expect(seen.fast).toBe(1);
		expect((l.secret as { api_key: string }).api_key).toBe("second-key-value");
		// Cut to the new secret's expiry, which the hint knew nothing of.
		expect(Date.parse(l.expires_at)).toBeLessThanOrEqual(Date.now() + 30_000);
		// The first lease and this one: the provisional grant is gone, and its rate token is back
		// (this lease spent exactly one).
		expect(await holders(s, id)).toBe(2);
		expect(await bucket(s, principal)).toBe(before - 1);
		const record = await s.redis.hget<string>(leaseKeys(id).lease(l.lease_id), "t");
		expect(Number(record)).toBe(Date.parse(l.expires_at));
		await releaseLease(s, { userId: user.id, leaseId: first.lease_id });
	});

	it("never hands out a token older than Redis's generation: a refresh committed between read and grant wins", async () => {
		const c = await connected(PLAIN);
		const { services: s, clock } = clocked();
		const first = await directLease(s, c.user.id, c.id);
		await releaseLease(s, { userId: c.user.id, leaseId: first.lease_id });
		const read = barrier();
		let refreshed = "";
		const { hooks, seen } = counted({
			afterFastRead: () => read.open(),
			beforeFastGrant: async () => {
				// The row (version n) has been read; now a refresh writes version n+1 and commits it.
				await read.promise;
				await age(c.id, 3500, 10, clock.t);
				forgetLeaseHints();
				refreshed = accessTokenOf(await directLease(s, c.user.id, c.id));
			},
		});
		const l = await directLease(s, c.user.id, c.id, { hooks });
		expect(seen.fast).toBe(1);
		expect(refreshed).not.toBe(accessTokenOf(first));
		expect(accessTokenOf(l)).toBe(refreshed);
		expect(accessTokenOf(l)).toBe((await tokensOf(s, c.id)).access_token);
	});

	it("loses to a deletion that lands between its read and its grant", async () => {
		const { user, id } = await apiKeyCredential();
		await directLease(services, user.id, id);
		const read = barrier();
		const { hooks } = counted({
			afterFastRead: () => read.open(),
			beforeFastGrant: async () => {
				await read.promise;
				expect(
					(await call(`/v1/credentials/${id}`, { method: "DELETE", token: user.key })).status,
				).toBe(200);
			},
		});
		const err = await directLease(services, user.id, id, { hooks }).then(
			() => null,
			(e: unknown) => e,
		);
		expect(err, String(err)).toBeInstanceOf(LatchkeyError);
		expect((err as LatchkeyError).code).toBe("not_found");
		expect(await services.redis.exists(leaseKeys(id).holders)).toBe(0);
		await expectError(await lease(user.key, id), 404, "not_found");
	});

	it("retracts its provisional grant before the refresh it falls back to waits for holders", async () => {
		// An invalidating provider's refresh waits for every lease of the old token: were the
		// provisional grant left in place, the request would wait on itself until its lease ended.
		const c = await connected(INVALIDATING);
		const { services: s, clock } = clocked();
		const first = await directLease(s, c.user.id, c.id);
		await releaseLease(s, { userId: c.user.id, leaseId: first.lease_id });
		await age(c.id, 3500, 20, clock.t);
		const { hooks, seen } = counted({ waitingForHolders: (n) => expect(n).toBe(0) });
		const l = await directLease(s, c.user.id, c.id, { hooks });
		expect(seen.fast).toBe(1);
		expect(accessTokenOf(l)).not.toBe(accessTokenOf(first));
		expect(await holders(s, c.id)).toBe(1);
	});

	it("is off with LATCHKEY_LEASE_FAST_PATH=off: every lease reads the row first", async () => {
		const { user, id } = await apiKeyCredential();
		const { services: s } = clocked({ env: { LATCHKEY_LEASE_FAST_PATH: "off" } });
		await directLease(s, user.id, id);
		const serial = counted();
		await directLease(s, user.id, id, { hooks: serial.hooks });
		expect(serial.seen.fast).toBe(0);
	});

	it("plans nothing from a hint older than its bound: the row is read first", async () => {
		const { user, id } = await apiKeyCredential();
		const { services: s, clock } = clocked();
		await directLease(s, user.id, id);
		const fresh = counted();
		await directLease(s, user.id, id, { hooks: fresh.hooks });
		expect(fresh.seen.fast).toBe(1);
		clock.t += LEASE_HINTS.maxAgeMs + 1;
		const stale = counted();
		await directLease(s, user.id, id, { hooks: stale.hooks });
		expect(stale.seen.fast).toBe(0);
	});
});
