/**
 * Account deletion, after the request: the deprovisioning jobs (one per managed provisioning,
 * one per OAuth credential), their execution with retries, and the purge of the user's rows.
 * Semantics and bounds are documented in docs/operations.md; keep the two in step.
 */
import {
	and,
	asc,
	eq,
	getTableColumns,
	inArray,
	lte,
	notInArray,
	or,
	type SQL,
	sql,
} from "drizzle-orm";
import { type AuditEventInput, systemRecord, writeAuditRecords } from "../audit/index.ts";
import type { Config } from "../config.ts";
import { openSecret } from "../credentials/service.ts";
import { newId } from "../crypto/encoding.ts";
import type { Database } from "../db/client.ts";
import {
	type CredentialRow,
	credentials,
	type JobKind,
	type JobRow,
	type JobStatus,
	jobs,
	managedProvisionings,
	users,
} from "../db/schema.ts";
import { redactString } from "../log.ts";
import {
	CallBudget,
	DEPROVISION_STEP_CALLS,
	type ManagedProvider,
	ManagedProviderError,
} from "../managed/provider.ts";
import { revokeUpstream } from "../oauth/service.ts";
import type { Services } from "../services.ts";

export const JOB_KINDS = [
	"deprovision_managed",
	"revoke_oauth",
] as const satisfies readonly JobKind[];
export const JOB_STATUSES = [
	"pending",
	"running",
	"done",
	"failed",
] as const satisfies readonly JobStatus[];

/**
 * A claim outlives the longest job by far (a job makes a few provider calls of at most 10 s
 * each), so a live run never loses its claim; a crashed run's claims lapse after this.
 */
export const CLAIM_LEASE_SECONDS = 300;
/** Wall time after which a run claims nothing more; jobs already started finish. */
export const DELETION_BUDGET_MS = 20_000;
/** Jobs claimed and run at once: provider calls are I/O, so they overlap (6 connections max). */
export const DELETION_CONCURRENCY = 5;
/**
 * Jobs per run, whatever the time left: a job costs about ten subrequests (SQL over HTTP counts
 * too), and an invocation may make 10,000.
 */
export const DELETION_MAX_JOBS = 500;
/**
 * Subrequests a run may spend on jobs, well under the invocation's 10,000 so that the other
 * scheduled work keeps its share. A job costs about JOB_SUBREQUESTS (SQL, its audit event, a
 * revocation) plus the
 * provider calls of its deprovisioning step (at most DEPROVISION_STEP_CALLS); a run claims only
 * while the worst case of another batch still fits.
 */
export const DELETION_MAX_SUBREQUESTS = 7000;
export const JOB_SUBREQUESTS = 9;
/** Users purged per statement, and statements per run. */
export const PURGE_BATCH = 100;
export const PURGE_MAX_BATCHES = 5;
/** Finished job rows pruned per run. */
export const PRUNE_BATCH = 1000;
/** Backoff before retry n (n ≥ 1): BASE·2^(n-1), capped, then jittered to [half, whole]. */
export const BACKOFF_BASE_SECONDS = 60;
export const BACKOFF_CAP_SECONDS = 3600;
/**
 * A provisioning still `pending` and touched this recently may be running right now and about to
 * record another resource: its deprovisioning waits (retries) rather than miss that resource.
 */
export const PROVISIONING_IN_FLIGHT_SECONDS = 120;
const MAX_ERROR_LENGTH = 500;

/**
 * Deterministic job ids: (user, kind, target) names at most one job, so enqueueing again (a
 * repeated DELETE, the catch-up of every run, two of them at once) adds nothing.
 */
const jobIdSql = (userId: SQL, kind: JobKind, target: SQL) =>
	sql`'job_' || md5(${userId} || ${`:${kind}:`}::text || ${target})`;

/**
 * Statements that enqueue the missing deprovisioning jobs of users being deleted (of one user,
 * or of all), for the caller's batch: a managed job per provisioning intent (also one that
 * crashed half-way, so nothing it created is orphaned) and per managed credential without one,
 * and a revocation job per OAuth credential. Only users whose status is `deleting` at the time
 * of the statement get jobs, so placed after the status change in one batch they see it.
 */
