/**
 * Soak and chaos: the real worker (startWorker) against real Postgres and a Redis the soak can
 * kill, through the local bridges, a rotating oidc-provider and the AgentMail fake, under a
 * mixed workload from many users and agent runs for SOAK_SECONDS (default 60), while faults
 * are injected on a schedule. At the end it checks the invariants, prints what it measured and
 * exits 1 when one broke. `npx tsx bench/soak.ts`; see README.md "Reliability".
 *
 * Env: SOAK_SECONDS (60), SOAK_CONCURRENCY (agent runs at once, 12), SOAK_USERS (6),
 * LATCHKEY_ENGINES (auto | real | embedded: embedded has no redis-server to kill, so the Redis
 * fault is skipped and the output says so). Only 127.0.0.1 is ever contacted.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { engineChoice } from "../scripts/lib/infra.ts";
import { ROOT } from "../scripts/lib/wrangler.ts";
import { startAgentMail } from "../test/setup/agentmail.ts";
import { startOAuthServer } from "../test/setup/oauth-server.ts";
import {
	apiClient,
	benchUser,
	connectBenchOAuth,
	registerBenchProvider,
	startInfraProcess,
	startWorker,
} from "./lib.ts";
import { type Answer, SoakClient, templ } from "./soak/client.ts";
import { Faults, RECOVERY_MS } from "./soak/faults.ts";
import { captureStderr, findSecrets, readWorkerLog, waitForQuietLog } from "./soak/logs.ts";
import { invariantTable, type Phase, perfTable, Recorder } from "./soak/record.ts";
import { type KillableRedis, redisServerAvailable, startKillableRedis } from "./soak/redis.ts";

const SECONDS = Math.max(5, Number(process.env.SOAK_SECONDS ?? 60));
const CONCURRENCY = Math.max(1, Number(process.env.SOAK_CONCURRENCY ?? 12));
const USERS = Math.max(3, Number(process.env.SOAK_USERS ?? 6));
const DURATION_MS = SECONDS * 1000;

const INVARIANTS = [
	"no credential lost or corrupted",
	"no refresh token lost",
	"≤ 1 token-endpoint call per refresh token",
	"no secret to a non-owner",
	"no secret in a log line",
	"no secret in an answer but a lease's or a new token's",
	"errors in API.md's shape",
	"no 500",
	"503 with Retry-After",
	"an answer within 10 s (no hang)",
	"full service back within 5 s",
	"reads without Redis (me, credential, listing)",
	"every answer as API.md says",
	"every granted lease has exactly one audit event",
] as const;

// ---------------------------------------------------------------------------------------------
// Infrastructure: a killable redis-server, the bridges and Postgres, the fakes, the worker.

const cleanups: (() => Promise<unknown>)[] = [];
const cleanup = async () => {
	for (const c of cleanups.splice(0).reverse()) {
		const t = performance.now();
		await c().catch((e) => console.warn(e));
		if (process.env.SOAK_DEBUG)
			console.log(`[soak] cleanup step ${(performance.now() - t).toFixed(0)} ms`);
	}
};
process.once("SIGINT", () => {
	void cleanup().then(() => process.exit(130));
});

const startedAt = performance.now();
const choice = engineChoice();
let redis: KillableRedis | null = null;
let redisSkipped: string | null = null;
if (choice === "embedded") {
	redisSkipped =
		"LATCHKEY_ENGINES=embedded: Redis is the bridge's embedded engine, there is no redis-server to kill";
} else if (!redisServerAvailable()) {
	if (choice === "real")
		throw new Error("LATCHKEY_ENGINES=real, but redis-server is not installed");
	redisSkipped = "no redis-server on PATH";
} else {
	redis = await startKillableRedis();
	cleanups.push(() => (redis as KillableRedis).close());
	// startInfra reads the Redis URL from TEST_REDIS_URL; the infra process inherits it.
	process.env.TEST_REDIS_URL = redis.url;
}
mkdirSync(join(ROOT, ".latchkey"), { recursive: true });
const logPath = join(ROOT, ".latchkey", `soak-${process.pid}-${Date.now()}.log`);
// wrangler writes every line it handles, the worker's console output included, here.
process.env.WRANGLER_LOG_PATH = logPath;
if (!process.env.SOAK_KEEP_LOG) cleanups.push(async () => rmSync(logPath, { force: true }));

// The worker's warn and error lines reach our stderr (see captureStderr): kept to search for secrets.
const stderr = captureStderr();
const workerStdout: string[] = [];
cleanups.push(async () => stderr.stop());
const infra = await startInfraProcess();
const mark = (what: string) =>
	process.env.SOAK_DEBUG &&
	console.log(`[soak] ${what} at ${((performance.now() - startedAt) / 1000).toFixed(1)} s`);
mark("infra up");
cleanups.push(() => infra.close());
if (redis && infra.redis !== "real") {
	redisSkipped = "the bridge fell back to its embedded Redis";
	await redis.close();
	redis = null;
}
const agentmail = await startAgentMail();
cleanups.push(() => agentmail.close());
const orgKey = `am_org_soak_${randomBytes(12).toString("hex")}`;
let worker: Awaited<ReturnType<typeof startWorker>>;
try {
	worker = await startWorker(
		{
			...infra.bindings,
			AGENTMAIL_API_KEY: orgKey,
			AGENTMAIL_BASE_URL: agentmail.url,
			LATCHKEY_LOG_LEVEL: "info",
			LATCHKEY_PURGE_DELAY_SECONDS: "0",
		},
		// Every line the worker logs, info included, is searched for planted secrets.
		{ onStdout: (text) => workerStdout.push(text) },
	);
} catch (err) {
	await cleanup();
	throw err;
}
cleanups.push(() => worker.stop());
mark("worker up");
const oauth = await startOAuthServer({ redirectUris: [`${worker.url}/v1/oauth/callback`] });
cleanups.push(() => oauth.close());

const dbName = new URL(infra.databaseUrl).pathname.slice(1);
let db: pg.Client | null = null;
/** A statement on the soak's database, on a connection of the soak's own (re-opened if cut). */
async function sql(text: string, params: unknown[] = []): Promise<pg.QueryResult> {
	for (let attempt = 0; ; attempt++) {
		try {
			if (!db) {
				const client = new pg.Client({ connectionString: infra.databaseUrl });
				client.on("error", () => {
					if (db === client) db = null;
				});
				await client.connect();
				db = client;
			}
			return await db.query(text, params);
		} catch (err) {
			const broken = db;
			db = null;
			await broken?.end().catch(() => {});
			if (attempt >= 2) throw err;
		}
	}
}
cleanups.push(async () => db?.end());

