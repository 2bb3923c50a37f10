/**
 * The scheduled delivery of webhook events (docs/webhooks.md): due deliveries are claimed, signed
 * and POSTed under the outbound rules (src/http/outbound.ts); a 2xx is `delivered`, anything
 * else is retried after an exponential backoff with jitter, and `failed` (the dead letter) once
 * its attempts run out. A claim spends an attempt, so a run that dies mid-send has used it: no
 * delivery is sent more than its max_attempts times. Settled deliveries older than
 * LATCHKEY_WEBHOOK_RETENTION_DAYS are pruned. Bounded per run in deliveries, concurrency, wall
 * time and deletions.
 */
import { and, eq, inArray, type SQL, sql } from "drizzle-orm";
import {
	type WebhookDeliveryRow,
	type WebhookRow,
	webhookDeliveries,
	webhooks,
} from "../db/schema.ts";
import { describeOutboundFailure, type OutboundResponse, outboundFetch } from "../http/outbound.ts";
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
/** Settled deliveries deleted per statement, and statements per run. */
export const WEBHOOK_PRUNE_BATCH = 1000;
export const WEBHOOK_PRUNE_MAX_BATCHES = 5;
const BATCH = 20;
const MAX_ERROR_LENGTH = 300;
/** Of a receiver's error answer, this much goes into last_error (redacted). */
const MAX_EXCERPT_LENGTH = 200;
export const LAPSED_LAST_ATTEMPT_ERROR =
	"the run sending its last attempt died (its claim lapsed); the receiver may have it";

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
	/**
	 * Test seams (test/worker/webhooks.test.ts): `claimed` runs after every claim, with the ids
	 * (none when nothing was due), before anything is sent; `sent` after a delivery's POST,
	 * before its outcome is written (throwing there is a run dying mid-send).
	 */
	hooks?: {
		claimed?: (ids: readonly string[]) => Promise<void>;
		sent?: (id: string) => Promise<void>;
	};
}

export interface DeliveryResult {
	[counter: string]: number;
	claimed: number;
	delivered: number;
	retried: number;
	failed: number;
	/** Deliveries whose last attempt's run died: failed without another send. */
	lapsed: number;
	/** Delivered and failed deliveries deleted once older than the retention. */
	pruned: number;
}

type Claimed = { delivery: WebhookDeliveryRow; webhook: WebhookRow };

function scopeSql(column: SQL, webhookIds: readonly string[] | undefined): SQL {
	return webhookIds === undefined
		? sql``
		: sql`and ${column} in (${sql.join(
				webhookIds.map((id) => sql`${id}`),
				sql`, `,
			)})`;
}

/**
 * Pending deliveries that have spent every attempt yet are not settled: the run that claimed
 * the last one died (its claim lapsed). They become `failed` without another send: that attempt
 * may have reached the receiver, and a further one would exceed max_attempts.
 */
async function failLapsedLastAttempts(
	services: Services,
	webhookIds: readonly string[] | undefined,
): Promise<number> {
	const at = sql`${services.now().toISOString()}::timestamptz`;
	const failed = await services.db.execute<{ id: string }>(sql`
		update webhook_deliveries d set status = 'failed', last_error = ${LAPSED_LAST_ATTEMPT_ERROR},
			claimed_until = null, updated_at = ${at}
		where d.status = 'pending' and d.attempts >= d.max_attempts
			and (d.claimed_until is null or d.claimed_until <= ${at}) ${scopeSql(sql`d.webhook_id`, webhookIds)}
		returning d.id`);
	return failed.rows.length;
}