export function enqueueDeletionJobs(
	db: Database,
	config: Config,
	now: Date,
	userIds?: readonly string[],
) {
	const at = sql`${now.toISOString()}::timestamptz`;
	const maxAttempts = config.LATCHKEY_JOB_MAX_ATTEMPTS;
	const scope = (column: SQL) =>
		userIds === undefined
			? sql``
			: sql`and ${column} in (${sql.join(
					userIds.map((id) => sql`${id}`),
					sql`, `,
				)})`;
	const managed = db.execute<{ id: string }>(sql`
		insert into jobs (id, user_id, kind, payload, max_attempts, next_attempt_at, created_at, updated_at)
		select ${jobIdSql(sql`t.user_id`, "deprovision_managed", sql`t.provider`)}, t.user_id,
			'deprovision_managed', jsonb_build_object('provider', t.provider, 'resources', t.resources),
			${maxAttempts}, ${at}, ${at}, ${at}
		from (
			select mp.user_id, mp.provider, mp.resources from managed_provisionings mp
			union
			select c.user_id, c.provider, '{}'::jsonb from credentials c
			where c.managed and not exists (
				select 1 from managed_provisionings mp
				where mp.user_id = c.user_id and mp.provider = c.provider
			)
		) t
		join users u on u.id = t.user_id and u.status = 'deleting'
		where true ${scope(sql`t.user_id`)}
		on conflict (id) do nothing
		returning id`);
	const oauth = db.execute<{ id: string }>(sql`
		insert into jobs (id, user_id, kind, payload, max_attempts, next_attempt_at, created_at, updated_at)
		select ${jobIdSql(sql`c.user_id`, "revoke_oauth", sql`c.id`)}, c.user_id, 'revoke_oauth',
			jsonb_build_object('credential_id', c.id, 'provider', c.provider),
			${maxAttempts}, ${at}, ${at}, ${at}
		from credentials c
		join users u on u.id = c.user_id and u.status = 'deleting'
		where c.type = 'oauth2' and not c.system ${scope(sql`c.user_id`)}
		on conflict (id) do nothing
		returning id`);
	return [managed, oauth] as const;
}

/** What one attempt of a job came to. */
export type Outcome =
	| { status: "done"; note?: string }
	/**
	 * Progress, with more to do (a deprovisioning step spent its call budget): due again in the
	 * next run, without spending an attempt, since this one did not fail.
	 */
	| { status: "continue"; note: string }
	/** Transient: tried again after a backoff, until the attempts run out. */
	| { status: "retry"; error: string }
	/** Permanent, or a human must look (an ownership mismatch): no more attempts. */
	| { status: "failed"; error: string };

export type FindManagedProvider = (
	services: Services,
	id: string,
) => Promise<ManagedProvider | undefined>;

export interface DeletionOptions {
	/** Only these users' jobs and purge (the admin route's `user_id`, tests). */
	userIds?: readonly string[] | undefined;
	/** Where managed providers come from; the registry unless a test hands in its own. */
	findProvider?: FindManagedProvider;
	budgetMs?: number;
	concurrency?: number;
	/** [0, 1) source for the backoff jitter. */
	random?: () => number;
}

export interface DeletionResult {
	[counter: string]: number;
	/** Jobs added by the catch-up (resources that appeared after the deletion request). */
	enqueued: number;
	claimed: number;
	/** Of them, claims taken over from a run whose lease lapsed. */
	taken_over: number;
	done: number;
	retried: number;
	failed: number;
	/** Jobs that made progress and go on in the next run (a large deprovisioning). */
	continued: number;
	/** Estimated subrequests spent on jobs (see DELETION_MAX_SUBREQUESTS). */
	subrequests: number;
	/** Results not recorded because another run had taken the job over meanwhile. */
	lost_claims: number;
	purged_users: number;
	pruned_jobs: number;
	/** Jobs due now that this run left for the next one (its budget ran out). */
	due_remaining: number;
}

