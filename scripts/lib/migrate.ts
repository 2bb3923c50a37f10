import { fileURLToPath } from "node:url";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate as runMigrations } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations", import.meta.url));

/**
 * Applies the SQL that drizzle-kit generated into migrations/. Node-side on purpose: migrations
 * run from dev, test set-up and CI, never from a request.
 */
export async function migrate(
	databaseUrl: string,
	opts: { connectTimeoutMs?: number } = {},
): Promise<void> {
	const client = new pg.Client({
		connectionString: databaseUrl,
		...(opts.connectTimeoutMs ? { connectionTimeoutMillis: opts.connectTimeoutMs } : {}),
	});
	// The failing step goes with the error, for a message that says which it was.
	await client.connect().catch((err: unknown) => {
		throw Object.assign(err as Error, { step: "connecting to Postgres" });
	});
	try {
		// Concurrent migrators (two dev servers, parallel CI jobs) must not interleave DDL.
		await client.query("select pg_advisory_lock(7243917)");
		await runMigrations(drizzle({ client }), { migrationsFolder: MIGRATIONS_DIR }).catch(
			(err: unknown) => {
				throw Object.assign(err as Error, { step: "applying the migrations" });
			},
		);
	} finally {
		await client.query("select pg_advisory_unlock(7243917)").catch(() => {});
		await client.end();
	}
}

/** Connects once and disconnects: the database exists and lets this role in, or it throws. */
export async function checkConnect(databaseUrl: string, timeoutMs = 10_000): Promise<void> {
	const client = new pg.Client({
		connectionString: databaseUrl,
		connectionTimeoutMillis: timeoutMs,
	});
	client.on("error", () => {});
	try {
		await client.connect();
		await client.query("select 1");
	} finally {
		await client.end().catch(() => {});
	}
}

/** Creates a database (used for a fresh database per test run). */
export async function createDatabase(adminUrl: string, name: string): Promise<string> {
	if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`unsafe database name: ${name}`);
	const client = new pg.Client({ connectionString: adminUrl });
	await client.connect();
	try {
		await client.query(`create database ${name}`);
	} finally {
		await client.end();
	}
	const url = new URL(adminUrl);
	url.pathname = `/${name}`;
	return url.toString();
}

export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
	if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`unsafe database name: ${name}`);
	const client = new pg.Client({ connectionString: adminUrl });
	await client.connect();
	try {
		await client.query(`drop database if exists ${name} with (force)`);
	} finally {
		await client.end();
	}
}
