import { and, asc, eq, sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import {
	type AuditRecord,
	canonicalBody,
	canonicalDetail,
	chainHash,
	GENESIS_HASH,
} from "../../src/audit/events.ts";
import {
	drainPendingAudit,
	PENDING_KEY,
	parseRecord,
	pruneAudit,
	serializeRecord,
	writeAuditRecords,
	writeRecord,
} from "../../src/audit/store.ts";
import { recordOf, verifyAudit } from "../../src/audit/verify.ts";
import { loadConfig } from "../../src/config.ts";
import { newId } from "../../src/crypto/encoding.ts";
import {
	type AuditEventRow,
	auditChainHeads,
	auditEvents,
	managedProvisionings,
} from "../../src/db/schema.ts";
import { runDeletionWork } from "../../src/jobs/deletion.ts";
import { auditWriteBackJob, runJobs } from "../../src/jobs/index.ts";
import { createLogger, type Logger } from "../../src/log.ts";
import type { ManagedProvider } from "../../src/managed/provider.ts";
import { createServices, type Services } from "../../src/services.ts";
import { Timing } from "../../src/timing.ts";
import { admin, createKeyJson, exchange, userWithKey } from "./fixtures.ts";
import { call, expect4xxShape, expectError, failWrites, testDb, testEnv } from "./helpers.ts";
import { age, connected, recordingLogger, registerProviders, tokensOf } from "./lease-helpers.ts";
import { connect, providerBody, putProvider, revokeAtProvider } from "./oauth-helpers.ts";

/** Postgres round trips of a lease whose refresh the provider refuses, audit write excluded. */
const REFUSED_REFRESH_PG_CALLS = 4;

const { db, end } = testDb();
const disposers: (() => Promise<void>)[] = [];
afterAll(async () => {
	await Promise.all(disposers.map((d) => d()));
	await end();
});

function servicesWith(env: Record<string, string> = {}, logger: Logger = createLogger("error")) {
	const built = createServices(loadConfig({ ...testEnv, ...env }), logger, new Timing());
	disposers.push(built.dispose);
	return built.services;
}
const services = servicesWith();

interface EventJson {
	id: string;
	at: string;
	action: string;
	outcome: string;
	principal: {
		method: string;
		user_id: string | null;
		key_id: string | null;
		session_id: string | null;
	};
	target: { type: string; id: string } | null;
	user_id: string | null;
	ip: string | null;
	request_id: string | null;
	detail: Record<string, unknown>;
}

interface Page {
	data: EventJson[];
	next_cursor: string | null;
}

/** Every event the token may see under `query`, following the cursor. */
async function allEvents(token: string, query = ""): Promise<EventJson[]> {
	const out: EventJson[] = [];
	let cursor: string | null = null;
	do {
		const q = new URLSearchParams(query);
		q.set("limit", "100");
		if (cursor) q.set("cursor", cursor);
		const res = await call(`/v1/audit?${q}`, { token });
		expect(res.status).toBe(200);
		const page = (await res.json()) as Page;
		out.push(...page.data);
		cursor = page.next_cursor;
	} while (cursor);
	return out;
}

async function newCredential(key: string, secret = `audit_secret_${newId("x")}`): Promise<string> {
	const res = await call("/v1/credentials", {
		method: "POST",
		token: key,
		json: { provider: "audited", type: "api_key", api_key: secret },
	});
	expect(res.status).toBe(201);
	return ((await res.json()) as { id: string }).id;
}

const lease = (id: string, token: string, ip?: string) =>
	call(`/v1/credentials/${id}/leases`, { method: "POST", token, ...(ip ? { ip } : {}) });

async function verify(range: { since?: string; until?: string } = {}) {
	const res = await call("/v1/admin/audit/verify", {
		method: "POST",
		token: admin(),
		json: range,
	});
	expect(res.status).toBe(200);
	return (await res.json()) as {
		ok: boolean;
		chains: number;
		events: number;
		retention_cutoff: string | null;
		break: null | { chain: string; seq: number; event_id: string | null; reason: string };
	};
}

const today = () => new Date().toISOString().slice(0, 10);

// Chain tests write into days of their own, far from any other test's clock, one day each.
let dayCounter = 0;
const base = Date.parse("2095-01-01T00:00:00Z") + Math.floor(Math.random() * 1000) * 86_400_000;
const ownDay = () => new Date(base + dayCounter++ * 86_400_000).toISOString().slice(0, 10);

function record(at: Date, overrides: Partial<AuditRecord> = {}): AuditRecord {
	return {
		id: newId("aud"),
		at,
		action: "credential.updated",
		outcome: "success",
		userId: "usr_audittest000000000",
		actor: {
			method: "api_key",
			userId: "usr_audittest000000000",
			keyId: "k0000000000a",
			sessionId: null,
		},
		targetType: "credential",
		targetId: "cred_audittest00000000",
		ip: "10.1.2.3",
		requestId: `req_${newId("t")}`,
		detail: canonicalDetail({ fields: ["title"], secret_changed: false }),
		...overrides,
	};
}

/** `n` events written one after another into chain `<day>/0`; its rows in seq order. */
async function writeChain(day: string, n: number): Promise<AuditEventRow[]> {
	for (let i = 0; i < n; i++) {
		const at = new Date(`${day}T00:00:${String(i).padStart(2, "0")}.000Z`);
		expect(await writeRecord(services.db, record(at), () => 0)).toBe("written");
	}
	return chainRows(`${day}/0`);
}

function chainRows(chain: string): Promise<AuditEventRow[]> {
	return db
		.select()
		.from(auditEvents)
		.where(eq(auditEvents.chain, chain))
		.orderBy(asc(auditEvents.seq));
}

/** Makes every insert of an audit row about `targetId` fail, until the returned function runs. */
const failAuditWritesAbout = (targetId: string) =>
	failWrites(
		db,
		"audit_events",
		"insert",
		`new.target_id = '${targetId}'`,
		`audit_${targetId.slice(5)}`,
	);

describe("audit log: what is recorded", () => {
	it("a lease's grant is written after the response, with no round trip of its own, and names who, what, whence", async () => {
		const user = await userWithKey();
		const id = await newCredential(user.key);
		expect((await lease(id, user.key)).status).toBe(201); // warms the isolate's caches
		const res = await lease(id, user.key, "10.9.8.7");
		expect(res.status).toBe(201);
		const leased = (await res.json()) as { lease_id: string };
		// The lease's own round trip only: the event's write came after the response.
		expect(res.headers.get("server-timing")).toMatch(/(?:^|, )pg;dur=[\d.]+;desc="1 call"/);

		const events = await allEvents(user.key, `action=lease.granted&target=credential:${id}`);
		const event = events.find((e) => e.detail.lease_id === leased.lease_id);
		expect(event).toMatchObject({
			action: "lease.granted",
			outcome: "success",
			principal: { method: "api_key", user_id: user.id, session_id: null },
			target: { type: "credential", id },
			user_id: user.id,
			ip: "10.9.8.7",
			request_id: res.headers.get("x-request-id"),
		});
		expect(event?.principal.key_id).toMatch(/^[0-9A-Za-z]{12}$/);
		expect(events).toHaveLength(2);
	});

	it("a refresh the provider refuses answers 409 before its reconnect_required event is written", async () => {
		const provider = `audit-idp-${newId("p").slice(2, 10).toLowerCase()}`;
		await registerProviders([[provider, {}]]);
		const { user, id } = await connected(provider);
		await revokeAtProvider((await tokensOf(services, id)).refresh_token);
		await age(id, 3570, 30);
		const res = await lease(id, user.key);
		await expectError(res, 409, "reconnect_required");
		// The request's own statements only (read, fresh check, the status change); the event's
		// insert ran after the response, under a Timing of its own.
		const calls = Number(
			/pg;dur=[\d.]+;desc="(\d+) calls?"/.exec(res.headers.get("server-timing") ?? "")?.[1],
		);
		expect(calls).toBe(REFUSED_REFRESH_PG_CALLS);
		// `call` waits for the request's waitUntil work: the event is there now, once.
		const events = await allEvents(
			user.key,
			`action=credential.reconnect_required&target=credential:${id}`,
		);
		expect(events).toHaveLength(1);
		expect(events[0]?.detail).toMatchObject({ provider, reason: "invalid_grant" });
	});

	it("a token that expired with no refresh token, leased by 20 at once: one reconnect_required event", async () => {
		const user = await userWithKey();
		const res = await call("/v1/credentials", {
			method: "POST",
			token: user.key,
			json: {
				provider: "github",
				type: "oauth2",
				access_token: `gho_${newId("t")}`,
				access_token_expires_at: new Date(Date.now() + 1000).toISOString(),
			},
		});
		expect(res.status).toBe(201);
		const id = ((await res.json()) as { id: string }).id;
		await age(id, 3600, -60);
		const answers = await Promise.all(Array.from({ length: 20 }, () => lease(id, user.key)));
		expect(answers.map((r) => r.status)).toEqual(Array(20).fill(409));
		const events = await allEvents(
			user.key,
			`action=credential.reconnect_required&target=credential:${id}`,
		);
		expect(events).toHaveLength(1);
	});

	it("every lease of a burst of 100 has exactly one lease.granted event once the deferred writes settle", async () => {
		const user = await userWithKey();
		const id = await newCredential(user.key);
		const responses = await Promise.all(Array.from({ length: 100 }, () => lease(id, user.key)));
		expect(responses.map((r) => r.status)).toEqual(Array(100).fill(201));
		const leaseIds = await Promise.all(
			responses.map(async (r) => ((await r.json()) as { lease_id: string }).lease_id),
		);
		// `call` waits for each request's waitUntil work: every deferred write has settled.
		const events = await allEvents(user.key, `action=lease.granted&target=credential:${id}`);
		const perLease = new Map<unknown, number>();
		for (const e of events)
			perLease.set(e.detail.lease_id, (perLease.get(e.detail.lease_id) ?? 0) + 1);
		expect(events).toHaveLength(100);
		expect([...perLease.keys()].sort()).toEqual([...leaseIds].sort());
		expect([...perLease.values()].every((n) => n === 1)).toBe(true);
		// Written concurrently into today's chains, which still verify (other files write there too).
		expect(await verify({ since: today(), until: today() })).toMatchObject({
			ok: true,
			break: null,
		});
	});

	it("a refused lease is recorded with its error code; a refusal before authentication is not", async () => {
		const owner = await userWithKey();
		const other = await userWithKey();
		const readOnly = await createKeyJson(other.id, { scopes: ["credentials:read"] });
		const id = await newCredential(owner.key);

		await expectError(await lease(id, other.key), 404, "not_found");
		await expectError(await lease(id, readOnly.key), 403, "insufficient_scope");
		await expectError(await lease(id, "lk_not_a_key"), 401, "unauthorized");

		const refused = await allEvents(other.key, "action=lease.refused");
		expect(refused.map((e) => [e.outcome, e.detail.code, e.principal.key_id]).sort()).toEqual(
			[
				["denied", "insufficient_scope", readOnly.id],
				["denied", "not_found", expect.any(String)],
			].sort(),
		);
		expect(refused.every((e) => e.target?.id === id && e.user_id === other.id)).toBe(true);
		// The owner's view holds nothing of the other user's attempts.
		expect(await allEvents(owner.key, "action=lease.refused")).toEqual([]);
	});

	it("renewals and releases, credential, key, session and account changes are recorded, never a secret", async () => {
		const secret = `planted_${newId("s")}`;
		const user = await userWithKey();
		const id = await newCredential(user.key, secret);
		const leased = (await (await lease(id, user.key)).json()) as { lease_id: string };
		expect(
			(await call(`/v1/leases/${leased.lease_id}/renew`, { method: "POST", token: user.key }))
				.status,
		).toBe(200);
		expect(
			(await call(`/v1/leases/${leased.lease_id}`, { method: "DELETE", token: user.key })).status,
		).toBe(204);
		expect(
			(
				await call(`/v1/credentials/${id}`, {
					method: "PATCH",
					token: user.key,
					json: { title: "renamed", api_key: `${secret}_2` },
				})
			).status,
		).toBe(200);

		const made = await call("/v1/api-keys", {
			method: "POST",
			token: user.key,
			json: { name: "second" },
		});
		const second = (await made.json()) as { id: string; key: string };
		const rolled = await call(`/v1/api-keys/${second.id}/roll`, {
			method: "POST",
			token: user.key,
		});
		const third = (await rolled.json()) as { id: string };
		expect(
			(await call(`/v1/api-keys/${third.id}`, { method: "DELETE", token: user.key })).status,
		).toBe(204);

		// Refresh twice, then present the first refresh token again: its successor was used, so
		// this is reuse, and the session is revoked.
		const refresh = (token: string) =>
			call("/v1/auth/token", {
				method: "POST",
				json: { grant_type: "refresh_token", refresh_token: token },
			});
		const pair = await exchange(user.key);
		const next = (await (await refresh(pair.refresh_token)).json()) as { refresh_token: string };
		expect((await refresh(next.refresh_token)).status).toBe(200);
		await expectError(await refresh(pair.refresh_token), 401, "refresh_token_reused");
		const other = await exchange(user.key);
		const revoked = await call("/v1/auth/revoke", {
			method: "POST",
			json: { refresh_token: other.refresh_token },
		});
		expect(revoked.status).toBe(200);
		expect(
			(await call(`/v1/credentials/${id}`, { method: "DELETE", token: user.key })).status,
		).toBe(200);
		const suspended = await call(`/v1/admin/users/${user.id}`, {
			method: "PATCH",
			token: admin(),
			json: { status: "suspended" },
		});
		expect(suspended.status).toBe(200);

		// The user is suspended now: the admin reads the user's events.
		const events = await allEvents(admin(), `user_id=${user.id}`);
		const actions = events.map((e) => e.action);
		for (const action of [
			"user.created",
			"api_key.created",
			"credential.created",
			"lease.granted",
			"lease.renewed",
			"lease.released",
			"credential.updated",
			"api_key.rolled",
			"api_key.revoked",
			"session.refresh_token_reused",
			"session.revoked",
			"credential.deleted",
			"user.suspended",
		]) {
			expect(actions, action).toContain(action);
		}
		const updated = events.find((e) => e.action === "credential.updated");
		expect(updated?.detail).toMatchObject({ fields: ["api_key", "title"], secret_changed: true });
		const reuse = events.find((e) => e.action === "session.refresh_token_reused");
		expect(reuse).toMatchObject({
			outcome: "denied",
			principal: { method: "refresh_token", user_id: user.id },
		});
		expect(reuse?.target?.id).toBe(reuse?.principal.session_id);
		const roll = events.find((e) => e.action === "api_key.rolled");
		expect(roll).toMatchObject({ target: { id: third.id }, detail: { rolled_from: second.id } });
		const suspension = events.find((e) => e.action === "user.suspended");
		expect(suspension).toMatchObject({
			principal: { method: "admin", user_id: null },
			user_id: user.id,
		});
		expect(events.find((e) => e.action === "lease.released")?.detail.credential_id).toBe(id);

		const text = JSON.stringify(events);
		for (const planted of [secret, second.key, pair.refresh_token, pair.access_token]) {
			expect(text).not.toContain(planted);
		}
		// And not in the stored rows either.
		const stored = await db.select().from(auditEvents).where(eq(auditEvents.userId, user.id));
		expect(JSON.stringify(stored)).not.toContain(secret);
	});

	it("OAuth provider changes and connected accounts are recorded; the client secret never is", async () => {
		const provider = `testidp-audit-${Math.random().toString(36).slice(2, 8)}`;
		const body = providerBody();
		const put = await putProvider(provider, body);
		expect(put.status).toBe(200);
		const changes = await allEvents(admin(), `target=provider:${provider}`);
		expect(changes).toHaveLength(1);
		expect(changes[0]).toMatchObject({
			action: "provider.updated",
			principal: { method: "admin" },
			user_id: null,
			detail: { kind: "oauth" },
		});
		expect(changes[0]?.detail.fields).toContain("client_secret");
		expect(JSON.stringify(changes)).not.toContain(String(body.client_secret));

		const user = await userWithKey();
		const id = await connect(
			user.key,
			`audit-${Math.random().toString(36).slice(2, 8)}`,
			{},
			provider,
		);
		const connected = await allEvents(user.key, `target=credential:${id}`);
		expect(connected).toMatchObject([
			{
				action: "credential.created",
				user_id: user.id,
				detail: { provider, type: "oauth2", via: "oauth_connect" },
			},
		]);
		// Nobody but the admin sees provider changes.
		expect(await allEvents(user.key, `target=provider:${provider}`)).toEqual([]);
	});

	it("deprovisioning outcomes and the purge are recorded by the scheduled work", async () => {
		const noDelay = servicesWith({ LATCHKEY_PURGE_DELAY_SECONDS: "0" });
		const user = await userWithKey();
		await db.insert(managedProvisionings).values({
			userId: user.id,
			provider: "audit-stub",
			status: "done",
			clientId: `stub-${user.id}`,
			resources: { thing_id: "t1" },
			updatedAt: new Date(Date.now() - 3600_000),
		});
		const res = await call(`/v1/admin/users/${user.id}`, { method: "DELETE", token: admin() });
		expect(res.status).toBe(202);
		const provider = {
			id: "audit-stub",
			name: "audit-stub",
			clientIdFor: (userId: string) => `stub-${userId}`,
			available: () => true,
			provision: () => Promise.reject(new Error("not used")),
			deprovision: async () => ({ status: "deleted" as const }),
		} as unknown as ManagedProvider;
		const find = async (_s: Services, id: string) => (id === "audit-stub" ? provider : undefined);
		expect(await runDeletionWork(noDelay, find, { userIds: [user.id] })).toMatchObject({
			done: 1,
			purged_users: 1,
		});
		const events = await allEvents(admin(), `user_id=${user.id}`);
		expect(events.find((e) => e.action === "deprovision.succeeded")).toMatchObject({
			principal: { method: "system" },
			target: { type: "job" },
			detail: { kind: "deprovision_managed", provider: "audit-stub", attempts: 1 },
		});
		expect(events.find((e) => e.action === "user.purged")).toMatchObject({
			target: { type: "user", id: user.id },
		});
		expect(events.map((e) => e.action)).toContain("user.deletion_requested");
	});
});

describe("audit log: reading it", () => {
	it("a user sees only events about themselves; another user's event is absent through every filter", async () => {
		const a = await userWithKey();
		const b = await userWithKey();
		const aCred = await newCredential(a.key);
		const bCred = await newCredential(b.key);
		expect((await lease(aCred, a.key)).status).toBe(201);
		expect((await lease(bCred, b.key)).status).toBe(201);

		const seenByA = await allEvents(a.key);
		const seenByB = await allEvents(b.key);
		expect(seenByA.length).toBeGreaterThanOrEqual(4); // user, key, credential, lease
		expect(seenByA.every((e) => e.user_id === a.id)).toBe(true);
		const bIds = new Set(seenByB.map((e) => e.id));
		expect(seenByA.some((e) => bIds.has(e.id))).toBe(false);

		const bLease = seenByB.find((e) => e.action === "lease.granted");
		expect(bLease).toBeDefined();
		for (const query of [
			`target=credential:${bCred}`,
			"target=credential",
			`action=lease.granted&target=credential:${bCred}`,
			`user_id=${b.id}`,
			`since=${encodeURIComponent(bLease?.at ?? "")}`,
		]) {
			const page = await allEvents(a.key, query);
			expect(
				page.map((e) => e.id),
				query,
			).not.toContain(bLease?.id);
			expect(
				page.every((e) => e.user_id === a.id),
				query,
			).toBe(true);
		}
		expect(await allEvents(a.key, `user_id=${b.id}`)).toEqual([]);
		// The admin sees both.
		const all = await allEvents(admin(), `target=credential:${bCred}`);
		expect(all.map((e) => e.id)).toContain(bLease?.id);
	});

	it("filters by action, target and time, pages newest first with the cursor", async () => {
		const user = await userWithKey();
		const id = await newCredential(user.key);
		for (let i = 0; i < 5; i++) expect((await lease(id, user.key)).status).toBe(201);
		const granted = await allEvents(user.key, `action=lease.granted&target=credential:${id}`);
		expect(granted).toHaveLength(5);
		const times = granted.map((e) => `${e.at}|${e.id}`);
		expect(times).toEqual([...times].sort().reverse());

		const first = await call(`/v1/audit?action=lease.granted&target=credential:${id}&limit=2`, {
			token: user.key,
		});
		const page = (await first.json()) as Page;
		expect(page.data.map((e) => e.id)).toEqual(granted.slice(0, 2).map((e) => e.id));
		expect(page.next_cursor).not.toBeNull();
		const next = (await (
			await call(
				`/v1/audit?action=lease.granted&target=credential:${id}&limit=2&cursor=${page.next_cursor}`,
				{ token: user.key },
			)
		).json()) as Page;
		expect(next.data.map((e) => e.id)).toEqual(granted.slice(2, 4).map((e) => e.id));

		const oldest = granted[4] as EventJson;
		const since = await allEvents(
			user.key,
			`target=credential:${id}&since=${encodeURIComponent(granted[1]?.at ?? "")}`,
		);
		expect(since.every((e) => e.at >= (granted[1]?.at ?? ""))).toBe(true);
		const until = await allEvents(
			user.key,
			`action=lease.granted&target=credential:${id}&until=${encodeURIComponent(oldest.at)}`,
		);
		expect(until.map((e) => e.id)).not.toContain(oldest.id);
		expect(await allEvents(user.key, `target=credential&action=credential.created`)).toHaveLength(
			1,
		);
	});

	it("bad filters are 400 invalid_request in the error shape, naming the field", async () => {
		const user = await userWithKey();
		for (const [query, field] of [
			["action=lease.stolen", "action"],
			["target=planet", "target"],
			["target=credential:", "target"],
			["target=credential:bad%20id", "target"],
			["since=yesterday", "since"],
			["until=2026-13-01T00:00:00Z", "until"],
			["since=2026-12-05T00:00:00Z&until=2026-12-04T00:00:00Z", "until"],
			["limit=0", "limit"],
			["limit=101", "limit"],
			["cursor=not-a-cursor", "cursor"],
			["colour=blue&action=x", "action"],
		] as const) {
			const res = await call(`/v1/audit?${query}`, { token: user.key });
			expect(res.status, query).toBe(400);
			const body = (await res.clone().json()) as {
				error: { code: string; detail: { field: string }[] };
			};
			expect(body.error.code, query).toBe("invalid_request");
			expect(
				body.error.detail.map((d) => d.field),
				query,
			).toContain(field);
			await expect4xxShape(res, query);
		}
		await expectError(
			await call("/v1/admin/audit/verify", {
				method: "POST",
				token: admin(),
				json: { since: "2026-12-05", until: "2026-12-01" },
			}),
			400,
			"invalid_request",
		);
		await expectError(
			await call("/v1/admin/audit/verify", {
				method: "POST",
				token: admin(),
				json: { since: "soon" },
			}),
			400,
			"invalid_request",
		);
	});

	it("the admin export streams NDJSON, page after page, that re-verifies away from Latchkey", async () => {
		const day = ownDay();
		const n = 1100; // more than two export pages
		const at = (i: number) => new Date(Date.parse(`${day}T00:00:00Z`) + i * 1000);
		const queue = Array.from({ length: n }, (_, i) => i);
		// Concurrent writers across the day's shards (conflicts retried on another chain).
		await Promise.all(
			Array.from({ length: 10 }, async () => {
				for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
					await writeRecord(services.db, record(at(i), { detail: canonicalDetail({ i }) }));
				}
			}),
		);
		const res = await call(`/v1/admin/audit/export?since=${day}T00:00:00Z&until=${day}T23:59:59Z`, {
			token: admin(),
		});
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
		const lines = new TextDecoder()
			.decode(await res.arrayBuffer())
			.trimEnd()
			.split("\n")
			.map((l) => JSON.parse(l));
		expect(lines).toHaveLength(n);
		// Oldest first: the order they happened in, whichever chain each went to.
		expect(lines.map((l) => l.detail.i)).toEqual(Array.from({ length: n }, (_, i) => i));

		// Offline: regroup by chain, recompute every hash from the exported fields alone.
		const chains = new Map<string, typeof lines>();
		for (const l of lines) chains.set(l.chain, [...(chains.get(l.chain) ?? []), l]);
		expect(chains.size).toBeGreaterThan(1);
		for (const [chain, rows] of chains) {
			rows.sort((x, y) => x.seq - y.seq);
			let prev = GENESIS_HASH;
			for (const [i, l] of rows.entries()) {
				expect(l.seq).toBe(i + 1);
				expect(l.prev_hash).toBe(prev);
				const body = canonicalBody({
					id: l.id,
					at: new Date(l.at),
					action: l.action,
					outcome: l.outcome,
					userId: l.user_id,
					actor: {
						method: l.principal.method,
						userId: l.principal.user_id,
						keyId: l.principal.key_id,
						sessionId: l.principal.session_id,
					},
					targetType: l.target?.type ?? null,
					targetId: l.target?.id ?? null,
					ip: l.ip,
					requestId: l.request_id,
					detail: canonicalDetail(l.detail),
				});
				prev = await chainHash(prev, chain, l.seq, body);
				expect(l.hash).toBe(prev);
			}
		}
		expect(await verify({ since: day, until: day })).toMatchObject({ ok: true, events: n });

		const user = await userWithKey();
		await expectError(
			await call("/v1/admin/audit/export", { token: user.key }),
			403,
			"insufficient_scope",
		);
		await expectError(
			await call("/v1/admin/audit/verify", { method: "POST", token: user.key }),
			403,
			"insufficient_scope",
		);
	});
});