const secondsBefore = (now: Date, seconds: number) => new Date(now.getTime() - seconds * 1000);
const secondsAfter = (now: Date, seconds: number) => new Date(now.getTime() + seconds * 1000);

function scopeOf(column: typeof jobs.userId | typeof users.id, userIds?: readonly string[]) {
	return userIds === undefined ? undefined : inArray(column, [...userIds]);
}

/** The delay before the retry that follows attempt `attempts`, in seconds. */
export function backoffSeconds(attempts: number, random: () => number = Math.random): number {
	const full = Math.min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** Math.max(0, attempts - 1));
	// "Equal jitter": never sooner than half the delay, so retries of one job stay spaced, while
	// jobs that failed together (a provider outage) spread out instead of retrying in step.
	return full / 2 + random() * (full / 2);
}

/** A short, secret-free account of an error for `last_error`. */
export function describeError(err: unknown): string {
	const text =
		err instanceof Error ? `${err.name}: ${err.message}` : `unexpected failure: ${String(err)}`;
	return redactString(text).slice(0, MAX_ERROR_LENGTH);
}

/**
 * Claims up to `limit` due jobs for `runId`: pending ones whose time has come, and running ones
 * whose claim lapsed (their run died) with attempts left. One statement: the rows are locked
 * with SKIP LOCKED while the claim is written, so two runs at once never claim the same job,
 * and once written the claim keeps other runs off until `claimed_until`.
 */
export interface ClaimedJob extends JobRow {
	/** The job was claimed by a run whose claim lapsed (it died or overran). */
	takenOver: boolean;
}

export async function claimJobs(
	services: Services,
	runId: string,
	limit: number,
	userIds?: readonly string[],
	/** Jobs this run already stepped: each runs at most once per run, bounding its calls. */
	exclude: readonly string[] = [],
): Promise<ClaimedJob[]> {
	const { db } = services;
	const now = services.now();
	const due = db.$with("due").as(
		db
			.select({ id: jobs.id, previous: sql<string | null>`${jobs.claimedBy}`.as("previous") })
			.from(jobs)
			.where(
				and(
					or(
						and(eq(jobs.status, "pending"), lte(jobs.nextAttemptAt, now)),
						and(
							eq(jobs.status, "running"),
							lte(jobs.claimedUntil, now),
							sql`${jobs.attempts} < ${jobs.maxAttempts}`,
						),
					),
					scopeOf(jobs.userId, userIds),
					exclude.length > 0 ? notInArray(jobs.id, [...exclude]) : undefined,
				),
			)
			.orderBy(asc(jobs.nextAttemptAt), asc(jobs.id))
			.limit(limit)
			.for("update", { skipLocked: true }),
	);
	const rows = await db
		.with(due)
		.update(jobs)
		.set({
			status: "running",
			claimedBy: runId,
			claimedUntil: secondsAfter(now, CLAIM_LEASE_SECONDS),
			attempts: sql`${jobs.attempts} + 1`,
			updatedAt: now,
		})
		.from(due)
		.where(eq(jobs.id, due.id))
		.returning({ job: getTableColumns(jobs), previous: due.previous });
	return rows.map(({ job, previous }) => ({ ...job, takenOver: previous !== null }));
}

/**
 * Records an attempt's outcome, if `runId` still holds the claim: a run that overran its lease
 * and was taken over must not overwrite the result of the run that took over.
 */
