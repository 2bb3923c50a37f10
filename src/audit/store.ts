/**
 * Writing audit events into their hash chains, the Redis fallback that keeps an event whose write
 * failed, the scheduled write-back of that fallback, and retention (docs/audit.md).
 */
import { type SQL, sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { postgresErrorOf, violatedUniqueConstraint } from "../db/errors.ts";
import type { Services } from "../services.ts";
import { queueDeliveriesSql } from "../webhooks/events.ts";
import {
	AUDIT_ACTIONS,
	AUDIT_OUTCOMES,
	AUDIT_SHARDS,
	AUDIT_TARGET_TYPES,
	type AuditAction,
	type AuditAuthMethod,
	type AuditOutcome,
	type AuditRecord,
	type AuditTargetType,
	canonicalBody,
	chainOf,
	dayOf,
	GENESIS_HASH,
} from "./events.ts";

/** Events whose database write failed, oldest first, as JSON; written back by the cron. */
export const PENDING_KEY = "lk:audit:pending";
/** Entries of PENDING_KEY that cannot be parsed (never expected): kept for a human, not retried. */
export const DEAD_KEY = "lk:audit:dead";

/** Tries per event: each picks another chain after a conflict on the chain's next seq. */
export const WRITE_ATTEMPTS = 8;

const PRIMARY_KEY = "audit_events_pkey";
const CHAIN_SEQ = "audit_events_chain_seq_idx";

/**
 * One statement, one round trip: read the chain's head, insert the row as seq + 1 with its hash
 * computed in SQL over the previous hash, the chain, the seq and the canonical body (the same
 * bytes `chainHash` hashes), and move the head, all under one snapshot. Two writers that read the
 * same head both try the same (chain, seq); the unique index lets one through and the other
 * fails with 23505 on audit_events_chain_seq_idx, and retries on another chain.
 */
function insertStatement(r: AuditRecord, chain: string): SQL {
	const body = canonicalBody(r);
	// The event's webhook deliveries (docs/webhooks.md) go in with it: both or neither.
	const deliveries = queueDeliveriesSql(r, sql`ins`);
	const queued = deliveries === null ? sql`` : sql`, deliveries as (${deliveries})`;
	return sql`
		with head as (
			select seq, hash from audit_chain_heads where chain = ${chain}
		), place as (
			select coalesce((select seq from head), 0) + 1 as seq,
				coalesce((select hash from head), ${GENESIS_HASH}::text) as prev
		), ins as (
			insert into audit_events (id, chain, seq, at, action, outcome, user_id, auth_method,
				actor_user_id, actor_key_id, actor_session_id, target_type, target_id, ip, request_id,
				detail, prev_hash, hash)
			select ${r.id}::text, ${chain}::text, p.seq, ${r.at.toISOString()}::timestamptz,
				${r.action}::text, ${r.outcome}::text, ${r.userId}::text, ${r.actor.method}::text,
				${r.actor.userId}::text, ${r.actor.keyId}::text, ${r.actor.sessionId}::text,
				${r.targetType}::text, ${r.targetId}::text, ${r.ip}::text, ${r.requestId}::text,
				${r.detail}::text, p.prev,
				encode(sha256(convert_to(
					p.prev || chr(10) || ${chain}::text || chr(10) || p.seq::text || chr(10) || ${body}::text,
					'UTF8')), 'hex')
			from place p
			returning seq, hash
		), moved as (
			insert into audit_chain_heads (chain, seq, hash, updated_at)
			select ${chain}::text, seq, hash, now() from ins
			on conflict (chain) do update
				set seq = excluded.seq, hash = excluded.hash, updated_at = excluded.updated_at
			returning seq
		)${queued}
		select (select seq from moved) as seq`;
}

export type WriteOutcome = "written" | "duplicate";

/**
 * Writes one event into one of its day's chains. "duplicate": the id is already stored (a
 * write-back of an event whose first write did reach the database). Throws on anything else,
 * after WRITE_ATTEMPTS conflicts included.
 */
export async function writeRecord(
	db: Database,
	record: AuditRecord,
	random: () => number = Math.random,
): Promise<WriteOutcome> {
	let last: unknown;
	for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
		const chain = chainOf(record.at, Math.floor(random() * AUDIT_SHARDS));
		try {
			await db.execute(insertStatement(record, chain));
			return "written";
		} catch (err) {
			const constraint = violatedUniqueConstraint(err);
			if (constraint === PRIMARY_KEY) return "duplicate";
			if (constraint !== CHAIN_SEQ) throw err;
			last = err;
		}
	}
	throw last;
}

