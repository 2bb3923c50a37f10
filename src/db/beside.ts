import {
	Column,
	type DriverValueDecoder,
	getTableColumns,
	is,
	SQL,
	type SQLWrapper,
	sql,
	Table,
} from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { PgSelectBase } from "drizzle-orm/pg-core";
import type { Database } from "./client.ts";

/**
 * Two reads of at most one row each, as one statement: `(a) full join (b) on true`.
 *
 * A Neon HTTP batch is a transaction: Neon's proxy (and the local stand-in) runs BEGIN, each
 * statement and COMMIT against Postgres one after the other, so a batch of two costs four
 * exchanges with Postgres where one statement costs one. On a lease that was two thirds of its
 * Postgres time. Joined on `true`, two sets of at most one row give one row holding both (or the
 * one that exists, or none), which drizzle maps back into exactly the rows each read would have
 * returned on its own.
 *
 * Each read must return at most one row (`limit(1)`, or a primary-key lookup); more is a
 * programming error and throws. Reads that are not plain selects go as a batch.
 */
export async function readBeside(
	db: Database,
	first: BatchItem<"pg">,
	second: BatchItem<"pg">,
): Promise<[unknown[], unknown[]]> {
	if (!is(first, PgSelectBase) || !is(second, PgSelectBase)) {
		return (await db.batch([first, second])) as [unknown[], unknown[]];
	}
	const a = side("lk_a", first);
	const b = side("lk_b", second);
	const rows = (await db
		// The nested shape is one drizzle maps; its types cannot describe a shape built at run time.
		.select({ a: a.fields, b: b.fields } as never)
		.from(sql`${a.source} full join ${b.source} on true`)) as {
		a: { present: boolean | null; row: unknown };
		b: { present: boolean | null; row: unknown };
	}[];
	if (rows.length > 1) throw new Error("readBeside: a read returned more than one row");
	const [row] = rows;
	return [row?.a.present ? [row.a.row] : [], row?.b.present ? [row.b.row] : []];
}

type Leaf = { path: string[]; field: Column | SQL | SQL.Aliased };

/** A select's fields in the order drizzle writes them into its select list. */
function leavesOf(fields: Record<string, unknown>, prefix: string[] = []): Leaf[] {
	const out: Leaf[] = [];
	for (const [name, field] of Object.entries(fields)) {
		const path = [...prefix, name];
		if (is(field, Column) || is(field, SQL) || is(field, SQL.Aliased)) out.push({ path, field });
		else if (is(field, Table)) out.push(...leavesOf(getTableColumns(field), path));
		else if (field !== null && typeof field === "object") {
			out.push(...leavesOf(field as Record<string, unknown>, path));
		}
	}
	return out;
}

// SQL fields keep their decoder (set by mapWith) on a property drizzle does not type.
const decoderOf = (field: Leaf["field"]): DriverValueDecoder<unknown, unknown> =>
	is(field, Column)
		? field
		: (
				(is(field, SQL.Aliased) ? field.sql : field) as unknown as {
					decoder: DriverValueDecoder<unknown, unknown>;
				}
			).decoder;

/**
 * One side of the join: the select as a derived table whose columns are renamed by position
 * (`c0`, `c1`, …, so duplicate names such as two `expires_at` cannot clash), a `p` column that is
 * true when its row exists, and fields that map each renamed column back to the original's path
 * and decoder.
 */
function side(alias: string, select: SQLWrapper) {
	const leaves = leavesOf(
		(select as unknown as { _: { selectedFields: Record<string, unknown> } })._.selectedFields,
	);
	const names = leaves.map((_, i) => `c${i}`);
	const source = sql`(select true, ${sql.raw(`${alias}_in`)}.* from ${select} as ${sql.raw(`${alias}_in`)}) as ${sql.raw(alias)}(p, ${sql.raw(names.join(", "))})`;
	const row: Record<string, unknown> = {};
	leaves.forEach((leaf, i) => {
		let node = row;
		for (const key of leaf.path.slice(0, -1)) {
			node[key] ??= {};
			node = node[key] as Record<string, unknown>;
		}
		node[leaf.path.at(-1) as string] = sql
			.raw(`"${alias}"."${names[i]}"`)
			.mapWith(decoderOf(leaf.field));
	});
	return {
		source,
		fields: { present: sql<boolean>`${sql.raw(`"${alias}"."p"`)}`, row },
	};
}
