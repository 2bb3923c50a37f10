import { and, asc, eq, gt, inArray, isNull, lt, lte, notExists, or, sql } from "drizzle-orm";
import { credentials, users } from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import { listProviders } from "../oauth/registry.ts";
import type { Services } from "../services.ts";
import { ensureFresh, loadCredential, type OAuthRow, recoverStash } from "./refresh.ts";
import { leaseStoreOf } from "./store.ts";

/**
 * Refreshes OAuth tokens before anyone needs them: those that expire within the next 15 minutes
 * (LATCHKEY_PROACTIVE_REFRESH_SECONDS), soonest first, in a bounded batch and time budget so one
 * cron run stays within the Workers CPU limit. Candidates are only tokens worth the provider
 * call: active (not `reconnect_required`), not backing off, of a provider that still has a
 * client configured, leased (or connected) within LATCHKEY_PROACTIVE_REFRESH_IDLE_SECONDS, and
 * at most LATCHKEY_PROACTIVE_REFRESH_PER_USER per user, so one user's failing credentials cannot
 * take every slot. It goes through the same single-flight lock and fencing as a lease, and never
 * waits for held leases (a token still held is left for the next run or for the lease that
 * needs it).
 */

const BATCH = 50;
const BUDGET_MS = 10_000;
/** How long one refresh may wait for another isolate's refresh of the same credential. */
const WAIT_MS = 3_000;
/** Stashes one run writes back at most. */
const STASH_BATCH = 50;

export async function refreshExpiring(
	services: Services,
	options: { batch?: number; budgetMs?: number; userIds?: readonly string[] } = {},
): Promise<Record<string, number>> {
	const horizonMs = services.config.LATCHKEY_PROACTIVE_REFRESH_SECONDS * 1000;
	const result = { candidates: 0, refreshed: 0, held: 0, failed: 0, reconnect: 0 };
	if (horizonMs === 0) return result;
	const now = services.now();
	const started = performance.now();
	// One query for the whole run: which providers can refresh at all (a client configured in the
	// database or, for built-ins, the environment), and whether their refresh kills old tokens.
	const providers = (await listProviders(services)).filter((p) => p.configured);
	if (providers.length === 0) return result;
	const invalidating = new Set(
		providers.filter((p) => p.refreshInvalidatesAccessToken).map((p) => p.id),
	);
	const idleSince = new Date(
		now.getTime() - services.config.LATCHKEY_PROACTIVE_REFRESH_IDLE_SECONDS * 1000,
	);
	const ranked = services.db
		.select({
			id: credentials.id,
			expiresAt: credentials.accessTokenExpiresAt,
			// Per-user rank, soonest expiry first: the fairness bound below.
			rank: sql<number>`row_number() over (partition by coalesce(${credentials.userId}, '') order by ${credentials.accessTokenExpiresAt})`.as(
				"rank",
			),
		})
		.from(credentials)
		.where(
			and(
				eq(credentials.type, "oauth2"),
				eq(credentials.status, "active"),
				lt(credentials.accessTokenExpiresAt, new Date(now.getTime() + horizonMs)),
				or(isNull(credentials.refreshRetryAt), lte(credentials.refreshRetryAt, now)),
				inArray(
					credentials.provider,
					providers.map((p) => p.id),
				),
				// Someone still uses it: leased lately, or connected lately and not leased yet. The
				// refresh itself does not count, or an abandoned token would be refreshed forever.
				or(
					gt(credentials.lastUsedAt, idleSince),
					and(isNull(credentials.lastUsedAt), gt(credentials.createdAt, idleSince)),
				),
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
		.as("ranked");
	const candidates = await services.db
		.select({ id: ranked.id })
		.from(ranked)
		.where(lte(ranked.rank, services.config.LATCHKEY_PROACTIVE_REFRESH_PER_USER))
		.orderBy(asc(ranked.expiresAt))
		.limit(options.batch ?? BATCH);
	result.candidates = candidates.length;
	for (const { id } of candidates) {
		if (performance.now() - started > (options.budgetMs ?? BUDGET_MS)) break;
		try {
			const row = await loadCredential(services, id);
			if (row?.type !== "oauth2") continue;
			const outcome = await ensureFresh(services, row as OAuthRow, {
				ttlMs: horizonMs,
				invalidates: invalidating.has(row.provider),
				deadline: performance.now() + WAIT_MS,
				waitForHolders: false,
			});
			if (outcome.kind === "held") result.held++;
			else if (outcome.kind === "transient") result.failed++;
			else if (outcome.row.tokenVersion !== row.tokenVersion) result.refreshed++;
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

/**
 * Writes back provider answers that reached the stash but not the database, without waiting for
 * a lease to find them: through the index of pending stashes (never SCAN), oldest first.
 */
export async function recoverStashes(
	services: Services,
	options: { batch?: number; userIds?: readonly string[] } = {},
): Promise<Record<string, number>> {
	const store = leaseStoreOf(services);
	const result = { pending: 0, written: 0, dropped: 0, busy: 0, skipped: 0, failed: 0 };
	const pending = await store.pendingStashes(options.batch ?? STASH_BATCH);
	result.pending = pending.length;
	for (const { credentialId, indexedAt } of pending) {
		try {
			const outcome = await recoverStash(services, credentialId, options.userIds);
			if (outcome === "busy" || outcome === "skipped") {
				result[outcome]++;
				continue;
			}
			if (outcome === "written") result.written++;
			if (outcome === "dropped") result.dropped++;
			await store.unindexStash(credentialId, indexedAt);
		} catch (err) {
			result.failed++;
			services.logger.warn("refresh stash not recovered", {
				credential_id: credentialId,
				error_code: err instanceof LatchkeyError ? err.code : "error",
			});
		}
	}
	return result;
}