console.log(
	`[soak] ${SECONDS} s, ${CONCURRENCY} agent runs, ${USERS} users; postgres: ${infra.postgres}, redis: ${
		redis ? `redis-server ${redis.url} (killable)` : infra.redis
	}`,
);
if (redisSkipped) console.log(`[soak] SKIPPED fault redis-down: ${redisSkipped}`);

// ---------------------------------------------------------------------------------------------
// The model: users, their credentials and what was last written to each.

const admin = infra.bindings.LATCHKEY_ADMIN_TOKEN as string;
const setupApi = apiClient(worker.url);
const planted = new Set<string>([admin, orgKey, oauth.clientSecret]);

interface Cred {
	id: string;
	type: "api_key" | "user_password" | "oauth2";
	/** The OAuth account at oidc-provider. */
	account?: string;
	/** Secret values a lease may return now (the last acknowledged write, plus unacknowledged ones since). */
	accepted: Set<string>;
	/** Every value ever written, to tell a stale secret from a corrupted one. */
	written: Set<string>;
	titles: Set<string>;
	busy: boolean;
}
interface User {
	id: string;
	label: string;
	key: string;
	access: string;
	refresh: string;
	creds: Cred[];
	sessionBusy: boolean;
	deleted: boolean;
}

const secretField = (c: Cred) => (c.type === "api_key" ? "api_key" : "password");
const newSecret = () => `soak-secret-${randomUUID()}`;

async function session(key: string): Promise<{ access: string; refresh: string }> {
	const t = await setupApi<{ access_token: string; refresh_token: string }>("/v1/auth/token", {
		method: "POST",
		json: { grant_type: "api_key", api_key: key },
	});
	planted.add(t.access_token).add(t.refresh_token);
	return { access: t.access_token, refresh: t.refresh_token };
}

await registerBenchProvider(setupApi, admin, "soak-idp", oauth);

/** An OAuth credential connected the way a user connects one; its access tokens live 120 s. */
async function connectOAuth(key: string, account: string): Promise<Cred> {
	const c = await connectBenchOAuth(setupApi, oauth, "soak-idp", key, account);
	return {
		id: c.id,
		type: "oauth2",
		account,
		accepted: new Set(),
		written: new Set(),
		titles: new Set(["Soak IdP"]),
		busy: false,
	};
}

async function makeUser(label: string, withOAuth: boolean): Promise<User> {
	const { id, key } = await benchUser(setupApi, admin, `soak-${label}`);
	planted.add(key);
	const creds: Cred[] = [];
	for (const type of ["api_key", "user_password"] as const) {
		const secret = newSecret();
		const title = `${type} of ${label}`;
		const c = await setupApi<{ id: string }>("/v1/credentials", {
			method: "POST",
			token: key,
			json:
				type === "api_key"
					? { provider: "soak", type, title, api_key: secret }
					: { provider: "soak", type, title, username: `${label}@soak`, password: secret },
		});
		planted.add(secret);
		creds.push({
			id: c.id,
			type,
			accepted: new Set([secret]),
			written: new Set([secret]),
			titles: new Set([title]),
			busy: false,
		});
	}
	if (withOAuth) creds.push(await connectOAuth(key, `short-lived-soak-${label}-${Date.now()}`));
	const s = await session(key);
	return { id, label, key, ...s, creds, sessionBusy: false, deleted: false };
}

mark("provider registered");
const users: User[] = [];
for (let i = 0; i < USERS; i += 3)
	users.push(
		...(await Promise.all(
			Array.from({ length: Math.min(3, USERS - i) }, (_, k) => makeUser(`u${i + k}`, true)),
		)),
	);
// Its OAuth credential is refused by the provider during the OAuth fault; the workload leaves it alone.
const victimUser = await makeUser("victim", true);
const victim = victimUser.creds.find((c) => c.type === "oauth2") as Cred;
// Recovery probes use a user of their own, so the workload does not wait on their locks.
const probeUser = await makeUser("probe", true);
const probeApi = probeUser.creds[0] as Cred;
const probeOAuth = probeUser.creds.find((c) => c.type === "oauth2") as Cred;
/** Users created during the run (signups); deletions take from here. */
const fresh: User[] = [];
const deletedUsers: User[] = [];
const ownerOf = new Map<string, string>();
for (const u of [...users, victimUser, probeUser]) for (const c of u.creds) ownerOf.set(c.id, u.id);

// ---------------------------------------------------------------------------------------------
// Schedule and clock.

const rec = new Recorder();
const t0 = performance.now();
const now = () => performance.now() - t0;
const faults = new Faults(now);
const REDIS_AT = 0.15 * DURATION_MS;
const REDIS_FOR = Math.min(5000, Math.max(2000, 0.1 * DURATION_MS));
const PG_AT = [0.42 * DURATION_MS, ...(SECONDS >= 30 ? [0.48 * DURATION_MS] : [])];
// After the Redis outage (whose restart empties Redis, and with it any queued audit events) and
// before the OAuth faults.
const AUDIT_AT = 0.44 * DURATION_MS;
const AUDIT_FOR = Math.max(1000, 0.08 * DURATION_MS);
const OAUTH_AT = 0.55 * DURATION_MS;
const OAUTH_FOR = Math.max(2500, 0.15 * DURATION_MS);
const FIRST_FAULT = redis ? REDIS_AT : (PG_AT[0] as number);
const LAST_FAULT_END = OAUTH_AT + OAUTH_FOR;
const phaseAt = (t: number): Phase =>
	t < FIRST_FAULT ? "before" : t < LAST_FAULT_END ? "during" : "after";
rec.phaseSeconds.before = FIRST_FAULT / 1000;
rec.phaseSeconds.during = (LAST_FAULT_END - FIRST_FAULT) / 1000;
rec.phaseSeconds.after = (DURATION_MS - LAST_FAULT_END) / 1000;

