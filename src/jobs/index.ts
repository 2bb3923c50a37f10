import { drainPendingAudit, pruneAudit } from "../audit/index.ts";
import { recoverStashes, refreshExpiring } from "../leases/proactive.ts";
import { findManagedProvider } from "../managed/registry.ts";
import type { Services } from "../services.ts";
import { deliverWebhooks } from "../webhooks/deliver.ts";
import { runDeletionWork } from "./deletion.ts";
import type { Job, JobScope } from "./job.ts";
import { rewrapJob } from "./rewrap.ts";
import { sessionSweepJob } from "./sweep.ts";

export interface JobResult {
	name: string;
	ok: boolean;
	duration_ms: number;
	result?: Record<string, number>;
	error?: string;
}

export interface MaintenanceSummary {
	started_at: string;
	duration_ms: number;
	jobs: JobResult[];
}

export const deletionJob: Job = {
	name: "account-deletion",
	run: (services, scope) =>
		runDeletionWork(services, findManagedProvider, { userIds: scope?.userIds }),
};

// The leases' own work, scheduled here: leases/ knows nothing of jobs.
export const proactiveRefreshJob: Job = {
	name: "proactive_refresh",
	// A scoped run (the maintenance route's user_id) refreshes only those users' credentials.
	run: (services, scope) => refreshExpiring(services, { userIds: scope?.userIds }),
};

export const stashRecoveryJob: Job = {
	name: "refresh_stash_recovery",
	run: (services, scope) => recoverStashes(services, { userIds: scope?.userIds }),
};

/** Audit events whose write failed wait in Redis; this writes them into their chains. */
export const auditWriteBackJob: Job = {
	name: "audit-write-back",
	run: (services) => drainPendingAudit(services),
};

/**
 * Deletes the audit log's days older than LATCHKEY_AUDIT_RETENTION_DAYS, whole. Not in a run
 * scoped to some users (the maintenance route's user_id): that run is about those users, and the
 * log is everyone's.
 */
export const auditRetentionJob: Job = {
	name: "audit-retention",
	run: async (services, scope) =>
		scope?.userIds === undefined
			? pruneAudit(services)
			: { deleted_events: 0, deleted_heads: 0, skipped: 1 },
};

/**
 * Sends due webhook deliveries (docs/webhooks.md). Not in a run scoped to some users: the
 * deliveries are the platform's, not those users'.
 */
export const webhookDeliveryJob: Job = {
	name: "webhook-delivery",
	run: async (services, scope) =>
		scope?.userIds === undefined
			? deliverWebhooks(services)
			: { claimed: 0, delivered: 0, retried: 0, failed: 0, skipped: 1 },
};

/**
 * What every scheduled run does, in order; each job bounds its own work (docs/operations.md).
 * Deletion first: it has the tightest promise to keep (revoking a deleted user's tokens).
 */
export const jobs: Job[] = [
	deletionJob,
	sessionSweepJob,
	// Before the proactive refresh: a stashed answer holds the only live refresh token.
	stashRecoveryJob,
	proactiveRefreshJob,
	rewrapJob,
	auditWriteBackJob,
	// After the write-back: events it writes queue their deliveries, sent in this same run.
	webhookDeliveryJob,
	auditRetentionJob,
];

export async function runJobs(
	services: Services,
	list: Job[] = jobs,
	scope?: JobScope,
): Promise<MaintenanceSummary> {
	const startedAt = services.now();
	const t0 = performance.now();
	const results: JobResult[] = [];
	for (const job of list) {
		const j0 = performance.now();
		try {
			const result = await job.run(services, scope);
			results.push({
				name: job.name,
				ok: true,
				duration_ms: Math.round(performance.now() - j0),
				result,
			});
		} catch (err) {
			// Names only: job errors can carry upstream bodies, and the logger redacts the rest.
			const message = err instanceof Error ? err.message : String(err);
			results.push({
				name: job.name,
				ok: false,
				duration_ms: Math.round(performance.now() - j0),
				error: message,
			});
		}
	}
	const summary: MaintenanceSummary = {
		started_at: startedAt.toISOString(),
		duration_ms: Math.round(performance.now() - t0),
		jobs: results,
	};
	services.logger.info("maintenance run", { ...summary });
	return summary;
}
