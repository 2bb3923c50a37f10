import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { neonConfig, Pool } from "@neondatabase/serverless";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { WebSocket } from "ws";
import { startWsProxy } from "../../scripts/bridges/neon-ws.ts";
import { startEmbeddedPostgres } from "../../scripts/engines/embedded-postgres.ts";
import { canConnect, type RunningServer } from "../../scripts/lib/net.ts";

type EmbeddedPostgres = Awaited<ReturnType<typeof startEmbeddedPostgres>>;

const MODULE = fileURLToPath(
	new URL("../../scripts/engines/embedded-postgres.ts", import.meta.url),
);

let db: EmbeddedPostgres;
let proxy: RunningServer;
/** Parent of the persistent data directories; readable by the postgres user when run as root. */
let scratch: string;

beforeAll(async () => {
	scratch = await mkdtemp(join(tmpdir(), "latchkey-pg-test-"));
	await chmod(scratch, 0o755);
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
	if (scratch) await rm(scratch, { recursive: true, force: true });
});

async function query<T extends pg.QueryResultRow>(
	url: string,
	sql: string,
	params: unknown[] = [],
): Promise<T[]> {
	const client = new pg.Client({ connectionString: url });
	await client.connect();
	try {
		return (await client.query<T>(sql, params)).rows;
	} finally {
		await client.end();
	}
}

async function dataDirectory(url: string): Promise<string> {
	const [row] = await query<{ data_directory: string }>(url, "show data_directory");
	if (!row) throw new Error("no data_directory");
	return row.data_directory;
}

function isAlive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch {
		return false;
	}
}