describe("audit log: the chain detects tampering", () => {
	it("an edited row breaks the chain at that row; an edit that rehashes its row breaks it at the next", async () => {
		const day = ownDay();
		const rows = await writeChain(day, 5);
		expect(await verify({ since: day, until: day })).toMatchObject({
			ok: true,
			chains: 1,
			events: 5,
			break: null,
		});
		const third = rows[2] as AuditEventRow;
		await db
			.update(auditEvents)
			.set({ detail: '{"fields":["title"],"secret_changed":true}' })
			.where(eq(auditEvents.id, third.id));
		expect(await verify({ since: day, until: day })).toMatchObject({
			ok: false,
			break: { chain: `${day}/0`, seq: 3, event_id: third.id, reason: "hash_mismatch" },
		});

		// A better forger recomputes the edited row's own hash: the next row no longer follows it.
		const [edited] = await db.select().from(auditEvents).where(eq(auditEvents.id, third.id));
		const rehashed = await chainHash(
			third.prevHash,
			third.chain,
			3,
			canonicalBody(recordOf(edited as AuditEventRow)),
		);
		await db.update(auditEvents).set({ hash: rehashed }).where(eq(auditEvents.id, third.id));
		expect(await verify({ since: day, until: day })).toMatchObject({
			ok: false,
			break: { seq: 4, event_id: rows[3]?.id, reason: "prev_hash_mismatch" },
		});
	});

	it("a removed row breaks the chain where it was", async () => {
		const day = ownDay();
		const rows = await writeChain(day, 5);
		await db.delete(auditEvents).where(eq(auditEvents.id, (rows[2] as AuditEventRow).id));
		expect(await verify({ since: day, until: day })).toMatchObject({
			ok: false,
			break: { chain: `${day}/0`, seq: 3, event_id: null, reason: "rows_missing" },
		});
	});

	it("removing the last rows is detected through the chain's head", async () => {
		const day = ownDay();
		const rows = await writeChain(day, 5);
		await db
			.delete(auditEvents)
			.where(and(eq(auditEvents.chain, `${day}/0`), sql`${auditEvents.seq} >= 4`));
		expect(await chainRows(`${day}/0`)).toEqual(rows.slice(0, 3));
		expect(await verify({ since: day, until: day })).toMatchObject({
			ok: false,
			break: { chain: `${day}/0`, seq: 4, reason: "tail_missing" },
		});
	});

	it("reordered rows, and a removed head, break the chain", async () => {
		const day = ownDay();
		const rows = await writeChain(day, 4);
		const [two, three] = [rows[1] as AuditEventRow, rows[2] as AuditEventRow];
		// Swap seqs 2 and 3 (through a free seq, the pair is unique).
		await db.update(auditEvents).set({ seq: -1 }).where(eq(auditEvents.id, two.id));
		await db.update(auditEvents).set({ seq: 2 }).where(eq(auditEvents.id, three.id));
		await db.update(auditEvents).set({ seq: 3 }).where(eq(auditEvents.id, two.id));
		expect(await verify({ since: day, until: day })).toMatchObject({
			ok: false,
			break: { seq: 2, event_id: three.id, reason: "prev_hash_mismatch" },
		});

		const other = ownDay();
		await writeChain(other, 3);
		await db.delete(auditChainHeads).where(eq(auditChainHeads.chain, `${other}/0`));
		expect(await verify({ since: other, until: other })).toMatchObject({
			ok: false,
			break: { chain: `${other}/0`, reason: "head_missing" },
		});
	});
});

