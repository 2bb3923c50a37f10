import type { Redis } from "@upstash/redis/cloudflare";
import type { Config, Env } from "../config.ts";
import { createDb, type Database, type DbHandle } from "../db/client.ts";
import { createRedis } from "../redis/client.ts";
import type { Logger } from "./log.ts";
import type { Timing } from "./timing.ts";

/**
 * Per-request services. Built lazily, once per request: a route that needs no database opens no
 * connection, and every route that does shares one pool, closed after the response.
 */
export interface Services {
	readonly config: Config;
	readonly db: Database;
	readonly redis: Redis;
	readonly logger: Logger;
	readonly now: () => Date;
}

export function createServices(
	config: Config,
	logger: Logger,
	timing: Timing,
	now: () => Date = () => new Date(),
): { services: Services; dispose: () => Promise<void> } {
	let dbHandle: DbHandle | undefined;
	let redis: Redis | undefined;
	const services: Services = {
		config,
		logger,
		now,
		get db() {
			if (!dbHandle) {
				dbHandle = createDb(config.DATABASE_URL, config.LATCHKEY_DB_WS_PROXY, timing);
			}
			return dbHandle.db;
		},
		get redis() {
			redis ??= createRedis(config.UPSTASH_REDIS_REST_URL, config.UPSTASH_REDIS_REST_TOKEN, timing);
			return redis;
		},
	};
	return { services, dispose: async () => dbHandle?.end() };
}

export type AppEnv = {
	Bindings: Env;
	Variables: {
		requestId: string;
		timing: Timing;
		logger: Logger;
		services: Services;
	};
};