const client = new SoakClient(
	worker.url,
	rec,
	faults,
	() => phaseAt(now()),
	() => planted,
);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;
/** Redis restarts so far: a lease taken before one may be gone (410/404) after it. */
let redisRestarts = 0;

const dependencyFault = () => faults.affects("redis-down") || faults.affects("pg-cut");
const oauthFault = () =>
	faults.affects("oauth-slow") || faults.affects("oauth-500-then-invalid_grant");

function expectStatus(
	ans: Answer,
	op: string,
	allowed: number[],
	invariant: (typeof INVARIANTS)[number] = "every answer as API.md says",
): boolean {
	if (ans.status === 0) return false; // already recorded as no answer
	return rec.expect(allowed.includes(ans.status), {
		invariant,
		op,
		faults: ans.faults,
		expected: allowed.join(" | "),
		actual: String(ans.status),
		requestId: ans.requestId,
		excerpt: ans.text.slice(0, 300),
	});
}
const with503 = (base: number[], extra = dependencyFault()) => (extra ? [...base, 503] : base);

const ageSql =
	"update credentials set token_issued_at = now() - interval '100 seconds', access_token_expires_at = now() + interval '20 seconds' where id = $1";

// ---------------------------------------------------------------------------------------------
// Operations of the workload.

const liveUsers = () => users.filter((u) => !u.deleted);
const auth = (u: User) => (Math.random() < 0.5 ? u.key : u.access);

async function opRead(u: User): Promise<void> {
	const redisDown = faults.isActive("redis-down");
	const invariant = redisDown ? "reads without Redis (me, credential, listing)" : undefined;
	const which = Math.floor(Math.random() * 3);
	if (which === 0) {
		const a = await client.call("GET /v1/me", "/v1/me", { token: auth(u) });
		expectStatus(a, "GET /v1/me", with503([200], faults.affects("pg-cut")), invariant);
	} else if (which === 1) {
		const c = pick(u.creds);
		// A read may take effect before a write in flight ends: titles of then and of now are fine.
		const titlesAtStart = new Set(c.titles);
		const writingAtStart = c.busy;
		const a = await client.call("GET credential", `/v1/credentials/${c.id}`, { token: auth(u) });
		const allowed = with503([200], faults.affects("pg-cut"));
		if (expectStatus(a, "GET /v1/credentials/{id}", allowed, invariant) && a.status === 200) {
			const title = (a.body as { title?: string }).title ?? "";
			// A title never acknowledged when the read began or ended is a lost or corrupted write.
			if (!writingAtStart && !c.busy && c.type !== "oauth2")
				rec.expect(titlesAtStart.has(title) || c.titles.has(title), {
					invariant: "no credential lost or corrupted",
					op: "GET /v1/credentials/{id}",
					faults: a.faults,
					expected: `a title written: ${[...new Set([...titlesAtStart, ...c.titles])].join(" | ")}`,
					actual: title,
					requestId: a.requestId,
				});
		}
	} else {
		const a = await client.call("GET /v1/credentials", "/v1/credentials", { token: auth(u) });
		expectStatus(a, "GET /v1/credentials", with503([200], faults.affects("pg-cut")), invariant);
		if (a.status === 200) checkListing(u, a);
	}
}

function checkListing(u: User, a: Answer): void {
	const ids = ((a.body as { data?: { id: string }[] }).data ?? []).map((c) => c.id);
	const foreign = ids.filter((id) => {
		const owner = ownerOf.get(id);
		return owner !== undefined && owner !== u.id;
	});
	rec.expect(foreign.length === 0, {
		invariant: "no secret to a non-owner",
		op: "GET /v1/credentials",
		faults: a.faults,
		expected: "only the caller's own (and managed/system) credentials",
		actual: `another user's: ${foreign.join(", ")}`,
		requestId: a.requestId,
	});
	for (const c of (a.body as { data?: { id: string; managed: boolean }[] }).data ?? [])
		if (c.managed) ownerOf.set(c.id, u.id);
}

async function opToken(u: User): Promise<void> {
	if (u.sessionBusy) return opRead(u);
	u.sessionBusy = true;
	try {
		if (Math.random() < 0.7) {
			const a = await client.call("token: refresh", "/v1/auth/token", {
				method: "POST",
				json: { grant_type: "refresh_token", refresh_token: u.refresh },
			});
			expectStatus(a, "POST /v1/auth/token (refresh_token)", with503([200]));
			if (a.status === 200) {
				const t = a.body as { access_token: string; refresh_token: string };
				planted.add(t.access_token).add(t.refresh_token);
				u.access = t.access_token;
				u.refresh = t.refresh_token;
				return;
			}
		}
		// An exchange of the key, or a new session after a refresh whose outcome is unknown.
		const a = await client.call("token: api_key", "/v1/auth/token", {
			method: "POST",
			json: { grant_type: "api_key", api_key: u.key },
		});
		expectStatus(a, "POST /v1/auth/token (api_key)", with503([200]));
		if (a.status === 200) {
			const t = a.body as { access_token: string; refresh_token: string };
			planted.add(t.access_token).add(t.refresh_token);
			u.access = t.access_token;
			u.refresh = t.refresh_token;
		}
	} finally {
		u.sessionBusy = false;
	}
}

async function opWrite(u: User, secret: boolean): Promise<void> {
	const candidates = u.creds.filter((c) => !c.busy && (!secret || c.type !== "oauth2"));
	if (candidates.length === 0) return opRead(u);
	const c = pick(candidates);
	c.busy = true;
	try {
		const title = `${c.type} ${randomUUID().slice(0, 8)}`;
		const value = newSecret();
		const json: Record<string, unknown> = secret
			? { [secretField(c)]: value }
			: { title, metadata: { soak: randomUUID().slice(0, 8) } };
		if (secret) planted.add(value);
		const op = secret ? "PATCH credential (secret)" : "PATCH credential (title)";
		const a = await client.call(op, `/v1/credentials/${c.id}`, {
			method: "PATCH",
			token: auth(u),
			json,
		});
		expectStatus(a, `PATCH /v1/credentials/{id} (${secret ? "secret" : "title"})`, with503([200]));
		const acked = a.status === 200;
		const unknown = a.status === 0 || a.status >= 500;
		if (secret) {
			c.written.add(value);
			if (acked) c.accepted = new Set([value]);
			else if (unknown) c.accepted.add(value);
		} else if (acked) c.titles = new Set([title]);
		else if (unknown) c.titles.add(title);
	} finally {
		c.busy = false;
	}
}

