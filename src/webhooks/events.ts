/**
 * Webhook events (docs/webhooks.md): which audit events become which webhook event, the payload
 * a receiver gets, and the statement fragment that queues one delivery per subscribed webhook.
 * The audit log's writer puts that fragment into the statement that writes the event itself, so
 * an event and its deliveries are stored together or not at all. Nothing here imports a
 * capability: audit/ sits above this file.
 */
import { type SQL, sql } from "drizzle-orm";

export const WEBHOOK_EVENTS = [
	"credential.reconnect_required",
	"credential.deleted",
	"user.deleted",
	"deprovision.failed",
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** Attempts before a delivery is `failed` (the dead letter). */
export const WEBHOOK_MAX_ATTEMPTS = 8;

/** What the audit writer hands over of an event (the fields of an AuditRecord it needs). */
export interface EventSource {
	id: string;
	at: Date;
	action: string;
	outcome: string;
	userId: string | null;
	targetType: string | null;
	targetId: string | null;
	/** Canonical JSON of the audit detail: secret-free by the audit log's rules. */
	detail: string;
}

/** The audit action (and outcome) behind each webhook event. */
const FROM_AUDIT: Record<string, { type: WebhookEvent; outcome?: string }> = {
	"credential.reconnect_required": { type: "credential.reconnect_required" },
	"credential.deleted": { type: "credential.deleted", outcome: "success" },
	"user.deletion_requested": { type: "user.deleted", outcome: "success" },
	"deprovision.failed": { type: "deprovision.failed" },
};

/** The webhook event an audit event is, or null. */
export function webhookEventOf(e: EventSource): WebhookEvent | null {
	const match = FROM_AUDIT[e.action];
	if (!match) return null;
	if (match.outcome !== undefined && match.outcome !== e.outcome) return null;
	return match.type;
}

/**
 * The body sent (and signed), Standard Webhooks' shape: `{type, timestamp, data}`. `data` names
 * the event (its audit id), the user and the object, plus the audit detail (ids, codes, names).
 */
export function webhookPayload(type: WebhookEvent, e: EventSource): string {
	let detail: Record<string, unknown> = {};
	try {
		detail = JSON.parse(e.detail) as Record<string, unknown>;
	} catch {
		detail = {};
	}
	const data: Record<string, unknown> = { ...detail, event_id: e.id, user_id: e.userId };
	if (e.targetType && e.targetId) data[`${e.targetType}_id`] = e.targetId;
	return JSON.stringify({ type, timestamp: e.at.toISOString(), data });
}

/**
 * CTE body (for `with …, name as (<this>)`) inserting one pending delivery per webhook that
 * subscribes to the event, once `written` (the CTE that inserts the event) has returned a row.
 * The delivery id is derived from (webhook, event), so writing an event again adds nothing.
 */
export function queueDeliveriesSql(e: EventSource, written: SQL): SQL | null {
	const type = webhookEventOf(e);
	if (type === null) return null;
	const at = sql`${e.at.toISOString()}::timestamptz`;
	return sql`
		insert into webhook_deliveries (id, webhook_id, event_type, payload, status, attempts,
			max_attempts, next_attempt_at, created_at, updated_at)
		select 'whd_' || md5(w.id || ':' || ${e.id}::text), w.id, ${type}::text,
			${webhookPayload(type, e)}::text, 'pending', 0, ${WEBHOOK_MAX_ATTEMPTS}, ${at}, ${at}, ${at}
		from webhooks w
		where ${type}::text = any(w.events) and exists (select 1 from ${written})
		on conflict (id) do nothing
		returning id`;
}
