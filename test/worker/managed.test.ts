import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { and, eq, sql } from "drizzle-orm";
import { describe, expect, inject, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { openSecret } from "../../src/credentials/service.ts";
import { type CredentialRow, credentials, managedProvisionings } from "../../src/db/schema.ts";
import worker from "../../src/index.ts";
import { createLogger } from "../../src/log.ts";
import { agentmailClientId, agentmailProvider } from "../../src/managed/agentmail.ts";
import { ensureManagedCredentials, managedKeys } from "../../src/managed/service.ts";
import { createServices } from "../../src/services.ts";
import { Timing } from "../../src/timing.ts";
import { type AgentMailOrg, agentmailOrg } from "../setup/managed-control.ts";
import { admin, userWithKey } from "./fixtures.ts";
import { BASE, call, clockedApp, expectError, testDb, testEnv } from "./helpers.ts";

interface CredentialJson {
	id: string;
	provider: string;
	type: string;
	managed: boolean;
	system: boolean;
	metadata: Record<string, unknown>;
}

const newOrg = () => agentmailOrg(inject("agentmail").url);

async function list(token: string, am: AgentMailOrg, via = call) {
	const res = await via("/v1/credentials", { token }, am.env);
	expect(res.status).toBe(200);
	const text = await res.text();
	return { res, text, data: (JSON.parse(text) as { data: CredentialJson[] }).data };
}

function servicesFor(am: AgentMailOrg) {
	return createServices(loadConfig({ ...testEnv, ...am.env }), createLogger("error"), new Timing());
}

async function managedRows(userId: string): Promise<CredentialRow[]> {
	const db = testDb();
	try {
		return await db.db
			.select()
			.from(credentials)
			.where(and(eq(credentials.userId, userId), eq(credentials.managed, true)));
	} finally {
		await db.end();
	}
}

async function provisioning(userId: string) {
	const db = testDb();
	try {
		const [row] = await db.db
			.select()
			.from(managedProvisionings)
			.where(
				and(
					eq(managedProvisionings.userId, userId),
					eq(managedProvisionings.provider, "agentmail"),
				),
			);
		return row;
	} finally {
		await db.end();
	}
}

/** The stored secret of the user's AgentMail credential. */
async function storedKey(am: AgentMailOrg, row: CredentialRow): Promise<string> {
	const { services, dispose } = servicesFor(am);
	try {
		return (await openSecret(services, row as CredentialRow & { type: "api_key" })).api_key;
	} finally {
		await dispose();
	}
}

/** The org holds exactly one pod and one key for the user, and the vault holds that key. */
async function expectOneLiveKey(am: AgentMailOrg, userId: string) {
	const state = await am.state();
	const pods = state.pods.filter((p) => p.client_id === agentmailClientId(userId));
	expect(pods).toHaveLength(1);
	const keys = state.api_keys.filter((k) => k.pod_id === pods[0]?.pod_id);
	expect(keys).toHaveLength(1);
	const rows = await managedRows(userId);
	expect(rows).toHaveLength(1);
	const row = rows[0] as CredentialRow;
	expect(row.metadata).toMatchObject({ pod_id: pods[0]?.pod_id, api_key_id: keys[0]?.api_key_id });
	expect(await storedKey(am, row)).toBe(keys[0]?.api_key);
	return { pod: pods[0], key: keys[0], row };
}

describe("AgentMail managed credentials", () => {
	it("a listing provisions one pod and one pod-scoped key, stored sealed and shown without its secret", async () => {
		const am = newOrg();
		const { id, key } = await userWithKey();
		const first = await list(key, am);
		const managed = first.data.filter((c) => c.managed);
		expect(managed).toHaveLength(1);
		expect(managed[0]).toMatchObject({
			provider: "agentmail",
			type: "api_key",
			managed: true,
			system: false,
		});
		const { key: amKey, pod } = await expectOneLiveKey(am, id);
		expect(managed[0]?.metadata.pod_id).toBe(pod?.pod_id);
		expect(first.text).not.toContain(amKey?.api_key);
		expect((await provisioning(id))?.status).toBe("done");
		// The pod carries the idempotency key derived from the user id; the key is named after it.
		expect(pod?.client_id).toBe(`latchkey-${id}`);
		expect(amKey?.name).toBe(`latchkey:latchkey-${id}`);

		// Later listings find the marker: nothing reaches AgentMail, one Postgres round trip.
		const calls = (await am.state()).calls.length;
		const again = await list(key, am);
		expect(again.data.filter((c) => c.managed).map((c) => c.id)).toEqual([managed[0]?.id]);
		expect((await am.state()).calls.length).toBe(calls);
		const timing = again.res.headers.get("server-timing") ?? "";
		expect(timing).toMatch(/(^|, )pg;dur=[\d.]+;desc="1 call"/);
		// The marker pipeline is the only Redis call: no lock.
		expect(timing).toMatch(/(^|, )redis;dur=[\d.]+;desc="1 call"/);

		// A lost marker costs one Postgres batch that finds the credential; AgentMail is not asked.
		const { services, dispose } = servicesFor(am);
		const markerKey = (await managedKeys(services.config)).done(id);
		try {
			await services.redis.del(markerKey);
			const restored = await list(key, am);
			expect(restored.data.filter((c) => c.managed).map((c) => c.id)).toEqual([managed[0]?.id]);
			expect((await am.state()).calls.length).toBe(calls);
			expect(await services.redis.smembers(markerKey)).toEqual(["agentmail"]);
		} finally {
			await dispose();
		}
	});

	it("20 concurrent listings by one user provision exactly one pod and one key", async () => {
		const am = newOrg();
		const { id, key } = await userWithKey();
		const results = await Promise.all(Array.from({ length: 20 }, () => list(key, am)));
		for (const r of results) expect(r.res.status).toBe(200);
		await expectOneLiveKey(am, id);
		const calls = (await am.state()).calls;
		expect(calls.filter((c) => c.method === "POST" && c.path === "/v0/pods")).toHaveLength(1);
		expect(calls.filter((c) => c.method === "POST" && c.path.endsWith("/api-keys"))).toHaveLength(
			1,
		);
		const final = await list(key, am);
		expect(final.data.filter((c) => c.managed)).toHaveLength(1);
	});

	it("a failing AgentMail never fails the listing; a later listing provisions after the backoff", async () => {
		const am = newOrg();
		const { id, key } = await userWithKey();
		const clock = clockedApp();
		await am.fail({ method: "POST", path: "^/v0/pods$", mode: "status", status: 503 });
		const failed = await list(key, am, clock.call);
		expect(failed.data.filter((c) => c.managed)).toHaveLength(0);
		const intent = await provisioning(id);
		expect(intent).toMatchObject({ status: "failed", attempts: 1 });
		expect(intent?.lastError).toContain("503");
		expect(intent?.lastError).not.toContain(am.orgKey);

		// Inside the backoff nothing is retried, and the marker says so: no Postgres beyond the list.
		const before = (await am.state()).calls.length;
		const waiting = await list(key, am, clock.call);
		expect((await am.state()).calls.length).toBe(before);
		expect(waiting.res.headers.get("server-timing")).toMatch(/(^|, )pg;dur=[\d.]+;desc="1 call"/);

		clock.advance(6);
		const later = await list(key, am, clock.call);
		expect(later.data.filter((c) => c.managed)).toHaveLength(1);
		await expectOneLiveKey(am, id);
		expect(await provisioning(id)).toMatchObject({ status: "done", attempts: 2, lastError: null });
	});

	it("a listing waits at most 2 s for a stalled AgentMail, and the provisioning finishes in the background", async () => {
		const am = newOrg();
		const { id, key } = await userWithKey();
		await am.fail({ method: "POST", path: "^/v0/pods$", mode: "hang" });
		const ctx = createExecutionContext();
		const started = performance.now();
		const res = await worker.fetch(
			new Request(`${BASE}/v1/credentials`, { headers: { authorization: `Bearer ${key}` } }),
			{ ...testEnv, ...am.env },
			ctx,
		);
		const elapsed = performance.now() - started;
		expect(res.status).toBe(200);
		const body = (await res.json()) as { data: CredentialJson[] };
		expect(body.data.filter((c) => c.managed)).toHaveLength(0);
		// It waited for the provisioning (the bound), then answered while AgentMail still held
		// the request: without the bound this fetch would not return before the release below.
		expect(elapsed).toBeGreaterThanOrEqual(1_900);
		expect(elapsed).toBeLessThan(6_000);
		// The pod request is still held: release it and let the background work finish.
		expect(await am.release()).toBe(1);
		await waitOnExecutionContext(ctx);
		await expectOneLiveKey(am, id);
	});

	it("a crash after AgentMail made the pod, before its answer arrived, reuses that pod", async () => {
		const am = newOrg();
		const { id, key } = await userWithKey();
		const clock = clockedApp();
		await am.fail({ method: "POST", path: "^/v0/pods$", mode: "drop_after" });
		await list(key, am, clock.call);
		expect((await am.state()).pods).toHaveLength(1);
		expect((await provisioning(id))?.status).toBe("failed");
		clock.advance(6);
		await list(key, am, clock.call);
		const state = await am.state();
		expect(state.pods).toHaveLength(1);
		await expectOneLiveKey(am, id);
	});

	it("a key made but never received is found by its name and deleted on the retry: no orphan", async () => {
		const am = newOrg();
		const { id, key } = await userWithKey();
		const clock = clockedApp();
		await am.fail({ method: "POST", path: "/api-keys$", mode: "drop_after" });
		await list(key, am, clock.call);
		const orphan = (await am.state()).api_keys;
		expect(orphan).toHaveLength(1);
		expect(await managedRows(id)).toHaveLength(0);
		clock.advance(6);
		await list(key, am, clock.call);
		const { key: live } = await expectOneLiveKey(am, id);
		expect(live?.api_key_id).not.toBe(orphan[0]?.api_key_id);
		const calls = (await am.state()).calls;
		expect(
			calls.some(
				(c) => c.method === "DELETE" && c.path.endsWith(`/api-keys/${orphan[0]?.api_key_id}`),
			),
		).toBe(true);
	});

	it("a key recorded but never stored (the database write failed) is deleted on the retry", async () => {
		const am = newOrg();
		const { id, key } = await userWithKey();
		await list(key, am);
		const first = await expectOneLiveKey(am, id);
		// What a failed store leaves: the intent pending with the key recorded, no credential,
		// no marker.
		const db = testDb();
		try {
			await db.db.delete(credentials).where(eq(credentials.id, first.row.id));
			await db.db
				.update(managedProvisionings)
				.set({ status: "pending" })
				.where(eq(managedProvisionings.userId, id));
		} finally {
			await db.end();
		}
		const { services, dispose } = servicesFor(am);
		await services.redis.del((await managedKeys(services.config)).done(id));
		await dispose();
		expect((await provisioning(id))?.resources).toMatchObject({
			api_key_id: first.key?.api_key_id,
		});

		await list(key, am);
		const second = await expectOneLiveKey(am, id);
		expect(second.pod?.pod_id).toBe(first.pod?.pod_id);
		expect(second.key?.api_key_id).not.toBe(first.key?.api_key_id);
	});

	it("an attempt that outlived its turn is fenced out: it stores nothing, and the next one cleans up its key", async () => {
		const am = newOrg();
		const { id, key } = await userWithKey();
		await am.fail({ method: "POST", path: "/api-keys$", mode: "hang" });
		const ctx = createExecutionContext();
		const res = await worker.fetch(
			new Request(`${BASE}/v1/credentials`, { headers: { authorization: `Bearer ${key}` } }),
			{ ...testEnv, ...am.env },
			ctx,
		);
		expect(res.status).toBe(200);
		// Wait for the explicit signal that the key request is being held.
		while ((await am.state()).held < 1) await scheduler.wait(10);
		// A newer attempt took over meanwhile (as after a lost lock): the intent moved on.
		const db = testDb();
		try {
			await db.db
				.update(managedProvisionings)
				.set({ attempts: sql`${managedProvisionings.attempts} + 1` })
				.where(eq(managedProvisionings.userId, id));
		} finally {
			await db.end();
		}
		expect(await am.release()).toBe(1);
		await waitOnExecutionContext(ctx);
		const stale = (await am.state()).api_keys;
		expect(stale).toHaveLength(1);
		expect(await managedRows(id)).toHaveLength(0);
		expect((await provisioning(id))?.resources).toMatchObject({ api_key_id: stale[0]?.api_key_id });

		await list(key, am);
		const { key: live } = await expectOneLiveKey(am, id);
		expect(live?.api_key_id).not.toBe(stale[0]?.api_key_id);
	});

	it("managed credentials are read-only: PATCH and DELETE answer 403 credential_read_only", async () => {
		const am = newOrg();
		const { key } = await userWithKey();
		const [managed] = (await list(key, am)).data.filter((c) => c.managed);
		expect(managed).toBeDefined();
		await expectError(
			await call(
				`/v1/credentials/${managed?.id}`,
				{ method: "PATCH", token: key, json: { title: "mine now" } },
				am.env,
			),
			403,
			"credential_read_only",
		);
		await expectError(
			await call(`/v1/credentials/${managed?.id}`, { method: "DELETE", token: key }, am.env),
			403,
			"credential_read_only",
		);
	});

	it("a managed credential is leased like any api_key: the lease returns the pod-scoped key", async () => {
		const am = newOrg();
		const { id, key } = await userWithKey();
		const [managed] = (await list(key, am)).data.filter((c) => c.managed);
		const { key: live } = await expectOneLiveKey(am, id);
		const res = await call(
			`/v1/credentials/${managed?.id}/leases`,
			{ method: "POST", token: key, json: { ttl_seconds: 60 } },
			am.env,
		);
		expect(res.status).toBe(201);
		const lease = (await res.json()) as { secret: Record<string, unknown> };
		expect(lease.secret).toEqual({ type: "api_key", api_key: live?.api_key });
	});

	it("users who are not active get nothing provisioned", async () => {
		const am = newOrg();
		const { id } = await userWithKey();
		const patched = await call(`/v1/admin/users/${id}`, {
			method: "PATCH",
			token: admin(),
			json: { status: "suspended" },
		});
		expect(patched.status).toBe(200);
		const { services, dispose } = servicesFor(am);
		const background: Promise<unknown>[] = [];
		try {
			expect(await ensureManagedCredentials(services, id, (w) => background.push(w))).toBe(false);
			await Promise.all(background);
		} finally {
			await dispose();
		}
		expect((await am.state()).calls).toHaveLength(0);
		expect(await managedRows(id)).toHaveLength(0);
	});

	it("without AGENTMAIL_API_KEY nothing is provisioned and /v1/providers does not offer it", async () => {
		const { id, key } = await userWithKey();
		const res = await call("/v1/credentials", { token: key });
		expect(res.status).toBe(200);
		expect(await managedRows(id)).toHaveLength(0);
		const providers = (await (await call("/v1/providers?limit=100", { token: key })).json()) as {
			data: { id: string; managed: boolean }[];
		};
		expect(providers.data.find((p) => p.id === "agentmail")).toBeUndefined();
		const am = newOrg();
		const withAm = (await (
			await call("/v1/providers?limit=100", { token: key }, am.env)
		).json()) as { data: { id: string; managed: boolean; auth_types: string[] }[] };
		expect(withAm.data.find((p) => p.id === "agentmail")).toMatchObject({
			managed: true,
			auth_types: ["api_key"],
		});
		expect(withAm.data.filter((p) => p.id !== "agentmail").every((p) => !p.managed)).toBe(true);
	});
});

describe("AgentMail deprovision", () => {
	async function provisioned() {
		const am = newOrg();
		const user = await userWithKey();
		await list(user.key, am);
		const live = await expectOneLiveKey(am, user.id);
		const resources = (await provisioning(user.id))?.resources ?? {};
		return { am, user, live, resources };
	}

	it("refuses a pod whose client id is not the user's, and leaves it alone", async () => {
		const { am, live, resources } = await provisioned();
		const stranger = await userWithKey();
		const { services, dispose } = servicesFor(am);
		try {
			const outcome = await agentmailProvider.deprovision(
				services,
				{ id: stranger.id },
				resources,
				null,
			);
			expect(outcome.status).toBe("ownership_mismatch");
		} finally {
			await dispose();
		}
		const state = await am.state();
		expect(state.pods.map((p) => p.pod_id)).toContain(live.pod?.pod_id);
		expect(state.api_keys.map((k) => k.api_key_id)).toContain(live.key?.api_key_id);
		expect(state.calls.filter((c) => c.method === "DELETE")).toHaveLength(0);
	});

	it("removes the user's keys, inboxes and pod, and says deleted when run again", async () => {
		const { am, user, live, resources } = await provisioned();
		// The user's agent made an inbox with its pod-scoped key.
		const inbox = await am.api(
			live.key?.api_key as string,
			"POST",
			`/v0/pods/${live.pod?.pod_id}/inboxes`,
			{
				username: "agent",
			},
		);
		expect(inbox.status).toBe(200);
		const { services, dispose } = servicesFor(am);
		try {
			expect(
				await agentmailProvider.deprovision(services, { id: user.id }, resources, live.row),
			).toEqual({ status: "deleted" });
			const state = await am.state();
			expect(state.pods).toHaveLength(0);
			expect(state.api_keys).toHaveLength(0);
			expect(state.inboxes).toHaveLength(0);
			expect(
				await agentmailProvider.deprovision(services, { id: user.id }, resources, null),
			).toEqual({ status: "deleted" });
		} finally {
			await dispose();
		}
	});

	it("finds the pod by client id when nothing was recorded (a crash before the record)", async () => {
		const am = newOrg();
		const user = await userWithKey();
		await am.createPod(agentmailClientId(user.id));
		const { services, dispose } = servicesFor(am);
		try {
			expect(await agentmailProvider.deprovision(services, { id: user.id }, {}, null)).toEqual({
				status: "deleted",
			});
		} finally {
			await dispose();
		}
		expect((await am.state()).pods).toHaveLength(0);
	});

	it("a transient AgentMail failure throws (the job retries), never reports deleted", async () => {
		const { am, user, resources } = await provisioned();
		await am.fail({ method: "GET", mode: "status", status: 503 });
		const { services, dispose } = servicesFor(am);
		try {
			await expect(
				agentmailProvider.deprovision(services, { id: user.id }, resources, null),
			).rejects.toMatchObject({ name: "ManagedProviderError", permanent: false, status: 503 });
		} finally {
			await dispose();
		}
		expect((await am.state()).pods).toHaveLength(1);
	});
});