/**
 * The user replaces an OAuth credential's access token (not its refresh token) while agent runs
 * lease and refresh it: no lock, so the edit races refreshes. The refresh token must survive
 * (docs/leases.md: the refresh's rotated refresh token is carried over onto the edit).
 */
async function opEditOAuthAccessToken(u: User): Promise<void> {
	const c = u.creds.find((x) => x.type === "oauth2");
	if (!c) return opRead(u);
	const value = `soak-at-${randomUUID()}`;
	planted.add(value);
	const a = await client.call("PATCH oauth (access token)", `/v1/credentials/${c.id}`, {
		method: "PATCH",
		token: auth(u),
		json: { access_token: value },
	});
	expectStatus(a, "PATCH /v1/credentials/{id} (oauth access_token)", with503([200]));
}

async function opLease(u: User): Promise<void> {
	const candidates = u.creds.filter((c) => c.type !== "oauth2" && !c.busy);
	if (candidates.length === 0) return opRead(u);
	const c = pick(candidates);
	c.busy = true;
	try {
		const restarts = redisRestarts;
		const a = await client.call("lease", `/v1/credentials/${c.id}/leases`, {
			method: "POST",
			token: auth(u),
			json: { ttl_seconds: 60 },
		});
		if (!expectStatus(a, "POST /v1/credentials/{id}/leases", with503([201])) || a.status !== 201)
			return;
		const lease = a.body as { lease_id: string; secret: Record<string, string> };
		const got = lease.secret[secretField(c)] ?? "";
		rec.expect(c.accepted.has(got), {
			invariant: "no credential lost or corrupted",
			op: "POST /v1/credentials/{id}/leases",
			faults: a.faults,
			expected: `the last value written (${c.written.has(got) ? "got an older one" : "got one never written"})`,
			actual: `${got.slice(0, 18)}…`,
			requestId: a.requestId,
		});
		const gone = () => (redisRestarts !== restarts ? [404, 410] : []);
		if (Math.random() < 0.5) {
			const r = await client.call("lease renew", `/v1/leases/${lease.lease_id}/renew`, {
				method: "POST",
				token: auth(u),
				json: { ttl_seconds: 120 },
			});
			expectStatus(r, "POST /v1/leases/{id}/renew", with503([200, ...gone()]));
		}
		const d = await client.call("lease release", `/v1/leases/${lease.lease_id}`, {
			method: "DELETE",
			token: auth(u),
		});
		expectStatus(d, "DELETE /v1/leases/{id}", with503([204, ...gone()]));
	} finally {
		c.busy = false;
	}
}

async function opLeaseOAuth(u: User, aged: boolean): Promise<void> {
	const c = u.creds.find((x) => x.type === "oauth2");
	if (!c || (aged && c.busy)) return opRead(u);
	if (aged) {
		c.busy = true;
		try {
			await sql(ageSql, [c.id]);
		} catch {
			c.busy = false;
			return;
		}
	}
	try {
		const op = aged ? "lease oauth (aged: refresh)" : "lease oauth";
		const many = aged ? 3 : 1;
		const answers = await Promise.all(
			Array.from({ length: many }, () =>
				client.call(op, `/v1/credentials/${c.id}/leases`, {
					method: "POST",
					token: auth(u),
					json: { ttl_seconds: 30 },
				}),
			),
		);
		for (const a of answers) {
			const allowed = with503([201], dependencyFault() || oauthFault());
			expectStatus(a, `POST /v1/credentials/{id}/leases (oauth${aged ? ", aged" : ""})`, [
				...allowed,
				...(oauthFault() ? [502] : []),
			]);
			if (a.status === 201) {
				const s = (a.body as { secret: { access_token?: string } }).secret;
				if (s.access_token) planted.add(s.access_token);
				rec.expect(typeof s.access_token === "string" && s.access_token.length > 0, {
					invariant: "no credential lost or corrupted",
					op,
					faults: a.faults,
					expected: "an access token",
					actual: JSON.stringify(Object.keys(s)),
					requestId: a.requestId,
				});
			}
		}
	} finally {
		if (aged) c.busy = false;
	}
}

async function opCross(u: User): Promise<void> {
	const others = liveUsers().filter((o) => o !== u);
	if (others.length === 0) return;
	const c = pick(pick(others).creds);
	const lease = Math.random() < 0.7;
	const a = lease
		? await client.call("cross-user lease", `/v1/credentials/${c.id}/leases`, {
				method: "POST",
				token: auth(u),
				json: {},
			})
		: await client.call("cross-user GET", `/v1/credentials/${c.id}`, { token: auth(u) });
	const op = lease ? "POST /v1/credentials/{other's}/leases" : "GET /v1/credentials/{other's}";
	if (a.status >= 200 && a.status < 300)
		rec.fail({
			invariant: "no secret to a non-owner",
			op,
			faults: a.faults,
			expected: "404",
			actual: String(a.status),
			requestId: a.requestId,
			excerpt: "(body withheld)",
		});
	else rec.check("no secret to a non-owner");
	expectStatus(a, op, with503([404]));
}