describe("embedded Postgres (a real server from the embedded-postgres package)", () => {
	it("hands out a postgres:// URL on loopback", async () => {
		expect(db.databaseUrl).toBe(`postgres://postgres@127.0.0.1:${db.port}/postgres`);
		expect(db.url).toBe(db.databaseUrl);
		const [settings] = await query(
			db.databaseUrl,
			"select current_setting('listen_addresses') as listen, current_setting('fsync') as fsync",
		);
		expect(settings).toEqual({ listen: "127.0.0.1", fsync: "off" });
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
				// A transaction left open on one connection is invisible to the other until it commits.
				await a.query("begin");
				await a.query("create table tx_probe (v int)");
				await a.query("insert into tx_probe values (1)");
				const before = await b.query("select to_regclass('tx_probe') as t");
				expect(before.rows).toEqual([{ t: null }]);
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

	it("runs 20 transactions at once on separate connections, each isolated, all committed", async () => {
		const N = 20;
		await query(
			db.databaseUrl,
			`create table counters (id int primary key, n int not null);
			 create table events (id serial primary key, worker int not null);
			 insert into counters values (1, 0)`,
		);
		const clients = Array.from({ length: N }, () => new pg.Client(db.databaseUrl));
		await Promise.all(clients.map((c) => c.connect()));
		// Every transaction has begun and written before any of them takes the row lock.
		let arrived = 0;
		let releaseAll = () => {};
		const allArrived = new Promise<void>((resolve) => {
			releaseAll = resolve;
		});
		try {
			const results = await Promise.all(
				clients.map(async (client, worker) => {
					await client.query("begin");
					await client.query("insert into events (worker) values ($1)", [worker]);
					// Nobody has committed yet: each transaction sees its own row and no other.
					const visible = await client.query<{ worker: number }>("select worker from events");
					if (++arrived === N) releaseAll();
					await allArrived;
					const locked = await client.query<{ n: number }>(
						"select n from counters where id = 1 for update",
					);
					await client.query("update counters set n = $1 where id = 1", [
						(locked.rows[0]?.n ?? 0) + 1,
					]);
					await client.query("commit");
					return visible.rows.map((r) => r.worker);
				}),
			);
			expect(results).toEqual(Array.from({ length: N }, (_, worker) => [worker]));
		} finally {
			await Promise.all(clients.map((c) => c.end()));
		}
		const [counter] = await query(db.databaseUrl, "select n from counters where id = 1");
		expect(counter).toEqual({ n: N });
		const [events] = await query(
			db.databaseUrl,
			"select count(*)::int as rows, count(distinct worker)::int as workers from events",
		);
		expect(events).toEqual({ rows: N, workers: N });
	});

	it("close() stops the server and deletes the throwaway cluster, once however often called", async () => {
		const dir = await dataDirectory(db.databaseUrl);
		const pid = Number((await readFile(join(dir, "postmaster.pid"), "utf8")).split("\n")[0]);
		expect(isAlive(pid)).toBe(true);
		await Promise.all([db.close(), db.close()]);
		await db.close();
		expect(isAlive(pid)).toBe(false);
		expect(existsSync(dir)).toBe(false);
		expect(await canConnect("127.0.0.1", db.port)).toBe(false);
	});
});

describe("embedded Postgres with a data directory", () => {
	let dataDir: string;
	let server: EmbeddedPostgres | undefined;
	/** postmaster.pid as the running server wrote it, to fake what a killed server leaves. */
	let pidFile = "";

	beforeAll(() => {
		dataDir = join(scratch, "pgdata");
	});

	afterAll(async () => {
		await server?.close();
	});

	async function restart(): Promise<EmbeddedPostgres> {
		await server?.close();
		server = undefined;
		server = await startEmbeddedPostgres({ dataDir });
		return server;
	}

	async function identity(url: string): Promise<string> {
		const [row] = await query<{ id: string }>(
			url,
			"select system_identifier::text as id from pg_control_system()",
		);
		return row?.id ?? "";
	}

	it("keeps its data across stop and start, without initialising again", async () => {
		const first = await restart();
		await query(first.databaseUrl, "create table kept (v text); insert into kept values ('a')");
		const id = await identity(first.databaseUrl);
		pidFile = await readFile(join(dataDir, "postmaster.pid"), "utf8");

		const second = await restart();
		expect(await identity(second.databaseUrl)).toBe(id);
		expect(await query(second.databaseUrl, "select v from kept")).toEqual([{ v: "a" }]);
		expect(await readFile(join(dataDir, "PG_VERSION"), "utf8")).toMatch(/^\d+\n$/);
	});

	it("refuses a second server on a data directory this process is serving", async () => {
		await expect(startEmbeddedPostgres({ dataDir })).rejects.toThrow(/already running/);
		expect(await query(server?.databaseUrl ?? "", "select 1 as ok")).toEqual([{ ok: 1 }]);
	});

	it("starts over a stale postmaster.pid whose process is gone", async () => {
		await server?.close();
		server = undefined;
		const child = spawn(process.execPath, ["-e", ""]);
		await once(child, "exit");
		await writeFile(join(dataDir, "postmaster.pid"), pidFile.replace(/^\d+/, String(child.pid)));
		const next = await restart();
		expect(await query(next.databaseUrl, "select count(*)::int as n from kept")).toEqual([
			{ n: 1 },
		]);
	});

	it("starts over a stale postmaster.pid whose PID now belongs to another program", async () => {
		await server?.close();
		server = undefined;
		const other = spawn(process.execPath, ["-e", "setInterval(() => {}, 60_000)"]);
		try {
			await once(other, "spawn");
			await writeFile(join(dataDir, "postmaster.pid"), pidFile.replace(/^\d+/, String(other.pid)));
			const next = await restart();
			expect(await query(next.databaseUrl, "select v from kept")).toEqual([{ v: "a" }]);
		} finally {
			other.kill();
		}
	});

	it("moves a directory it did not create (PGlite's) aside and starts a fresh cluster", async () => {
		const old = join(scratch, "pglite");
		await mkdir(join(old, "base"), { recursive: true });
		await writeFile(join(old, "PG_VERSION"), "18\n");
		const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
		let fresh: EmbeddedPostgres | undefined;
		try {
			fresh = await startEmbeddedPostgres({ dataDir: old });
			expect(await query(fresh.databaseUrl, "select to_regclass('kept') as t")).toEqual([
				{ t: null },
			]);
			expect(warn).toHaveBeenCalledWith(expect.stringContaining("moved it to"));
		} finally {
			warn.mockRestore();
			await fresh?.close();
		}
		const aside = (await readdir(scratch)).filter((name) => name.startsWith("pglite.pglite-old-"));
		expect(aside).toHaveLength(1);
		expect(await readdir(join(scratch, aside[0] ?? ""))).toEqual(
			expect.arrayContaining(["PG_VERSION", "base"]),
		);
	});
});

describe("embedded Postgres when its process dies without close()", () => {
	it("is stopped and its throwaway cluster deleted, even after SIGKILL", async () => {
		const code = `const { startEmbeddedPostgres } = await import(${JSON.stringify(MODULE)});
			const db = await startEmbeddedPostgres();
			console.log(db.databaseUrl);
			setInterval(() => {}, 60_000);`;
		const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
			stdio: ["ignore", "pipe", "inherit"],
		});
		try {
			const lines = createInterface({ input: child.stdout });
			const [url] = (await once(lines, "line")) as [string];
			const dir = await dataDirectory(url);
			const port = Number(new URL(url).port);
			child.kill("SIGKILL");
			await once(child, "exit");
			await vi.waitFor(
				async () => {
					expect(existsSync(dir)).toBe(false);
					expect(await canConnect("127.0.0.1", port)).toBe(false);
				},
				{ timeout: 15_000, interval: 100 },
			);
		} finally {
			child.kill("SIGKILL");
		}
	}, 30_000);
});
