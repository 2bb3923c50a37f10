import {
	type NeonQueryFunction,
	type NeonQueryPromise,
	neon,
	neonConfig,
	Pool,
} from "@neondatabase/serverless";
import type { ExtractTablesWithRelations } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { drizzle as drizzleHttp, type NeonHttpDatabase } from "drizzle-orm/neon-http";
import { drizzle as drizzleWs, type NeonDatabase } from "drizzle-orm/neon-serverless";
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from "drizzle-orm/pg-core";
import { measureInRequest, type Timing } from "../timing.ts";
import * as schema from "./schema.ts";

type Schema = typeof schema;

/**
 * One-shot statements and non-interactive batches over Neon's HTTP endpoint: one HTTPS round
 * trip each, no connection set-up. Every request uses this path unless it needs a transaction
 * that reads before it decides what to write.
 */
export type Database = NeonHttpDatabase<Schema>;

/** Interactive transactions (row locks, read-then-write) over a per-request WebSocket pool. */
export type TxDatabase = NeonDatabase<Schema>;

/** An open interactive transaction. */
export type Tx = PgTransaction<PgQueryResultHKT, Schema, ExtractTablesWithRelations<Schema>>;

/** Anything a plain statement can run on: the HTTP handle, the pool, or a transaction. */
export type Queryable = PgDatabase<PgQueryResultHKT, Schema>;

export interface DbHandle {
	/** The HTTP path; costs nothing until a statement runs. */
	readonly db: Database;
	/** The WebSocket pool, opened on first use; only for interactive transactions. */
	txDb(): TxDatabase;
	/** Ends the pool's connections, if any; call through `waitUntil` so the response is not held. */
	end(): Promise<void>;
}

export interface DriverEndpoints {
	/** `http://host:port/sql` of a local stand-in for Neon's HTTP endpoint; unset in production. */
	httpEndpoint?: string;
	/** `host:port` of a local WebSocket-to-TCP bridge; unset in production. */
	wsProxy?: string;
}

let configured: string | null = null;

/**
 * The driver's endpoints are module globals. Against Neon they derive from the database host;
 * locally they point at the bridges, which speak plain HTTP and ws, so TLS pipelining is off.
 */
function configureDriver({ httpEndpoint, wsProxy }: DriverEndpoints): void {
	const key = `${httpEndpoint ?? ""}|${wsProxy ?? ""}`;
	if (configured === key) return;
	configured = key;
	if (httpEndpoint) neonConfig.fetchEndpoint = httpEndpoint;
	if (wsProxy) {
		neonConfig.wsProxy = (host, port) => `${wsProxy}/v1?address=${host}:${port}`;
		neonConfig.useSecureWebSocket = false;
		neonConfig.pipelineTLS = false;
		neonConfig.pipelineConnect = false;
	}
}

/**
 * Wraps the HTTP query function so every round trip shows in the running request's
 * Server-Timing. A single statement runs through its query object's `execute`; the object itself
 * must stay the driver's, because a batch accepts nothing else (and runs through `transaction`).
 */
function timed(sql: NeonQueryFunction<false, false>): NeonQueryFunction<false, false> {
	const query = ((text: string, params?: unknown[], opts?: object) => {
		const pending = sql.query(text, params, opts) as NeonQueryPromise<false, false>;
		const execute = pending.execute;
		pending.execute = (...args) => measureInRequest("pg", () => execute(...args));
		return pending;
	}) as NeonQueryFunction<false, false>["query"];
	const transaction = ((queries: unknown, opts?: object) =>
		measureInRequest("pg", () =>
			sql.transaction(queries as never, opts as never),
		)) as NeonQueryFunction<false, false>["transaction"];
	return Object.assign(Object.create(sql) as NeonQueryFunction<false, false>, {
		query,
		transaction,
	});
}

const httpHandles = new Map<string, Database>();

/**
 * The HTTP handle, once per isolate and database URL: it holds no connection (each statement
 * is a `fetch`), and building it (drizzle walks the whole schema) cost a lease measurable CPU
 * when it was done per request.
 */
function httpDatabase(databaseUrl: string): Database {
	let db = httpHandles.get(databaseUrl);
	if (!db) {
		db = drizzleHttp({ client: timed(neon(databaseUrl)), schema });
		if (httpHandles.size >= 8) httpHandles.clear();
		httpHandles.set(databaseUrl, db);
	}
	return db;
}

/**
 * Per request. The HTTP handle holds no connection; the pool, when a transaction needs one,
 * must not outlive its request, because Workers may not share I/O objects between requests.
 */
export function createDb(
	databaseUrl: string,
	endpoints: DriverEndpoints,
	timing?: Timing,
): DbHandle {
	configureDriver(endpoints);
	const db = httpDatabase(databaseUrl);
	let pool: Pool | undefined;
	let tx: TxDatabase | undefined;
	let ended = false;
	return {
		db,
		txDb() {
			if (ended) throw new Error("the request's database pool is already closed");
			if (!tx) {
				pool = new Pool({ connectionString: databaseUrl, max: 2, connectionTimeoutMillis: 5000 });
				// An idle client's socket error (the server closing it) must not crash the isolate;
				// the next query reports the failure where it can be handled.
				pool.on("error", () => {});
				if (timing) {
					// pg's own query() calls connect with a callback; only the promise form (what a
					// transaction uses) is timed, and the callback form is passed through untouched.
					const connect = pool.connect.bind(pool) as (...args: unknown[]) => unknown;
					(pool as unknown as { connect: typeof connect }).connect = (...args) =>
						args.length > 0
							? connect(...args)
							: timing.measure("pg-ws", () => connect() as Promise<unknown>);
				}
				tx = drizzleWs({ client: pool, schema });
			}
			return tx;
		},
		end: async () => {
			if (ended) return;
			ended = true;
			await pool?.end().catch(() => {});
		},
	};
}

/**
 * A statement a caller runs inside its own batch (one round trip for it and the caller's reads),
 * and the verdict on the rows it returned: `assert` throws when they refuse the request.
 */
export interface BatchedCheck {
	query: BatchItem<"pg">;
	assert(rows: unknown): void;
}