export async function finishJob(
	services: Services,
	job: JobRow,
	runId: string,
	outcome: Outcome,
	random: () => number = Math.random,
): Promise<"done" | "retried" | "failed" | "lost" | "continued"> {
	const now = services.now();
	if (outcome.status === "continue") {
		const rows = await services.db
			.update(jobs)
			.set({
				status: "pending",
				lastError: outcome.note,
				claimedBy: null,
				claimedUntil: null,
				attempts: sql`greatest(${jobs.attempts} - 1, 0)`,
				nextAttemptAt: now,
				updatedAt: now,
			})
			.where(and(eq(jobs.id, job.id), eq(jobs.claimedBy, runId), eq(jobs.status, "running")))
			.returning({ id: jobs.id });
		return rows.length === 0 ? "lost" : "continued";
	}
	const exhausted = outcome.status === "retry" && job.attempts >= job.maxAttempts;
	const status: JobStatus =
		outcome.status === "done"
			? "done"
			: outcome.status === "failed" || exhausted
				? "failed"
				: "pending";
	const lastError =
		outcome.status === "done"
			? (outcome.note ?? null)
			: exhausted
				? `${outcome.error} (gave up after ${job.attempts} attempts)`
				: outcome.error;
	const rows = await services.db
		.update(jobs)
		.set({
			status,
			lastError,
			claimedBy: null,
			claimedUntil: null,
			updatedAt: now,
			...(status === "pending"
				? { nextAttemptAt: secondsAfter(now, backoffSeconds(job.attempts, random)) }
				: { finishedAt: now }),
		})
		.where(and(eq(jobs.id, job.id), eq(jobs.claimedBy, runId), eq(jobs.status, "running")))
		.returning({ id: jobs.id });
	if (rows.length === 0) return "lost";
	return status === "done" ? "done" : status === "failed" ? "failed" : "retried";
}

const payloadString = (job: JobRow, field: string): string | null => {
	const value = job.payload[field];
	return typeof value === "string" ? value : null;
};

async function userExists(services: Services, userId: string): Promise<boolean> {
	const [row] = await services.db
		.select({ id: users.id })
		.from(users)
		.where(eq(users.id, userId))
		.limit(1);
	return row !== undefined;
}

/** Revokes an OAuth credential's tokens at its provider (RFC 7009). */
async function revokeOAuth(services: Services, job: JobRow): Promise<Outcome> {
	const credentialId = payloadString(job, "credential_id");
	if (!credentialId) return { status: "failed", error: "the job names no credential" };
	const [row] = await services.db
		.select()
		.from(credentials)
		.where(and(eq(credentials.id, credentialId), eq(credentials.userId, job.userId)))
		.limit(1);
	if (row?.type !== "oauth2") {
		// Deleting a credential revokes its tokens itself; only a purge would lose them unrevoked.
		return (await userExists(services, job.userId))
			? { status: "done", note: "the credential was already deleted" }
			: {
					status: "failed",
					error: "the credential was purged; its tokens can no longer be revoked",
				};
	}
	let secret: { access_token: string; refresh_token?: string };
	try {
		secret = await openSecret(services, row as CredentialRow & { type: "oauth2" });
	} catch (err) {
		return { status: "failed", error: describeError(err) };
	}
	let why = "";
	const revoked = await revokeUpstream(
		services,
		row.provider,
		{
			accessToken: secret.access_token,
			...(secret.refresh_token ? { refreshToken: secret.refresh_token } : {}),
		},
		(reason) => {
			why ||= reason;
		},
	);
	if (revoked === null) {
		return { status: "done", note: "the provider has no revocation endpoint; nothing to revoke" };
	}
	return revoked
		? { status: "done" }
		: {
				status: "retry",
				error: `the provider '${row.provider}' did not accept the revocation${why ? `: ${why}` : ""}`,
			};
}

