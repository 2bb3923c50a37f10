import { and, eq, type SQL } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { type CursorKey, keysetAfter, keysetOrder } from "../db/pagination.ts";
import { type JobRow, type JobStatus, jobs } from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";

/** What an operator does with deletion jobs: list them, and send a failed one round again. */

export interface ListJobsOptions {
	limit: number;
	after?: CursorKey | undefined;
	status?: JobStatus | undefined;
	userId?: string | undefined;
}

/** Up to `limit + 1` jobs in keyset order, like every list query; the extra row says more follow. */
export function listJobs(db: Database, options: ListJobsOptions): Promise<JobRow[]> {
	const conditions: (SQL | undefined)[] = [
		keysetAfter(jobs.createdAt, jobs.id, options.after),
		options.status ? eq(jobs.status, options.status) : undefined,
		options.userId ? eq(jobs.userId, options.userId) : undefined,
	];
	return db
		.select()
		.from(jobs)
		.where(and(...conditions))
		.orderBy(...keysetOrder(jobs.createdAt, jobs.id))
		.limit(options.limit + 1);
}

const jobNotFound = () => new LatchkeyError("not_found", "No such job.");

export async function getJob(db: Database, id: string): Promise<JobRow> {
	const [row] = await db.select().from(jobs).where(eq(jobs.id, id)).limit(1);
	if (!row) throw jobNotFound();
	return row;
}

/**
 * Sends a failed job round again: pending, due now, with a fresh set of attempts. Its last error
 * stays until the next attempt replaces it. Only a failed job: a pending or running one is
 * already on its way, and a done one has nothing left to do.
 */
export async function retryJob(
	db: Database,
	id: string,
	maxAttempts: number,
	now: Date,
): Promise<JobRow> {
	const [row] = await db
		.update(jobs)
		.set({
			status: "pending",
			attempts: 0,
			maxAttempts,
			nextAttemptAt: now,
			finishedAt: null,
			claimedBy: null,
			claimedUntil: null,
			updatedAt: now,
		})
		.where(and(eq(jobs.id, id), eq(jobs.status, "failed")))
		.returning();
	if (row) return row;
	const existing = await getJob(db, id);
	throw new LatchkeyError(
		"conflict",
		`The job is ${existing.status}; only a failed job can be retried.`,
		{
			hint: "Retry jobs listed by GET /v1/admin/jobs?status=failed.",
		},
	);
}