let signups = 0;
async function opSignup(): Promise<void> {
	if (signups >= 3 * SECONDS) return;
	signups++;
	const label = `s${signups}`;
	const created = await client.call("signup: create user", "/v1/admin/users", {
		method: "POST",
		token: admin,
		json: { email: `soak-${label}-${randomUUID().slice(0, 8)}@example.com` },
	});
	if (!expectStatus(created, "POST /v1/admin/users", with503([201])) || created.status !== 201)
		return;
	const id = (created.body as { id: string }).id;
	const k = await client.call("signup: create key", `/v1/admin/users/${id}/api-keys`, {
		method: "POST",
		token: admin,
		json: { name: "soak" },
	});
	if (!expectStatus(k, "POST /v1/admin/users/{id}/api-keys", with503([201])) || k.status !== 201)
		return;
	const key = (k.body as { key: string }).key;
	planted.add(key);
	const t = await client.call("token: api_key", "/v1/auth/token", {
		method: "POST",
		json: { grant_type: "api_key", api_key: key },
	});
	expectStatus(t, "POST /v1/auth/token (api_key)", with503([200]));
	const pair =
		t.status === 200 ? (t.body as { access_token: string; refresh_token: string }) : null;
	if (pair) planted.add(pair.access_token).add(pair.refresh_token);
	const u: User = {
		id,
		label,
		key,
		access: pair?.access_token ?? "",
		refresh: pair?.refresh_token ?? "",
		creds: [],
		sessionBusy: false,
		deleted: false,
	};
	// The first listing provisions the AgentMail pod and key (within its 2 s bound).
	const a = await client.call("signup: first listing (provisions)", "/v1/credentials", {
		token: key,
	});
	expectStatus(
		a,
		"GET /v1/credentials (first, provisions)",
		with503([200], faults.affects("pg-cut")),
	);
	if (a.status === 200) checkListing(u, a);
	fresh.push(u);
}

async function opDelete(): Promise<void> {
	const u = fresh.shift();
	if (!u) return opSignup();
	const a = await client.call("delete account", "/v1/me", { method: "DELETE", token: u.key });
	if (!expectStatus(a, "DELETE /v1/me", with503([202])) || a.status !== 202) {
		fresh.push(u);
		return;
	}
	u.deleted = true;
	deletedUsers.push(u);
	await opMaintenance(u.id);
	const after = await client.call("deleted key refused", "/v1/me", { token: u.key });
	// 429: more than 10 failed authentications a minute from one source (all of ours are 127.0.0.1).
	expectStatus(after, "GET /v1/me (deleted user's key)", with503([401, 429]));
	if (u.access) {
		ended.push({ what: "deleted user's access token", token: u.access, at: now() });
		await refusedWrite(u.access, "deleted user's access token");
	}
}

let maintenanceBusy = false;
async function opMaintenance(userId?: string): Promise<void> {
	if (!userId && maintenanceBusy) return;
	if (!userId) maintenanceBusy = true;
	try {
		const a = await client.call(
			userId ? "maintenance run (one user)" : "maintenance run",
			"/v1/admin/maintenance/run",
			// Its jobs' budgets (deletion 20 s, proactive refresh 10 s, …) bound it, not 10 s.
			{ method: "POST", token: admin, json: userId ? { user_id: userId } : {}, hangMs: 30_000 },
		);
		expectStatus(a, "POST /v1/admin/maintenance/run", with503([200]));
	} finally {
		if (!userId) maintenanceBusy = false;
	}
}

/** Access tokens whose session or user ended: refused by writes at once, by reads within 10 s. */
const ended: { what: string; token: string; at: number }[] = [];

async function refusedWrite(token: string, what: string): Promise<void> {
	const a = await client.call("ended token: write", "/v1/me", {
		method: "PATCH",
		token,
		json: { name: "should be refused" },
	});
	expectStatus(a, `PATCH /v1/me (${what})`, with503([401, 429]));
	if (a.status >= 200 && a.status < 300)
		rec.fail({
			invariant: "no secret to a non-owner",
			op: `PATCH /v1/me (${what})`,
			faults: a.faults,
			expected: "401 at once",
			actual: String(a.status),
			requestId: a.requestId,
		});
}

/** A session of its own for an agent run, revoked when the run ends. */
async function opRevoke(u: User): Promise<void> {
	const t = await client.call("token: api_key", "/v1/auth/token", {
		method: "POST",
		json: { grant_type: "api_key", api_key: u.key },
	});
	if (!expectStatus(t, "POST /v1/auth/token (api_key)", with503([200])) || t.status !== 200) return;
	const pair = t.body as { access_token: string; refresh_token: string };
	planted.add(pair.access_token).add(pair.refresh_token);
	const r = await client.call("session revoke", "/v1/auth/revoke", {
		method: "POST",
		json: { refresh_token: pair.refresh_token },
	});
	if (!expectStatus(r, "POST /v1/auth/revoke", with503([200])) || r.status !== 200) return;
	ended.push({ what: "revoked session's access token", token: pair.access_token, at: now() });
	await refusedWrite(pair.access_token, "revoked session's access token");
}

const WEIGHTS: [number, (u: User) => Promise<void>][] = [
	[1.5, opRevoke],
	[1, opEditOAuthAccessToken],
	[24, opRead],
	[6, opToken],
	[6, (u) => opWrite(u, true)],
	[5, (u) => opWrite(u, false)],
	[16, opLease],
	[8, (u) => opLeaseOAuth(u, false)],
	[3, (u) => opLeaseOAuth(u, true)],
	[5, opCross],
	[2, () => opSignup()],
	[1, () => opDelete()],
	[0.5, () => opMaintenance()],
];
const TOTAL_WEIGHT = WEIGHTS.reduce((s, [w]) => s + w, 0);

