/**
 * The scheduled delivery of webhook events (docs/webhooks.md): due deliveries are claimed, signed
 * and POSTed under the outbound rules (src/http/outbound.ts); a 2xx is `delivered`, anything
 * else is retried after an exponential backoff with jitter, and `failed` (the dead letter) once
 * its attempts run out. Bounded per run in deliveries, concurrency and wall time.
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import {
	type WebhookDeliveryRow,
	type WebhookRow,
	webhookDeliveries,
	webhooks,
} from "../db/schema.ts";
import { describeOutboundFailure, outboundFetch } from "../http/outbound.ts";
import { redactString } from "../log.ts";
import type { Services } from "../services.ts";
import { openWebhookSecret } from "./service.ts";
import { signWebhook } from "./sign.ts";

/** Deliveries per run: each is a signed POST plus two statements. */
export const WEBHOOK_MAX_PER_RUN = 200;
export const WEBHOOK_CONCURRENCY = 5;
/** Wall time after which a run claims nothing more. */
export const WEBHOOK_BUDGET_MS = 15_000;
/** A receiver has this long to answer; its answer is read up to WEBHOOK_MAX_RESPONSE_BYTES. */
export const WEBHOOK_TIMEOUT_MS = 10_000;
export const WEBHOOK_MAX_RESPONSE_BYTES = 16 * 1024;
/** A claim outlives an attempt (the timeout) by far; a crashed run's claims lapse after it. */
export const WEBHOOK_CLAIM_SECONDS = 120;
/** Backoff before retry n (n ≥ 1): BASE·2^(n-1), capped, then jittered to [half, whole]. */
export const WEBHOOK_BACKOFF_BASE_SECONDS = 30;
export const WEBHOOK_BACKOFF_CAP_SECONDS = 3600;
const BATCH = 20;
const MAX_ERROR_LENGTH = 300;

export function webhookBackoffSeconds(attempts: number, random: () => number = Math.random) {
	const full = Math.min(
		WEBHOOK_BACKOFF_CAP_SECONDS,
		WEBHOOK_BACKOFF_BASE_SECONDS * 2 ** Math.max(0, attempts - 1),
	);
	return full / 2 + random() * (full / 2);
}

export interface DeliveryOptions {
	/** Only these webhooks' deliveries (tests). */
	webhookIds?: readonly string[];
	random?: () => number;
	budgetMs?: number;
}

export interface DeliveryResult {
	[counter: string]: number;
	claimed: number;
	delivered: number;
	retried: number;
	failed: number;
}

type Claimed = { delivery: WebhookDeliveryRow; webhook: WebhookRow };

async function claim(
	services: Services,
	limit: number,
	webhookIds: readonly string[] | undefined,
): Promise<Claimed[]> {
	const now = services.now();
	const at = sql`${now.toISOString()}::timestamptz`;
	const scope =
		webhookIds === undefined
			? sql``
			: sql`and d.webhook_id in (${sql.join(
					webhookIds.map((id) => sql`${id}`),
					sql`, `,
				)})`;
	// One statement: SKIP LOCKED while the claim is written, so two runs never take one delivery.
	const claimed = await services.db.execute<{ id: string }>(sql`
		update webhook_deliveries set attempts = attempts + 1, updated_at = ${at},
			claimed_until = ${at} + make_interval(secs => ${WEBHOOK_CLAIM_SECONDS})
		where id in (
			select d.id from webhook_deliveries d
			where d.status = 'pending' and d.next_attempt_at <= ${at}
				and (d.claimed_until is null or d.claimed_until <= ${at}) ${scope}
			order by d.next_attempt_at, d.id
			limit ${limit}
			for update skip locked
		)
		returning id`);
	const ids = claimed.rows.map((r) => r.id);
	if (ids.length === 0) return [];
	return services.db
		.select({ delivery: webhookDeliveries, webhook: webhooks })
		.from(webhookDeliveries)
		.innerJoin(webhooks, eq(webhooks.id, webhookDeliveries.webhookId))
		.where(inArray(webhookDeliveries.id, ids));
}

