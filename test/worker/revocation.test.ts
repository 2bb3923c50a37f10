import { eq } from "drizzle-orm";
import { decodeJwt } from "jose";
import { describe, expect, it } from "vitest";
import { userAccessRevocations } from "../../src/auth/api-keys.ts";
import { revokeSessionsWhere } from "../../src/auth/sessions.ts";
import { apiKeys, sessions, users } from "../../src/db/schema.ts";
import { admin, createKeyJson, createUser, type TokenPairJson } from "./fixtures.ts";
import { clockedApp, expectError, testDb } from "./helpers.ts";

/**
 * API.md, token exchange: once a session ends, its access tokens are refused (401) at once by
 * every request that writes, mints a key or session, or returns a secret, and by every other
 * request within 10 s. The same bound holds for a revoked key. Time is moved with clockedApp(),
 * never slept.
 */

type Clock = ReturnType<typeof clockedApp>;
type Db = ReturnType<typeof testDb>["db"];

async function setup(clock: Clock) {
	const user = await createUser();
	const key = await createKeyJson(user.id);
	const manager = await createKeyJson(user.id);
	const res = await clock.call("/v1/auth/token", {
		method: "POST",
		json: { grant_type: "api_key", api_key: key.key },
	});
	expect(res.status).toBe(200);
	const pair = (await res.json()) as TokenPairJson;
	// Every request kind works before, and the GET leaves the session in this isolate's cache.
	expect((await clock.call("/v1/me", { token: pair.access_token })).status).toBe(200);
	return { user, key, manager, pair };
}

/** The writes the issue names: mint a key, store a credential, change the user. */
function writes(clock: Clock, token: string) {
	return [
		[
			"POST /v1/api-keys",
			() => clock.call("/v1/api-keys", { method: "POST", token, json: { name: "minted" } }),
		],
		[
			"POST /v1/credentials",
			() =>
				clock.call("/v1/credentials", {
					method: "POST",
					token,
					json: { provider: "p", type: "api_key", api_key: `secret-${crypto.randomUUID()}` },
				}),
		],
		["PATCH /v1/me", () => clock.call("/v1/me", { method: "PATCH", token, json: { name: "x" } })],
	] as const;
}

async function expectRefused(res: Response, label: string) {
	expect(res.status, label).toBe(401);
	expect(res.headers.get("www-authenticate"), label).toBe("Bearer");
	return expectError(res, 401, "unauthorized");
}

async function expectWritesRefused(clock: Clock, token: string, message?: RegExp) {
	for (const [label, send] of writes(clock, token)) {
		const body = await expectRefused(await send(), label);
		if (message) expect(body.error.message, label).toMatch(message);
	}
}

const refreshWith = (clock: Clock, token: string) =>
	clock.call("/v1/auth/token", {
		method: "POST",
		json: { grant_type: "refresh_token", refresh_token: token },
	});

describe("a session that ends stops its access tokens", () => {
	const causes: [string, (clock: Clock, s: Awaited<ReturnType<typeof setup>>) => Promise<void>][] =
		[
			[
				"POST /v1/auth/revoke",
				async (clock, { pair }) => {
					const res = await clock.call("/v1/auth/revoke", {
						method: "POST",
						json: { refresh_token: pair.refresh_token },
					});
					expect(res.status).toBe(200);
				},
			],
			[
				"refresh-token reuse detection",
				async (clock, { pair }) => {
					expect((await refreshWith(clock, pair.refresh_token)).status).toBe(200);
					clock.advance(31);
					await expectError(
						await refreshWith(clock, pair.refresh_token),
						401,
						"refresh_token_reused",
					);
				},
			],
			[
				"revoking its API key",
				async (clock, { key, manager }) => {
					const res = await clock.call(`/v1/api-keys/${key.id}`, {
						method: "DELETE",
						token: manager.key,
					});
					expect(res.status).toBe(204);
				},
			],
			[
				"suspending its user",
				async (clock, { user }) => {
					const res = await clock.call(`/v1/admin/users/${user.id}`, {
						method: "PATCH",
						token: admin(),
						json: { status: "suspended" },
					});
					expect(res.status).toBe(200);
				},
			],
		];

	for (const [cause, end] of causes) {
		it(`${cause}: writes are refused at once, and reads too once this isolate knows`, async () => {
			const clock = clockedApp();
			const s = await setup(clock);
			await end(clock, s);
			await expectWritesRefused(clock, s.pair.access_token);
			// The change was made in this isolate, which dropped its cached verdict: reads stop too.
			await expectRefused(await clock.call("/v1/me", { token: s.pair.access_token }), "GET");
			clock.advance(11);
			await expectRefused(await clock.call("/v1/me", { token: s.pair.access_token }), "GET +11 s");
		});
	}

	it("the messages say why", async () => {
		const clock = clockedApp();
		const revoked = await setup(clock);
		await causes[0]?.[1](clock, revoked);
		await expectWritesRefused(clock, revoked.pair.access_token, /session has been revoked/);
		const suspended = await setup(clock);
		await causes[3]?.[1](clock, suspended);
		await expectWritesRefused(clock, suspended.pair.access_token, /suspended/);
		// The user's API key, which is no session, is still refused as API.md says for users.
		await expectError(
			await clock.call("/v1/me", { token: suspended.key.key }),
			403,
			"user_suspended",
		);
	});
});

