import { eq, inArray } from "drizzle-orm";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { webhookDeliveries, webhooks } from "../../src/db/schema.ts";
import { runDeletionWork } from "../../src/jobs/deletion.ts";
import { createLogger } from "../../src/log.ts";
import { findManagedProvider } from "../../src/managed/registry.ts";
import { createServices } from "../../src/services.ts";
import { Timing } from "../../src/timing.ts";
import {
	type DeliveryOptions,
	deliverWebhooks,
	LAPSED_LAST_ATTEMPT_ERROR,
	WEBHOOK_CLAIM_SECONDS,
	WEBHOOK_MAX_RESPONSE_BYTES,
	webhookBackoffSeconds,
} from "../../src/webhooks/deliver.ts";
import { WEBHOOK_MAX_ATTEMPTS } from "../../src/webhooks/events.ts";
import { openWebhookSecret } from "../../src/webhooks/service.ts";
import type { UpstreamRecord, UpstreamState } from "../setup/upstream-types.ts";
import { admin, userWithKey } from "./fixtures.ts";
import { call, expectError, testEnv } from "./helpers.ts";
import {
	age,
	clockedServices,
	connected,
	db,
	lease,
	registerProviders,
	tokensOf,
} from "./lease-helpers.ts";
import { providerBody, putProvider, revokeAtProvider } from "./oauth-helpers.ts";

/**
 * Signed webhooks (docs/webhooks.md) against a real receiver: the tests' upstream
 * (test/setup/upstream.ts), whose /flaky/<n> fails the first n attempts of each message and
 * records every request. Signatures are checked with the `standardwebhooks` library, the spec's
 * reference. Deliveries are driven by calling the scheduled job with a clock the test moves.
 * Other files' events queue deliveries for these webhooks too (every webhook sees every event
 * it subscribes to), so each test looks at the deliveries of its own objects only.
 */

