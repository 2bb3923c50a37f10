import { and, asc, eq, inArray, isNull, lt, lte, notExists, or } from "drizzle-orm";
import { credentials, users } from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import type { Job } from "../jobs/job.ts";
import type { Services } from "../services.ts";
import { ensureFresh, loadCredential, type OAuthRow } from "./refresh.ts";

/**
 * Refreshes OAuth tokens before anyone needs them: those that expire within the next 15 minutes
 * (LATCHKEY_PROACTIVE_REFRESH_SECONDS)
 * and are not backing off after a failure, soonest first, in a bounded batch and time budget so
 * one cron run stays within the Workers CPU limit. It goes through the same single-flight lock
 * and fencing as a lease, and never waits for held leases (a token still held is left for the
 * next run or for the lease that needs it).
 */

const BATCH = 50;
const BUDGET_MS = 10_000;
/** How long one refresh may wait for another isolate's refresh of the same credential. */
const WAIT_MS = 3_000;

export async function refreshExpiring(
	services: Services,
	options: { batch?: number; budgetMs?: number; userIds?: readonly string[] } = {},
): Promise<Record<string, number>> {
	const horizonMs = services.config.LATCHKEY_PROACTIVE_REFRESH_SECONDS * 1000;
	if (horizonMs === 0) return { candidates: 0, refreshed: 0, held: 0, failed: 0, reconnect: 0 };
	const now = services.now();
	const started = performance.now();
	const candidates = await services.db
		.select({ id: credentials.id })
		.from(credentials)
		.where(
			and(
				eq(credentials.type, "oauth2"),
				eq(credentials.status, "active"),
				lt(credentials.accessTokenExpiresAt, new Date(now.getTime() + horizonMs)),
				or(isNull(credentials.refreshRetryAt), lte(credentials.refreshRetryAt, now)),
				options.userIds ? inArray(credentials.userId, [...options.userIds]) : undefined,
				// A deleting user's tokens are being revoked upstream: a refresh now could rotate the
				// refresh token past the one the revocation job read, leaving the grant alive.
				or(
					isNull(credentials.userId),
					notExists(
						services.db
							.select({ id: users.id })
							.from(users)
							.where(and(eq(users.id, credentials.userId), eq(users.status, "deleting"))),
					),
				),
			),
		)
		.orderBy(asc(credentials.accessTokenExpiresAt))
		.limit(options.batch ?? BATCH);
	const result = { candidates: candidates.length, refreshed: 0, held: 0, failed: 0, reconnect: 0 };
	for (const { id } of candidates) {
		if (performance.now() - started > (options.budgetMs ?? BUDGET_MS)) break;
		try {
			const row = await loadCredential(services, id);
			if (row?.type !== "oauth2") continue;
			const outcome = await ensureFresh(services, row as OAuthRow, {
				ttlMs: horizonMs,
				deadline: performance.now() + WAIT_MS,
				waitForHolders: false,
			});
			if (outcome.kind === "held") result.held++;
			else if (outcome.kind === "transient") result.failed++;
			else if (outcome.row.version !== row.version) result.refreshed++;
		} catch (err) {
			if (err instanceof LatchkeyError && err.code === "reconnect_required") {
				result.reconnect++;
				continue;
			}
			result.failed++;
			services.logger.warn("proactive refresh failed", {
				credential_id: id,
				error_code: err instanceof LatchkeyError ? err.code : "error",
			});
		}
	}
	return result;
}

export const proactiveRefreshJob: Job = {
	name: "proactive_refresh",
	// A scoped run (the maintenance route's user_id) refreshes only those users' credentials.
	run: (services, scope) => refreshExpiring(services, { userIds: scope?.userIds }),
};