describe("audit log: verifying while events are written", () => {
	it("a check that runs while rows are added reports no break: it checks the chains as its heads found them", async () => {
		const day = ownDay();
		await writeChain(day, 3);
		const write = (second: number) =>
			writeRecord(services.db, record(new Date(`${day}T00:01:${second}.000Z`)), () => 0);
		// One row lands between the heads' read and the rows' read, another after the rows' read:
		// a walk that took the first and then compared with a head read again saw seq 5 named but
		// only 4 rows (tail_missing), or the snapshot's head not matching row 4 (head_mismatch).
		const result = await verifyAudit(
			services,
			{ since: day, until: day },
			{
				afterHeads: async () => void (await write(10)),
				afterPage: async () => void (await write(20)),
			},
		);
		expect(result).toMatchObject({ ok: true, chains: 1, events: 3, break: null });
		// The next check sees all five.
		expect(await verify({ since: day, until: day })).toMatchObject({ ok: true, events: 5 });

		// A chain begun after the heads were read is not checked, and is no break either.
		const later = ownDay();
		const begun = await verifyAudit(
			services,
			{ since: day, until: later },
			{ afterHeads: async () => void (await writeChain(later, 2)) },
		);
		expect(begun).toMatchObject({ ok: true, chains: 1, break: null });
	});

	it("a row past its chain's head, even the head read again, is head_missing", async () => {
		const day = ownDay();
		const rows = await writeChain(day, 4);
		const third = rows[2] as AuditEventRow;
		await db
			.update(auditChainHeads)
			.set({ seq: 3, hash: third.hash })
			.where(eq(auditChainHeads.chain, `${day}/0`));
		expect(await verify({ since: day, until: day })).toMatchObject({
			ok: false,
			break: { chain: `${day}/0`, seq: 4, reason: "head_missing" },
		});
	});
});

