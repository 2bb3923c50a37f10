import { and, inArray, like, sql } from "drizzle-orm";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toBase64Url, utf8 } from "../../src/crypto/encoding.ts";
import type { DbHandle } from "../../src/db/client.ts";
import { type CursorKey, keysetAfter, keysetOrder } from "../../src/db/pagination.ts";
import { users } from "../../src/db/schema.ts";
import { LatchkeyError } from "../../src/errors.ts";
import { decodeCursor, encodeCursor, ListQuery, paginate } from "../../src/http/pagination.ts";
import { testDb } from "./helpers.ts";

function expectCursorRejected(cursor: string): void {
	let thrown: unknown;
	try {
		decodeCursor(cursor);
	} catch (err) {
		thrown = err;
	}
	expect(thrown, `cursor ${JSON.stringify(cursor)} should be rejected`).toBeInstanceOf(
		LatchkeyError,
	);
	const err = thrown as LatchkeyError;
	expect(err.code).toBe("invalid_request");
	expect(err.detail).toEqual([expect.objectContaining({ field: "cursor", location: "query" })]);
}

const encodeJson = (value: unknown) => toBase64Url(utf8(JSON.stringify(value)));

describe("cursor encoding", () => {
	it("round-trips the position exactly and is opaque url-safe text", () => {
		const key = { createdAt: new Date("2026-03-01T12:34:56.789Z"), id: "usr_4f9QbX2mT7aLkP0sVd1e" };
		const cursor = encodeCursor(key);
		expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
		expect(decodeCursor(cursor)).toEqual(key);
	});

	it("round-trips any position", () => {
		fc.assert(
			fc.property(
				fc.date({ min: new Date(0), max: new Date("2200-01-01T00:00:00Z"), noInvalidDate: true }),
				fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
				(createdAt, id) => {
					const decoded = decodeCursor(encodeCursor({ createdAt, id }));
					return decoded.id === id && decoded.createdAt.getTime() === createdAt.getTime();
				},
			),
		);
	});

	it("rejects garbage and edited cursors with invalid_request naming the cursor", () => {
		const valid = encodeCursor({ createdAt: new Date("2026-01-01T00:00:00Z"), id: "usr_abc" });
		for (const bad of [
			"",
			"!!!",
			"not a cursor",
			"abc",
			`${valid}=`,
			`${valid}.`,
			valid.slice(0, -3),
			"x".repeat(600),
			encodeJson({}),
			encodeJson(null),
			encodeJson([1, 2, 3]),
			encodeJson({ v: 2, t: 0, i: "usr_abc" }),
			encodeJson({ v: 1, t: "2026-01-01", i: "usr_abc" }),
			encodeJson({ v: 1, t: 1.5, i: "usr_abc" }),
			encodeJson({ v: 1, t: -1, i: "usr_abc" }),
			encodeJson({ v: 1, t: 0, i: "" }),
			encodeJson({ v: 1, t: 0, i: "usr abc; drop table users" }),
			encodeJson({ v: 1, t: 9e15, i: "usr_abc" }),
			// Same content, different spelling: only the issued spelling is accepted.
			encodeJson({ i: "usr_abc", t: 0, v: 1 }),
		]) {
			expectCursorRejected(bad);
		}
	});

	it("never lets an arbitrary string through except as the exact cursor it encodes", () => {
		fc.assert(
			fc.property(fc.string({ maxLength: 200 }), (text) => {
				try {
					const key = decodeCursor(text);
					return encodeCursor(key) === text;
				} catch (err) {
					return err instanceof LatchkeyError && err.code === "invalid_request";
				}
			}),
		);
	});

	it("rejects every single-character edit of a cursor or decodes it to what that edit encodes", () => {
		const cursor = encodeCursor({
			createdAt: new Date("2026-05-05T05:05:05.505Z"),
			id: "usr_Zz09_-",
		});
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.";
		for (let i = 0; i < cursor.length; i++) {
			for (const ch of alphabet) {
				if (ch === cursor[i]) continue;
				const edited = cursor.slice(0, i) + ch + cursor.slice(i + 1);
				try {
					expect(encodeCursor(decodeCursor(edited))).toBe(edited);
				} catch (err) {
					if (!(err instanceof LatchkeyError)) throw err;
					expect(err.code).toBe("invalid_request");
				}
			}
		}
	});
});

describe("ListQuery", () => {
	it("defaults the limit to 50 and coerces it from the query string", () => {
		expect(ListQuery.parse({})).toEqual({ limit: 50 });
		expect(ListQuery.parse({ limit: "7", cursor: "abc" })).toEqual({ limit: 7, cursor: "abc" });
		expect(ListQuery.parse({ limit: "1" }).limit).toBe(1);
		expect(ListQuery.parse({ limit: "100" }).limit).toBe(100);
	});

	it("rejects limits outside 1–100 and non-integers", () => {
		for (const limit of ["0", "101", "-1", "1.5", "abc", "", "1e3"]) {
			expect(ListQuery.safeParse({ limit }).success, `limit=${limit}`).toBe(false);
		}
		expect(ListQuery.safeParse({ cursor: "" }).success).toBe(false);
	});
});

