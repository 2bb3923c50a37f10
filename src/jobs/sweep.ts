/**
 * Removes ended sessions (revoked, or past their 30-day cap) once the session retention has
 * passed, together with their refresh tokens. Refresh tokens of live sessions are left alone,
 * expired or not: an old token presented again is how reuse is detected, and a live session is
 * at most 30 days old, so its tokens go with it.
 *
 * OAuth authorization states need no sweep: they live in Redis with a 10-minute TTL
 * (src/oauth/state.ts), so Redis drops them itself.
 */
import { sql } from "drizzle-orm";
import type { Services } from "../services.ts";
import type { Job } from "./job.ts";

/** Sessions per statement, and statements per run. */
export const SESSION_SWEEP_BATCH = 1000;
export const SESSION_SWEEP_MAX_BATCHES = 5;

export interface SweepResult {
	[counter: string]: number;
	deleted_sessions: number;
	/** Named `_count` so that the log redaction (any key with "token") leaves the number be. */
	deleted_refresh_token_count: number;
}

export async function sweepSessions(services: Services): Promise<SweepResult> {
	const cutoff = new Date(
		services.now().getTime() - services.config.LATCHKEY_SESSION_RETENTION_DAYS * 86_400_000,
	).toISOString();
	const result: SweepResult = { deleted_sessions: 0, deleted_refresh_token_count: 0 };
	for (let batch = 0; batch < SESSION_SWEEP_MAX_BATCHES; batch++) {
		// One statement per batch: the tokens are deleted explicitly (rather than by the cascade)
		// so that the run can report them. SKIP LOCKED leaves sessions being refreshed alone.
		const { rows } = await services.db.execute<{ sessions: number; tokens: number }>(sql`
			with doomed as (
				select id from sessions
				where (revoked_at is not null and revoked_at < ${cutoff}::timestamptz)
					or expires_at < ${cutoff}::timestamptz
				limit ${SESSION_SWEEP_BATCH}
				for update skip locked
			), tokens as (
				delete from refresh_tokens where session_id in (select id from doomed) returning 1
			), gone as (
				delete from sessions where id in (select id from doomed) returning 1
			)
			select (select count(*) from gone)::int as sessions, (select count(*) from tokens)::int as tokens`);
		const counts = rows[0] ?? { sessions: 0, tokens: 0 };
		result.deleted_sessions += Number(counts.sessions);
		result.deleted_refresh_token_count += Number(counts.tokens);
		if (Number(counts.sessions) < SESSION_SWEEP_BATCH) break;
	}
	return result;
}

export const sessionSweepJob: Job = {
	name: "sweep-sessions",
	run: (services) => sweepSessions(services),
};
