/** Reading the audit log: the filtered, paged listing and the export's pages. */
import { and, asc, desc, eq, gte, lt, type SQL, sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { type AuditEventRow, auditEvents } from "../db/schema.ts";
import type { AuditAction, AuditTargetType } from "./events.ts";

export interface AuditFilter {
	/** Only events about this user (a user's own view always sets it). */
	userId?: string | undefined;
	action?: AuditAction | undefined;
	targetType?: AuditTargetType | undefined;
	targetId?: string | undefined;
	/** Inclusive. */
	since?: Date | undefined;
	/** Exclusive. */
	until?: Date | undefined;
}

export interface Position {
	at: Date;
	id: string;
}

function conditions(filter: AuditFilter): (SQL | undefined)[] {
	return [
		filter.userId === undefined ? undefined : eq(auditEvents.userId, filter.userId),
		filter.action === undefined ? undefined : eq(auditEvents.action, filter.action),
		filter.targetType === undefined ? undefined : eq(auditEvents.targetType, filter.targetType),
		filter.targetId === undefined ? undefined : eq(auditEvents.targetId, filter.targetId),
		filter.since === undefined ? undefined : gte(auditEvents.at, filter.since),
		filter.until === undefined ? undefined : lt(auditEvents.at, filter.until),
	];
}

/**
 * Rows matching `filter` in (at, id) order from a cursor position (exclusive): newest first
 * before it (the listing), or oldest first after it (the export). Times are stored with the
 * millisecond precision they were written with, so a position is exact.
 */
function page(
	db: Database,
	filter: AuditFilter,
	order: "newest" | "oldest",
	limit: number,
	from: Position | undefined,
): Promise<AuditEventRow[]> {
	const [direction, past] = order === "newest" ? [desc, sql`<`] : [asc, sql`>`];
	return db
		.select()
		.from(auditEvents)
		.where(
			and(
				...conditions(filter),
				from
					? sql`(${auditEvents.at}, ${auditEvents.id}) ${past} (${from.at.toISOString()}::timestamptz, ${from.id})`
					: undefined,
			),
		)
		.orderBy(direction(auditEvents.at), direction(auditEvents.id))
		.limit(limit);
}

/** Newest first, `limit + 1` rows (the extra one says another page exists), after `before`. */
export function listAuditEvents(
	db: Database,
	filter: AuditFilter,
	options: { limit: number; before?: Position | undefined },
): Promise<AuditEventRow[]> {
	return page(db, filter, "newest", options.limit + 1, options.before);
}

/** Oldest first, for the export: `limit` rows after `after`. */
export function exportPage(
	db: Database,
	filter: AuditFilter,
	options: { limit: number; after?: Position | undefined },
): Promise<AuditEventRow[]> {
	return page(db, filter, "oldest", options.limit, options.after);
}
