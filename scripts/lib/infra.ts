import { type NeonHttpBridge, startNeonHttpBridge } from "../bridges/neon-http.ts";
import { startWsProxy } from "../bridges/neon-ws.ts";
import { startUpstashBridge } from "../bridges/upstash-rest.ts";
import { startEmbeddedPostgres } from "../engines/embedded-postgres.ts";
import { generateDevSecrets } from "./dev-secrets.ts";
import { createDatabase, dropDatabase, migrate } from "./migrate.ts";
import { canConnect } from "./net.ts";

export interface Infra {
	/** Every binding the worker needs, secrets included. */
	bindings: Record<string, string>;
	postgres: "real" | "embedded";
	redis: "real" | "embedded";
	databaseUrl: string;
	/** The server's maintenance database, for tests that create databases of their own. */
	adminUrl: string;
	/** The stand-in for Neon's HTTP endpoint; it counts the statements it serves. */
	sqlBridge: NeonHttpBridge;
	close(): Promise<void>;
}

/**
 * `LATCHKEY_ENGINES=embedded` forces the embedded engines even where real services listen (CI
 * runs the suite once each way); `real` (or CI) forbids falling back to them.
 */
export type EngineChoice = "auto" | "real" | "embedded";

export function engineChoice(env: NodeJS.ProcessEnv = process.env): EngineChoice {
	const chosen = env.LATCHKEY_ENGINES;
	if (chosen === "embedded" || chosen === "real") return chosen;
	if (chosen && chosen !== "auto") {
		throw new Error(`LATCHKEY_ENGINES must be auto, real or embedded, not ${chosen}`);
	}
	return env.CI ? "real" : "auto";
}

/**
 * What tests and benchmarks run the worker against: a fresh, migrated Postgres database behind
 * the two Neon bridges (HTTP for statements, WebSocket for interactive transactions) and the
 * Upstash REST bridge in front of Redis. Real services are used when reachable, unless the
 * engines are forced; `real` turns their absence into an error instead of a fallback.
 */
export async function startInfra(opts: { engines: EngineChoice; label: string }): Promise<Infra> {
	const pgUrl = process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
	const redisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
	const pg = new URL(pgUrl);
	const redis = new URL(redisUrl);
	const [realPg, realRedis] =
		opts.engines === "embedded"
			? [false, false]
			: await Promise.all([
					canConnect(pg.hostname, Number(pg.port || 5432), 1000),
					canConnect(redis.hostname, Number(redis.port || 6379), 1000),
				]);
	if (opts.engines === "real" && (!realPg || !realRedis)) {
		const missing = [!realPg && pgUrl, !realRedis && redisUrl].filter(Boolean).join(", ");
		throw new Error(`real Postgres and Redis are required (CI is set); unreachable: ${missing}`);
	}

	const cleanups: (() => Promise<void>)[] = [];
	const close = async () => {
		for (const cleanup of cleanups.reverse()) await cleanup().catch((e) => console.warn(e));
	};
	try {
		let databaseUrl: string;
		let adminUrl = pgUrl;
		if (realPg) {
			const name = `latchkey_${opts.label}_${Date.now()}_${Math.random().toString(36).slice(2, 8)}`;
			databaseUrl = await createDatabase(pgUrl, name);
			cleanups.push(() => dropDatabase(pgUrl, name));
		} else {
			console.warn(
				opts.engines === "embedded"
					? `[${opts.label}] LATCHKEY_ENGINES=embedded: using the embedded Postgres`
					: `[${opts.label}] Postgres unreachable at ${pgUrl}: using the embedded Postgres`,
			);
			const embedded = await startEmbeddedPostgres();
			adminUrl = embedded.databaseUrl;
			const name = `latchkey_${opts.label}`;
			databaseUrl = await createDatabase(adminUrl, name);
			cleanups.push(() => embedded.close());
		}
		await migrate(databaseUrl);

		const secrets = await generateDevSecrets();
		const wsProxy = await startWsProxy();
		cleanups.push(() => wsProxy.close());
		const sqlBridge = await startNeonHttpBridge();
		cleanups.push(() => sqlBridge.close());
		if (!realRedis)
			console.warn(
				opts.engines === "embedded"
					? `[${opts.label}] LATCHKEY_ENGINES=embedded: using the embedded Redis`
					: `[${opts.label}] Redis unreachable at ${redisUrl}: using the embedded Redis`,
			);
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
				LATCHKEY_DB_HTTP_ENDPOINT: sqlBridge.url,
				LATCHKEY_DB_WS_PROXY: `127.0.0.1:${wsProxy.port}`,
				UPSTASH_REDIS_REST_URL: bridge.url,
			},
			postgres: realPg ? "real" : "embedded",
			redis: bridge.mode === "redis" ? "real" : "embedded",
			databaseUrl,
			adminUrl,
			sqlBridge,
			close,
		};
	} catch (err) {
		await close();
		throw err;
	}
}
