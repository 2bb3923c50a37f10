import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { Pool } from "@neondatabase/serverless";
import { sql } from "drizzle-orm";
import type fc from "fast-check";
import { createApp } from "../../src/app.ts";
import { createDb, type TxDatabase } from "../../src/db/client.ts";
import worker from "../../src/index.ts";

export const BASE = "http://latchkey.test";

export const randomIp = () =>
	`10.${Math.floor(Math.random() * 256)}.${Math.floor(Math.random() * 256)}.${Math.floor(Math.random() * 254) + 1}`;

type Known =
	| "DATABASE_URL"
	| "LATCHKEY_ADMIN_TOKEN"
	| "LATCHKEY_DB_HTTP_ENDPOINT"
	| "LATCHKEY_DB_WS_PROXY"
	| "LATCHKEY_HMAC_SECRET"
	| "LATCHKEY_JWT_SIGNING_KEYS"
	| "LATCHKEY_PUBLIC_URL"
	| "UPSTASH_REDIS_REST_TOKEN"
	| "UPSTASH_REDIS_REST_URL";
export const testEnv = env as unknown as Record<string, string> & Record<Known, string>;

/**
 * Makes Postgres refuse some writes, as a failing database would: a trigger that raises on
 * `event` of `table` rows matching `when` (SQL over `new`/`old`; built from ids the test made).
 * Returns the function that removes it.
 */
export async function failWrites(
	db: ReturnType<typeof testDb>["db"],
	table: "credentials" | "audit_events",
	event: "insert" | "update",
	when: string,
	name: string,
): Promise<() => Promise<unknown>> {
	const trigger = `lk_test_fail_${name.toLowerCase().replace(/[^a-z0-9_]/g, "_")}`;
	await db.execute(
		sql.raw(
			"create or replace function lk_test_fail_write() returns trigger language plpgsql as $$ begin raise exception 'simulated write failure'; end $$",
		),
	);
	await db.execute(
		sql.raw(
			`create trigger ${trigger} before ${event} on ${table} for each row when (${when}) execute function lk_test_fail_write()`,
		),
	);
	return () => db.execute(sql.raw(`drop trigger if exists ${trigger} on ${table}`));
}

/** A database handle on the worker's own paths (HTTP, and the pool for transactions). */
export function testDb() {
	return createDb(testEnv.DATABASE_URL, {
		httpEndpoint: testEnv.LATCHKEY_DB_HTTP_ENDPOINT,
		wsProxy: testEnv.LATCHKEY_DB_WS_PROXY,
	});
}

export type CallInit = RequestInit & { json?: unknown; token?: string; ip?: string };
type Fetcher = (
	req: Request,
	env: Record<string, unknown>,
	ctx: ExecutionContext,
) => Response | Promise<Response>;

/** Sends a request through the worker's real fetch handler, optionally with altered bindings. */
export function call(
	path: string,
	init: CallInit = {},
	envOverride?: Record<string, string | undefined>,
): Promise<Response> {
	return callWith(worker.fetch as unknown as Fetcher, path, init, envOverride);
}

/**
 * An app from the same factory with a clock the test moves, for expiry rules that would
 * otherwise need waiting.
 */
export function clockedApp(start = new Date()) {
	let current = start;
	const app = createApp({ now: () => current });
	return {
		now: () => current,
		advance(seconds: number) {
			current = new Date(current.getTime() + seconds * 1000);
		},
		call: (path: string, init: CallInit = {}, envOverride?: Record<string, string | undefined>) =>
			callWith(app.fetch as unknown as Fetcher, path, init, envOverride),
	};
}

async function callWith(
	fetcher: Fetcher,
	path: string,
	init: CallInit,
	envOverride?: Record<string, string | undefined>,
): Promise<Response> {
	const headers = new Headers(init.headers);
	let body = init.body;
	if (init.json !== undefined) {
		headers.set("content-type", "application/json");
		body = JSON.stringify(init.json);
	}
	if (init.token) headers.set("authorization", `Bearer ${init.token}`);
	// A fresh source per request unless the test names one, so negative tests do not spend
	// each other's failure budget.
	headers.set("cf-connecting-ip", init.ip ?? randomIp());
	const request = new Request(`${BASE}${path}`, { ...init, headers, body });
	const ctx = createExecutionContext();
	const response = await fetcher(
		request,
		envOverride ? { ...testEnv, ...envOverride } : testEnv,
		ctx,
	);
	await waitOnExecutionContext(ctx);
	return response;
}

export interface ErrorJson {
	error: { code: string; message: string; hint?: string; detail?: unknown; request_id: string };
}