type Attempt = { ok: true; status: number } | { ok: false; status: number | null; error: string };

async function attempt(services: Services, { delivery, webhook }: Claimed): Promise<Attempt> {
	const secret = await openWebhookSecret(services, webhook);
	const timestamp = Math.floor(services.now().getTime() / 1000);
	const signature = await signWebhook(secret, delivery.id, timestamp, delivery.payload);
	try {
		const res = await outboundFetch(services.config, webhook.url, {
			method: "POST",
			headers: {
				"content-type": "application/json",
				"user-agent": "Latchkey-Webhooks/1",
				"webhook-id": delivery.id,
				"webhook-timestamp": String(timestamp),
				"webhook-signature": signature,
			},
			body: delivery.payload,
			timeoutMs: WEBHOOK_TIMEOUT_MS,
			maxBytes: WEBHOOK_MAX_RESPONSE_BYTES,
		});
		if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status };
		return { ok: false, status: res.status, error: `the receiver answered ${res.status}` };
	} catch (err) {
		const described = describeOutboundFailure(err, "the receiver", "webhook delivery");
		if (described === null) throw err;
		return { ok: false, status: null, error: redactString(described).slice(0, MAX_ERROR_LENGTH) };
	}
}

async function settle(
	services: Services,
	delivery: WebhookDeliveryRow,
	result: Attempt,
	random: () => number,
): Promise<"delivered" | "retried" | "failed"> {
	const now = services.now();
	const mine = and(
		eq(webhookDeliveries.id, delivery.id),
		eq(webhookDeliveries.attempts, delivery.attempts),
	);
	if (result.ok) {
		await services.db
			.update(webhookDeliveries)
			.set({
				status: "delivered",
				lastStatus: result.status,
				lastError: null,
				deliveredAt: now,
				claimedUntil: null,
				updatedAt: now,
			})
			.where(mine);
		return "delivered";
	}
	const exhausted = delivery.attempts >= delivery.maxAttempts;
	const next = new Date(now.getTime() + webhookBackoffSeconds(delivery.attempts, random) * 1000);
	await services.db
		.update(webhookDeliveries)
		.set({
			status: exhausted ? "failed" : "pending",
			lastStatus: result.status,
			lastError: result.error,
			nextAttemptAt: exhausted ? delivery.nextAttemptAt : next,
			claimedUntil: null,
			updatedAt: now,
		})
		.where(mine);
	return exhausted ? "failed" : "retried";
}

/** One run's deliveries, within WEBHOOK_MAX_PER_RUN and the time budget. */
export async function deliverWebhooks(
	services: Services,
	options: DeliveryOptions = {},
): Promise<DeliveryResult> {
	const { random = Math.random, budgetMs = WEBHOOK_BUDGET_MS } = options;
	const result: DeliveryResult = { claimed: 0, delivered: 0, retried: 0, failed: 0 };
	const started = performance.now();
	while (result.claimed < WEBHOOK_MAX_PER_RUN && performance.now() - started < budgetMs) {
		const batch = await claim(
			services,
			Math.min(BATCH, WEBHOOK_MAX_PER_RUN - result.claimed),
			options.webhookIds,
		);
		if (batch.length === 0) break;
		result.claimed += batch.length;
		for (let i = 0; i < batch.length; i += WEBHOOK_CONCURRENCY) {
			const settled = await Promise.all(
				batch.slice(i, i + WEBHOOK_CONCURRENCY).map(async (claimed) => {
					let outcome: Attempt;
					try {
						outcome = await attempt(services, claimed);
					} catch (err) {
						// A secret that no longer opens, or another fault of ours: retried like a failure.
						const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
						outcome = {
							ok: false,
							status: null,
							error: redactString(message).slice(0, MAX_ERROR_LENGTH),
						};
					}
					return settle(services, claimed.delivery, outcome, random);
				}),
			);
			for (const s of settled) result[s] += 1;
		}
	}
	return result;
}