describe("paginate", () => {
	const rows = Array.from({ length: 4 }, (_, i) => ({
		createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)),
		id: `row_${i}`,
	}));

	it("has no next cursor when the extra row is absent", () => {
		expect(paginate(rows.slice(0, 3), 3)).toEqual({ data: rows.slice(0, 3), next_cursor: null });
		expect(paginate([], 3)).toEqual({ data: [], next_cursor: null });
	});

	it("drops the extra row and points the cursor at the last row shown", () => {
		const page = paginate(rows, 3);
		expect(page.data).toEqual(rows.slice(0, 3));
		expect(page.next_cursor).not.toBeNull();
		expect(decodeCursor(page.next_cursor as string)).toEqual({
			createdAt: rows[2]?.createdAt,
			id: "row_2",
		});
	});
});

describe("keyset queries against Postgres", () => {
	// Rows written by Postgres carry microseconds, which a cursor (milliseconds) cannot; several
	// share one millisecond here, in an order that differs from their ids' order.
	const domain = `keyset-${crypto.randomUUID().slice(0, 8)}.test`;
	const rows = [
		{ id: "usr_keyset_z", at: "2000-01-01T00:00:00.123100Z" },
		{ id: "usr_keyset_b", at: "2000-01-01T00:00:00.123456Z" },
		{ id: "usr_keyset_c", at: "2000-01-01T00:00:00.123456Z" },
		{ id: "usr_keyset_a", at: "2000-01-01T00:00:00.123900Z" },
		{ id: "usr_keyset_y", at: "2000-01-01T00:00:00.124000Z" },
		{ id: "usr_keyset_m", at: "2000-01-01T00:00:01.000001Z" },
	].map((r) => ({ ...r, id: `${r.id}_${domain.slice(7, 15)}` }));
	let handle: DbHandle;

	beforeAll(async () => {
		handle = testDb();
		for (const row of rows) {
			await handle.db.insert(users).values({
				id: row.id,
				email: `${row.id}@${domain}`,
				createdAt: sql`${row.at}::timestamptz`,
				updatedAt: sql`now()`,
			});
		}
	});

	afterAll(async () => {
		await handle.db.delete(users).where(like(users.email, `%@${domain}`));
		await handle.end();
	});

	async function page(after: CursorKey | undefined, limit: number) {
		const found = await handle.db
			.select()
			.from(users)
			.where(and(like(users.email, `%@${domain}`), keysetAfter(users.createdAt, users.id, after)))
			.orderBy(...keysetOrder(users.createdAt, users.id))
			.limit(limit + 1);
		return paginate(found, limit);
	}

	async function walk(
		limit: number,
		between?: (pageNo: number) => Promise<void>,
	): Promise<string[]> {
		const seen: string[] = [];
		let after: CursorKey | undefined;
		for (let pageNo = 0; pageNo < 20; pageNo++) {
			const p = await page(after, limit);
			expect(p.data.length).toBeLessThanOrEqual(limit);
			seen.push(...p.data.map((r) => r.id));
			if (!p.next_cursor) return seen;
			after = decodeCursor(p.next_cursor);
			await between?.(pageNo);
		}
		throw new Error("pagination did not terminate");
	}

	it("walks microsecond rows in (created_at, id) order without repeats or gaps, whatever the page size", async () => {
		const expected = rows.map((r) => r.id);
		for (const limit of [1, 2, 3, 5, 10]) {
			expect(await walk(limit)).toEqual(expected);
		}
	});

	it("is not shifted by rows inserted behind the cursor", async () => {
		const late = `usr_keyset_late_${domain.slice(7, 15)}`;
		const seen = await walk(2, async (pageNo) => {
			if (pageNo !== 0) return;
			await handle.db.insert(users).values({
				id: late,
				email: `${late}@${domain}`,
				createdAt: sql`${"1999-12-31T00:00:00Z"}::timestamptz`,
			});
		});
		expect(seen).toEqual(rows.map((r) => r.id));
		await handle.db.delete(users).where(inArray(users.id, [late]));
	});

	it("skips nothing when the row a cursor points at is deleted", async () => {
		const p1 = await page(undefined, 2);
		const boundary = p1.data.at(-1)?.id as string;
		expect(boundary).toBe(rows[1]?.id);
		await handle.db.delete(users).where(inArray(users.id, [boundary]));
		const rest = await page(decodeCursor(p1.next_cursor as string), 10);
		const restIds = rest.data.map((r) => r.id);
		for (const r of rows.slice(2)) expect(restIds).toContain(r.id);
	});
});