/** Removes what a managed provider created for the user, after the provider checks ownership. */
async function deprovisionManaged(
	services: Services,
	job: JobRow,
	findProvider: FindManagedProvider,
	budget: CallBudget,
): Promise<Outcome> {
	const providerId = payloadString(job, "provider");
	if (!providerId) return { status: "failed", error: "the job names no provider" };
	const provider = await findProvider(services, providerId);
	if (!provider) {
		// A deployment that dropped the provider's configuration may get it back; the attempts
		// bound how long this waits, and a failed job can be retried once it is back.
		return { status: "retry", error: `the managed provider '${providerId}' is not configured` };
	}
	const [provisioning] = await services.db
		.select()
		.from(managedProvisionings)
		.where(
			and(
				eq(managedProvisionings.userId, job.userId),
				eq(managedProvisionings.provider, providerId),
			),
		)
		.limit(1);
	const now = services.now();
	if (
		provisioning?.status === "pending" &&
		provisioning.updatedAt > secondsBefore(now, PROVISIONING_IN_FLIGHT_SECONDS)
	) {
		return { status: "retry", error: "a provisioning for this user is still in flight" };
	}
	const [credential] = await services.db
		.select()
		.from(credentials)
		.where(
			and(
				eq(credentials.userId, job.userId),
				eq(credentials.provider, providerId),
				eq(credentials.managed, true),
			),
		)
		.limit(1);
	// The intent row is the newest record of what exists; the job's copy outlives the purge.
	const fromPayload = job.payload.resources;
	const resources =
		provisioning?.resources ??
		(typeof fromPayload === "object" && fromPayload !== null
			? (fromPayload as Record<string, string>)
			: {});
	try {
		const outcome = await provider.deprovision(
			services,
			{ id: job.userId },
			resources,
			credential ?? null,
			budget,
		);
		if (outcome.status === "deleted") return { status: "done" };
		if (outcome.status === "partial") {
			return { status: "continue", note: redactString(outcome.detail).slice(0, MAX_ERROR_LENGTH) };
		}
		// Someone else's resource: deleting it would be the worst outcome, retrying cannot change
		// whose it is, so a human must look (docs/operations.md).
		return {
			status: "failed",
			error: redactString(`ownership mismatch: ${outcome.detail}`).slice(0, MAX_ERROR_LENGTH),
		};
	} catch (err) {
		const error = describeError(err);
		return err instanceof ManagedProviderError && err.permanent
			? { status: "failed", error }
			: { status: "retry", error };
	}
}

/** One attempt of a claimed job. Never throws: anything unexpected is a transient failure. */
export async function attemptJob(
	services: Services,
	job: JobRow,
	findProvider: FindManagedProvider,
	budget: CallBudget = new CallBudget(DEPROVISION_STEP_CALLS),
): Promise<Outcome> {
	try {
		switch (job.kind) {
			case "revoke_oauth":
				return await revokeOAuth(services, job);
			case "deprovision_managed":
				return await deprovisionManaged(services, job, findProvider, budget);
			default:
				return { status: "failed", error: `unknown job kind '${String(job.kind)}'` };
		}
	} catch (err) {
		return { status: "retry", error: describeError(err) };
	}
}

/**
 * Deletes the users whose deletion is over: every job done, or failed longer ago than the
 * failed-job retention, no provisioning or OAuth credential left without its job, and the
 * purge delay passed. Foreign keys cascade to keys, sessions, refresh tokens, credentials and
 * provisioning intents; the jobs stay (they have no foreign key) for the job retention.
 */
export async function purgeUsers(
	services: Services,
	userIds?: readonly string[],
	/** Collects the ids purged (for the audit log). */
	purgedIds?: string[],
): Promise<number> {
	const { config } = services;
	const now = services.now();
	const requestedBefore = secondsBefore(now, config.LATCHKEY_PURGE_DELAY_SECONDS).toISOString();
	const failedBefore = secondsBefore(
		now,
		config.LATCHKEY_FAILED_JOB_RETENTION_HOURS * 3600,
	).toISOString();
	const scope =
		userIds === undefined
			? sql``
			: sql`and u.id in (${sql.join(
					userIds.map((id) => sql`${id}`),
					sql`, `,
				)})`;
	let purged = 0;
	for (let batch = 0; batch < PURGE_MAX_BATCHES; batch++) {
		const result = await services.db.execute<{ id: string }>(sql`
			delete from users where id in (
				select u.id from users u
				where u.status = 'deleting' ${scope}
					and coalesce(u.deletion_requested_at, u.updated_at) <= ${requestedBefore}::timestamptz
					and not exists (
						select 1 from jobs j where j.user_id = u.id and (
							j.status in ('pending', 'running')
							or (j.status = 'failed' and j.finished_at > ${failedBefore}::timestamptz)
						)
					)
					and not exists (
						select 1 from managed_provisionings mp where mp.user_id = u.id and not exists (
							select 1 from jobs j
							where j.id = ${jobIdSql(sql`mp.user_id`, "deprovision_managed", sql`mp.provider`)}
						)
					)
					and not exists (
						select 1 from credentials c
						where c.user_id = u.id and (c.managed or c.type = 'oauth2') and not exists (
							select 1 from jobs j where j.id in (
								${jobIdSql(sql`c.user_id`, "deprovision_managed", sql`c.provider`)},
								${jobIdSql(sql`c.user_id`, "revoke_oauth", sql`c.id`)}
							)
						)
					)
				order by u.id
				limit ${PURGE_BATCH}
				for update of u skip locked
			)
			returning id`);
		purged += result.rows.length;
		purgedIds?.push(...result.rows.map((r) => r.id));
		if (result.rows.length < PURGE_BATCH) break;
	}
	return purged;
}

