import type { Redis } from "@upstash/redis/cloudflare";
import type { Config } from "./config.ts";
import { createDb, type Database, type DbHandle, type TxDatabase } from "./db/client.ts";
import type { Logger } from "./log.ts";
import { createRedis } from "./redis/client.ts";
import type { Timing } from "./timing.ts";

/**
 * Per-request services, built lazily and once per request. Statements go over HTTP; only an
 * interactive transaction opens the request's WebSocket pool, closed after the response.
 * Domain code takes this bag rather than a Hono context, so the scheduled handler and tests can
 * build one without a request.
 */
export interface Services {
	readonly config: Config;
	/** One HTTP round trip per statement or batch; what almost every request uses. */
	readonly db: Database;
	/** Opens a WebSocket pool on first use: only for transactions that must be interactive. */
	readonly txDb: TxDatabase;
	readonly redis: Redis;
	/** The same Redis, replies undecoded: for the lease scripts, which answer plain strings. */
	readonly rawRedis: Redis;
	readonly logger: Logger;
	readonly now: () => Date;
	/**
	 * Work the caller need not wait for (an audit write on a refusal path): handed to the
	 * request's waitUntil, so it adds no round trip before the response. Without a request (the
	 * scheduled handler, a test's services) it is awaited here.
	 */
	afterResponse(work: Promise<unknown>): Promise<void>;
}

export function createServices(
	config: Config,
	logger: Logger,
	timing: Timing,
	now: () => Date = () => new Date(),
	/** The request's waitUntil; returns false when there is none to hand work to. */
	waitUntil?: (work: Promise<unknown>) => boolean,
): { services: Services; dispose: () => Promise<void> } {
	let dbHandle: DbHandle | undefined;
	let redis: Redis | undefined;
	let rawRedis: Redis | undefined;
	const handle = () => {
		dbHandle ??= createDb(
			config.DATABASE_URL,
			{ httpEndpoint: config.LATCHKEY_DB_HTTP_ENDPOINT, wsProxy: config.LATCHKEY_DB_WS_PROXY },
			timing,
		);
		return dbHandle;
	};
	const services: Services = {
		config,
		logger,
		now,
		afterResponse(work) {
			if (waitUntil?.(work)) return Promise.resolve();
			return work.then(() => undefined);
		},
		get db() {
			return handle().db;
		},
		get txDb() {
			return handle().txDb();
		},
		get redis() {
			redis ??= createRedis(config.UPSTASH_REDIS_REST_URL, config.UPSTASH_REDIS_REST_TOKEN);
			return redis;
		},
		get rawRedis() {
			rawRedis ??= createRedis(config.UPSTASH_REDIS_REST_URL, config.UPSTASH_REDIS_REST_TOKEN, {
				raw: true,
			});
			return rawRedis;
		},
	};
	return { services, dispose: async () => dbHandle?.end() };
}
