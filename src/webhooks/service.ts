/** Webhook endpoints and their deliveries, as the admin routes see them (docs/webhooks.md). */
import { and, asc, eq, getTableColumns, isNull, lte, or, sql } from "drizzle-orm";
import { getKeyRing, open, seal } from "../crypto/envelope.ts";
import { type CursorKey, keysetAfter } from "../db/pagination.ts";
import {
	type WebhookDeliveryRow,
	type WebhookRow,
	webhookDeliveries,
	webhooks,
} from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import { assertOutboundUrl } from "../http/outbound.ts";
import type { Services } from "../services.ts";
import type { WebhookEvent } from "./events.ts";
import { generateWebhookSecret, secretBytes } from "./sign.ts";

/** AAD of a webhook's signing secret; the tag keeps it apart from other sealed secrets. */
export function webhookAad(id: string): string {
	return JSON.stringify(["webhook", id]);
}

export async function openWebhookSecret(services: Services, row: WebhookRow): Promise<string> {
	const ring = await getKeyRing(services.config);
	return open(ring, row, webhookAad(row.id), `webhook ${row.id}`);
}

export interface WebhookInput {
	url: string;
	events: WebhookEvent[];
	secret?: string | undefined;
}

/**
 * Creates or replaces a webhook, in one statement. Without `secret`, a new webhook gets a
 * generated one, and an existing webhook keeps its own. Answers the row and, when this very
 * statement stored a generated secret, that secret (shown this once). Of two secret-less PUTs
 * of a new id at once, one inserts (201, its secret) and the other finds the row and keeps its
 * secret (200, none): an answered secret is always the stored one.
 */
export async function putWebhook(
	services: Services,
	id: string,
	input: WebhookInput,
): Promise<{ row: WebhookRow; created: boolean; generatedSecret: string | null }> {
	assertOutboundUrl(input.url, "url", services.config);
	if (input.secret !== undefined && secretBytes(input.secret) === null) {
		throw new LatchkeyError("invalid_request", "The secret is not a Standard Webhooks secret.", {
			hint: "Send whsec_ followed by the base64 of 24 to 64 random bytes, or omit it to have one generated.",
			detail: [{ field: "secret", location: "json", message: "not a whsec_ secret" }],
		});
	}
	const now = services.now();
	const events = [...new Set(input.events)].sort();
	const candidate = input.secret ?? generateWebhookSecret();
	const sealed = await seal(await getKeyRing(services.config), candidate, webhookAad(id));
	const [stored] = await services.db
		.insert(webhooks)
		.values({ id, url: input.url, events, ...sealed, createdAt: now, updatedAt: now })
		.onConflictDoUpdate({
			target: webhooks.id,
			// A generated candidate never replaces the stored secret; a sent one does.
			set:
				input.secret === undefined
					? { url: input.url, events, updatedAt: now }
					: { url: input.url, events, ...sealed, updatedAt: now },
		})
		// xmax is 0 on a row this statement inserted, the updating transaction's id otherwise.
		.returning({ ...getTableColumns(webhooks), inserted: sql<boolean>`(xmax = 0)` });
	if (!stored) throw new Error("webhook upsert returned no row");
	const { inserted, ...row } = stored;
	return {
		row,
		created: inserted,
		generatedSecret: inserted && input.secret === undefined ? candidate : null,
	};
}

export async function getWebhook(services: Services, id: string): Promise<WebhookRow> {
	const [row] = await services.db.select().from(webhooks).where(eq(webhooks.id, id)).limit(1);
	if (!row) throw new LatchkeyError("not_found", "No such webhook.");
	return row;
}

export async function listWebhooks(
	services: Services,
	limit: number,
	after: CursorKey | undefined,
): Promise<WebhookRow[]> {
	return services.db
		.select()
		.from(webhooks)
		.where(keysetAfter(webhooks.createdAt, webhooks.id, after))
		.orderBy(asc(webhooks.createdAt), asc(webhooks.id))
		.limit(limit + 1);
}

/** Deletes the webhook and, with it (the foreign key), its deliveries. */
export async function deleteWebhook(services: Services, id: string): Promise<void> {
	const rows = await services.db
		.delete(webhooks)
		.where(eq(webhooks.id, id))
		.returning({ id: webhooks.id });
	if (rows.length === 0) throw new LatchkeyError("not_found", "No such webhook.");
}

/** A webhook's deliveries, oldest first. */
export async function listDeliveries(
	services: Services,
	webhookId: string,
	limit: number,
	after: CursorKey | undefined,
	status?: string,
): Promise<WebhookDeliveryRow[]> {
	await getWebhook(services, webhookId);
	return services.db
		.select()
		.from(webhookDeliveries)
		.where(
			and(
				eq(webhookDeliveries.webhookId, webhookId),
				status === undefined
					? undefined
					: eq(webhookDeliveries.status, status as WebhookDeliveryRow["status"]),
				keysetAfter(webhookDeliveries.createdAt, webhookDeliveries.id, after),
			),
		)
		.orderBy(asc(webhookDeliveries.createdAt), asc(webhookDeliveries.id))
		.limit(limit + 1);
}

/**
 * Sends a delivery again: due now, with a fresh set of attempts, whatever its status. The same
 * webhook-id and body, so a receiver that did get it can tell it is the same message.
 */
export async function redeliver(
	services: Services,
	webhookId: string,
	deliveryId: string,
): Promise<WebhookDeliveryRow> {
	const now = services.now();
	const [row] = await services.db
		.update(webhookDeliveries)
		.set({
			status: "pending",
			attempts: 0,
			nextAttemptAt: now,
			claimedUntil: null,
			updatedAt: now,
		})
		.where(
			and(
				eq(webhookDeliveries.id, deliveryId),
				eq(webhookDeliveries.webhookId, webhookId),
				// Not while a run holds it: resetting its attempts mid-send would let a second run
				// claim and send it at the same time, and each settle the other's result.
				or(isNull(webhookDeliveries.claimedUntil), lte(webhookDeliveries.claimedUntil, now)),
			),
		)
		.returning();
	if (row) return row;
	const [exists] = await services.db
		.select({ id: webhookDeliveries.id })
		.from(webhookDeliveries)
		.where(and(eq(webhookDeliveries.id, deliveryId), eq(webhookDeliveries.webhookId, webhookId)));
	if (!exists) throw new LatchkeyError("not_found", "No such delivery.");
	throw new LatchkeyError("conflict", `Delivery ${deliveryId} is being sent right now.`, {
		hint: "Wait for this attempt's outcome (GET its deliveries), then redeliver if it failed.",
	});
}