/** The JSON kept in Redis for an event not yet written; the detail stays its canonical text. */
export function serializeRecord(r: AuditRecord): string {
	return JSON.stringify({ ...r, at: r.at.toISOString() });
}

const oneOf = <T extends string>(list: readonly T[], v: unknown): v is T =>
	typeof v === "string" && (list as readonly string[]).includes(v);
const optString = (v: unknown): v is string | null => v === null || typeof v === "string";
const AUTH_METHODS: readonly AuditAuthMethod[] = [
	"admin",
	"api_key",
	"legacy_key",
	"access_token",
	"external",
	"refresh_token",
	"system",
];

/** The inverse of serializeRecord; null for anything it did not produce. */
export function parseRecord(text: string): AuditRecord | null {
	let v: Record<string, unknown>;
	try {
		v = JSON.parse(text);
	} catch {
		return null;
	}
	if (typeof v !== "object" || v === null) return null;
	const actor = v.actor as Record<string, unknown> | null;
	const at = new Date(typeof v.at === "string" ? v.at : Number.NaN);
	if (
		typeof v.id !== "string" ||
		Number.isNaN(at.getTime()) ||
		!oneOf<AuditAction>(AUDIT_ACTIONS, v.action) ||
		!oneOf<AuditOutcome>(AUDIT_OUTCOMES, v.outcome) ||
		!optString(v.userId) ||
		typeof actor !== "object" ||
		actor === null ||
		!oneOf<AuditAuthMethod>(AUTH_METHODS, actor.method) ||
		!optString(actor.userId) ||
		!optString(actor.keyId) ||
		!optString(actor.sessionId) ||
		!(v.targetType === null || oneOf<AuditTargetType>(AUDIT_TARGET_TYPES, v.targetType)) ||
		!optString(v.targetId) ||
		!optString(v.ip) ||
		!optString(v.requestId) ||
		typeof v.detail !== "string"
	) {
		return null;
	}
	return {
		id: v.id,
		at,
		action: v.action,
		outcome: v.outcome,
		userId: v.userId,
		actor: {
			method: actor.method,
			userId: actor.userId,
			keyId: actor.keyId,
			sessionId: actor.sessionId,
		},
		targetType: v.targetType,
		targetId: v.targetId,
		ip: v.ip,
		requestId: v.requestId,
		detail: v.detail,
	};
}

export interface WriteReport {
	written: number;
	/** Kept in Redis for the scheduled write-back. */
	queued: number;
	/** Neither written nor queued: logged as an error. */
	lost: number;
}

/**
 * Writes a request's (or a job's) events, one statement each. An event whose write fails goes,
 * with those after it, to the Redis list the scheduled worker writes back; if Redis fails too,
 * an error line names the request and the events' ids and actions (never their detail).
 */
export async function writeAuditRecords(
	services: Services,
	records: readonly AuditRecord[],
	origin: { requestId: string | null },
): Promise<WriteReport> {
	const report: WriteReport = { written: 0, queued: 0, lost: 0 };
	let failedAt = records.length;
	let failure: unknown;
	for (let i = 0; i < records.length; i++) {
		try {
			await writeRecord(services.db, records[i] as AuditRecord);
			report.written += 1;
		} catch (err) {
			failedAt = i;
			failure = err;
			break;
		}
	}
	const rest = records.slice(failedAt);
	if (rest.length === 0) return report;
	const pg = postgresErrorOf(failure);
	try {
		await services.rawRedis.rpush(PENDING_KEY, ...rest.map(serializeRecord));
		report.queued = rest.length;
		services.logger.warn("audit events queued for the scheduled write-back", {
			request_id: origin.requestId,
			event_ids: rest.map((r) => r.id),
			sqlstate: pg?.code ?? null,
		});
	} catch {
		report.lost = rest.length;
		services.logger.error("audit events lost: neither Postgres nor Redis took them", {
			request_id: origin.requestId,
			event_ids: rest.map((r) => r.id),
			actions: rest.map((r) => r.action),
			sqlstate: pg?.code ?? null,
		});
	}
	return report;
}

export interface DrainResult {
	[counter: string]: number;
	written: number;
	/** Already in the table (the first write had reached it): dropped from the list. */
	duplicates: number;
	/** Left in the list for the next run (the database refused them). */
	failed: number;
	/** Unreadable entries moved to DEAD_KEY. */
	dead: number;
}

/** Entries read from the list per round, and how long a run keeps going. */
export const DRAIN_BATCH = 100;
export const DRAIN_MAX_ENTRIES = 1000;
export const DRAIN_BUDGET_MS = 10_000;

