import { NeonDbError, neon, neonConfig } from "@neondatabase/serverless";
import { DrizzleQueryError, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/neon-http";
import { bigint, boolean, jsonb, pgTable, serial, text, timestamp } from "drizzle-orm/pg-core";
import pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { type NeonHttpBridge, startNeonHttpBridge } from "../../scripts/bridges/neon-http.ts";
import { createDatabase, dropDatabase } from "../../scripts/lib/migrate.ts";
import { freePort } from "../../scripts/lib/net.ts";

// The suite's Postgres: the real one, or the embedded server where there is none.
const ADMIN_URL = inject("infra").adminUrl;
const ADMIN_HOST = new URL(ADMIN_URL).host;
const DB_NAME = `latchkey_neon_http_${Date.now()}_${Math.random().toString(36).slice(2, 8)}`;

let databaseUrl: string;
let bridge: NeonHttpBridge;
/** What `onQuery` reported, request by request. */
const reported: number[] = [];
/** Reads the database behind the bridge's back, to see what it really committed. */
let direct: pg.Client;

const notes = pgTable("notes", {
	id: serial("id").primaryKey(),
	slug: text("slug").notNull().unique("notes_slug_key"),
	at: timestamp("at", { withTimezone: true, mode: "date" }).notNull(),
	doc: jsonb("doc").$type<{ tags: string[]; nested: { n: number } }>(),
	hits: bigint("hits", { mode: "bigint" }).notNull(),
	pinned: boolean("pinned").notNull(),
});

beforeAll(async () => {
	databaseUrl = await createDatabase(ADMIN_URL, DB_NAME);
	direct = new pg.Client({ connectionString: databaseUrl });
	await direct.connect();
	await direct.query(`
		create table notes (
			id serial primary key,
			slug text not null constraint notes_slug_key unique,
			at timestamptz not null,
			doc jsonb,
			hits int8 not null,
			pinned boolean not null
		);
		create table kv (k text primary key, v text);
		create table samples (
			id serial primary key,
			at timestamptz,
			doc jsonb,
			blob bytea,
			nums int[],
			words text[],
			note text,
			big int8,
			flag boolean
		);
	`);
	bridge = await startNeonHttpBridge({ onQuery: (count) => reported.push(count) });
	neonConfig.fetchEndpoint = bridge.url;
});

afterAll(async () => {
	await direct?.end();
	await bridge?.close();
	if (databaseUrl) await dropDatabase(ADMIN_URL, DB_NAME);
});

beforeEach(async () => {
	await direct.query("truncate notes, kv, samples restart identity");
});

/** A request straight to the bridge, for what the driver never sends. */
function post(body: string, headers: Record<string, string> = {}, path = "/sql") {
	return fetch(`http://127.0.0.1:${bridge.port}${path}`, {
		method: "POST",
		body,
		headers: {
			"Neon-Connection-String": databaseUrl,
			"Neon-Raw-Text-Output": "true",
			"Neon-Array-Mode": "true",
			...headers,
		},
	});
}

/** The one row a statement was expected to return. */
function only<T>(rows: T[]): T {
	expect(rows).toHaveLength(1);
	return rows[0] as T;
}

/** The error a promise rejects with; fails the test if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<NeonDbError> {
	const outcome = await promise.then(
		(value) => ({ ok: true as const, value }),
		(error: unknown) => ({ ok: false as const, error }),
	);
	if (outcome.ok) throw new Error(`expected a rejection, got ${JSON.stringify(outcome.value)}`);
	expect(outcome.error).toBeInstanceOf(NeonDbError);
	return outcome.error as NeonDbError;
}

describe("neon-http bridge, through the driver", () => {
	it("round-trips Postgres types as the driver parses them", async () => {
		const sql = neon(databaseUrl);
		const at = new Date("2024-02-29T23:59:58.123Z");
		const doc = { a: [1, { b: "ü ✓", c: null }], d: { e: { f: true } } };
		const blob = Buffer.from([0x00, 0x01, 0x7f, 0x80, 0xff]);
		const words = ['quo"te', "com,ma", "back\\slash", "NULL", "", "ünï"];
		const big = "9007199254740993"; // 2^53 + 1: would lose a digit as a JS number
		await sql`
			insert into samples (at, doc, blob, nums, words, note, big, flag)
			values (${at}, ${doc}, ${blob}, ${[1, 2, 3]}, ${words}, ${null}, ${big}, ${true})`;
		const row = only(await sql`select * from samples`);
		expect(row.at).toBeInstanceOf(Date);
		expect((row.at as Date).getTime()).toBe(at.getTime());
		expect(row.doc).toEqual(doc);
		expect(Buffer.from(row.blob as Uint8Array).equals(blob)).toBe(true);
		expect(row.nums).toEqual([1, 2, 3]);
		expect(row.words).toEqual(words);
		expect(row.note).toBeNull();
		expect(row.big).toBe(big);
		expect(row.flag).toBe(true);

		// A plain Uint8Array goes in as bytea too, and false is not confused with null.
		const more = only(
			await sql`
			select ${new Uint8Array([9, 8, 7])}::bytea as bytes, ${false}::boolean as no,
				${null}::int[] as nothing, array[null, 2]::int[] as holes`,
		);
		expect(Buffer.from(more.bytes as Uint8Array)).toEqual(Buffer.from([9, 8, 7]));
		expect(more.no).toBe(false);
		expect(more.nothing).toBeNull();
		expect(more.holes).toEqual([null, 2]);
	});

	it("returns the full result shape the driver expects, in array mode too", async () => {
		const sql = neon(databaseUrl, { fullResults: true });
		const inserted = await sql.query(
			"insert into kv (k, v) values ($1, $2), ($3, $4) returning k",
			["a", "1", "b", null],
		);
		expect(inserted.command).toBe("INSERT");
		expect(inserted.rowCount).toBe(2);
		expect(inserted.rows).toEqual([{ k: "a" }, { k: "b" }]);
		expect(inserted.fields).toEqual([
			expect.objectContaining({ name: "k", dataTypeID: 25, format: "text" }),
		]);
		const asArrays = await sql.query("select k, v from kv order by k", [], { arrayMode: true });
		expect(asArrays.rows).toEqual([
			["a", "1"],
			["b", null],
		]);
		const updated = await sql.query("update kv set v = 'x'");
		expect(updated).toMatchObject({ command: "UPDATE", rowCount: 2, rows: [], fields: [] });
	});

	it("works under drizzle-orm/neon-http, and the fetchEndpoint may be a function", async () => {
		const seen: string[] = [];
		neonConfig.fetchEndpoint = (host, port) => {
			seen.push(`${host}:${port}`);
			return bridge.url;
		};
		try {
			const db = drizzle({ client: neon(databaseUrl) });
			const at = new Date("2030-01-02T03:04:05.678Z");
			const [created] = await db
				.insert(notes)
				.values({
					slug: "first",
					at,
					doc: { tags: ["x", "y"], nested: { n: 7 } },
					hits: 2n ** 62n,
					pinned: true,
				})
				.returning();
			expect(created).toEqual({
				id: 1,
				slug: "first",
				at,
				doc: { tags: ["x", "y"], nested: { n: 7 } },
				hits: 2n ** 62n,
				pinned: true,
			});
			const found = await db.select().from(notes).where(eq(notes.slug, "first"));
			expect(found).toEqual([created]);

			const duplicate = await db
				.insert(notes)
				.values({ slug: "first", at, hits: 0n, pinned: false })
				.then(
					() => undefined,
					(err: unknown) => err,
				);
			expect(duplicate).toBeInstanceOf(DrizzleQueryError);
			const cause = (duplicate as DrizzleQueryError).cause as NeonDbError;
			expect(cause).toBeInstanceOf(NeonDbError);
			expect(cause.code).toBe("23505");
			expect(cause.constraint).toBe("notes_slug_key");

			// drizzle's batch is the driver's transaction(): one request, all or nothing.
			const [inserted, counted] = await db.batch([
				db.insert(notes).values({ slug: "second", at, hits: 1n, pinned: false }).returning(),
				db.select().from(notes),
			]);
			expect(inserted).toHaveLength(1);
			expect(counted).toHaveLength(2);
			expect(seen.every((target) => target === ADMIN_HOST)).toBe(true);
			expect(seen.length).toBeGreaterThan(0);
		} finally {
			neonConfig.fetchEndpoint = bridge.url;
		}
	});

	it("passes a unique violation's fields through to the caller", async () => {
		const sql = neon(databaseUrl);
		await sql`insert into kv (k, v) values ('taken', '1')`;
		const err = await rejection(sql`insert into kv (k, v) values ('taken', '2')`);
		expect(err.message).toBe('duplicate key value violates unique constraint "kv_pkey"');
		expect(err.code).toBe("23505");
		expect(err.constraint).toBe("kv_pkey");
		expect(err.table).toBe("kv");
		expect(err.schema).toBe("public");
		expect(err.severity).toBe("ERROR");
		expect(err.detail).toBe("Key (k)=(taken) already exists.");
	});

	it("passes a syntax error's fields through, and prepares every statement as Neon does", async () => {
		const sql = neon(databaseUrl);
		const err = await rejection(sql.query("select 1 frm kv"));
		expect(err.code).toBe("42601");
		expect(err.message).toBe('syntax error at or near "kv"');
		expect(err.position).toBe("14");
		expect(err.severity).toBe("ERROR");
		expect(err.routine).toBe("scanner_yyerror");
		expect(err.file).toBeTypeOf("string");
		expect(err.line).toMatch(/^\d+$/);
		expect(err.hint).toBeUndefined();

		// The simple protocol would run both; Neon's extended protocol refuses.
		const multi = await rejection(sql.query("select 1; select 2"));
		expect(multi.code).toBe("42601");
		expect(multi.message).toBe("cannot insert multiple commands into a prepared statement");
	});

	it("runs a batch as one transaction with per-statement results", async () => {
		const sql = neon(databaseUrl);
		const [inserted, listed, counted] = await sql.transaction([
			sql`insert into kv (k, v) values ('one', '1'), ('two', '2') returning k`,
			sql`select k from kv order by k`,
			sql`select count(*)::int as n, txid_current() as tx from kv`,
		]);
		expect(inserted).toEqual([{ k: "one" }, { k: "two" }]);
		expect(listed).toEqual([{ k: "one" }, { k: "two" }]);
		expect(counted).toEqual([{ n: 2, tx: expect.any(String) }]);

		// Full results per statement, and the statements really shared one transaction.
		const results = await sql.transaction(
			(tx) => [
				tx`select txid_current() as tx`,
				tx`update kv set v = 'z'`,
				tx`select txid_current() as tx`,
			],
			{ fullResults: true },
		);
		expect(results.map((r) => r.command)).toEqual(["SELECT", "UPDATE", "SELECT"]);
		const [before, updated, after] = results;
		expect(updated?.rowCount).toBe(2);
		expect(before?.rows[0]?.tx).toBeTypeOf("string");
		expect(before?.rows[0]?.tx).toBe(after?.rows[0]?.tx);
	});

	it("rolls the whole batch back when a later statement fails", async () => {
		const sql = neon(databaseUrl);
		const err = await rejection(
			sql.transaction([
				sql`insert into kv (k, v) values ('ghost', 'boo')`,
				sql`insert into kv (k, v) values ('ghost', 'again')`,
			]),
		);
		expect(err.code).toBe("23505");
		const { rows } = await direct.query("select k from kv where k = 'ghost'");
		expect(rows).toEqual([]);
		// The connection came back usable, not stuck in the aborted transaction.
		expect(await sql`select 1 as ok`).toEqual([{ ok: 1 }]);
	});

	it("honours the batch's isolation level, read-only and deferrable settings", async () => {
		const sql = neon(databaseUrl);
		const show = () => [
			sql`show transaction_isolation`,
			sql`show transaction_read_only`,
			sql`show transaction_deferrable`,
		];
		expect((await sql.transaction(show())).flat()).toEqual([
			{ transaction_isolation: "read committed" },
			{ transaction_read_only: "off" },
			{ transaction_deferrable: "off" },
		]);
		expect(
			(
				await sql.transaction(show(), {
					isolationLevel: "Serializable",
					readOnly: true,
					deferrable: true,
				})
			).flat(),
		).toEqual([
			{ transaction_isolation: "serializable" },
			{ transaction_read_only: "on" },
			{ transaction_deferrable: "on" },
		]);
		const repeatable = await sql.transaction([sql`show transaction_isolation`], {
			isolationLevel: "RepeatableRead",
		});
		expect(repeatable).toEqual([[{ transaction_isolation: "repeatable read" }]]);

		const readOnly = await rejection(
			sql.transaction([sql`insert into kv (k, v) values ('ro', '1')`], { readOnly: true }),
		);
		expect(readOnly.code).toBe("25006");
		const { rows } = await direct.query("select k from kv");
		expect(rows).toEqual([]);
	});

	it("keeps a connection in service only when it is idle again", async () => {
		// One connection, so whatever state a request leaves on it, the next request inherits.
		const single = await startNeonHttpBridge({ maxPerDatabase: 1 });
		neonConfig.fetchEndpoint = single.url;
		try {
			const sql = neon(databaseUrl);
			const backend = async () => only(await sql`select pg_backend_pid() as pid`).pid;
			const first = await backend();
			// A failed batch is rolled back on its connection, which then serves the next request.
			await rejection(sql.transaction([sql`select 1`, sql`select 1 / 0`]));
			expect(await backend()).toBe(first);
			// A lone BEGIN leaves the connection inside a transaction; kept, it would swallow the
			// next insert into a transaction nobody ever commits.
			await sql`begin`;
			await sql`insert into kv (k, v) values ('committed', '1')`;
			const { rows } = await direct.query("select k from kv");
			expect(rows).toEqual([{ k: "committed" }]);
			expect(await backend()).not.toBe(first);
		} finally {
			neonConfig.fetchEndpoint = bridge.url;
			await single.close();
		}
	});

	it("survives its connection being killed mid-request, in a statement and in a batch", async () => {
		// pg reports the dead socket as an event as well as through the query; unheard, that event
		// is an uncaught exception, which vitest turns into a failed run.
		const sql = neon(databaseUrl);
		const single = await rejection(sql`select pg_terminate_backend(pg_backend_pid())`);
		expect(single.code).toBe("57P01");
		const batch = await rejection(
			sql.transaction([
				sql`insert into kv (k, v) values ('doomed', '1')`,
				sql`select pg_terminate_backend(pg_backend_pid())`,
			]),
		);
		expect(batch.code).toBe("57P01");
		expect(await sql`select count(*)::int as n from kv`).toEqual([{ n: 0 }]);
	});

	it("ignores a Neon-style connection string's TLS parameters, which describe the client's hop", async () => {
		const url = new URL(databaseUrl);
		url.searchParams.set("sslmode", "require");
		url.searchParams.set("channel_binding", "require");
		// pg would try to read this file; the bridge must not open paths a caller names.
		url.searchParams.set("sslrootcert", "/nonexistent/root.crt");
		const [row] = await neon(url.toString())`
			select current_database() as db, ssl from pg_stat_ssl where pid = pg_backend_pid()`;
		expect(row).toEqual({ db: DB_NAME, ssl: false });
	});

	it("refuses databases that are not on loopback", async () => {
		for (const url of [
			"postgresql://postgres@10.1.2.3:5432/postgres",
			"postgresql://postgres@example.com:5432/postgres",
			// pg lets a query parameter override the URL's host; that must not slip past.
			`postgresql://postgres@127.0.0.1:5432/postgres?host=10.1.2.3`,
		]) {
			const err = await rejection(neon(url)`select 1`);
			expect(err.message, url).toMatch(/^Server error \(HTTP status 403\)/);
		}
		const res = await post(JSON.stringify({ query: "select 1", params: [] }), {
			"Neon-Connection-String": "postgresql://postgres@[2001:db8::1]:5432/postgres",
		});
		expect(res.status).toBe(403);
	});

	it("tells a Postgres that cannot be reached from a Postgres error", async () => {
		const port = await freePort();
		const unreachable =
			await rejection(neon(`postgresql://postgres@127.0.0.1:${port}/postgres`)`select 1`);
		expect(unreachable.message).toMatch(/^Server error \(HTTP status 502\)/);
		expect(unreachable.code).toBeUndefined();

		// A database that does not exist is Postgres answering, so it keeps its SQLSTATE.
		const missing =
			await rejection(
				neon(`postgresql://postgres@${ADMIN_HOST}/latchkey_no_such_database`)`select 1`,
			);
		expect(missing.code).toBe("3D000");
	});

	it("rejects what is not a well-formed SQL request", async () => {
		const get = await fetch(bridge.url);
		expect(get.status).toBe(405);
		expect(get.headers.get("allow")).toBe("POST");
		const query = JSON.stringify({ query: "select 1", params: [] });
		expect((await post(query, {}, "/v2/sql")).status).toBe(404);
		expect((await post("{not json")).status).toBe(400);
		expect((await post(JSON.stringify({ params: [] }))).status).toBe(400);
		expect((await post(JSON.stringify({ query: "select $1", params: "x" }))).status).toBe(400);
		expect((await post(query, { "Neon-Connection-String": "" })).status).toBe(400);
		expect((await post(query, { "Neon-Connection-String": "mysql://x@127.0.0.1/db" })).status).toBe(
			400,
		);
		const batch = JSON.stringify({ queries: [{ query: "select 1", params: [] }] });
		const badLevel = await post(batch, { "Neon-Batch-Isolation-Level": "serializable" });
		expect(badLevel.status).toBe(400);
		expect(await badLevel.json()).toEqual({ message: "invalid isolation level" });
		// What the driver makes of a 400 the bridge itself raised: its message, no SQLSTATE.
		const err = await rejection(
			neon(databaseUrl).transaction([neon(databaseUrl)`select 1`], {
				isolationLevel: "Snapshot" as "Serializable",
			}),
		);
		expect(err.message).toBe("invalid isolation level");
		expect(err.code).toBeUndefined();
	});

	it("speaks the wire format the driver reads, raw text included", async () => {
		const res = await post(
			JSON.stringify({
				query: "select $1::int8 as big, $2::timestamptz as at, $3::bool as b, $4::text as n",
				params: ["9223372036854775807", "2024-01-01T00:00:00Z", "t", null],
			}),
		);
		expect(res.status).toBe(200);
		const body = await res.json();
		expect(body).toMatchObject({
			command: "SELECT",
			rowCount: 1,
			rowAsArray: true,
			fields: [
				{ name: "big", dataTypeID: 20 },
				{ name: "at", dataTypeID: 1184 },
				{ name: "b", dataTypeID: 16 },
				{ name: "n", dataTypeID: 25 },
			],
		});
		expect(body.rows).toHaveLength(1);
		expect(body.rows[0][0]).toBe("9223372036854775807");
		// Postgres's own text, in the session's time zone: the driver, not the bridge, makes a Date.
		expect(body.rows[0][1]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d/);
		expect(body.rows[0][2]).toBe("t");
		expect(body.rows[0][3]).toBeNull();

		// Without Neon-Array-Mode rows are objects, as at Neon.
		const objects = await post(JSON.stringify({ query: "select 1 as one", params: [] }), {
			"Neon-Array-Mode": "false",
		});
		expect(await objects.json()).toMatchObject({ rows: [{ one: "1" }], rowAsArray: false });

		const batch = await post(
			JSON.stringify({ queries: [{ query: "select 1 as one" }, { query: "select 2 as two" }] }),
			{ "Neon-Batch-Isolation-Level": "RepeatableRead", "Neon-Batch-Read-Only": "true" },
		);
		expect(batch.status).toBe(200);
		expect(batch.headers.get("neon-batch-isolation-level")).toBe("RepeatableRead");
		expect(batch.headers.get("neon-batch-read-only")).toBe("true");
		const { results } = await batch.json();
		expect(results.map((r: { rows: unknown[] }) => r.rows)).toEqual([[["1"]], [["2"]]]);
	});

	it("counts requests and statements", async () => {
		const sql = neon(databaseUrl);
		bridge.resetStats();
		reported.length = 0;
		expect(bridge.stats()).toEqual({ requests: 0, statements: 0 });
		await sql`select 1`;
		await sql.transaction([sql`select 1`, sql`select 2`, sql`select 3`]);
		await rejection(sql`select * from no_such_table`);
		// Refused before reaching Postgres: not a round trip.
		await rejection(neon("postgresql://postgres@10.9.9.9:5432/x")`select 1`);
		expect(bridge.stats()).toEqual({ requests: 3, statements: 5 });
		expect(reported).toEqual([1, 3, 1]);
		bridge.resetStats();
		expect(bridge.stats()).toEqual({ requests: 0, statements: 0 });
	});

	it("serves 50 concurrent queries through a small pool", async () => {
		const small = await startNeonHttpBridge({ maxPerDatabase: 4 });
		const tagged = new URL(databaseUrl);
		// Its own application_name: these connections can be told from everyone else's.
		tagged.searchParams.set("application_name", "neon_http_concurrency");
		try {
			neonConfig.fetchEndpoint = small.url;
			const sql = neon(tagged.toString());
			const answers = await Promise.all(
				Array.from(
					{ length: 50 },
					(_, i) => sql`
						select ${i}::int as i,
							(select count(*)::int from pg_stat_activity
								where application_name = 'neon_http_concurrency') as open`,
				),
			);
			const rows = answers.map(only);
			expect(rows.map((row) => row.i)).toEqual(Array.from({ length: 50 }, (_, i) => i));
			const open = rows.map((row) => row.open as number);
			expect(Math.max(...open)).toBeLessThanOrEqual(4);
			expect(Math.max(...open)).toBeGreaterThan(1);
			expect(small.stats()).toEqual({ requests: 50, statements: 50 });
		} finally {
			neonConfig.fetchEndpoint = bridge.url;
			await small.close();
		}
		// close() ends the pool: its connections go away.
		await expect
			.poll(async () => {
				const { rows } = await direct.query(
					"select count(*)::int as n from pg_stat_activity where application_name = 'neon_http_concurrency'",
				);
				return rows[0].n;
			})
			.toBe(0);
	});
});
