import { eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { readBeside } from "../../src/db/beside.ts";
import { apiKeys, users } from "../../src/db/schema.ts";
import { createUser, userWithKey } from "./fixtures.ts";
import { testDb } from "./helpers.ts";

/**
 * readBeside answers exactly what the two reads answer on their own (what a batch would give),
 * in one statement: rows present or absent on either side, nested selections, whole tables,
 * columns of the same name on one side (two `created_at`), timestamps decoded to Dates, and SQL
 * fields with their own decoder.
 */

const { db } = testDb();

const keyRead = (keyId: string) =>
	db
		.select({
			key: apiKeys,
			user: { id: users.id, status: users.status, createdAt: users.createdAt },
			later: sql<number>`1 + 1`.mapWith(Number),
		})
		.from(apiKeys)
		.innerJoin(users, eq(users.id, apiKeys.userId))
		.where(eq(apiKeys.id, keyId))
		.limit(1);

const userRead = (id: string) => db.select().from(users).where(eq(users.id, id)).limit(1);

describe("readBeside", () => {
	it("gives each read's own rows, whichever exist", async () => {
		const a = await userWithKey();
		const [key] = await db.select().from(apiKeys).where(eq(apiKeys.userId, a.id)).limit(1);
		if (!key) throw new Error("no key");
		const b = (await createUser()).id;

		for (const [first, second] of [
			[keyRead(key.id), userRead(b)],
			[keyRead("key_missing"), userRead(b)],
			[keyRead(key.id), userRead("usr_missing")],
			[keyRead("key_missing"), userRead("usr_missing")],
		] as const) {
			const alone = (await db.batch([first, second])) as [unknown[], unknown[]];
			const beside = await readBeside(db, first, second);
			expect(beside).toEqual(alone);
		}
		const [[row]] = (await readBeside(db, keyRead(key.id), userRead(b))) as [
			{ key: { createdAt: unknown }; user: { createdAt: unknown }; later: unknown }[],
			unknown[],
		];
		expect(row?.key.createdAt).toBeInstanceOf(Date);
		expect(row?.user.createdAt).toBeInstanceOf(Date);
		expect(row?.later).toBe(2);
	});

	it("refuses a read of more than one row rather than pairing rows up", async () => {
		await createUser();
		await createUser();
		const many = () => db.select().from(users).limit(2);
		await expect(readBeside(db, many(), userRead("usr_missing"))).rejects.toThrow(
			"more than one row",
		);
		await expect(readBeside(db, userRead("usr_missing"), many())).rejects.toThrow(
			"more than one row",
		);
	});
});
