import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import type { RunningServer } from "../lib/net.ts";

// PGlite runs one query at a time; the socket server multiplexes connections onto it. Neon's
// Pool opens a handful of connections per request and migrations add one, so 1 is too few.
const MAX_CONNECTIONS = 64;

/**
 * PGlite (Postgres compiled to WASM) served over the Postgres wire protocol on 127.0.0.1, for
 * machines without a Postgres. `dataDir` keeps the database between runs; omit it for a
 * throwaway in-memory database.
 */
export async function startEmbeddedPostgres(
	opts: { dataDir?: string; port?: number } = {},
): Promise<RunningServer & { databaseUrl: string }> {
	if (opts.dataDir) await mkdir(opts.dataDir, { recursive: true });
	const db = await PGlite.create(opts.dataDir ? { dataDir: opts.dataDir } : {});
	const server = new PGLiteSocketServer({
		db,
		host: "127.0.0.1",
		port: opts.port ?? 0,
		maxConnections: MAX_CONNECTIONS,
	});
	try {
		await server.start();
	} catch (err) {
		await db.close();
		throw err;
	}
	const port = Number(server.getServerConn().split(":").pop());
	const databaseUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
	let closing: Promise<void> | undefined;
	return {
		port,
		url: databaseUrl,
		databaseUrl,
		close: () => {
			closing ??= (async () => {
				await server.stop();
				// stop() detaches connections without waiting; a detach may still be rolling back an
				// open transaction, and closing the database under it would throw. runExclusive
				// queues behind that work.
				await db.runExclusive(async () => {}).catch(() => {});
				await db.close();
			})();
			return closing;
		},
	};
}
