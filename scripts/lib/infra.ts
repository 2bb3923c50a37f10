import { generateDevSecrets } from "./dev-secrets.ts";
import { startEmbeddedPostgres } from "../engines/embedded-postgres.ts";
import { createDatabase, dropDatabase, migrate } from "./migrate.ts";
import { canConnect } from "./net.ts";
import { startUpstashBridge } from "../bridges/upstash-rest.ts";
import { startWsProxy } from "../bridges/neon-ws.ts";

export interface Infra {
	/** Every binding the worker needs, secrets included. */
	bindings: Record<string, string>;
	postgres: "real" | "embedded";
	redis: "real" | "embedded";
	databaseUrl: string;
	close(): Promise<void>;
}

/**
 * What tests and benchmarks run the worker against: a fresh, migrated Postgres database behind
 * the WebSocket bridge and the Upstash REST bridge in front of Redis. Real services are used
 * when reachable; `requireReal` (CI) turns their absence into an error instead of a fallback
 * to the embedded engines.
 */
export async function startInfra(opts: { requireReal: boolean; label: string }): Promise<Infra> {
	const pgUrl = process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
	const redisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
	const pg = new URL(pgUrl);
	const redis = new URL(redisUrl);
	const [realPg, realRedis] = await Promise.all([
		canConnect(pg.hostname, Number(pg.port || 5432), 1000),
		canConnect(redis.hostname, Number(redis.port || 6379), 1000),
	]);
	if (opts.requireReal && (!realPg || !realRedis)) {
		const missing = [!realPg && pgUrl, !realRedis && redisUrl].filter(Boolean).join(", ");
		throw new Error(`real Postgres and Redis are required (CI is set); unreachable: ${missing}`);
	}

	const cleanups: (() => Promise<void>)[] = [];
	const close = async () => {
		for (const cleanup of cleanups.reverse()) await cleanup().catch((e) => console.warn(e));
	};
	try {
		let databaseUrl: string;
		if (realPg) {
			const name = `latchkey_${opts.label}_${Date.now()}_${Math.random().toString(36).slice(2, 8)}`;
			databaseUrl = await createDatabase(pgUrl, name);
			cleanups.push(() => dropDatabase(pgUrl, name));
		} else {
			console.warn(`[${opts.label}] Postgres unreachable at ${pgUrl}: using embedded PGlite`);
			const embedded = await startEmbeddedPostgres();
			databaseUrl = embedded.databaseUrl;
			cleanups.push(() => embedded.close());
		}
		await migrate(databaseUrl);

		const secrets = await generateDevSecrets();
		const wsProxy = await startWsProxy();
		cleanups.push(() => wsProxy.close());
		if (!realRedis)
			console.warn(`[${opts.label}] Redis unreachable at ${redisUrl}: using the embedded engine`);
		const bridge = await startUpstashBridge(
			realRedis
				? { token: secrets.UPSTASH_REDIS_REST_TOKEN, redisUrl }
				: { token: secrets.UPSTASH_REDIS_REST_TOKEN, embedded: true },
		);
		cleanups.push(() => bridge.close());

		return {
			bindings: {
				...secrets,
				DATABASE_URL: databaseUrl,
				LATCHKEY_DB_WS_PROXY: `127.0.0.1:${wsProxy.port}`,
				UPSTASH_REDIS_REST_URL: bridge.url,
			},
			postgres: realPg ? "real" : "embedded",
			redis: bridge.mode === "redis" ? "real" : "embedded",
			databaseUrl,
			close,
		};
	} catch (err) {
		await close();
		throw err;
	}
}