async function agentRun(): Promise<void> {
	// Bounded in count and in time.
	for (let i = 0; i < SECONDS * 400 && now() < DURATION_MS; i++) {
		let r = Math.random() * TOTAL_WEIGHT;
		const u = pick(liveUsers());
		for (const [w, op] of WEIGHTS) {
			r -= w;
			if (r <= 0) {
				await op(u);
				break;
			}
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Faults and recovery.

const recoveries: { fault: string; ms: number; ok: boolean }[] = [];

/** From the fault's end until a full round of probes passes; bounded at 15 s. */
async function recover(fault: string, withOAuth: boolean): Promise<void> {
	const endedAt = now();
	for (let round = 0; now() - endedAt < 15_000 && round < 300; round++) {
		const probes: Promise<boolean>[] = [
			client.call("probe", "/health/ready", { record: false }).then((a) => a.status === 200),
			client
				.call("probe", `/v1/credentials/${probeApi.id}/leases`, {
					method: "POST",
					token: probeUser.key,
					json: { ttl_seconds: 5 },
					record: false,
				})
				.then((a) => a.status === 201),
			client
				.call("probe", "/v1/credentials", { token: probeUser.key, record: false })
				.then((a) => a.status === 200),
			client
				.call("probe", "/v1/auth/token", {
					method: "POST",
					json: { grant_type: "api_key", api_key: probeUser.key },
					record: false,
				})
				.then((a) => a.status === 200),
		];
		if (withOAuth)
			probes.push(
				sql(ageSql, [probeOAuth.id])
					.then(() =>
						client.call("probe", `/v1/credentials/${probeOAuth.id}/leases`, {
							method: "POST",
							token: probeUser.key,
							json: { ttl_seconds: 5 },
							record: false,
						}),
					)
					.then((a) => a.status === 201)
					.catch(() => false),
			);
		if ((await Promise.all(probes)).every(Boolean)) {
			const ms = now() - endedAt;
			recoveries.push({ fault, ms, ok: ms <= RECOVERY_MS });
			rec.expect(ms <= RECOVERY_MS, {
				invariant: "full service back within 5 s",
				op: "probes: /health/ready, lease, listing, token (and an OAuth refresh)",
				faults: `${fault} (ended)`,
				expected: `≤ ${RECOVERY_MS} ms`,
				actual: `${ms.toFixed(0)} ms`,
			});
			return;
		}
		await sleep(100);
	}
	recoveries.push({ fault, ms: Number.POSITIVE_INFINITY, ok: false });
	rec.fail({
		invariant: "full service back within 5 s",
		op: "probes: /health/ready, lease, listing, token (and an OAuth refresh)",
		faults: `${fault} (ended)`,
		expected: `≤ ${RECOVERY_MS} ms`,
		actual: "not back within 15 s",
	});
}

async function redisFault(): Promise<void> {
	if (!redis) return;
	await sleep(REDIS_AT - now());
	faults.start("redis-down");
	await redis.kill();
	console.log(`[soak] ${(now() / 1000).toFixed(1)} s: redis-server killed`);
	// What needs no Redis, asked on purpose while it is down.
	const until = REDIS_AT + REDIS_FOR;
	for (let i = 0; i < 200 && now() < until; i++) {
		await opRead(pick(liveUsers()));
		await sleep(100);
	}
	await sleep(until - now());
	await redis.start();
	redisRestarts++;
	faults.end("redis-down");
	console.log(`[soak] ${(now() / 1000).toFixed(1)} s: redis-server back, empty`);
	await recover("redis-down (back empty)", false);
}

const pgCuts: number[] = [];
async function pgFault(): Promise<void> {
	for (const at of PG_AT) {
		await sleep(at - now());
		faults.start("pg-cut");
		const r = await sql(
			"select count(*)::int as n from (select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()) t",
			[dbName],
		).catch(() => null);
		const n = (r?.rows[0] as { n?: number } | undefined)?.n ?? 0;
		pgCuts.push(n);
		faults.end("pg-cut");
		console.log(`[soak] ${(now() / 1000).toFixed(1)} s: ${n} Postgres connections terminated`);
		await recover("pg-cut (every connection terminated)", false);
	}
}

/**
 * Postgres refuses every audit write for a while (a trigger on audit_events), as a failing or
 * unreachable database would refuse the deferred write after a response: the events must wait in
 * Redis and reach their chains through the scheduled write-back, none lost, none twice.
 */
async function auditFault(): Promise<void> {
	await sleep(AUDIT_AT - now());
	await sql(
		"create or replace function soak_fail_audit() returns trigger language plpgsql as $$ begin raise exception 'soak: audit writes refused'; end $$",
	);
	await sql(
		"create trigger soak_fail_audit before insert on audit_events for each row execute function soak_fail_audit()",
	);
	faults.start("audit-writes-fail");
	console.log(`[soak] ${(now() / 1000).toFixed(1)} s: audit writes refused by Postgres`);
	await sleep(AUDIT_AT + AUDIT_FOR - now());
	await sql("drop trigger soak_fail_audit on audit_events");
	faults.end("audit-writes-fail");
	console.log(`[soak] ${(now() / 1000).toFixed(1)} s: audit writes accepted again`);
}

async function postJson(url: string, body: unknown, method = "POST"): Promise<void> {
	const res = await fetch(url, {
		method,
		headers: { "content-type": "application/json" },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	await res.arrayBuffer();
}

let victimOutcome = "not exercised";
async function oauthAndAgentMailFaults(): Promise<void> {
	await sleep(OAUTH_AT - now());
	const control = `${agentmail.url}/_control/orgs/${encodeURIComponent(orgKey)}`;
	// The victim first meets 500s (transient), then a refusal of its refresh token.
	await postJson(oauth.tokenFaultsUrl, {
		rules: [
			{ account: victim.account, mode: "status", status: 500, times: 2 },
			{ account: victim.account, mode: "invalid_grant", times: 1 },
			{ mode: "delay", delay_ms: 2000, times: 10_000 },
		],
	});
	faults.start("oauth-500-then-invalid_grant");
	faults.start("oauth-slow");
	await postJson(`${control}/rules`, { rules: [{ mode: "hang", times: 100_000 }] });
	faults.start("agentmail-timeout");
	console.log(
		`[soak] ${(now() / 1000).toFixed(1)} s: OAuth 500s/invalid_grant/slow, AgentMail hanging`,
	);
	const statuses: number[] = [];
	for (let i = 0; i < 8 && now() < OAUTH_AT + OAUTH_FOR; i++) {
		await sql(
			"update credentials set token_issued_at = now() - interval '100 seconds', access_token_expires_at = now() + interval '20 seconds', refresh_retry_at = null where id = $1",
			[victim.id],
		).catch(() => {});
		const a = await client.call("lease oauth (victim)", `/v1/credentials/${victim.id}/leases`, {
			method: "POST",
			token: victimUser.key,
			json: { ttl_seconds: 30 },
		});
		statuses.push(a.status);
		expectStatus(a, "POST /v1/credentials/{victim}/leases", with503([201, 502, 409]));
		if (a.status === 409) break;
	}
	victimOutcome = statuses.join(" → ");
	await sleep(OAUTH_AT + OAUTH_FOR - now());
	await postJson(oauth.tokenFaultsUrl, undefined, "DELETE");
	await postJson(control.concat("/rules"), undefined, "DELETE");
	await postJson(control.concat("/release"), {});
	faults.end("oauth-500-then-invalid_grant");
	faults.end("oauth-slow");
	faults.end("agentmail-timeout");
	console.log(`[soak] ${(now() / 1000).toFixed(1)} s: OAuth and AgentMail faults over`);
	await recover("oauth + agentmail faults", true);
}

// ---------------------------------------------------------------------------------------------
// The run.

let exitCode = 1;
let logSummary = "";
try {
	console.log(`[soak] set up in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`);
	console.log(
		`[soak] workload starts; faults from ${(FIRST_FAULT / 1000).toFixed(1)} s to ${(LAST_FAULT_END / 1000).toFixed(1)} s`,
	);
	await Promise.all([
		...Array.from({ length: CONCURRENCY }, agentRun),
		redisFault(),
		pgFault(),
		auditFault(),
		oauthAndAgentMailFaults(),
	]);
	console.log(`[soak] ${(now() / 1000).toFixed(1)} s: workload over; checking invariants`);
	await finalChecks();
	await auditCheck();
	exitCode = report();
	console.log(`[soak] ${((performance.now() - startedAt) / 1000).toFixed(1)} s in all`);
} finally {
	await cleanup();
}
process.exit(exitCode);

// ---------------------------------------------------------------------------------------------
// Invariants at the end.

/**
 * Every lease granted during the run (and by the final checks) has exactly one `lease.granted`
 * event in Postgres, however the faults fell: an event whose write failed waited in Redis and the
 * scheduled write-back stored it (docs/audit.md). Deferred writes finish after their responses,
 * so the check runs the write-back and reads again until every event is there, for at most 15 s.
 */
async function auditCheck(): Promise<void> {
	const granted = client.granted;
	let counts = new Map<string, number>();
	const deadline = performance.now() + 15_000;
	for (;;) {
		const drained = await client.call("audit write-back", "/v1/admin/maintenance/run", {
			method: "POST",
			token: admin,
			json: {},
			record: false,
			hangMs: 60_000,
		});
		const rows = await sql(
			"select (detail::jsonb)->>'lease_id' as id, count(*)::int as n from audit_events where action = 'lease.granted' group by 1",
		);
		counts = new Map(rows.rows.map((r: { id: string; n: number }) => [r.id, r.n]));
		const missing = [...granted.keys()].filter((id) => !counts.has(id));
		if (missing.length === 0 || performance.now() > deadline || drained.status === 0) break;
	}
	rec.check("every granted lease has exactly one audit event", granted.size);
	for (const [id, faultsThen] of granted) {
		const n = counts.get(id) ?? 0;
		if (n === 1) continue;
		rec.fail({
			invariant: "every granted lease has exactly one audit event",
			op: `lease ${id}`,
			faults: faultsThen,
			expected: "1 lease.granted event",
			actual: `${n}`,
		});
	}
	console.log(
		`[soak] audit: ${granted.size} leases granted, ${[...granted.keys()].filter((id) => counts.get(id) === 1).length} with exactly one lease.granted event`,
	);
}

async function finalChecks(): Promise<void> {
	// Every live credential leases what was last written; every OAuth credential still refreshes.
	for (const u of [...liveUsers(), victimUser, probeUser]) {
		for (const c of u.creds) {
			if (c.type === "oauth2") {
				await finalOAuth(u, c);
				continue;
			}
			const a = await client.call("final lease", `/v1/credentials/${c.id}/leases`, {
				method: "POST",
				token: u.key,
				json: { ttl_seconds: 5 },
				record: false,
			});
			const got =
				a.status === 201
					? ((a.body as { secret: Record<string, string> }).secret[secretField(c)] ?? "")
					: "";
			rec.expect(a.status === 201 && c.accepted.has(got), {
				invariant: "no credential lost or corrupted",
				op: `final lease of ${c.type} ${c.id}`,
				faults: "none (after the run)",
				expected: `201 with the last value written (${[...c.accepted].map((s) => s.slice(0, 18)).join(" | ")})`,
				actual: `${a.status} ${got ? `${got.slice(0, 18)}…${c.written.has(got) ? " (an older write)" : " (never written)"}` : a.text.slice(0, 200)}`,
				requestId: a.requestId,
			});
		}
	}
	// Refresh tokens presented more than once at the provider.
	for (const u of [...users, victimUser, probeUser]) {
		const c = u.creds.find((x) => x.type === "oauth2");
		if (!c?.account) continue;
		const r = (await (
			await fetch(`${oauth.refreshAttemptsUrl}?account=${encodeURIComponent(c.account)}`)
		).json()) as { issued: number; attempts: number[]; refresh_tokens: string[] };
		for (const t of r.refresh_tokens) planted.add(t);
		const over = r.attempts.filter((n) => n > 1);
		rec.check("≤ 1 token-endpoint call per refresh token", r.attempts.length);
		if (over.length)
			rec.fail({
				invariant: "≤ 1 token-endpoint call per refresh token",
				op: `refreshes of ${c.id} (account ${c.account})`,
				faults: "any",
				expected: "each refresh token presented once",
				actual: `${over.length} of ${r.issued} presented ${over.join(", ")} times`,
			});
	}
	// Deleted accounts are gone: their credentials answer 404 to the admin's listing of users.
	for (const u of deletedUsers) {
		const a = await client.call("final: deleted user", `/v1/admin/users/${u.id}`, {
			token: admin,
			record: false,
		});
		expectStatus(a, "GET /v1/admin/users/{deleted} after maintenance", [404, 200]);
	}
	// Ended sessions and deleted users stay ended, Redis restarted empty or not.
	for (const e of ended) {
		const read = await client.call("final: ended token read", "/v1/me", {
			token: e.token,
			record: false,
		});
		const age = now() - e.at;
		if (age > 10_500 || read.status !== 200)
			expectStatus(read, `GET /v1/me (${e.what}, ${(age / 1000).toFixed(0)} s after)`, [401, 429]);
		await refusedWrite(e.token, `${e.what}, at the end`);
	}
	// AgentMail pod keys are secrets Latchkey handled: none may be in a log line.
	const org = (await (
		await fetch(`${agentmail.url}/_control/orgs/${encodeURIComponent(orgKey)}`)
	).json()) as { api_keys: { api_key: string }[] };
	for (const k of org.api_keys) planted.add(k.api_key);
	await waitForQuietLog(logPath, 10_000);
	const wranglerLog = readWorkerLog(logPath);
	const stderrLines = stderr.text().split("\n");
	const stdoutLines = workerStdout.join("").split("\n");
	const lines = [...wranglerLog.lines, ...stderrLines, ...stdoutLines];
	const records = lines.filter((l) => l.startsWith('{"level":')).length;
	logSummary = `${records} worker log records (${stdoutLines.length} stdout and ${stderrLines.length} stderr lines, ${wranglerLog.lines.length} lines of wrangler's log)`;
	if (records === 0)
		rec.fail({
			invariant: "no secret in a log line",
			op: "log capture",
			faults: "none",
			expected: "the worker's log lines (its stderr, or wrangler's log under BENCH_DEV=1)",
			actual: "no worker log record captured: cannot check (did startWorker change?)",
		});
	const leaks = findSecrets(lines, planted);
	rec.check("no secret in a log line", planted.size);
	for (const leak of leaks.slice(0, 20))
		rec.fail({
			invariant: "no secret in a log line",
			op: "worker log",
			faults: "any",
			expected: "no planted secret",
			actual: `${leak.secret} in a log line`,
			excerpt: leak.line,
		});
}

async function finalOAuth(u: User, c: Cred): Promise<void> {
	const meta = await client.call("final GET oauth", `/v1/credentials/${c.id}`, {
		token: u.key,
		record: false,
	});
	const status = (meta.body as { status?: string } | null)?.status;
	const applied = (await (await fetch(oauth.tokenFaultsUrl)).json()) as {
		applied: { account: string | null; mode: string }[];
	};
	const refused = applied.applied.some(
		(f) => f.account === c.account && f.mode === "invalid_grant",
	);
	if (status === "reconnect_required") {
		rec.expect(refused, {
			invariant: "no refresh token lost",
			op: `credential ${c.id} (account ${c.account})`,
			faults: "none (after the run)",
			expected: "active: the provider never refused its refresh token",
			actual: "reconnect_required",
			requestId: meta.requestId,
		});
		return;
	}
	if (c === victim && refused)
		rec.fail({
			invariant: "no refresh token lost",
			op: `victim ${c.id}`,
			faults: "oauth-500-then-invalid_grant",
			expected: "reconnect_required after the provider's invalid_grant",
			actual: String(status),
			requestId: meta.requestId,
		});
	await sql(
		"update credentials set token_issued_at = now() - interval '100 seconds', access_token_expires_at = now() + interval '20 seconds', refresh_retry_at = null where id = $1",
		[c.id],
	);
	const a = await client.call("final oauth refresh", `/v1/credentials/${c.id}/leases`, {
		method: "POST",
		token: u.key,
		json: { ttl_seconds: 60 },
		record: false,
	});
	let active = false;
	const token =
		a.status === 201
			? (a.body as { secret: { access_token?: string } }).secret.access_token
			: undefined;
	if (token) {
		planted.add(token);
		const res = await fetch(oauth.introspectionUrl, {
			method: "POST",
			headers: {
				authorization: `Basic ${btoa(`${oauth.clientId}:${oauth.clientSecret}`)}`,
				"content-type": "application/x-www-form-urlencoded",
			},
			body: new URLSearchParams({ token }),
		});
		active = ((await res.json()) as { active?: boolean }).active === true;
	}
	rec.expect(a.status === 201 && active, {
		invariant: "no refresh token lost",
		op: `final refresh of ${c.id} (account ${c.account})`,
		faults: "none (after the run)",
		expected: "201 with an access token oidc-provider introspects as active",
		actual: `${a.status} ${token ? `active=${active}` : a.text.slice(0, 200)}`,
		requestId: a.requestId,
	});
}

function report(): number {
	console.log("\nPer operation (req/s, p50/p99 ms) before, during and after the faults:");
	console.table(perfTable(rec));
	console.log("Faults:");
	for (const e of faults.log) console.log(`  ${(e.at / 1000).toFixed(1)} s ${e.event} ${e.fault}`);
	if (redisSkipped) console.log(`  SKIPPED redis-down: ${redisSkipped}`);
	console.log(`  postgres connections terminated per cut: ${pgCuts.join(", ") || "—"}`);
	console.log(`  victim's leases during the OAuth fault: ${victimOutcome}`);
	console.log(
		`  recovery: ${recoveries.map((r) => `${r.fault} ${Number.isFinite(r.ms) ? `${r.ms.toFixed(0)} ms` : "never"}`).join("; ")}`,
	);
	console.log(`  logs: ${logSummary}; ${planted.size} planted secrets searched`);
	console.log("\nInvariants:");
	const table = invariantTable(rec, INVARIANTS);
	console.table(table);
	if (rec.violations.length) {
		console.log(`\n${rec.violations.length} violations (first 30):`);
		const workerLines = [
			...readWorkerLog(logPath).lines,
			...stderr.text().split("\n"),
			...workerStdout.join("").split("\n"),
		];
		for (const v of rec.violations.slice(0, 30)) {
			// The worker's own log lines for the request (its warn and error lines carry the cause).
			const logged = v.requestId
				? workerLines
						.filter((l) => l.includes(v.requestId as string) && l.startsWith("{"))
						.slice(0, 3)
				: [];
			v.excerpt = [v.excerpt, ...logged.map((l) => `worker log: ${l.slice(0, 600)}`)]
				.filter(Boolean)
				.join("\n      ");
			console.log(
				`  [${v.invariant}] ${templ(v.op)} during ${v.faults}: expected ${v.expected}, got ${v.actual}${
					v.requestId ? ` (request ${v.requestId})` : ""
				}${v.excerpt ? `\n      ${v.excerpt}` : ""}`,
			);
		}
	}
	const failed = table.some((r) => r.violations > 0);
	console.log(failed ? "\nSOAK FAILED" : "\nSOAK PASSED");
	return failed ? 1 : 0;
}