/** Deletes finished jobs of purged users once the job retention has passed. */
export async function pruneJobs(services: Services): Promise<number> {
	const now = services.now();
	const before = secondsBefore(now, services.config.LATCHKEY_JOB_RETENTION_DAYS * 86_400);
	const result = await services.db.execute<{ id: string }>(sql`
		delete from jobs where id in (
			select j.id from jobs j
			where j.status in ('done', 'failed') and j.finished_at < ${before.toISOString()}::timestamptz
				and not exists (select 1 from users u where u.id = j.user_id)
			limit ${PRUNE_BATCH}
		)
		returning id`);
	return result.rows.length;
}

async function countDue(services: Services, userIds?: readonly string[]): Promise<number> {
	const now = services.now();
	const [row] = await services.db
		.select({ n: sql<number>`count(*)::int` })
		.from(jobs)
		.where(
			and(
				or(
					and(eq(jobs.status, "pending"), lte(jobs.nextAttemptAt, now)),
					and(eq(jobs.status, "running"), lte(jobs.claimedUntil, now)),
				),
				scopeOf(jobs.userId, userIds),
			),
		);
	return row?.n ?? 0;
}

/** Running jobs whose claim lapsed on their last attempt: their run died, and no attempt is left. */
async function failLapsedLastAttempts(
	services: Services,
	userIds?: readonly string[],
): Promise<number> {
	const now = services.now();
	const rows = await services.db
		.update(jobs)
		.set({
			status: "failed",
			lastError: "the run holding the last attempt died (its claim lapsed)",
			claimedBy: null,
			claimedUntil: null,
			finishedAt: now,
			updatedAt: now,
		})
		.where(
			and(
				eq(jobs.status, "running"),
				lte(jobs.claimedUntil, now),
				sql`${jobs.attempts} >= ${jobs.maxAttempts}`,
				scopeOf(jobs.userId, userIds),
			),
		)
		.returning({ id: jobs.id });
	return rows.length;
}

/**
 * One run of the deletion work: enqueue what appeared since the requests, run due jobs until the
 * time budget is spent, purge the users whose deletion is over, prune old jobs.
 */