describe("audit log: writes that fail, and retention", () => {
	it("an event whose database write fails waits in Redis, and the scheduled write-back stores it once", async () => {
		const user = await userWithKey();
		const id = await newCredential(user.key);
		const restore = await failAuditWritesAbout(id);
		let requestId: string | null;
		try {
			const res = await lease(id, user.key);
			expect(res.status).toBe(201);
			requestId = res.headers.get("x-request-id");
			const stored = await db
				.select()
				.from(auditEvents)
				.where(eq(auditEvents.requestId, requestId ?? ""));
			expect(stored).toEqual([]);
			const pending = ((await services.rawRedis.lrange(PENDING_KEY, 0, -1)) as string[])
				.map(parseRecord)
				.filter((r) => r?.requestId === requestId);
			expect(pending).toHaveLength(1);
			expect(pending[0]).toMatchObject({ action: "lease.granted", targetId: id, userId: user.id });
			// While the database still refuses it, the write-back keeps it.
			const blocked = await runJobs(services, [auditWriteBackJob]);
			expect(blocked.jobs[0]).toMatchObject({ ok: true });
			expect(
				((await services.rawRedis.lrange(PENDING_KEY, 0, -1)) as string[]).some(
					(e) => parseRecord(e)?.requestId === requestId,
				),
			).toBe(true);
		} finally {
			await restore();
		}
		// The cron's job (another file's maintenance run may get there first: the list is global).
		const summary = await runJobs(services, [auditWriteBackJob]);
		expect(summary.jobs[0]).toMatchObject({ name: "audit-write-back", ok: true });
		const stored = await db
			.select()
			.from(auditEvents)
			.where(eq(auditEvents.requestId, requestId ?? ""));
		expect(stored.map((r) => [r.action, r.targetId])).toEqual([["lease.granted", id]]);
		expect(
			((await services.rawRedis.lrange(PENDING_KEY, 0, -1)) as string[]).some(
				(e) => parseRecord(e)?.requestId === requestId,
			),
		).toBe(false);
		// A second write-back of the same entry would be a duplicate, not a second row.
		expect(await writeRecord(services.db, recordOf(stored[0] as AuditEventRow))).toBe("duplicate");
		expect(await allEvents(user.key, `action=lease.granted&target=credential:${id}`)).toHaveLength(
			1,
		);
		expect(await verify({ since: today(), until: today() })).toMatchObject({ ok: true });
	});

	it("two write-backs at once, both holding the same queued entries, store each event exactly once and leave none queued", async () => {
		const day = ownDay();
		const queued = Array.from({ length: 12 }, (_, i) =>
			record(new Date(`${day}T00:00:${String(i).padStart(2, "0")}.000Z`)),
		);
		await services.rawRedis.rpush(PENDING_KEY, ...queued.map(serializeRecord));
		// Both runs read the list before either writes: each then writes every entry it read.
		let arrived = 0;
		let release: () => void = () => {};
		const bothRead = new Promise<void>((resolve) => {
			release = resolve;
		});
		const afterRead = async () => {
			arrived += 1;
			if (arrived === 2) release();
			await bothRead;
		};
		const [a, b] = await Promise.all([
			drainPendingAudit(services, { afterRead }),
			drainPendingAudit(services, { afterRead }),
		]);
		expect(a.failed + b.failed).toBe(0);
		// Every entry was written by one run and met as already stored by the other.
		expect(a.written + b.written).toBeGreaterThanOrEqual(queued.length);
		expect(a.duplicates + b.duplicates).toBeGreaterThanOrEqual(queued.length);
		const ids = queued.map((r) => r.id);
		const rows = await db
			.select({ id: auditEvents.id })
			.from(auditEvents)
			.where(sql`${auditEvents.id} in ${ids}`);
		expect(rows.map((r) => r.id).sort()).toEqual([...ids].sort());
		const left = ((await services.rawRedis.lrange(PENDING_KEY, 0, -1)) as string[])
			.map(parseRecord)
			.filter((r) => r && ids.includes(r.id));
		expect(left).toEqual([]);
		expect(await verify({ since: day, until: day })).toMatchObject({ ok: true, events: 12 });
	});

	it("when Redis fails too, an error line names the request and the events, never their detail", async () => {
		const target = `cred_${newId("x").slice(2, 22).padEnd(20, "0")}`;
		const restore = await failAuditWritesAbout(target);
		try {
			const { logger, lines } = recordingLogger();
			const broken = servicesWith({ UPSTASH_REDIS_REST_URL: "http://127.0.0.1:1" }, logger);
			const event = record(new Date(), {
				targetId: target,
				requestId: "req_audit_lost_0001",
				detail: canonicalDetail({ note: "planted-detail-value" }),
			});
			expect(
				await writeAuditRecords(broken, [event], { requestId: "req_audit_lost_0001" }),
			).toEqual({
				written: 0,
				queued: 0,
				lost: 1,
			});
			const error = lines.find((l) => l.level === "error");
			expect(error?.fields).toMatchObject({
				request_id: "req_audit_lost_0001",
				event_ids: [event.id],
				actions: ["credential.updated"],
			});
			expect(JSON.stringify(lines)).not.toContain("planted-detail-value");
		} finally {
			await restore();
		}
	});

	it("retention deletes whole days; the verifier never reports a day being deleted", async () => {
		const old = "2001-02-03";
		for (let i = 0; i < 6; i++) {
			await writeRecord(services.db, record(new Date(`${old}T10:00:0${i}.000Z`)), () => i % 2);
		}
		const kept = ownDay();
		await writeChain(kept, 3);
		// A deletion cut short: part of the old day's rows are gone (and its heads).
		const partial = await pruneAudit(services, { batch: 2, maxBatches: 1 });
		expect(partial).toEqual({ deleted_events: 2, deleted_heads: 2 });
		// From the old day to today (the tamper tests' days come later): the old day is skipped.
		const result = await verify({ since: old, until: today() });
		expect(result).toMatchObject({ ok: true, break: null });
		expect(result.retention_cutoff).not.toBeNull();
		expect(result.retention_cutoff && result.retention_cutoff > old).toBe(true);
		expect(await verify({ since: kept, until: kept })).toMatchObject({ ok: true, events: 3 });
		// Only because it left the retention: kept forever, the half-deleted day is a break.
		const everything = await call(
			"/v1/admin/audit/verify",
			{ method: "POST", token: admin(), json: { since: old, until: old } },
			{ LATCHKEY_AUDIT_RETENTION_DAYS: "0" },
		);
		expect(await everything.json()).toMatchObject({
			ok: false,
			break: { chain: `${old}/0`, seq: 1, reason: "rows_missing" },
		});

		const done = await pruneAudit(services);
		expect(done).toEqual({ deleted_events: 4, deleted_heads: 0 });
		expect(
			await db
				.select()
				.from(auditEvents)
				.where(sql`${auditEvents.chain} like ${`${old}/%`}`),
		).toEqual([]);
		expect(await chainRows(`${kept}/0`)).toHaveLength(3);
		expect(await verify({ since: old, until: old })).toMatchObject({ ok: true, events: 0 });
		expect(await verify({ since: kept, until: kept })).toMatchObject({ ok: true, events: 3 });
		// Kept forever when the retention is 0.
		await writeRecord(services.db, record(new Date(`${old}T11:00:00.000Z`)));
		expect(
			(await pruneAudit(servicesWith({ LATCHKEY_AUDIT_RETENTION_DAYS: "0" }))).deleted_events,
		).toBe(0);
		expect((await pruneAudit(services)).deleted_events).toBe(1);
	});
});
