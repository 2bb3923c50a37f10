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
 * Newest first, `limit + 1` rows (the extra one says another page exists), after `before` in that
 * order. Times are stored with the millisecond precision they were written with, so the cursor's
 * position is exact.
 */
export function listAuditEvents(
	db: Database,
	filter: AuditFilter,
	options: { limit: number; before?: Position | undefined },
): Promise<AuditEventRow[]> {
	const { before } = options;
	return db
		.select()
		.from(auditEvents)
		.where(
			and(
				...conditions(filter),
				before
					? sql`(${auditEvents.at}, ${auditEvents.id}) < (${before.at.toISOString()}::timestamptz, ${before.id})`
					: undefined,
			),
		)
		.orderBy(desc(auditEvents.at), desc(auditEvents.id))
		.limit(options.limit + 1);
}

/** Oldest first, for the export: `limit` rows after `after`. */
export function exportPage(
	db: Database,
	filter: AuditFilter,
	options: { limit: number; after?: Position | undefined },
): Promise<AuditEventRow[]> {
	const { after } = options;
	return db
		.select()
		.from(auditEvents)
		.where(
			and(
				...conditions(filter),
				after
					? sql`(${auditEvents.at}, ${auditEvents.id}) > (${after.at.toISOString()}::timestamptz, ${after.id})`
					: undefined,
			),
		)
		.orderBy(asc(auditEvents.at), asc(auditEvents.id))
		.limit(options.limit);
}