async function claim(
	services: Services,
	limit: number,
	webhookIds: readonly string[] | undefined,
): Promise<Claimed[]> {
	const now = services.now();
	const at = sql`${now.toISOString()}::timestamptz`;
	const scope = scopeSql(sql`d.webhook_id`, webhookIds);
	// One statement: SKIP LOCKED while the claim is written, so two runs never take one delivery.
	// The claim spends the attempt (attempts + 1), so an attempt whose run dies still counts, and
	// a delivery with no attempt left is never claimed again (failLapsedLastAttempts settles it).
	const claimed = await services.db.execute<{ id: string }>(sql`
		update webhook_deliveries set attempts = attempts + 1, updated_at = ${at},
			claimed_until = ${at} + make_interval(secs => ${WEBHOOK_CLAIM_SECONDS})
		where id in (
			select d.id from webhook_deliveries d
			where d.status = 'pending' and d.next_attempt_at <= ${at}
				and d.attempts < d.max_attempts
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

/**
 * One POST under the outbound rules (src/http/outbound.ts: the URL checked again before the
 * call, no redirect followed, a timeout). A receiver's 2xx is success whatever its body, which
 * is not read; only an error answer is read, up to WEBHOOK_MAX_RESPONSE_BYTES (truncated, never
 * refused), for last_error's excerpt.
 */
async function post(
	services: Services,
	url: string,
	headers: Record<string, string>,
	body: string,
): Promise<Attempt> {
	let res: OutboundResponse;
	try {
		res = await outboundFetch(services.config, url, {
			method: "POST",
			headers,
			body,
			timeoutMs: WEBHOOK_TIMEOUT_MS,
			maxBytes: WEBHOOK_MAX_RESPONSE_BYTES,
			okBody: "skip",
			overflow: "truncate",
		});
	} catch (err) {
		const error = describeOutboundFailure(err, "the receiver", "webhook delivery");
		if (error === null) throw err;
		return { ok: false, status: null, error };
	}
	if (res.ok) return { ok: true, status: res.status };
	const shown = redactString(res.text.replace(/\s+/g, " ").trim()).slice(0, MAX_EXCERPT_LENGTH);
	return {
		ok: false,
		status: res.status,
		error: `the receiver answered ${res.status}${shown === "" ? "" : `: ${shown}`}`.slice(
			0,
			MAX_ERROR_LENGTH,
		),
	};
}

async function attempt(services: Services, { delivery, webhook }: Claimed): Promise<Attempt> {
	const secret = await openWebhookSecret(services, webhook);
	const timestamp = Math.floor(services.now().getTime() / 1000);
	const signature = await signWebhook(secret, delivery.id, timestamp, delivery.payload);
	return post(
		services,
		webhook.url,
		{
			"content-type": "application/json",
			"user-agent": "Latchkey-Webhooks/1",
			"webhook-id": delivery.id,
			"webhook-timestamp": String(timestamp),
			"webhook-signature": signature,
		},
		delivery.payload,
	);
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

/**
 * Deletes delivered and failed deliveries settled (updated_at) more than
 * LATCHKEY_WEBHOOK_RETENTION_DAYS ago, at most WEBHOOK_PRUNE_BATCH × WEBHOOK_PRUNE_MAX_BATCHES per
 * run. A pending delivery is never deleted: the status is checked again on the row being deleted,
 * so a redeliver that made it pending meanwhile keeps it.
 */
export async function pruneWebhookDeliveries(
	services: Services,
	webhookIds?: readonly string[],
): Promise<number> {
	const cutoff = new Date(
		services.now().getTime() - services.config.LATCHKEY_WEBHOOK_RETENTION_DAYS * 86_400_000,
	).toISOString();
	const old = sql`status in ('delivered', 'failed') and updated_at < ${cutoff}::timestamptz`;
	let pruned = 0;
	for (let batch = 0; batch < WEBHOOK_PRUNE_MAX_BATCHES; batch++) {
		const { rows } = await services.db.execute<{ id: string }>(sql`
			delete from webhook_deliveries
			where id in (
				select d.id from webhook_deliveries d
				where ${old} ${scopeSql(sql`d.webhook_id`, webhookIds)}
				limit ${WEBHOOK_PRUNE_BATCH}
				for update skip locked
			) and ${old}
			returning id`);
		pruned += rows.length;
		if (rows.length < WEBHOOK_PRUNE_BATCH) break;
	}
	return pruned;
}

/**
 * One run: fails the deliveries whose last attempt's run died, sends due ones within
 * WEBHOOK_MAX_PER_RUN and the time budget, then prunes old settled ones.
 */
export async function deliverWebhooks(
	services: Services,
	options: DeliveryOptions = {},
): Promise<DeliveryResult> {
	const { random = Math.random, budgetMs = WEBHOOK_BUDGET_MS } = options;
	const result: DeliveryResult = {
		claimed: 0,
		delivered: 0,
		retried: 0,
		failed: 0,
		lapsed: 0,
		pruned: 0,
	};
	const started = performance.now();
	result.lapsed = await failLapsedLastAttempts(services, options.webhookIds);
	while (result.claimed < WEBHOOK_MAX_PER_RUN && performance.now() - started < budgetMs) {
		const batch = await claim(
			services,
			Math.min(BATCH, WEBHOOK_MAX_PER_RUN - result.claimed),
			options.webhookIds,
		);
		await options.hooks?.claimed?.(batch.map((c) => c.delivery.id));
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
					await options.hooks?.sent?.(claimed.delivery.id);
					return settle(services, claimed.delivery, outcome, random);
				}),
			);
			for (const s of settled) result[s] += 1;
		}
	}
	result.pruned = await pruneWebhookDeliveries(services, options.webhookIds);
	return result;
}