const UP = inject("upstream").url;
let seq = 0;
const tenant = () =>
	`w${Date.now().toString(36)}${(seq++).toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const hookId = () => `hook-${tenant()}`;

const received = async (t: string) =>
	((await (await fetch(`${UP}/_control/${t}`)).json()) as UpstreamState).requests;

const created: string[] = [];
const clocked = clockedServices();
const services = clocked.services;
/** The delivery job, scoped to one webhook, with the longest jitter (so advancing by the full backoff always suffices). */
const deliver = (id: string, options: DeliveryOptions = {}) => {
	// Never behind the real clock, which stamps the events (and so when they are due).
	clocked.clock.t = Math.max(clocked.clock.t, Date.now());
	return deliverWebhooks(services, { webhookIds: [id], random: () => 0.999_999, ...options });
};

/** Resolves for everyone once `n` have arrived: no sleeps, whoever comes first waits. */
function barrier(n: number) {
	let arrived = 0;
	let open = () => {};
	const all = new Promise<void>((resolve) => {
		open = resolve;
	});
	return async () => {
		arrived += 1;
		if (arrived === n) open();
		await all;
	};
}

/** The stored secret of webhook `id`, opened. */
async function storedSecret(id: string): Promise<string> {
	const [row] = await db.select().from(webhooks).where(eq(webhooks.id, id));
	if (!row) throw new Error(`no webhook ${id}`);
	return openWebhookSecret(services, row);
}
const advance = (seconds: number) => {
	clocked.clock.t += seconds * 1000;
};

// Each test starts at the real time: a receiver checks the timestamp against its own clock.
beforeEach(() => {
	clocked.clock.t = Date.now();
});

afterAll(async () => {
	for (const id of created) await db.delete(webhooks).where(eq(webhooks.id, id));
	await clocked.dispose();
});

async function putHook(id: string, body: Record<string, unknown>) {
	const res = await call(`/v1/admin/webhooks/${id}`, { method: "PUT", token: admin(), json: body });
	if (res.status === 201) created.push(id);
	return res;
}

/** A webhook for `events` at the receiver path `path` of a new tenant; its id, secret and tenant. */
async function hook(events: string[], path = "/flaky/0") {
	const id = hookId();
	const t = tenant();
	const res = await putHook(id, { url: `${UP}/t/${t}${path}`, events });
	expect(res.status).toBe(201);
	const { secret } = (await res.json()) as { secret: string };
	return { id, secret, tenant: t };
}

interface DeliveryJson {
	id: string;
	event_type: string;
	status: string;
	attempts: number;
	last_status: number | null;
	payload: string;
}

async function deliveries(id: string, query = ""): Promise<DeliveryJson[]> {
	const out: DeliveryJson[] = [];
	let cursor: string | null = null;
	do {
		const qs = new URLSearchParams(query);
		qs.set("limit", "100");
		if (cursor) qs.set("cursor", cursor);
		const res = await call(`/v1/admin/webhooks/${id}/deliveries?${qs}`, { token: admin() });
		expect(res.status).toBe(200);
		const page = (await res.json()) as { data: DeliveryJson[]; next_cursor: string | null };
		out.push(...page.data);
		cursor = page.next_cursor;
	} while (cursor);
	return out;
}

/** The one delivery of webhook `id` whose payload's data has `key: value`. */
async function deliveryWhere(id: string, key: string, value: string): Promise<DeliveryJson> {
	const found = (await deliveries(id)).filter(
		(d) => (JSON.parse(d.payload) as { data: Record<string, unknown> }).data[key] === value,
	);
	expect(found).toHaveLength(1);
	return found[0] as DeliveryJson;
}

const statusOf = async (deliveryId: string) => {
	const [row] = await db
		.select()
		.from(webhookDeliveries)
		.where(eq(webhookDeliveries.id, deliveryId));
	return row;
};

/** What the receiver got of one message, in order. */
const attemptsOf = async (t: string, deliveryId: string): Promise<UpstreamRecord[]> =>
	(await received(t)).filter((r) => r.headers["webhook-id"] === deliveryId);

function verify(secret: string, record: UpstreamRecord, body = record.body ?? "") {
	return new Webhook(secret).verify(body, {
		"webhook-id": record.headers["webhook-id"] ?? "",
		"webhook-timestamp": record.headers["webhook-timestamp"] ?? "",
		"webhook-signature": record.headers["webhook-signature"] ?? "",
	});
}

async function deleteCredential(key: string): Promise<string> {
	const res = await call("/v1/credentials", {
		method: "POST",
		token: key,
		json: { provider: "webhooked", type: "api_key", api_key: "sk-test-webhook-0123456789" },
	});
	expect(res.status).toBe(201);
	const { id } = (await res.json()) as { id: string };
	const gone = await call(`/v1/credentials/${id}`, { method: "DELETE", token: key });
	expect(gone.status).toBe(200);
	return id;
}

describe("webhook endpoints", () => {
	it("PUT without a secret generates a whsec_ one, shown once and stored sealed; GET never shows it", async () => {
		const id = hookId();
		const res = await putHook(id, { url: `${UP}/t/${tenant()}/flaky/0`, events: ["user.deleted"] });
		expect(res.status).toBe(201);
		expect(res.headers.get("cache-control")).toBe("no-store");
		const body = (await res.json()) as { secret: string; events: string[] };
		expect(body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
		expect(body.events).toEqual(["user.deleted"]);
		const [row] = await db.select().from(webhooks).where(eq(webhooks.id, id));
		expect(JSON.stringify(row)).not.toContain(body.secret.slice(6));

		const got = await call(`/v1/admin/webhooks/${id}`, { token: admin() });
		expect(got.status).toBe(200);
		expect(await got.text()).not.toContain("whsec_");
		const again = await putHook(id, {
			url: `${UP}/t/${tenant()}/flaky/0`,
			events: ["credential.deleted"],
		});
		expect(again.status).toBe(200);
		expect(((await again.json()) as { secret?: string }).secret).toBeUndefined();

		const list = await call("/v1/admin/webhooks?limit=100", { token: admin() });
		expect(list.status).toBe(200);
		expect(await list.text()).not.toContain("whsec_");

		expect(
			(await call(`/v1/admin/webhooks/${id}`, { method: "DELETE", token: admin() })).status,
		).toBe(204);
		await expectError(await call(`/v1/admin/webhooks/${id}`, { token: admin() }), 404, "not_found");
	});

	it("two secret-less PUTs of a new id at once: one creates it and answers the stored secret, the other keeps it and answers none", async () => {
		// Before, both read "no such webhook", both generated a secret and answered it with 201,
		// and the later write won: one admin held a secret that never signed anything.
		for (let round = 0; round < 10; round++) {
			const id = hookId();
			const t = tenant();
			const body = { url: `${UP}/t/${t}/flaky/0`, events: ["credential.deleted"] };
			const answers = await Promise.all([putHook(id, body), putHook(id, body)]);
			const bodies = (await Promise.all(answers.map((r) => r.json()))) as { secret?: string }[];
			const secrets = bodies.flatMap((b) => (b.secret === undefined ? [] : [b.secret]));
			const stored = await storedSecret(id);
			expect(secrets).toEqual([stored]);
			expect(answers.map((r) => r.status).sort()).toEqual([200, 201]);
			if (round > 0) continue;

			// The answered secret signs the real deliveries.
			const { key } = await userWithKey();
			const delivery = await deliveryWhere(id, "credential_id", await deleteCredential(key));
			await deliver(id);
			const [got] = await attemptsOf(t, delivery.id);
			expect(verify(secrets[0] as string, got as UpstreamRecord)).toMatchObject({
				type: "credential.deleted",
			});
			// A secret-less replacement keeps the secret and does not show it; a sent one replaces it.
			const kept = await putHook(id, body);
			expect(kept.status).toBe(200);
			expect(((await kept.json()) as { secret?: string }).secret).toBeUndefined();
			expect(await storedSecret(id)).toBe(stored);
			const mine = `whsec_${btoa("k".repeat(32))}`;
			const replaced = await putHook(id, { ...body, secret: mine });
			expect(replaced.status).toBe(200);
			expect(((await replaced.json()) as { secret?: string }).secret).toBeUndefined();
			expect(await storedSecret(id)).toBe(mine);
		}
	});

	it("refuses a private, metadata or plain-http URL, and anything but the admin token", async () => {
		for (const url of [
			"http://10.1.2.3/hook",
			"https://169.254.169.254/latest",
			"https://192.168.1.10/hook",
			"http://example.com/hook",
		]) {
			const res = await putHook(hookId(), { url, events: ["credential.deleted"] });
			const body = (await expectError(res, 400, "invalid_request")) as unknown as {
				error: { detail: { field: string }[] };
			};
			expect(body.error.detail[0]?.field).toBe("url");
		}
		await expectError(
			await putHook(hookId(), {
				url: `${UP}/t/x/flaky/0`,
				events: ["credential.deleted"],
				secret: "hunter2",
			}),
			400,
			"invalid_request",
		);
		const { key } = await userWithKey();
		await expectError(
			await call(`/v1/admin/webhooks/${hookId()}`, {
				method: "PUT",
				token: key,
				json: { url: `${UP}/t/x/flaky/0`, events: ["credential.deleted"] },
			}),
			403,
			"insufficient_scope",
		);
	});
});

describe("delivery", () => {
	it("credential.deleted reaches the receiver signed per Standard Webhooks; a tampered body or another secret fails verification", async () => {
		const h = await hook(["credential.deleted"]);
		const { key, id: userId } = await userWithKey();
		const credentialId = await deleteCredential(key);
		const delivery = await deliveryWhere(h.id, "credential_id", credentialId);
		expect(delivery).toMatchObject({ event_type: "credential.deleted", status: "pending" });

		await deliver(h.id);
		const [got, ...more] = await attemptsOf(h.tenant, delivery.id);
		expect(more).toHaveLength(0);
		if (!got) throw new Error("not delivered");
		expect(got.method).toBe("POST");
		const payload = verify(h.secret, got) as { type: string; data: Record<string, unknown> };
		expect(payload).toMatchObject({
			type: "credential.deleted",
			data: { credential_id: credentialId, user_id: userId, provider: "webhooked" },
		});
		expect(got.body).not.toContain("sk-test-webhook");
		expect(() =>
			verify(h.secret, got, (got.body ?? "").replace("credential.deleted", "credential.created")),
		).toThrow();
		expect(() => verify(`whsec_${btoa("x".repeat(32))}`, got)).toThrow();
		expect((await statusOf(delivery.id))?.status).toBe("delivered");
	});

	it("a receiver that fails twice gets the event on the third try, each after its backoff", async () => {
		const h = await hook(["credential.deleted"], "/flaky/2");
		const { key } = await userWithKey();
		const delivery = await deliveryWhere(h.id, "credential_id", await deleteCredential(key));

		await deliver(h.id);
		expect(await statusOf(delivery.id)).toMatchObject({
			status: "pending",
			attempts: 1,
			lastStatus: 500,
		});
		// Not due before its backoff.
		await deliver(h.id);
		expect((await attemptsOf(h.tenant, delivery.id)).length).toBe(1);
		advance(webhookBackoffSeconds(1, () => 0.999_999) + 1);
		await deliver(h.id);
		expect(await statusOf(delivery.id)).toMatchObject({ status: "pending", attempts: 2 });
		advance(webhookBackoffSeconds(2, () => 0.999_999) + 1);
		await deliver(h.id);
		expect(await statusOf(delivery.id)).toMatchObject({
			status: "delivered",
			attempts: 3,
			lastStatus: 200,
		});

		const tries = await attemptsOf(h.tenant, delivery.id);
		expect(tries.map((r) => r.status)).toEqual([500, 500, 200]);
		// The same message each time: one webhook-id, one body; the last one verifies.
		expect(new Set(tries.map((r) => r.body)).size).toBe(1);
		verify(h.secret, tries[2] as UpstreamRecord);
	});

	it(`after ${WEBHOOK_MAX_ATTEMPTS} failures the delivery is failed and listed; redeliver sends it again`, async () => {
		const h = await hook(["credential.deleted"], "/flaky/99");
		const { key } = await userWithKey();
		const delivery = await deliveryWhere(h.id, "credential_id", await deleteCredential(key));
		for (let i = 0; i < WEBHOOK_MAX_ATTEMPTS; i++) {
			await deliver(h.id);
			advance(3601);
		}
		expect(await statusOf(delivery.id)).toMatchObject({
			status: "failed",
			attempts: WEBHOOK_MAX_ATTEMPTS,
		});
		await deliver(h.id);
		expect(await attemptsOf(h.tenant, delivery.id)).toHaveLength(WEBHOOK_MAX_ATTEMPTS);
		const failed = await deliveries(h.id, "status=failed");
		expect(failed.map((d) => d.id)).toContain(delivery.id);
		expect(failed.find((d) => d.id === delivery.id)).toMatchObject({ last_status: 500 });

		// The receiver is fixed (same webhook, same secret); an admin sends the dead letter again,
		// now (a receiver refuses a timestamp far from its own clock).
		clocked.clock.t = Date.now();
		const fixed = tenant();
		const moved = await putHook(h.id, {
			url: `${UP}/t/${fixed}/flaky/0`,
			events: ["credential.deleted"],
		});
		expect(moved.status).toBe(200);
		// While a run holds the delivery (its claim is live), a redeliver would race that send.
		await db
			.update(webhookDeliveries)
			.set({ claimedUntil: new Date(Date.now() + 60_000) })
			.where(eq(webhookDeliveries.id, delivery.id));
		await expectError(
			await call(`/v1/admin/webhooks/${h.id}/deliveries/${delivery.id}/redeliver`, {
				method: "POST",
				token: admin(),
			}),
			409,
			"conflict",
		);
		await db
			.update(webhookDeliveries)
			.set({ claimedUntil: null })
			.where(eq(webhookDeliveries.id, delivery.id));
		const again = await call(`/v1/admin/webhooks/${h.id}/deliveries/${delivery.id}/redeliver`, {
			method: "POST",
			token: admin(),
		});
		expect(again.status).toBe(200);
		expect(await again.json()).toMatchObject({ status: "pending", attempts: 0 });
		await deliver(h.id);
		const [got] = await attemptsOf(fixed, delivery.id);
		if (!got) throw new Error("not redelivered");
		expect(verify(h.secret, got)).toMatchObject({ type: "credential.deleted" });
		expect(await statusOf(delivery.id)).toMatchObject({ status: "delivered" });
		await expectError(
			await call(`/v1/admin/webhooks/${h.id}/deliveries/whd_nosuch/redeliver`, {
				method: "POST",
				token: admin(),
			}),
			404,
			"not_found",
		);
	});
	it(`a 2xx whose body is over ${WEBHOOK_MAX_RESPONSE_BYTES / 1024} KiB is delivered: a 2xx is success whatever its body`, async () => {
		// /download answers 200 with as many bytes as asked (and a Content-Length saying so).
		const h = await hook(
			["credential.deleted"],
			`/download?bytes=${4 * WEBHOOK_MAX_RESPONSE_BYTES}`,
		);
		const { key } = await userWithKey();
		const delivery = await deliveryWhere(h.id, "credential_id", await deleteCredential(key));
		await deliver(h.id);
		expect(await statusOf(delivery.id)).toMatchObject({
			status: "delivered",
			attempts: 1,
			lastStatus: 200,
			lastError: null,
		});
		expect(await attemptsOf(h.tenant, delivery.id)).toHaveLength(1);
		// An error answer is read (bounded) for last_error's excerpt.
		const e = await hook(["credential.deleted"], "/status/503");
		const failing = await deliveryWhere(e.id, "credential_id", await deleteCredential(key));
		await deliver(e.id);
		expect(await statusOf(failing.id)).toMatchObject({
			status: "pending",
			attempts: 1,
			lastStatus: 503,
			lastError: 'the receiver answered 503: {"status":503}',
		});
	});

	it(`a run that dies mid-send has spent that attempt: a crash loop sends a delivery at most ${WEBHOOK_MAX_ATTEMPTS} times`, async () => {
		const h = await hook(["credential.deleted"], "/flaky/99");
		const { key } = await userWithKey();
		const delivery = await deliveryWhere(h.id, "credential_id", await deleteCredential(key));
		// Every run dies after this delivery's POST, before writing its outcome; the claim lapses.
		// (Other files' events queue deliveries for this webhook too: those settle as usual.)
		let crashes = 0;
		const dies: DeliveryOptions = {
			hooks: {
				sent: async (id) => {
					if (id !== delivery.id) return;
					crashes += 1;
					throw new Error("the run died");
				},
			},
		};
		for (let run = 0; run < WEBHOOK_MAX_ATTEMPTS + 3; run++) {
			await deliver(h.id, dies).catch(() => undefined);
			advance(WEBHOOK_CLAIM_SECONDS + 1);
		}
		expect(crashes).toBe(WEBHOOK_MAX_ATTEMPTS);
		expect(await attemptsOf(h.tenant, delivery.id)).toHaveLength(WEBHOOK_MAX_ATTEMPTS);
		expect(await statusOf(delivery.id)).toMatchObject({
			status: "failed",
			attempts: WEBHOOK_MAX_ATTEMPTS,
			lastError: LAPSED_LAST_ATTEMPT_ERROR,
			claimedUntil: null,
		});
		// A dead letter like any other: redeliver sends it again.
		clocked.clock.t = Date.now();
		const again = await call(`/v1/admin/webhooks/${h.id}/deliveries/${delivery.id}/redeliver`, {
			method: "POST",
			token: admin(),
		});
		expect(again.status).toBe(200);
		await deliver(h.id);
		expect(await attemptsOf(h.tenant, delivery.id)).toHaveLength(WEBHOOK_MAX_ATTEMPTS + 1);
	});

	it("prunes delivered and failed deliveries older than LATCHKEY_WEBHOOK_RETENTION_DAYS, never a pending one", async () => {
		const h = await hook(["credential.deleted"]);
		const { key } = await userWithKey();
		const ids: string[] = [];
		for (let i = 0; i < 3; i++) {
			ids.push((await deliveryWhere(h.id, "credential_id", await deleteCredential(key))).id);
		}
		await deliver(h.id);
		const [delivered, failed, pending] = ids as [string, string, string];
		const settledAt = new Date(clocked.clock.t);
		await db
			.update(webhookDeliveries)
			.set({ updatedAt: settledAt })
			.where(inArray(webhookDeliveries.id, ids));
		await db
			.update(webhookDeliveries)
			.set({ status: "failed" })
			.where(eq(webhookDeliveries.id, failed));
		// Pending (as if redelivered) but not due during this test, however old.
		await db
			.update(webhookDeliveries)
			.set({ status: "pending", nextAttemptAt: new Date(Date.now() + 400 * 86_400_000) })
			.where(eq(webhookDeliveries.id, pending));
		const retention = services.config.LATCHKEY_WEBHOOK_RETENTION_DAYS;
		expect(retention).toBe(30);

		clocked.clock.t = settledAt.getTime() + retention * 86_400_000 - 60_000;
		await deliver(h.id);
		for (const id of ids) expect(await statusOf(id)).toBeDefined();

		clocked.clock.t = settledAt.getTime() + retention * 86_400_000 + 60_000;
		const run = await deliver(h.id);
		expect(run.pruned).toBeGreaterThanOrEqual(2);
		expect(await statusOf(delivered)).toBeUndefined();
		expect(await statusOf(failed)).toBeUndefined();
		expect(await statusOf(pending)).toMatchObject({ status: "pending" });
		await db.delete(webhookDeliveries).where(eq(webhookDeliveries.id, pending));
	});

	it("two runs at once (the cron and the maintenance route) send each delivery once and settle it once", async () => {
		const h = await hook(["credential.deleted"]);
		const { key } = await userWithKey();
		for (let round = 0; round < 5; round++) {
			const ids: string[] = [];
			for (let i = 0; i < 6; i++) {
				ids.push((await deliveryWhere(h.id, "credential_id", await deleteCredential(key))).id);
			}
			// Each run waits, after its first claim, for the other's: both claims are made before
			// either run sends anything, so one taking the other's delivery would show.
			const bothClaimed = barrier(2);
			const firstClaim = () => {
				let first = true;
				return async () => {
					if (!first) return;
					first = false;
					await bothClaimed();
				};
			};
			clocked.clock.t = Date.now();
			const runs = await Promise.all([
				deliverWebhooks(services, { webhookIds: [h.id], hooks: { claimed: firstClaim() } }),
				deliverWebhooks(services, { webhookIds: [h.id], hooks: { claimed: firstClaim() } }),
			]);
			for (const id of ids) {
				expect(await attemptsOf(h.tenant, id)).toHaveLength(1);
				expect(await statusOf(id)).toMatchObject({ status: "delivered", attempts: 1 });
			}
			const [a, b] = runs as [{ delivered: number }, { delivered: number }];
			expect(a.delivered + b.delivered).toBeGreaterThanOrEqual(ids.length);
		}
	});
});

describe("events from their real causes", () => {
	it("user.deleted: an admin deletes a user", async () => {
		const h = await hook(["user.deleted"]);
		const { id: userId } = await userWithKey();
		const res = await call(`/v1/admin/users/${userId}`, { method: "DELETE", token: admin() });
		expect(res.status).toBe(202);
		const delivery = await deliveryWhere(h.id, "user_id", userId);
		expect(delivery.event_type).toBe("user.deleted");
		await deliver(h.id);
		const [got] = await attemptsOf(h.tenant, delivery.id);
		expect(verify(h.secret, got as UpstreamRecord)).toMatchObject({
			type: "user.deleted",
			data: { user_id: userId },
		});
	});

	it("credential.reconnect_required: the provider refuses the refresh token (invalid_grant)", async () => {
		const provider = `wh-idp-${tenant()}`;
		await registerProviders([[provider, {}]]);
		const h = await hook(["credential.reconnect_required"]);
		const { user, id } = await connected(provider);
		await revokeAtProvider((await tokensOf(services, id)).refresh_token);
		await age(id, 3570, 30);
		await expectError(await lease(user.key, id), 409, "reconnect_required");
		await expectError(await lease(user.key, id), 409, "reconnect_required");

		// Once, however often the refused credential is asked for.
		const delivery = await deliveryWhere(h.id, "credential_id", id);
		expect(delivery.event_type).toBe("credential.reconnect_required");
		await deliver(h.id);
		const [got] = await attemptsOf(h.tenant, delivery.id);
		expect(verify(h.secret, got as UpstreamRecord)).toMatchObject({
			type: "credential.reconnect_required",
			data: { credential_id: id, user_id: user.id, provider, reason: "invalid_grant" },
		});
	});

	it("deprovision.failed: an account deletion's revocation job runs out of attempts", async () => {
		const h = await hook(["deprovision.failed"]);
		const provider = `wh-dead-${tenant()}`;
		const registered = await putProvider(
			provider,
			providerBody({ revoke_url: "http://127.0.0.1:1/revoke" }),
		);
		expect(registered.status).toBe(200);
		const user = await userWithKey();
		const stored = await call("/v1/credentials", {
			method: "POST",
			token: user.key,
			json: { provider, type: "oauth2", access_token: "imported", refresh_token: "imported-rt" },
		});
		expect(stored.status).toBe(201);
		const env = { LATCHKEY_JOB_MAX_ATTEMPTS: "1", LATCHKEY_PURGE_DELAY_SECONDS: "0" };
		expect((await call("/v1/me", { method: "DELETE", token: user.key }, env)).status).toBe(202);

		const config = loadConfig({
			...testEnv,
			LATCHKEY_JOB_MAX_ATTEMPTS: "1",
			LATCHKEY_PURGE_DELAY_SECONDS: "0",
		});
		const built = createServices(config, createLogger("error"), new Timing());
		try {
			expect(
				await runDeletionWork(built.services, findManagedProvider, { userIds: [user.id] }),
			).toMatchObject({ failed: 1 });
		} finally {
			await built.dispose();
		}
		const delivery = await deliveryWhere(h.id, "user_id", user.id);
		expect(delivery.event_type).toBe("deprovision.failed");
		await deliver(h.id);
		const [got] = await attemptsOf(h.tenant, delivery.id);
		const payload = verify(h.secret, got as UpstreamRecord) as { data: Record<string, unknown> };
		expect(payload.data).toMatchObject({ user_id: user.id, kind: "revoke_oauth", provider });
		expect(payload.data.job_id).toMatch(/^job_/);
	});

	it("an event no webhook subscribes to queues nothing", async () => {
		const h = await hook(["user.deleted"]);
		const { key } = await userWithKey();
		const credentialId = await deleteCredential(key);
		const mine = (await deliveries(h.id)).filter((d) => d.payload.includes(credentialId));
		expect(mine).toEqual([]);
	});
});

beforeAll(() => {
	expect(UP).toMatch(/^http:\/\/127\.0\.0\.1:/);
});