export async function runDeletionWork(
	services: Services,
	findProvider: FindManagedProvider,
	options: DeletionOptions = {},
): Promise<DeletionResult> {
	const { userIds } = options;
	const find = options.findProvider ?? findProvider;
	const budgetMs = options.budgetMs ?? DELETION_BUDGET_MS;
	const concurrency = options.concurrency ?? DELETION_CONCURRENCY;
	const random = options.random ?? Math.random;
	const deadline = performance.now() + budgetMs;
	const runId = newId("run");
	const result: DeletionResult = {
		enqueued: 0,
		claimed: 0,
		taken_over: 0,
		done: 0,
		retried: 0,
		failed: 0,
		continued: 0,
		subrequests: 0,
		lost_claims: 0,
		purged_users: 0,
		pruned_jobs: 0,
		due_remaining: 0,
	};

	const { db, config } = services;
	const [managed, oauth] = await db.batch(enqueueDeletionJobs(db, config, services.now(), userIds));
	result.enqueued = managed.rows.length + oauth.rows.length;
	result.failed += await failLapsedLastAttempts(services, userIds);

	const stepped: string[] = [];
	const worstJob = JOB_SUBREQUESTS + DEPROVISION_STEP_CALLS;
	while (performance.now() < deadline && result.claimed < DELETION_MAX_JOBS) {
		const affordable = Math.floor((DELETION_MAX_SUBREQUESTS - result.subrequests) / worstJob);
		const limit = Math.min(concurrency, DELETION_MAX_JOBS - result.claimed, affordable);
		if (limit <= 0) break;
		const claimed = await claimJobs(services, runId, limit, userIds, stepped);
		if (claimed.length === 0) break;
		stepped.push(...claimed.map((j) => j.id));
		result.claimed += claimed.length;
		result.taken_over += claimed.filter((j) => j.takenOver).length;
		const events: AuditEventInput[] = [];
		const settled = await Promise.all(
			claimed.map(async (job) => {
				const budget = new CallBudget(DEPROVISION_STEP_CALLS);
				const outcome = await attemptJob(services, job, find, budget);
				result.subrequests += JOB_SUBREQUESTS + budget.used;
				const settledAs = await finishJob(services, job, runId, outcome, random);
				const event = deprovisionEvent(job, settledAs);
				if (event) events.push(event);
				if (settledAs === "failed" && (outcome.status === "failed" || outcome.status === "retry")) {
					// One line per job that needs a human, for alerting; the error is secret-free.
					services.logger.warn("deletion job failed", {
						job_id: job.id,
						user_id: job.userId,
						kind: job.kind,
						attempts: job.attempts,
						error: outcome.error,
					});
				}
				return settledAs;
			}),
		);
		for (const s of settled) {
			if (s === "lost") result.lost_claims += 1;
			else result[s] += 1;
		}
		// Never throws: a failed write goes to the audit log's Redis fallback.
		await writeAuditRecords(
			services,
			events.map((e) => systemRecord(services, e)),
			{ requestId: null },
		);
	}

	const purgedIds: string[] = [];
	result.purged_users = await purgeUsers(services, userIds, purgedIds);
	await writeAuditRecords(
		services,
		purgedIds.map((id) =>
			systemRecord(services, {
				action: "user.purged",
				target: { type: "user", id },
				userId: id,
			}),
		),
		{ requestId: null },
	);
	// One statement per purged user's event: part of the run's subrequests too.
	result.subrequests += purgedIds.length;
	result.pruned_jobs = userIds === undefined ? await pruneJobs(services) : 0;
	result.due_remaining = await countDue(services, userIds);
	return result;
}

/** The audit event of an attempt's outcome; none for a step that goes on or a lost claim. */
function deprovisionEvent(
	job: JobRow,
	settledAs: "done" | "retried" | "failed" | "lost" | "continued",
): AuditEventInput | null {
	if (settledAs === "lost" || settledAs === "continued") return null;
	const provider = payloadString(job, "provider");
	return {
		action:
			settledAs === "done"
				? "deprovision.succeeded"
				: settledAs === "retried"
					? "deprovision.retried"
					: "deprovision.failed",
		outcome: settledAs === "done" ? "success" : "failure",
		target: { type: "job", id: job.id },
		userId: job.userId,
		// The error stays on the job (GET /v1/admin/jobs/{id}); the log names only what and where.
		detail: {
			kind: job.kind,
			...(provider ? { provider } : {}),
			credential_id: payloadString(job, "credential_id") ?? undefined,
			attempts: job.attempts,
		},
	};
}

/** Job rows for the admin routes. */
export interface JobJson {
	id: string;
	user_id: string;
	kind: JobKind;
	status: JobStatus;
	attempts: number;
	next_attempt_at: string;
	last_error: string | null;
	created_at: string;
	updated_at: string;
}

export function toJobJson(row: JobRow): JobJson {
	return {
		id: row.id,
		user_id: row.userId,
		kind: row.kind,
		status: row.status,
		attempts: row.attempts,
		next_attempt_at: row.nextAttemptAt.toISOString(),
		// Written redacted, and redacted again on the way out (rows from older code, edits).
		last_error: row.lastError === null ? null : redactString(row.lastError),
		created_at: row.createdAt.toISOString(),
		updated_at: row.updatedAt.toISOString(),
	};
}
