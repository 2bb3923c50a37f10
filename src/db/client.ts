import { neonConfig, Pool } from "@neondatabase/serverless";
import { drizzle, type NeonDatabase } from "drizzle-orm/neon-serverless";
import type { Timing } from "../http/timing.ts";
import * as schema from "./schema.ts";

export type Database = NeonDatabase<typeof schema>;

export interface DbHandle {
	db: Database;
	/** Ends the pool's connections; call through `waitUntil` so the response is not held. */
	end(): Promise<void>;
}

let configuredProxy: string | undefined | null = null;

/**
 * Neon's driver talks Postgres over WebSocket. Locally a bridge turns that back into TCP;
 * the bridge speaks plain ws, and pipelining TLS/startup only makes sense against Neon.
 */
function configureDriver(wsProxy: string | undefined): void {
	if (configuredProxy === wsProxy) return;
	configuredProxy = wsProxy;
	if (wsProxy) {
		neonConfig.wsProxy = (host, port) => `${wsProxy}/v1?address=${host}:${port}`;
		neonConfig.useSecureWebSocket = false;
		neonConfig.pipelineTLS = false;
		neonConfig.pipelineConnect = false;
	}
}

/**
 * A pool per request: Workers may not share I/O objects between requests, so a pool that
 * outlives its request would hand a later request a dead socket.
 */
export function createDb(
	databaseUrl: string,
	wsProxy: string | undefined,
	timing?: Timing,
): DbHandle {
	configureDriver(wsProxy);
	const pool = new Pool({ connectionString: databaseUrl, max: 4, connectionTimeoutMillis: 5000 });
	// Swallow idle-client errors (e.g. the server closing a socket) so they do not crash the isolate;
	// the next query reports the failure where it can be handled.
	pool.on("error", () => {});
	if (timing) {
		const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
		(pool as unknown as { query: typeof query }).query = (...args) =>
			timing.measure("pg", () => query(...args));
	}
	const db = drizzle({ client: pool, schema });
	let ended = false;
	return {
		db,
		end: async () => {
			if (ended) return;
			ended = true;
			await pool.end().catch(() => {});
		},
	};
}
