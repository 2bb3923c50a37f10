import { neonConfig, Pool } from "@neondatabase/serverless";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { startEmbeddedPostgres } from "../../scripts/engines/embedded-postgres.ts";
import type { RunningServer } from "../../scripts/lib/net.ts";
import { startWsProxy } from "../../scripts/bridges/neon-ws.ts";

let db: Awaited<ReturnType<typeof startEmbeddedPostgres>>;
let proxy: RunningServer;

beforeAll(async () => {
	[db, proxy] = await Promise.all([startEmbeddedPostgres(), startWsProxy()]);
	neonConfig.webSocketConstructor = WebSocket;
	neonConfig.wsProxy = (host, port) => `127.0.0.1:${proxy.port}/v1?address=${host}:${port}`;
	neonConfig.useSecureWebSocket = false;
	neonConfig.pipelineTLS = false;
	neonConfig.pipelineConnect = false;
}, 30_000);

afterAll(async () => {
	await proxy?.close();
	await db?.close();
});

describe("embedded Postgres (PGlite over the wire protocol)", () => {
	it("hands out a postgres:// URL on loopback", () => {
		expect(db.databaseUrl).toBe(`postgres://postgres@127.0.0.1:${db.port}/postgres`);
	});

	it("serves node-postgres", async () => {
		const client = new pg.Client({ connectionString: db.databaseUrl });
		await client.connect();
		try {
			await client.query(
				"create table if not exists notes (id serial primary key, body text not null)",
			);
			await client.query("insert into notes (body) values ($1), ($2)", ["zé ✓", "second"]);
			const res = await client.query("select body from notes order by id");
			expect(res.rows.map((r) => r.body)).toEqual(["zé ✓", "second"]);
		} finally {
			await client.end();
		}
	});

	it("serves the Neon driver through the ws-proxy, with concurrent pool clients", async () => {
		const pool = new Pool({ connectionString: db.databaseUrl, max: 4 });
		try {
			const params = await pool.query("select $1::int * 2 as n, $2::text as t", [21, "ok"]);
			expect(params.rows).toEqual([{ n: 42, t: "ok" }]);

			const [a, b] = await Promise.all([pool.connect(), pool.connect()]);
			try {
				const [ra, rb] = await Promise.all([
					a.query("select 'a' as who, count(*)::int as n from generate_series(1, 5000)"),
					b.query("select 'b' as who, $1::int as n", [7]),
				]);
				expect(ra.rows).toEqual([{ who: "a", n: 5000 }]);
				expect(rb.rows).toEqual([{ who: "b", n: 7 }]);
				// A transaction on one connection, then work on the other once it commits.
				await a.query("begin");
				await a.query("create table tx_probe (v int)");
				await a.query("insert into tx_probe values (1)");
				await a.query("commit");
				const seen = await b.query("select v from tx_probe");
				expect(seen.rows).toEqual([{ v: 1 }]);
			} finally {
				a.release();
				b.release();
			}
		} finally {
			await pool.end();
		}
	});
});
