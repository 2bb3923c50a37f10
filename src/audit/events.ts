/**
 * What an audit event is, and the canonical text its hash covers (docs/audit.md). Nothing here
 * does I/O: the writer (store.ts), the verifier (verify.ts) and the tests share these rules, so
 * what is hashed on the way in is exactly what is recomputed on the way out.
 */
import { sha256Hex } from "../crypto/hash.ts";

export const AUDIT_ACTIONS = [
	"lease.granted",
	"lease.refused",
	"lease.renewed",
	"lease.released",
	"credential.created",
	"credential.updated",
	"credential.deleted",
	/** The provider refused the refresh token (invalid_grant) or there was none: the user must reconnect. */
	"credential.reconnect_required",
	"api_key.created",
	"api_key.imported",
	"api_key.rolled",
	"api_key.revoked",
	"session.revoked",
	"session.refresh_token_reused",
	"user.created",
	"user.updated",
	"user.suspended",
	"user.reactivated",
	"user.deletion_requested",
	"user.purged",
	"provider.updated",
	"provider.deleted",
	"deprovision.succeeded",
	"deprovision.retried",
	"deprovision.failed",
	/** Reserved for the authenticated proxy (`recordProxyCall`); nothing emits it yet. */
	"proxy.call",
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export const AUDIT_TARGET_TYPES = [
	"credential",
	"lease",
	"api_key",
	"session",
	"user",
	"provider",
	"job",
] as const;
export type AuditTargetType = (typeof AUDIT_TARGET_TYPES)[number];

/** `success`; `denied`: refused by a rule (a 4xx); `failure`: something broke (5xx, a failed job). */
export const AUDIT_OUTCOMES = ["success", "denied", "failure"] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/**
 * How the actor proved who it is: the request principal's methods, plus `refresh_token` (the
 * token endpoint and /v1/auth/revoke, where holding the token is the credential) and `system`
 * (the scheduled worker).
 */
export type AuditAuthMethod =
	| "admin"
	| "api_key"
	| "legacy_key"
	| "access_token"
	| "external"
	| "refresh_token"
	| "system";

export interface AuditActor {
	method: AuditAuthMethod;
	userId: string | null;
	keyId: string | null;
	sessionId: string | null;
}

export const SYSTEM_ACTOR: AuditActor = {
	method: "system",
	userId: null,
	keyId: null,
	sessionId: null,
};

/** Small, flat and secret-free: ids, names of fields, codes, counts. Never a body. */
export type AuditDetailValue = string | number | boolean | null | string[];
export type AuditDetail = Record<string, AuditDetailValue | undefined>;

/** What a caller records; the rest (id, time, request, actor) is filled in. */
export interface AuditEventInput {
	action: AuditAction;
	/** Default `success`. */
	outcome?: AuditOutcome;
	target: { type: AuditTargetType; id: string } | null;
	/**
	 * The user the event is about, who sees it in GET /v1/audit. Default: the actor's user. Null
	 * for events about no user's objects (providers), which only the admin sees.
	 */
	userId?: string | null;
	detail?: AuditDetail;
	/** Default: the request's principal. */
	actor?: AuditActor;
}

/** An event as stored, before the chain places it (chain, seq, hashes). */
export interface AuditRecord {
	id: string;
	at: Date;
	action: AuditAction;
	outcome: AuditOutcome;
	userId: string | null;
	actor: AuditActor;
	targetType: AuditTargetType | null;
	targetId: string | null;
	ip: string | null;
	requestId: string | null;
	/** Canonical JSON (sorted keys), stored as text: jsonb would reorder and reformat it. */
	detail: string;
}

/** A stored row: the record and its place in its chain. */
export interface ChainedRecord extends AuditRecord {
	chain: string;
	seq: number;
	prevHash: string;
	hash: string;
}

/** Where every chain starts: the "previous hash" of its first row. */
export const GENESIS_HASH = "0".repeat(64);

/**
 * Chains per day. Concurrent writers pick one at random (and another on a conflict), so they
 * rarely contend for the same row; the verifier walks them all.
 */
export const AUDIT_SHARDS = 16;

const MAX_DETAIL_KEYS = 16;
const MAX_DETAIL_STRING = 200;
const MAX_DETAIL_LIST = 32;

/** `2026-12-05`: the UTC day of an instant. */
export function dayOf(at: Date): string {
	return at.toISOString().slice(0, 10);
}

export function chainOf(at: Date, shard: number): string {
	return `${dayOf(at)}/${shard}`;
}

const clip = (s: string) => (s.length > MAX_DETAIL_STRING ? s.slice(0, MAX_DETAIL_STRING) : s);

/**
 * The detail as canonical JSON: keys sorted, undefined dropped, strings and lists clipped, only
 * flat values kept. Deterministic, so the same detail always hashes the same.
 */
export function canonicalDetail(detail: AuditDetail | undefined): string {
	const out: Record<string, AuditDetailValue> = {};
	const keys = Object.keys(detail ?? {})
		.filter((k) => detail?.[k] !== undefined)
		.sort()
		.slice(0, MAX_DETAIL_KEYS);
	for (const key of keys) {
		const value = detail?.[key];
		if (value === undefined) continue;
		if (Array.isArray(value)) out[key] = value.slice(0, MAX_DETAIL_LIST).map(String).map(clip);
		else if (typeof value === "string") out[key] = clip(value);
		else if (typeof value === "number") out[key] = Number.isFinite(value) ? value : null;
		else out[key] = value;
	}
	return JSON.stringify(out);
}

/**
 * The text a row's hash covers besides its chain position: every column but the hashes, in a
 * fixed order, as a JSON array (so no value can spill into its neighbour). `v1` names this layout.
 */
export function canonicalBody(r: AuditRecord): string {
	return JSON.stringify([
		"v1",
		r.id,
		r.at.toISOString(),
		r.action,
		r.outcome,
		r.userId,
		r.actor.method,
		r.actor.userId,
		r.actor.keyId,
		r.actor.sessionId,
		r.targetType,
		r.targetId,
		r.ip,
		r.requestId,
		r.detail,
	]);
}

/**
 * hash = SHA-256(prev_hash ‖ "\n" ‖ chain ‖ "\n" ‖ seq ‖ "\n" ‖ body), hex. The writer computes
 * the same in SQL (it learns seq and prev_hash only inside its statement); this is the
 * verifier's copy, and the two must agree byte for byte.
 */
export function chainHash(prevHash: string, chain: string, seq: number, body: string) {
	return sha256Hex(`${prevHash}\n${chain}\n${seq}\n${body}`);
}
