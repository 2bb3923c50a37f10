import { type SQL, sql } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";

/**
 * Keyset pagination over (created_at, id). Unlike offsets, a position names a place between
 * two rows, so rows inserted or deleted while a client walks the list never shift a page: no
 * row is shown twice or skipped (a row inserted behind the position is simply not seen).
 * List queries fetch `limit + 1` rows in this order; the HTTP layer turns them into a page and
 * the position into a cursor (src/http/pagination.ts).
 */

/** The position of a row in (created_at, id) order. */
export interface CursorKey {
	createdAt: Date;
	id: string;
}

/**
 * WHERE fragment selecting the rows after `after`. The cursor carries milliseconds while
 * Postgres stores microseconds, so the boundary row's own stored time is used when the row still
 * exists; otherwise a row written in the same millisecond as the deleted boundary could repeat.
 * Both lookups are index scans (primary key, then the (created_at, id) order).
 */
export function keysetAfter(
	createdAt: PgColumn,
	id: PgColumn,
	after: CursorKey | undefined,
): SQL | undefined {
	if (!after) return undefined;
	const fallback = sql`${after.createdAt.toISOString()}::timestamptz`;
	const exact = sql`(select ${createdAt} from ${createdAt.table} where ${id} = ${after.id})`;
	return sql`(${createdAt}, ${id}) > (coalesce(${exact}, ${fallback}), ${after.id})`;
}

/** ORDER BY matching `keysetAfter`. */
export function keysetOrder(createdAt: PgColumn, id: PgColumn): SQL[] {
	return [sql`${createdAt} asc`, sql`${id} asc`];
}