export async function expectError(
	response: Response,
	status: number,
	code: string,
): Promise<ErrorJson> {
	const body = (await response.json()) as ErrorJson;
	if (response.status !== status || body.error?.code !== code) {
		throw new Error(`expected ${status} ${code}, got ${response.status} ${JSON.stringify(body)}`);
	}
	if (body.error.request_id !== response.headers.get("x-request-id")) {
		throw new Error("error.request_id must equal the X-Request-Id header");
	}
	return body;
}

/**
 * A transaction of the test's own on the worker's WebSocket path, open until `release`: it lets
 * a test prove that concurrent requests really overlapped instead of hoping they did. Lock (or
 * write) what the requests contend for, fire them, `waitForBlocked(n)` until n backends queue
 * behind this transaction, then `release` and let them race.
 */
export interface Holder {
	/** Runs a statement inside the held transaction. */
	query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
	/**
	 * Resolves once at least `count` backends wait, directly or through another waiter, on this
	 * transaction's locks; throws after `timeoutMs`, naming how many it saw.
	 */
	waitForBlocked(count: number, timeoutMs?: number): Promise<void>;
	/** Ends the transaction (commit, or rollback) and closes its connections. */
	release(how?: "commit" | "rollback"): Promise<void>;
}

const BLOCKED_BEHIND = `
	with recursive blocked(pid) as (
		select pid from pg_stat_activity where $1::int = any(pg_blocking_pids(pid))
		union
		select a.pid from pg_stat_activity a join blocked b on b.pid = any(pg_blocking_pids(a.pid))
	)
	select count(*)::int as n from blocked`;

export async function holdTransaction(): Promise<Holder> {
	const handle = testDb();
	// The driver's own pool, configured for the test bridges like the worker's.
	const pool = (handle.txDb() as TxDatabase & { $client: Pool }).$client;
	const client = await pool.connect();
	let released = false;
	try {
		await client.query("begin");
		const { rows } = await client.query<{ pid: number }>("select pg_backend_pid() as pid");
		const pid = rows[0]?.pid;
		if (pid === undefined) throw new Error("holdTransaction: no backend pid");
		return {
			async query<T>(text: string, params: unknown[] = []) {
				return (await client.query(text, params)).rows as T[];
			},
			async waitForBlocked(count: number, timeoutMs = 10_000) {
				const deadline = Date.now() + timeoutMs;
				let seen = 0;
				// Polled on the pool's other connection: inside the held transaction the statistics
				// views would show one snapshot for its whole life.
				while (Date.now() < deadline) {
					const result = await pool.query<{ n: number }>(BLOCKED_BEHIND, [pid]);
					seen = result.rows[0]?.n ?? 0;
					if (seen >= count) return;
					await new Promise((resolve) => setTimeout(resolve, 20));
				}
				throw new Error(`expected ${count} backends blocked behind the test's lock, saw ${seen}`);
			},
			async release(how: "commit" | "rollback" = "commit") {
				if (released) return;
				released = true;
				try {
					await client.query(how);
				} finally {
					client.release();
					await handle.end();
				}
			},
		};
	} catch (err) {
		client.release();
		await handle.end();
		throw err;
	}
}

/**
 * Reads a 4xx answer and throws unless it is in API.md's error shape: a snake_case code, a
 * message, a non-empty hint, the request id of the header, and `WWW-Authenticate: Bearer` on
 * a 401. `what` names the request in the failure.
 */
export async function expect4xxShape(res: Response, what: string): Promise<{ code: string }> {
	const raw = await res.text();
	let parsed: { error?: Record<string, unknown> };
	try {
		parsed = JSON.parse(raw);
	} catch {
		throw new Error(`4xx without a JSON body: ${what} → ${res.status} ${raw.slice(0, 200)}`);
	}
	const e = parsed.error ?? {};
	const ok =
		typeof e.code === "string" &&
		/^[a-z][a-z0-9_]*$/.test(e.code) &&
		typeof e.message === "string" &&
		e.message.length > 0 &&
		typeof e.hint === "string" &&
		e.hint.length > 0 &&
		e.request_id === res.headers.get("x-request-id") &&
		(res.status !== 401 || (res.headers.get("www-authenticate") ?? "").startsWith("Bearer"));
	if (!ok) throw new Error(`not in the error shape: ${what} → ${res.status} ${raw.slice(0, 300)}`);
	return { code: e.code as string };
}

/** Throws a seeded fuzz run's failure with what replays it (seed, path) and how far it got. */
export function throwIfFuzzFailed<T>(result: fc.RunDetails<T>, seed: number, sent: number): void {
	if (!result.failed) return;
	throw new Error(
		`fuzz failed (seed ${seed}, path ${result.counterexamplePath}) after ${sent} requests: ${String(
			(result.errorInstance as Error | undefined)?.message ?? result.errorInstance,
		)}`,
	);
}