describe("revocations made elsewhere (another isolate) reach this one", () => {
	/** Changes the database behind this isolate's back, as another isolate would. */
	async function behindTheCache(run: (db: ReturnType<typeof testDb>["db"]) => Promise<unknown>) {
		const handle = testDb();
		try {
			await run(handle.db);
		} finally {
			await handle.end();
		}
	}

	it("a key revoked directly in the database cannot mint a key, and reads stop within 10 s", async () => {
		const clock = clockedApp();
		const user = await createUser();
		const key = await createKeyJson(user.id);
		expect((await clock.call("/v1/me", { token: key.key })).status).toBe(200); // cached now
		await behindTheCache((db) =>
			db
				.update(apiKeys)
				.set({ revokedAt: new Date(clock.now().getTime() - 1) })
				.where(eq(apiKeys.id, key.id)),
		);
		await expectWritesRefused(clock, key.key, /revoked/);
		// No session can be minted with it either.
		await expectError(
			await clock.call("/v1/auth/token", {
				method: "POST",
				json: { grant_type: "api_key", api_key: key.key },
			}),
			401,
			"invalid_grant",
		);
		clock.advance(11);
		await expectRefused(await clock.call("/v1/me", { token: key.key }), "GET +11 s");
	});

	it("a read may ride the isolate cache within the bound, never past it", async () => {
		const clock = clockedApp();
		const user = await createUser();
		const key = await createKeyJson(user.id);
		expect((await clock.call("/v1/me", { token: key.key })).status).toBe(200);
		await behindTheCache((db) =>
			db
				.update(apiKeys)
				.set({ revokedAt: new Date(clock.now().getTime() - 1) })
				.where(eq(apiKeys.id, key.id)),
		);
		clock.advance(5);
		expect((await clock.call("/v1/me", { token: key.key })).status).toBe(200);
		clock.advance(6);
		await expectRefused(await clock.call("/v1/me", { token: key.key }), "GET +11 s");
	});

	const endings: [string, (db: ReturnType<typeof testDb>["db"], s: Ended) => Promise<unknown>][] = [
		[
			"its session revoked",
			(db, s) =>
				db
					.update(sessions)
					.set({ revokedAt: s.at, revokedReason: "test" })
					.where(eq(sessions.id, s.sid)),
		],
		[
			"its key revoked",
			(db, s) => db.update(apiKeys).set({ revokedAt: s.at }).where(eq(apiKeys.id, s.keyId)),
		],
		[
			"its user suspended",
			(db, s) => db.update(users).set({ status: "suspended" }).where(eq(users.id, s.userId)),
		],
	];
	interface Ended {
		sid: string;
		keyId: string;
		userId: string;
		at: Date;
	}

	for (const [label, change] of endings) {
		it(`an access token whose session ended elsewhere (${label}) is refused by writes at once, by reads within 10 s`, async () => {
			const clock = clockedApp();
			const s = await setup(clock);
			const sid = decodeJwt(s.pair.access_token).sid as string;
			await behindTheCache((db) =>
				change(db, {
					sid,
					keyId: s.key.id,
					userId: s.user.id,
					at: new Date(clock.now().getTime() - 1),
				}),
			);
			await expectWritesRefused(clock, s.pair.access_token);
			clock.advance(11);
			await expectRefused(await clock.call("/v1/me", { token: s.pair.access_token }), "GET +11 s");
		});
	}
});

/** Round trips a response reports in Server-Timing (`pg`: Postgres over HTTP). */
function pgRoundTrips(res: Response): number {
	const m = /(?:^|, )pg;dur=[\d.]+;desc="(\d+) calls?"/.exec(
		res.headers.get("server-timing") ?? "",
	);
	return m ? Number(m[1]) : 0;
}

describe("what the policy costs, in Postgres round trips", () => {
	it("a read with an access token adds none (cached session); a write adds one, key or token", async () => {
		const clock = clockedApp();
		const s = await setup(clock); // its GET /v1/me cached the session
		const read = await clock.call("/v1/me", { token: s.pair.access_token });
		expect(read.status).toBe(200);
		expect(pgRoundTrips(read)).toBe(1); // the route's own query only
		// The key's first use writes last_used_at (at most once a minute): get it out of the way.
		expect((await clock.call("/v1/me", { token: s.key.key })).status).toBe(200);
		for (const token of [s.pair.access_token, s.key.key]) {
			const write = await clock.call("/v1/me", { method: "PATCH", token, json: { name: "y" } });
			expect(write.status).toBe(200);
			expect(pgRoundTrips(write)).toBe(2); // the credential read now, then the update
		}
	});
});

