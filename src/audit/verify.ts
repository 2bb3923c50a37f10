/**
 * Checking the audit chains (docs/audit.md): every row's hash recomputed from its columns and the
 * previous row's recomputed hash, seqs without gaps from 1, and each chain's last row equal to
 * its head. Reports the first break, in chain order.
 */
import { and, asc, eq, gte, lt, sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { type AuditEventRow, auditChainHeads, auditEvents } from "../db/schema.ts";
import type { Services } from "../services.ts";
import {
	type AuditAction,
	type AuditAuthMethod,
	type AuditOutcome,
	type AuditRecord,
	type AuditTargetType,
	canonicalBody,
	chainHash,
	GENESIS_HASH,
} from "./events.ts";
import { retentionCutoff } from "./store.ts";

export type BreakReason =
	/** A row's columns no longer give its stored hash: it was edited. */
	| "hash_mismatch"
	/** A row's prev_hash is not the previous row's hash: rows were reordered, replaced or removed. */
	| "prev_hash_mismatch"
	/** Seqs jump: rows in the middle (or at the start) of the chain were removed. */
	| "rows_missing"
	/** The head names a later row than the chain has: its last rows were removed. */
	| "tail_missing"
	/** The head's hash is not the last row's. */
	| "head_mismatch"
	/** Rows without a head, or past it: the head was removed, or rows were added around it. */
	| "head_missing";

export interface ChainBreak {
	chain: string;
	/** The seq where the chain stops holding (the first missing one for removed rows). */
	seq: number;
	/** The row at that seq, when it exists. */
	event_id: string | null;
	reason: BreakReason;
	message: string;
}

export interface VerifyResult {
	ok: boolean;
	/** Days checked, inclusive; null: from the oldest kept, to the newest. */
	from: string | null;
	to: string | null;
	/**
	 * Days before this one have left the retention (or are about to): the cron deletes them whole,
	 * so they are not checked, whatever part of them is left.
	 */
	retention_cutoff: string | null;
	chains: number;
	events: number;
	break: ChainBreak | null;
}

/** Rows read per statement. */
export const VERIFY_PAGE = 1000;
/**
 * Days that leave the retention within this margin are not checked either: a verification that
 * runs across midnight UTC must not report the day the cron is deleting meanwhile.
 */
const RETENTION_MARGIN_MS = 15 * 60_000;

function nextDay(day: string): string {
	return new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
}

export function recordOf(row: AuditEventRow): AuditRecord {
	return {
		id: row.id,
		at: row.at,
		action: row.action as AuditAction,
		outcome: row.outcome as AuditOutcome,
		userId: row.userId,
		actor: {
			method: row.authMethod as AuditAuthMethod,
			userId: row.actorUserId,
			keyId: row.actorKeyId,
			sessionId: row.actorSessionId,
		},
		targetType: row.targetType as AuditTargetType | null,
		targetId: row.targetId,
		ip: row.ip,
		requestId: row.requestId,
		detail: row.detail,
	};
}

interface Head {
	seq: number;
	hash: string;
}

async function readHead(db: Database, chain: string): Promise<Head | undefined> {
	const [row] = await db
		.select({ seq: auditChainHeads.seq, hash: auditChainHeads.hash })
		.from(auditChainHeads)
		.where(eq(auditChainHeads.chain, chain));
	return row;
}

/** One chain's walk: the running (recomputed) hash and the seq expected next. */
class ChainWalk {
	expected = 1;
	running = GENESIS_HASH;
	lastId: string | null = null;

	constructor(readonly chain: string) {}

	async step(row: AuditEventRow): Promise<ChainBreak | null> {
		const at = (reason: BreakReason, seq: number, id: string | null, message: string) => ({
			chain: this.chain,
			seq,
			event_id: id,
			reason,
			message,
		});
		if (row.seq !== this.expected) {
			return at(
				"rows_missing",
				this.expected,
				null,
				`rows ${this.expected}–${row.seq - 1} of ${this.chain} are missing`,
			);
		}
		if (row.prevHash !== this.running) {
			return at(
				"prev_hash_mismatch",
				row.seq,
				row.id,
				`row ${row.seq} of ${this.chain} does not follow the row before it`,
			);
		}
		const hash = await chainHash(this.running, this.chain, row.seq, canonicalBody(recordOf(row)));
		if (hash !== row.hash) {
			return at(
				"hash_mismatch",
				row.seq,
				row.id,
				`row ${row.seq} of ${this.chain} was changed after it was written`,
			);
		}
		this.running = hash;
		this.expected += 1;
		this.lastId = row.id;
		return null;
	}

	/** The highest seq met, walked or not (rows past the snapshot's head are not walked). */
	seen = 0;

	/**
	 * Against the head read before the walk (`snapshot`): the chain as it was when the check
	 * began. Rows past it came later, or were added by hand: they must be under the head read now,
	 * which a writer moves in the statement that adds its row.
	 */
	async end(db: Database, snapshot: Head | undefined): Promise<ChainBreak | null> {
		const last = this.expected - 1;
		const at = (reason: BreakReason, seq: number, id: string | null, message: string) => ({
			chain: this.chain,
			seq,
			event_id: id,
			reason,
			message,
		});
		if (!snapshot) {
			return at("head_missing", 1, null, `${this.chain} has rows up to ${last} but no head`);
		}
		if (this.seen > snapshot.seq) {
			const now = await readHead(db, this.chain);
			if (!now || now.seq < this.seen) {
				return at(
					"head_missing",
					(now?.seq ?? snapshot.seq) + 1,
					null,
					`${this.chain} has rows up to ${this.seen} but its head ${now ? `names ${now.seq}` : "is missing"}`,
				);
			}
		}
		if (snapshot.seq > last) {
			return at(
				"tail_missing",
				last + 1,
				null,
				`rows ${last + 1}–${snapshot.seq} of ${this.chain} (its last rows) are missing`,
			);
		}
		if (snapshot.hash !== this.running) {
			return at(
				"head_mismatch",
				last,
				this.lastId,
				`the last row of ${this.chain} is not the one its head recorded`,
			);
		}
		return null;
	}
}

/** Points where a test holds the check, to write while it runs. */
export interface VerifyHooks {
	afterHeads?: () => Promise<void>;
	afterPage?: () => Promise<void>;
}

/**
 * Verifies every chain of the days `since`…`until` (inclusive, `YYYY-MM-DD`; each optional) that
 * are still within the retention, as they stood when the heads were read (first): rows written
 * after that read are not walked, and a chain begun after it is not checked, so writes going on
 * meanwhile are never breaks. A row no head covers, even the head read again, is one.
 */
export async function verifyAudit(
	services: Services,
	range: { since?: string | undefined; until?: string | undefined } = {},
	hooks: VerifyHooks = {},
): Promise<VerifyResult> {
	const { db } = services;
	const cutoff = retentionCutoff(services, RETENTION_MARGIN_MS);
	const lo = [range.since, cutoff].filter((d): d is string => d !== undefined && d !== null).sort();
	const from = lo.length > 0 ? (lo[lo.length - 1] as string) : null;
	const hi = range.until === undefined ? null : nextDay(range.until);
	const result: VerifyResult = {
		ok: true,
		from,
		to: range.until ?? null,
		retention_cutoff: cutoff,
		chains: 0,
		events: 0,
		break: null,
	};
	if (from !== null && hi !== null && from >= hi) return result;

	const inRange = (column: typeof auditEvents.chain | typeof auditChainHeads.chain) =>
		and(from === null ? undefined : gte(column, from), hi === null ? undefined : lt(column, hi));
	const headRows = await db
		.select()
		.from(auditChainHeads)
		.where(inRange(auditChainHeads.chain))
		.orderBy(asc(auditChainHeads.chain));
	const heads = new Map(headRows.map((h) => [h.chain, { seq: h.seq, hash: h.hash }]));
	await hooks.afterHeads?.();
	// Heads are visited in order beside the rows, so a chain whose every row is gone is reported
	// in its place.
	const headOrder = headRows.map((h) => h.chain);
	let nextHead = 0;
	const fail = (b: ChainBreak) => {
		result.ok = false;
		result.break = b;
		return result;
	};
	const headsWithoutRows = (before: string | null): ChainBreak | null => {
		while (nextHead < headOrder.length) {
			const chain = headOrder[nextHead] as string;
			if (before !== null && chain >= before) return null;
			nextHead += 1;
			const head = heads.get(chain) as Head;
			return {
				chain,
				seq: 1,
				event_id: null,
				reason: "tail_missing",
				message: `every row of ${chain} (1–${head.seq}) is missing`,
			};
		}
		return null;
	};

	// In an object, so the walk's type survives the loop (TypeScript narrows a plain `let` to null).
	const state: { walk: ChainWalk | null } = { walk: null };
	/** A chain with no head in the snapshot whose head exists now: begun since; not checked. */
	let skipping: string | null = null;
	let after: { chain: string; seq: number } | null = null;
	for (;;) {
		const rows: AuditEventRow[] = await db
			.select()
			.from(auditEvents)
			.where(
				and(
					inRange(auditEvents.chain),
					after
						? sql`(${auditEvents.chain}, ${auditEvents.seq}) > (${after.chain}, ${after.seq})`
						: undefined,
				),
			)
			.orderBy(asc(auditEvents.chain), asc(auditEvents.seq))
			.limit(VERIFY_PAGE);
		await hooks.afterPage?.();
		for (const row of rows) {
			if (row.chain === skipping) continue;
			let current = state.walk;
			if (current?.chain !== row.chain) {
				if (current) {
					const broken = await current.end(db, heads.get(current.chain));
					if (broken) return fail(broken);
					state.walk = null;
				}
				const orphan = headsWithoutRows(row.chain);
				if (orphan) return fail(orphan);
				if (headOrder[nextHead] === row.chain) nextHead += 1;
				// No head when the check began: a chain begun since (its head exists now) is not
				// checked; one whose head is missing still is, and ends in head_missing.
				if (!heads.has(row.chain) && (await readHead(db, row.chain))) {
					skipping = row.chain;
					continue;
				}
				current = new ChainWalk(row.chain);
				state.walk = current;
				result.chains += 1;
			}
			current.seen = Math.max(current.seen, row.seq);
			const snapshot = heads.get(row.chain);
			if (snapshot && row.seq > snapshot.seq) continue;
			const broken = await current.step(row);
			if (broken) return fail(broken);
			result.events += 1;
		}
		const last = rows[rows.length - 1];
		if (!last || rows.length < VERIFY_PAGE) break;
		after = { chain: last.chain, seq: last.seq };
	}
	if (state.walk) {
		const broken = await state.walk.end(db, heads.get(state.walk.chain));
		if (broken) return fail(broken);
	}
	const orphan = headsWithoutRows(null);
	if (orphan) return fail(orphan);
	return result;
}
