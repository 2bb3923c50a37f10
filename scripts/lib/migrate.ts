import { fileURLToPath } from "node:url";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate as runMigrations } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations", import.meta.url));

/**
 * Applies the SQL that drizzle-kit generated into migrations/. Node-side on purpose: migrations
 * run from dev, test set-up and CI, never from a request.
 */
export async function migrate(databaseUrl: string): Promise<void> {
	const client = new pg.Client({ connectionString: databaseUrl });
	await client.connect();
	try {
		// Concurrent migrators (two dev servers, parallel CI jobs) must not interleave DDL.
		await client.query("select pg_advisory_lock(7243917)");
		await runMigrations(drizzle({ client }), { migrationsFolder: MIGRATIONS_DIR });
	} finally {
		await client.query("select pg_advisory_unlock(7243917)").catch(() => {});
		await client.end();
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