describe("ends that must reach writes and leases at once: deletion and key rolls", () => {
	/** setup(), plus a credential of the user and a lease of it with the session's access token. */
	async function withCredential(clock: Clock) {
		const s = await setup(clock);
		const created = await clock.call("/v1/credentials", {
			method: "POST",
			token: s.key.key,
			json: { provider: "p", type: "api_key", api_key: `secret-${crypto.randomUUID()}` },
		});
		expect(created.status).toBe(201);
		const { id } = (await created.json()) as { id: string };
		const lease = () =>
			clock.call(`/v1/credentials/${id}/leases`, {
				method: "POST",
				token: s.pair.access_token,
				json: { ttl_seconds: 60 },
			});
		expect((await lease()).status).toBe(201);
		return { ...s, lease };
	}
	type WithCredential = Awaited<ReturnType<typeof withCredential>>;

	async function expectSessionDead(clock: Clock, s: WithCredential, message: RegExp) {
		await expectWritesRefused(clock, s.pair.access_token, message);
		const lease = await expectRefused(await s.lease(), "lease");
		expect(lease.error.message).toMatch(message);
		await expectRefused(await clock.call("/v1/me", { token: s.pair.access_token }), "GET");
		await expectError(await refreshWith(clock, s.pair.refresh_token), 401, "invalid_grant");
	}

	const ends: [string, RegExp, (clock: Clock, s: WithCredential) => Promise<Response>, number][] = [
		[
			"DELETE /v1/me",
			/being deleted/,
			(clock, s) => clock.call("/v1/me", { method: "DELETE", token: s.manager.key }),
			202,
		],
		[
			"DELETE /v1/admin/users/{id}",
			/being deleted/,
			(clock, s) =>
				clock.call(`/v1/admin/users/${s.user.id}`, { method: "DELETE", token: admin() }),
			202,
		],
		[
			"rolling its key with grace 0",
			/API key/,
			(clock, s) =>
				clock.call(`/v1/api-keys/${s.key.id}/roll`, {
					method: "POST",
					token: s.manager.key,
					json: { grace_seconds: 0 },
				}),
			201,
		],
	];

	for (const [label, message, end, status] of ends) {
		it(`${label}: the session's access token is refused at once by writes and leases`, async () => {
			const clock = clockedApp();
			const s = await withCredential(clock);
			expect((await end(clock, s)).status).toBe(status);
			await expectSessionDead(clock, s, message);
		});
	}

	it("rolling its key with a grace: its sessions act through the grace and die at its end", async () => {
		const clock = clockedApp();
		const s = await withCredential(clock);
		const rolled = await clock.call(`/v1/api-keys/${s.key.id}/roll`, {
			method: "POST",
			token: s.manager.key,
			json: { grace_seconds: 60 },
		});
		expect(rolled.status).toBe(201);
		const token = s.pair.access_token;
		clock.advance(59);
		const write = await clock.call("/v1/me", { method: "PATCH", token, json: { name: "grace" } });
		expect(write.status).toBe(200);
		expect((await s.lease()).status).toBe(201);
		clock.advance(1);
		await expectSessionDead(clock, s, /API key/);
		// The key that replaced it starts sessions as usual.
		const next = (await rolled.json()) as { key: string };
		const exchanged = await clock.call("/v1/auth/token", {
			method: "POST",
			json: { grant_type: "api_key", api_key: next.key },
		});
		expect(exchanged.status).toBe(200);
	});
	/**
	 * The same ends made by another isolate, straight in the database: this isolate's cache
	 * still holds the session as good, so only a fresh read can refuse the write and the lease.
	 */
	const elsewhere: [string, RegExp, (db: Db, s: WithCredential, at: Date) => Promise<unknown>][] = [
		[
			"its user deleted",
			/being deleted/,
			(db, s, at) =>
				db.batch([
					db.update(users).set({ status: "deleting" }).where(eq(users.id, s.user.id)),
					...userAccessRevocations(db, s.user.id, at),
				]),
		],
		[
			"its key rolled with grace 0",
			/API key/,
			(db, s, at) =>
				db.batch([
					db.update(apiKeys).set({ revokedAt: at }).where(eq(apiKeys.id, s.key.id)),
					revokeSessionsWhere(db, eq(sessions.apiKeyId, s.key.id), at, "key_rolled"),
				]),
		],
		[
			"its key's roll grace run out",
			/API key/,
			(db, s, at) => db.update(apiKeys).set({ expiresAt: at }).where(eq(apiKeys.id, s.key.id)),
		],
	];

	for (const [label, message, change] of elsewhere) {
		it(`${label} in another isolate: writes and leases are refused at once, past this isolate's cache`, async () => {
			const clock = clockedApp();
			const s = await withCredential(clock);
			const handle = testDb();
			try {
				await change(handle.db, s, new Date(clock.now().getTime() - 1));
			} finally {
				await handle.end();
			}
			// Proof that the cache still says yes: a read rides it.
			expect((await clock.call("/v1/me", { token: s.pair.access_token })).status).toBe(200);
			// The lease first: what a fresh check reads refreshes the cache, so after it the writes
			// below would find the session ended in the cache too.
			const lease = await expectRefused(await s.lease(), "lease");
			expect(lease.error.message).toMatch(message);
			await expectWritesRefused(clock, s.pair.access_token, message);
		});
	}
});