/**
 * The scheduled write-back of PENDING_KEY. An entry leaves the list (LREM of that exact value)
 * only once its row is in the table, and a write of an id already stored counts as done, so two
 * runs at once (the cron and the maintenance route) may both write an entry but never lose one
 * or store it twice. The first database failure ends the run: the rest waits for the next.
 */
export async function drainPendingAudit(
	services: Services,
	options: {
		budgetMs?: number;
		maxEntries?: number;
		/** Where a test holds a run, between reading a batch and writing it. */
		afterRead?: () => Promise<void>;
	} = {},
): Promise<DrainResult> {
	const redis = services.rawRedis;
	const deadline = performance.now() + (options.budgetMs ?? DRAIN_BUDGET_MS);
	const max = options.maxEntries ?? DRAIN_MAX_ENTRIES;
	const result: DrainResult = { written: 0, duplicates: 0, failed: 0, dead: 0 };
	let seen = 0;
	while (seen < max && performance.now() < deadline) {
		const entries = (await redis.lrange(PENDING_KEY, 0, DRAIN_BATCH - 1)) as string[];
		if (entries.length === 0) break;
		await options.afterRead?.();
		for (const entry of entries) {
			seen += 1;
			const record = parseRecord(entry);
			if (!record) {
				await redis.rpush(DEAD_KEY, entry);
				await redis.lrem(PENDING_KEY, 1, entry);
				result.dead += 1;
				services.logger.error("unreadable audit entry moved aside", { key: DEAD_KEY });
				continue;
			}
			try {
				const outcome = await writeRecord(services.db, record);
				result[outcome === "written" ? "written" : "duplicates"] += 1;
			} catch (err) {
				if (postgresErrorOf(err)?.code.startsWith("22")) {
					// A value Postgres will never take (class 22, data exception): retrying cannot
					// help, and it must not hold up the entries behind it.
					await redis.rpush(DEAD_KEY, entry);
					await redis.lrem(PENDING_KEY, 1, entry);
					result.dead += 1;
					services.logger.error("audit entry the database refuses moved aside", {
						key: DEAD_KEY,
						event_id: record.id,
						request_id: record.requestId,
					});
					continue;
				}
				result.failed += 1;
				services.logger.warn("audit write-back failed; the entry stays queued", {
					event_id: record.id,
					request_id: record.requestId,
					sqlstate: postgresErrorOf(err)?.code ?? null,
				});
				return result;
			}
			await redis.lrem(PENDING_KEY, 1, entry);
		}
		if (entries.length < DRAIN_BATCH) break;
	}
	return result;
}

/** Rows deleted per statement, and statements per run. */
export const PRUNE_BATCH = 5000;
export const PRUNE_MAX_BATCHES = 10;

export interface PruneResult {
	[counter: string]: number;
	deleted_events: number;
	deleted_heads: number;
}

/**
 * The first day kept: every day before it has left the retention. Null when everything is kept
 * (LATCHKEY_AUDIT_RETENTION_DAYS=0).
 */
export function retentionCutoff(services: Services, marginMs = 0): string | null {
	const days = services.config.LATCHKEY_AUDIT_RETENTION_DAYS;
	if (days === 0) return null;
	return dayOf(new Date(services.now().getTime() + marginMs - days * 86_400_000));
}

/**
 * Retention, by whole days: the rows of every chain older than the cutoff (bounded batches, so a
 * large backlog takes several runs), then those chains' heads. The verifier skips these days
 * whatever state the deletion left them in.
 */
export async function pruneAudit(
	services: Services,
	options: { batch?: number; maxBatches?: number } = {},
): Promise<PruneResult> {
	const result: PruneResult = { deleted_events: 0, deleted_heads: 0 };
	const cutoff = retentionCutoff(services);
	if (cutoff === null) return result;
	const batch = options.batch ?? PRUNE_BATCH;
	// "2026-12-04/7" < "2026-12-05": chains sort by their day first.
	for (let i = 0; i < (options.maxBatches ?? PRUNE_MAX_BATCHES); i++) {
		const { rows } = await services.db.execute<{ id: string }>(sql`
			delete from audit_events where id in (
				select id from audit_events where chain < ${cutoff} order by chain, seq limit ${batch}
			)
			returning id`);
		result.deleted_events += rows.length;
		if (rows.length < batch) break;
	}
	const { rows } = await services.db.execute<{ chain: string }>(
		sql`delete from audit_chain_heads where chain < ${cutoff} returning chain`,
	);
	result.deleted_heads = rows.length;
	return result;
}
