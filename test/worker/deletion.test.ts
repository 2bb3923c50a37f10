import { and, eq, inArray, sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { type Config, loadConfig } from "../../src/config.ts";
import { openSecret, sealSecret } from "../../src/credentials/service.ts";
import { newId } from "../../src/crypto/encoding.ts";
import {
	type CredentialRow,
	credentials,
	type JobRow,
	jobs,
	managedProvisionings,
} from "../../src/db/schema.ts";
import {
	BACKOFF_BASE_SECONDS,
	backoffSeconds,
	CLAIM_LEASE_SECONDS,
	claimJobs,
	type DeletionOptions,
	finishJob,
	PROVISIONING_IN_FLIGHT_SECONDS,
	pruneJobs,
	purgeUsers,
	runDeletionWork,
} from "../../src/jobs/deletion.ts";
import { createLogger, type LogLevel } from "../../src/log.ts";
import { AGENTMAIL_ID, agentmailClientId, agentmailProvider } from "../../src/managed/agentmail.ts";
import {
	type DeprovisionOutcome,
	type ManagedProvider,
	ManagedProviderError,
} from "../../src/managed/provider.ts";
import { findManagedProvider } from "../../src/managed/registry.ts";
import { createServices, type Services } from "../../src/services.ts";
import { Timing } from "../../src/timing.ts";
import { type AgentMailOrg, agentmailOrg } from "../setup/managed-control.ts";
import { admin, userWithKey } from "./fixtures.ts";
import { clockedApp, expectError, holdTransaction, testDb, testEnv } from "./helpers.ts";
import { connect, introspect, providerBody, putProvider } from "./oauth-helpers.ts";

/**
 * Account deletion after the request: jobs, retries, claims, purge. Real Postgres, Redis and
 * OAuth server (oidc-provider). Every clock here starts years ahead of the real one, so the
 * cron tests of other files (real clock) never find these jobs due nor these users purgeable,
 * and every run here is scoped to its test's users, so it never touches another file's.
 */

/** This file's own registration of the test server, so no other file's PUT can change it. */
const PROVIDER = "testidp-deletion";
const FUTURE = new Date(Date.now() + 10 * 365 * 86_400_000);
const db = testDb();
let unique = 0;
const next = () => {
	unique += 1;
	return unique;
};
const accountName = (label: string) =>
	`del-${label}-${Date.now().toString(36)}-${next()}-${Math.random().toString(36).slice(2, 6)}`;

interface JobJson {
	id: string;
	user_id: string;
	kind: string;
	status: string;
	attempts: number;
	next_attempt_at: string;
	last_error: string | null;
	created_at: string;
	updated_at: string;
}

/** An app and services sharing one clock the test moves; `env` alters the bindings. */
function world(overrides: Record<string, string> = {}, logLevel: LogLevel = "error") {
	// Runs here are scoped to their own users, so they need not wait out the test bindings' delay.
	const env = { LATCHKEY_PURGE_DELAY_SECONDS: "0", ...overrides };
	const app = clockedApp(new Date(FUTURE.getTime() + Math.floor(Math.random() * 86_400_000)));
	const config: Config = loadConfig({ ...testEnv, ...env });
	const built = createServices(config, createLogger(logLevel), new Timing(), app.now);
	disposers.push(built.dispose);
	const call: typeof app.call = (path, init, override) =>
		app.call(path, init, { ...env, ...override });
	return { ...app, call, services: built.services };
}
const disposers: (() => Promise<void>)[] = [];

afterEach(() => vi.restoreAllMocks());

afterAll(async () => {
	await Promise.all(disposers.map((d) => d()));
	await db.end();
});

beforeAll(async () => {
	const res = await putProvider(PROVIDER, providerBody());
	if (res.status !== 200) throw new Error(`register provider: ${res.status} ${await res.text()}`);
});

async function jobsOf(userId: string): Promise<JobRow[]> {
	return db.db.select().from(jobs).where(eq(jobs.userId, userId)).orderBy(jobs.kind);
}

async function tokensOf(credentialId: string) {
	const [row] = await db.db.select().from(credentials).where(eq(credentials.id, credentialId));
	if (!row) throw new Error("no credential");
	const { services } = world();
	return openSecret(services, row as CredentialRow & { type: "oauth2" });
}

const run = (services: Services, userIds: string[], options: DeletionOptions = {}) =>
	runDeletionWork(services, findManagedProvider, { userIds, ...options });

describe("deletion of a user with OAuth credentials, through the routes", () => {
	it("enqueues one job per credential however often DELETE is repeated; the maintenance run revokes upstream and purges", async () => {
		const w = world();
		const user = await userWithKey();
		const name = accountName("e2e");
		const credentialId = await connect(user.key, name, {}, PROVIDER);
		const tokens = await tokensOf(credentialId);
		expect((await introspect(tokens.access_token)).active).toBe(true);

		expect((await w.call("/v1/me", { method: "DELETE", token: user.key })).status).toBe(202);
		for (let i = 0; i < 2; i++) {
			const again = await w.call(`/v1/admin/users/${user.id}`, {
				method: "DELETE",
				token: admin(),
			});
			expect(again.status).toBe(202);
		}
		const listed = await w.call(`/v1/admin/jobs?user_id=${user.id}`, { token: admin() });
		expect(listed.status).toBe(200);
		const page = (await listed.json()) as { data: JobJson[]; next_cursor: string | null };
		expect(page.next_cursor).toBeNull();
		expect(page.data).toHaveLength(1);
		expect(Object.keys(page.data[0] ?? {}).sort()).toEqual(
			[
				"attempts",
				"created_at",
				"id",
				"kind",
				"last_error",
				"next_attempt_at",
				"status",
				"updated_at",
				"user_id",
			].sort(),
		);
		expect(page.data[0]).toMatchObject({
			user_id: user.id,
			kind: "revoke_oauth",
			status: "pending",
			attempts: 0,
			last_error: null,
		});
		// Nothing secret in what the job stored.
		const [stored] = await jobsOf(user.id);
		expect(JSON.stringify(stored?.payload)).not.toContain(tokens.access_token);
		expect(stored?.payload).toEqual({ credential_id: credentialId, provider: PROVIDER });

		const before = await w.call(`/v1/admin/users/${user.id}`, { token: admin() });
		expect(((await before.json()) as { status: string }).status).toBe("deleting");

		const ran = await w.call("/v1/admin/maintenance/run", {
			method: "POST",
			token: admin(),
			json: { user_id: user.id },
		});
		expect(ran.status).toBe(200);
		const summary = (await ran.json()) as {
			jobs: { name: string; ok: boolean; result?: Record<string, number> }[];
		};
		const deletion = summary.jobs.find((j) => j.name === "account-deletion");
		expect(deletion).toMatchObject({
			ok: true,
			result: { claimed: 1, done: 1, retried: 0, failed: 0, purged_users: 1 },
		});

		expect((await introspect(tokens.access_token)).active).toBe(false);
		expect((await introspect(tokens.refresh_token as string)).active).toBe(false);
		await expectError(
			await w.call(`/v1/admin/users/${user.id}`, { token: admin() }),
			404,
			"not_found",
		);
		expect(await db.db.select().from(credentials).where(eq(credentials.id, credentialId))).toEqual(
			[],
		);
		// The job outlives its user, done, for the job retention.
		const after = await w.call(`/v1/admin/jobs/${stored?.id}`, { token: admin() });
		expect(await after.json()).toMatchObject({ status: "done", attempts: 1, last_error: null });
	});

	it("two DELETEs at once enqueue each job once", async () => {
		const w = world();
		const user = await userWithKey();
		for (const token of ["gho_one", "gho_two"]) {
			const created = await w.call("/v1/credentials", {
				method: "POST",
				token: user.key,
				json: { provider: "github", type: "oauth2", access_token: token },
			});
			expect(created.status).toBe(201);
		}
		const answers = await Promise.all(
			[0, 1].map(() => w.call(`/v1/admin/users/${user.id}`, { method: "DELETE", token: admin() })),
		);
		expect(answers.map((r) => r.status)).toEqual([202, 202]);
		const rows = await jobsOf(user.id);
		expect(rows.map((r) => r.kind)).toEqual(["revoke_oauth", "revoke_oauth"]);
		expect(new Set(rows.map((r) => r.payload.credential_id)).size).toBe(2);
	});

	it("a provider without a revocation endpoint: the job is done, with a note saying so", async () => {
		const w = world();
		const user = await userWithKey();
		const created = await w.call("/v1/credentials", {
			method: "POST",
			token: user.key,
			json: { provider: "github", type: "oauth2", access_token: "gho_imported" },
		});
		expect(created.status).toBe(201);
		expect((await w.call("/v1/me", { method: "DELETE", token: user.key })).status).toBe(202);
		const result = await run(w.services, [user.id]);
		expect(result).toMatchObject({ done: 1, purged_users: 1 });
		const [job] = await jobsOf(user.id);
		expect(job).toMatchObject({ status: "done", kind: "revoke_oauth" });
		expect(job?.lastError).toMatch(/no revocation endpoint/);
	});
});

/** A deleted user with an imported OAuth credential whose provider's revocation endpoint is dead. */
async function deletedWithDeadRevocation(w: ReturnType<typeof world>) {
	const provider = `testidp-dead-${next()}`;
	const registered = await putProvider(
		provider,
		providerBody({ revoke_url: "http://127.0.0.1:1/revoke" }),
	);
	expect(registered.status).toBe(200);
	const user = await userWithKey();
	const created = await w.call("/v1/credentials", {
		method: "POST",
		token: user.key,
		json: { provider, type: "oauth2", access_token: "imported", refresh_token: "imported-rt" },
	});
	expect(created.status).toBe(201);
	expect((await w.call("/v1/me", { method: "DELETE", token: user.key })).status).toBe(202);
	return { provider, user };
}

describe("backoff", () => {
	it("doubles from a minute up to an hour, jittered between half and all of it", () => {
		const low = (n: number) => backoffSeconds(n, () => 0);
		const high = (n: number) => backoffSeconds(n, () => 0.999_999);
		expect([1, 2, 3, 4, 5, 6, 7, 8].map(low)).toEqual([30, 60, 120, 240, 480, 960, 1800, 1800]);
		expect([1, 2, 7, 8, 20].map((n) => Math.round(high(n)))).toEqual([60, 120, 3600, 3600, 3600]);
	});
});

describe("retries", () => {
	it("a refused revocation is retried after a jittered exponential backoff and succeeds once the provider answers", async () => {
		const w = world();
		const provider = `testidp-flaky-${next()}`;
		expect((await putProvider(provider, providerBody())).status).toBe(200);
		const user = await userWithKey();
		const credentialId = await connect(user.key, accountName("flaky"), {}, provider);
		const tokens = await tokensOf(credentialId);
		// The revocation endpoint goes dark after the connection.
		expect(
			(await putProvider(provider, providerBody({ revoke_url: "http://127.0.0.1:1/revoke" })))
				.status,
		).toBe(200);
		expect((await w.call("/v1/me", { method: "DELETE", token: user.key })).status).toBe(202);

		const first = await run(w.services, [user.id]);
		expect(first).toMatchObject({ claimed: 1, retried: 1, done: 0, purged_users: 0 });
		let [job] = await jobsOf(user.id);
		expect(job).toMatchObject({ status: "pending", attempts: 1 });
		expect(job?.lastError).toMatch(/did not accept the revocation/);
		// Which kind of failure it was: the endpoint could not be reached.
		expect(job?.lastError).toMatch(/was unreachable/);
		const wait = ((job?.nextAttemptAt.getTime() ?? 0) - w.now().getTime()) / 1000;
		// Equal jitter: between half and all of the base delay for a first retry.
		expect(wait).toBeGreaterThanOrEqual(BACKOFF_BASE_SECONDS / 2);
		expect(wait).toBeLessThanOrEqual(BACKOFF_BASE_SECONDS);

		// Not due yet: a run now leaves it alone.
		expect(await run(w.services, [user.id])).toMatchObject({ claimed: 0, purged_users: 0 });
		expect((await introspect(tokens.access_token)).active).toBe(true);

		expect((await putProvider(provider, providerBody())).status).toBe(200);
		w.advance(BACKOFF_BASE_SECONDS);
		expect(await run(w.services, [user.id])).toMatchObject({
			claimed: 1,
			done: 1,
			purged_users: 1,
		});
		[job] = await jobsOf(user.id);
		expect(job).toMatchObject({ status: "done", attempts: 2, lastError: null });
		expect((await introspect(tokens.access_token)).active).toBe(false);
		expect((await introspect(tokens.refresh_token as string)).active).toBe(false);
	});

	it("exhausted attempts land in failed and hold the purge; an admin retry runs the job again", async () => {
		const w = world({ LATCHKEY_JOB_MAX_ATTEMPTS: "2" });
		const { provider, user } = await deletedWithDeadRevocation(w);

		expect(await run(w.services, [user.id])).toMatchObject({ retried: 1 });
		w.advance(3600);
		expect(await run(w.services, [user.id])).toMatchObject({ failed: 1, purged_users: 0 });
		const [job] = await jobsOf(user.id);
		expect(job).toMatchObject({ status: "failed", attempts: 2 });
		expect(job?.lastError).toMatch(/gave up after 2 attempts/);
		expect(job?.finishedAt).toEqual(w.now());

		const failedList = (await (
			await w.call(`/v1/admin/jobs?status=failed&user_id=${user.id}`, { token: admin() })
		).json()) as { data: JobJson[] };
		expect(failedList.data.map((j) => j.id)).toEqual([job?.id]);
		const pendingList = (await (
			await w.call(`/v1/admin/jobs?status=pending&user_id=${user.id}`, { token: admin() })
		).json()) as { data: JobJson[] };
		expect(pendingList.data).toEqual([]);

		// A failed job holds the purge: a human may still retry it, which needs the credential.
		w.advance(3600);
		expect(await run(w.services, [user.id])).toMatchObject({ claimed: 0, purged_users: 0 });
		const still = await w.call(`/v1/admin/users/${user.id}`, { token: admin() });
		expect(((await still.json()) as { status: string }).status).toBe("deleting");

		const retried = await w.call(`/v1/admin/jobs/${job?.id}/retry`, {
			method: "POST",
			token: admin(),
		});
		expect(retried.status).toBe(200);
		expect(await retried.json()).toMatchObject({ status: "pending", attempts: 0 });
		await expectError(
			await w.call(`/v1/admin/jobs/${job?.id}/retry`, { method: "POST", token: admin() }),
			409,
			"conflict",
		);

		// The provider is back (here: no revocation endpoint at all); the retried job finishes.
		expect((await putProvider(provider, providerBody({ revoke_url: undefined }))).status).toBe(200);
		expect(await run(w.services, [user.id])).toMatchObject({ done: 1, purged_users: 1 });
		expect((await jobsOf(user.id))[0]).toMatchObject({ status: "done", attempts: 1 });
	});

	it("a failed job stops holding the purge once LATCHKEY_FAILED_JOB_RETENTION_HOURS have passed", async () => {
		const w = world({ LATCHKEY_JOB_MAX_ATTEMPTS: "1", LATCHKEY_FAILED_JOB_RETENTION_HOURS: "24" });
		const { user } = await deletedWithDeadRevocation(w);
		expect(await run(w.services, [user.id])).toMatchObject({ failed: 1, purged_users: 0 });
		w.advance(23 * 3600);
		expect(await run(w.services, [user.id])).toMatchObject({ purged_users: 0 });
		w.advance(3600 + 1);
		expect(await run(w.services, [user.id])).toMatchObject({ purged_users: 1 });
		await expectError(
			await w.call(`/v1/admin/users/${user.id}`, { token: admin() }),
			404,
			"not_found",
		);
		// The failed job stays listed after the purge.
		expect((await jobsOf(user.id))[0]).toMatchObject({ status: "failed" });
	});
});

/**
 * A managed provider standing in for a real one, for the engine's rules (AgentMail itself is
 * tested against its fake below): `resources` maps resource ids to their owner.
 */
function stubProvider(
	id: string,
	behave: (userId: string, resources: Record<string, string>) => Promise<DeprovisionOutcome>,
) {
	const calls: { userId: string; resources: Record<string, string> }[] = [];
	const provider: ManagedProvider = {
		id,
		name: id,
		clientIdFor: (userId) => `stub-${userId}`,
		available: () => true,
		provision: () => Promise.reject(new Error("not used here")),
		deprovision: async (_services, user, resources) => {
			calls.push({ userId: user.id, resources });
			return behave(user.id, resources);
		},
	};
	return {
		calls,
		find: async (_services: Services, wanted: string) => (wanted === id ? provider : undefined),
	};
}

/** A user about to be deleted with a managed provisioning of `provider` recorded. */
async function userWithProvisioning(
	provider: string,
	resources: Record<string, string>,
	status: "pending" | "done" = "done",
	updatedAt = new Date(Date.now() - 3600_000),
) {
	const user = await userWithKey();
	await db.db.insert(managedProvisionings).values({
		userId: user.id,
		provider,
		status,
		clientId: `stub-${user.id}`,
		resources,
		updatedAt,
	});
	return user;
}

async function deleteUser(w: ReturnType<typeof world>, userId: string) {
	const res = await w.call(`/v1/admin/users/${userId}`, { method: "DELETE", token: admin() });
	expect(res.status).toBe(202);
}

describe("managed deprovisioning (engine rules, with stub providers)", () => {
	it("a transient failure retries with backoff and then succeeds", async () => {
		const w = world();
		let failures = 1;
		const stub = stubProvider("stub-transient", async () => {
			if (failures-- > 0) throw new Error("upstream 503");
			return { status: "deleted" };
		});
		const user = await userWithProvisioning("stub-transient", { thing_id: "t1" });
		await deleteUser(w, user.id);
		expect(await run(w.services, [user.id], { findProvider: stub.find })).toMatchObject({
			retried: 1,
			purged_users: 0,
		});
		expect((await jobsOf(user.id))[0]?.lastError).toBe("Error: upstream 503");
		w.advance(BACKOFF_BASE_SECONDS);
		expect(await run(w.services, [user.id], { findProvider: stub.find })).toMatchObject({
			done: 1,
			purged_users: 1,
		});
		expect(stub.calls).toEqual([
			{ userId: user.id, resources: { thing_id: "t1" } },
			{ userId: user.id, resources: { thing_id: "t1" } },
		]);
	});

	it("a permanent failure fails at once; an ownership mismatch fails and nothing is deleted", async () => {
		const w = world({}, "warn");
		const warnings: Record<string, unknown>[] = [];
		vi.spyOn(console, "warn").mockImplementation((line: string) => {
			warnings.push(JSON.parse(String(line)) as Record<string, unknown>);
		});
		const permanent = stubProvider("stub-permanent", async () => {
			throw new ManagedProviderError("the account is closed", true, 403);
		});
		const owned = new Map([["r-theirs", "someone-else"]]);
		const mismatch = stubProvider("stub-owner", async (userId, resources) => {
			const resource = resources.thing_id ?? "";
			const owner = owned.get(resource);
			if (owner !== undefined && owner !== userId) {
				return { status: "ownership_mismatch", detail: `${resource} belongs to ${owner}` };
			}
			owned.delete(resource);
			return { status: "deleted" };
		});
		const a = await userWithProvisioning("stub-permanent", { thing_id: "p1" });
		const b = await userWithProvisioning("stub-owner", { thing_id: "r-theirs" });
		await deleteUser(w, a.id);
		await deleteUser(w, b.id);
		const find = async (s: Services, id: string) =>
			(await permanent.find(s, id)) ?? (await mismatch.find(s, id));
		expect(await run(w.services, [a.id, b.id], { findProvider: find })).toMatchObject({
			claimed: 2,
			failed: 2,
			retried: 0,
			purged_users: 0,
		});
		expect((await jobsOf(a.id))[0]).toMatchObject({
			status: "failed",
			attempts: 1,
			lastError: "ManagedProviderError: the account is closed",
		});
		const [job] = await jobsOf(b.id);
		expect(job).toMatchObject({ status: "failed", attempts: 1 });
		expect(job?.lastError).toMatch(/^ownership mismatch: r-theirs belongs to someone-else/);
		expect(owned.get("r-theirs")).toBe("someone-else");
		// Each failed job is logged once, for alerting.
		const failedLines = warnings.filter((l) => l.msg === "deletion job failed");
		expect(failedLines.map((l) => l.user_id).sort()).toEqual([a.id, b.id].sort());
		expect(failedLines.find((l) => l.user_id === b.id)).toMatchObject({
			kind: "deprovision_managed",
			job_id: job?.id,
			error: expect.stringMatching(/^ownership mismatch/),
		});
		// Failed is final: later runs do not call the provider again.
		w.advance(24 * 3600);
		expect(await run(w.services, [a.id, b.id], { findProvider: find })).toMatchObject({
			claimed: 0,
		});
		expect(permanent.calls).toHaveLength(1);
		expect(mismatch.calls).toHaveLength(1);
	});

	it("a crashed half-provisioning is cleaned up from its intent; one still in flight waits", async () => {
		const w = world();
		const stub = stubProvider("stub-intent", async () => ({ status: "deleted" }));
		// Crashed long ago: pending, a resource recorded, no credential ever stored.
		const crashed = await userWithProvisioning(
			"stub-intent",
			{ thing_id: "half" },
			"pending",
			new Date(FUTURE.getTime() - 86_400_000),
		);
		await deleteUser(w, crashed.id);
		expect(await run(w.services, [crashed.id], { findProvider: stub.find })).toMatchObject({
			done: 1,
			purged_users: 1,
		});
		expect(stub.calls).toEqual([{ userId: crashed.id, resources: { thing_id: "half" } }]);

		// Touched a moment ago: it may be about to record another resource, so the job waits.
		const busy = await userWithProvisioning("stub-intent", {}, "pending", w.now());
		await deleteUser(w, busy.id);
		expect(await run(w.services, [busy.id], { findProvider: stub.find })).toMatchObject({
			retried: 1,
		});
		expect((await jobsOf(busy.id))[0]?.lastError).toMatch(/in flight/);
		expect(stub.calls).toHaveLength(1);
	});

	it("a provisioning recorded after the deletion request still gets its job before the purge", async () => {
		const w = world();
		const stub = stubProvider("stub-late", async () => ({ status: "deleted" }));
		const user = await userWithKey();
		await deleteUser(w, user.id);
		expect(await jobsOf(user.id)).toEqual([]);
		// A listing that started before the deletion recorded its intent after it.
		await db.db.insert(managedProvisionings).values({
			userId: user.id,
			provider: "stub-late",
			status: "done",
			clientId: `stub-${user.id}`,
			resources: { thing_id: "late" },
			updatedAt: new Date(FUTURE.getTime() - 86_400_000),
		});
		expect(await run(w.services, [user.id], { findProvider: stub.find })).toMatchObject({
			enqueued: 1,
			done: 1,
			purged_users: 1,
		});
		expect(stub.calls).toEqual([{ userId: user.id, resources: { thing_id: "late" } }]);
	});
});

/** What AgentMail provisioning leaves behind for a user: a pod, its key, and an inbox in it. */
async function provisionAgentMail(w: ReturnType<typeof world>, am: AgentMailOrg, userId: string) {
	const clientId = agentmailClientId(userId);
	await db.db.insert(managedProvisionings).values({
		userId,
		provider: AGENTMAIL_ID,
		status: "pending",
		clientId,
		updatedAt: w.now(),
	});
	const recorded: Record<string, string> = {};
	const made = await agentmailProvider.provision(
		w.services,
		{ id: userId, email: `${userId}@example.com` },
		{
			clientId,
			resources: {},
			record: async (resources) => {
				Object.assign(recorded, resources);
				await db.db
					.update(managedProvisionings)
					.set({ resources: { ...recorded } })
					.where(
						and(
							eq(managedProvisionings.userId, userId),
							eq(managedProvisionings.provider, AGENTMAIL_ID),
						),
					);
			},
		},
	);
	await db.db
		.update(managedProvisionings)
		.set({ status: "done", updatedAt: new Date(w.now().getTime() - 3600_000) })
		.where(eq(managedProvisionings.userId, userId));
	const podId = made.resources.pod_id ?? "";
	// The user's agent made an inbox with its pod key.
	const inbox = await am.api(made.apiKey, "POST", `/v0/pods/${podId}/inboxes`, { username: "bot" });
	expect(inbox.status).toBeLessThan(300);
	return podId;
}

describe("AgentMail deprovisioning (against the AgentMail fake)", () => {
	it("deletes the user's pod with its keys and inboxes, leaves a pod that is not theirs, and purges", async () => {
		const am = agentmailOrg(inject("agentmail").url);
		const w = world(am.env);
		const owner = await userWithKey();
		const podId = await provisionAgentMail(w, am, owner.id);
		// Another user's record points at a pod of some other client: it must survive.
		const foreign = await am.createPod("someone-else");
		const victim = await userWithKey();
		await db.db.insert(managedProvisionings).values({
			userId: victim.id,
			provider: AGENTMAIL_ID,
			status: "done",
			clientId: agentmailClientId(victim.id),
			resources: { pod_id: foreign.pod_id },
			updatedAt: new Date(w.now().getTime() - 3600_000),
		});
		let state = await am.state();
		expect(state.pods.map((p) => p.pod_id).sort()).toEqual([podId, foreign.pod_id].sort());
		expect(state.api_keys.filter((k) => k.pod_id === podId)).toHaveLength(1);
		expect(state.inboxes.filter((i) => i.pod_id === podId)).toHaveLength(1);

		await deleteUser(w, owner.id);
		await deleteUser(w, victim.id);
		const result = await run(w.services, [owner.id, victim.id]);
		expect(result).toMatchObject({ claimed: 2, done: 1, failed: 1, purged_users: 1 });

		state = await am.state();
		expect(state.pods.map((p) => p.pod_id)).toEqual([foreign.pod_id]);
		expect(state.api_keys).toEqual([]);
		expect(state.inboxes).toEqual([]);
		expect(
			state.calls.filter((c) => c.method === "DELETE" && c.path.includes(foreign.pod_id)),
		).toEqual([]);
		const [mismatch] = await jobsOf(victim.id);
		expect(mismatch).toMatchObject({ status: "failed", kind: "deprovision_managed" });
		expect(mismatch?.lastError).toMatch(/^ownership mismatch: /);
		await expectError(
			await w.call(`/v1/admin/users/${owner.id}`, { token: admin() }),
			404,
			"not_found",
		);
		const held = await w.call(`/v1/admin/users/${victim.id}`, { token: admin() });
		expect(((await held.json()) as { status: string }).status).toBe("deleting");
	});

	it("end to end through the routes: listing provisions the pod, DELETE /v1/me and one maintenance run delete it and purge the user", async () => {
		const am = agentmailOrg(inject("agentmail").url);
		const w = world(am.env);
		const user = await userWithKey();
		const listed = await w.call("/v1/credentials", { token: user.key });
		expect(listed.status).toBe(200);
		const managed = ((await listed.json()) as { data: { managed: boolean; id: string }[] }).data;
		expect(managed.filter((c) => c.managed)).toHaveLength(1);
		const podsBefore = (await am.state()).pods;
		expect(podsBefore).toHaveLength(1);

		expect((await w.call("/v1/me", { method: "DELETE", token: user.key })).status).toBe(202);
		const ran = await w.call("/v1/admin/maintenance/run", {
			method: "POST",
			token: admin(),
			json: { user_id: user.id },
		});
		const summary = (await ran.json()) as { jobs: { name: string; result?: object }[] };
		expect(summary.jobs.find((j) => j.name === "account-deletion")?.result).toMatchObject({
			done: 1,
			purged_users: 1,
		});
		const after = await am.state();
		expect(after.pods).toEqual([]);
		expect(after.api_keys).toEqual([]);
		expect(
			after.calls.filter(
				(c) => c.method === "DELETE" && c.path === `/v0/pods/${podsBefore[0]?.pod_id}`,
			),
		).toHaveLength(1);
		await expectError(
			await w.call(`/v1/admin/users/${user.id}`, { token: admin() }),
			404,
			"not_found",
		);
	});

	it("an AgentMail outage is retried with backoff until the pod is deleted", async () => {
		const am = agentmailOrg(inject("agentmail").url);
		const w = world(am.env);
		const user = await userWithKey();
		const podId = await provisionAgentMail(w, am, user.id);
		await am.fail({
			method: "GET",
			path: "^/v0/pods/[^/]+$",
			mode: "status",
			status: 503,
			times: 2,
		});
		await deleteUser(w, user.id);
		expect(await run(w.services, [user.id])).toMatchObject({ retried: 1, purged_users: 0 });
		const [job] = await jobsOf(user.id);
		expect(job?.lastError).toMatch(/AgentMail answered 503/);
		const firstWait = (job?.nextAttemptAt.getTime() ?? 0) - w.now().getTime();
		w.advance(BACKOFF_BASE_SECONDS);
		expect(await run(w.services, [user.id])).toMatchObject({ retried: 1, purged_users: 0 });
		const [again] = await jobsOf(user.id);
		// The second wait is drawn from twice the first's range.
		const secondWait = (again?.nextAttemptAt.getTime() ?? 0) - w.now().getTime();
		expect(secondWait / 1000).toBeGreaterThanOrEqual(BACKOFF_BASE_SECONDS);
		expect(secondWait / 1000).toBeLessThanOrEqual(2 * BACKOFF_BASE_SECONDS);
		expect(firstWait / 1000).toBeLessThanOrEqual(BACKOFF_BASE_SECONDS);
		expect((await am.state()).pods.map((p) => p.pod_id)).toEqual([podId]);
		w.advance(2 * BACKOFF_BASE_SECONDS);
		expect(await run(w.services, [user.id])).toMatchObject({ done: 1, purged_users: 1 });
		expect((await am.state()).pods).toEqual([]);
		expect((await jobsOf(user.id))[0]).toMatchObject({ status: "done", attempts: 3 });
	});
});

describe("claims", () => {
	it("two runs at once process each job exactly once", async () => {
		const w = world();
		const USERS = 6;
		// Barrier: every deprovision call waits until all USERS jobs are in flight at once, which
		// can only happen when both runs hold claims together (each claims at most 3 at a time).
		let inFlight = 0;
		let release: () => void = () => {};
		const allIn = new Promise<void>((resolve) => {
			release = resolve;
		});
		const stub = stubProvider("stub-barrier", async () => {
			inFlight += 1;
			if (inFlight === USERS) release();
			await allIn;
			return { status: "deleted" };
		});
		const users = await Promise.all(
			Array.from({ length: USERS }, () => userWithProvisioning("stub-barrier", { thing_id: "x" })),
		);
		for (const u of users) await deleteUser(w, u.id);
		const ids = users.map((u) => u.id);
		const options = { findProvider: stub.find, concurrency: 3 };
		const [a, b] = await Promise.all([
			run(w.services, ids, options),
			run(w.services, ids, options),
		]);
		expect(a.claimed).toBe(3);
		expect(b.claimed).toBe(3);
		expect(a.done + b.done).toBe(USERS);
		expect(a.lost_claims + b.lost_claims).toBe(0);
		expect(stub.calls.map((c) => c.userId).sort()).toEqual([...ids].sort());
		const rows = await db.db.select().from(jobs).where(inArray(jobs.userId, ids));
		expect(rows.map((r) => [r.status, r.attempts])).toEqual(rows.map(() => ["done", 1]));
	});

	it("a claim made while another run's claim is uncommitted skips its rows: neither waits nor takes them", async () => {
		const w = world();
		const users = await Promise.all(
			Array.from({ length: 4 }, () => userWithProvisioning("stub-locks", { thing_id: "x" })),
		);
		for (const u of users) await deleteUser(w, u.id);
		const ids = users.map((u) => u.id);
		// Run A claims inside an open transaction, so its row locks are held while run B claims.
		const { a, b } = await w.services.txDb.transaction(async (tx) => {
			const inTx = { ...w.services, db: tx } as unknown as Services;
			const a = await claimJobs(inTx, "run_a", 2, ids);
			let timer: ReturnType<typeof setTimeout> | undefined;
			const blocked = new Promise<never>((_, reject) => {
				timer = setTimeout(() => reject(new Error("run B waited on run A's locks")), 5000);
			});
			try {
				const b = await Promise.race([claimJobs(w.services, "run_b", 4, ids), blocked]);
				return { a, b };
			} finally {
				if (timer !== undefined) clearTimeout(timer);
			}
		});
		expect(a).toHaveLength(2);
		expect(b).toHaveLength(2);
		const aIds = new Set(a.map((j) => j.id));
		expect(b.filter((j) => aIds.has(j.id))).toEqual([]);
		const rows = await db.db.select().from(jobs).where(inArray(jobs.userId, ids));
		expect(rows.map((r) => r.claimedBy).sort()).toEqual(["run_a", "run_a", "run_b", "run_b"]);
	});

	it("a crashed run's claim lapses and another run takes the job over; the late result is discarded", async () => {
		const w = world();
		const stub = stubProvider("stub-lapse", async () => ({ status: "deleted" }));
		const user = await userWithProvisioning("stub-lapse", { thing_id: "l1" });
		await deleteUser(w, user.id);
		// A run claims the job and dies before recording anything.
		const [claimed] = await claimJobs(w.services, "run_crashed", 5, [user.id]);
		expect(claimed).toMatchObject({ status: "running", attempts: 1, takenOver: false });
		if (!claimed) throw new Error("nothing claimed");

		// While its claim holds, nobody else takes the job.
		w.advance(CLAIM_LEASE_SECONDS - 1);
		expect(await run(w.services, [user.id], { findProvider: stub.find })).toMatchObject({
			claimed: 0,
			purged_users: 0,
		});
		w.advance(1);
		expect(await run(w.services, [user.id], { findProvider: stub.find })).toMatchObject({
			claimed: 1,
			taken_over: 1,
			done: 1,
			purged_users: 1,
		});
		expect(stub.calls).toHaveLength(1);
		// The crashed run comes back with a result: it no longer holds the claim, so it is ignored.
		expect(
			await finishJob(w.services, claimed, "run_crashed", { status: "failed", error: "late" }),
		).toBe("lost");
		expect((await jobsOf(user.id))[0]).toMatchObject({
			status: "done",
			attempts: 2,
			lastError: null,
		});
	});

	it("a run whose claim lapsed cannot record a result over the run that took the job over", async () => {
		const w = world();
		const user = await userWithProvisioning("stub-fence", { thing_id: "f1" });
		await deleteUser(w, user.id);
		const [slow] = await claimJobs(w.services, "run_slow", 5, [user.id]);
		if (!slow) throw new Error("nothing claimed");
		w.advance(CLAIM_LEASE_SECONDS);
		const [taker] = await claimJobs(w.services, "run_taker", 5, [user.id]);
		expect(taker).toMatchObject({ id: slow.id, takenOver: true, attempts: 2 });
		if (!taker) throw new Error("not taken over");
		// The slow run finishes while the taker still works on the job: its result is discarded.
		expect(await finishJob(w.services, slow, "run_slow", { status: "done" })).toBe("lost");
		expect((await jobsOf(user.id))[0]).toMatchObject({ status: "running", claimedBy: "run_taker" });
		expect(
			await finishJob(w.services, taker, "run_taker", { status: "retry", error: "upstream 502" }),
		).toBe("retried");
		expect((await jobsOf(user.id))[0]).toMatchObject({
			status: "pending",
			claimedBy: null,
			lastError: "upstream 502",
		});
	});

	it("a job whose run died on its last attempt is failed, not retried", async () => {
		const w = world({ LATCHKEY_JOB_MAX_ATTEMPTS: "1" });
		const stub = stubProvider("stub-last", async () => ({ status: "deleted" }));
		const user = await userWithProvisioning("stub-last", { thing_id: "z" });
		await deleteUser(w, user.id);
		expect(await claimJobs(w.services, "run_crashed", 5, [user.id])).toHaveLength(1);
		w.advance(CLAIM_LEASE_SECONDS);
		expect(await run(w.services, [user.id], { findProvider: stub.find })).toMatchObject({
			claimed: 0,
			failed: 1,
		});
		expect(stub.calls).toHaveLength(0);
		const [job] = await jobsOf(user.id);
		expect(job).toMatchObject({ status: "failed", attempts: 1 });
		expect(job?.lastError).toMatch(/claim lapsed/);
	});
});

describe("admin job routes", () => {
	it("pages with limit and cursor, filter by status, and refuse what is not theirs to take", async () => {
		const w = world();
		const stub = stubProvider("stub-page", async () => ({ status: "deleted" }));
		const user = await userWithKey();
		for (const provider of ["stub-page", "stub-page-2", "stub-page-3"]) {
			await db.db.insert(managedProvisionings).values({
				userId: user.id,
				provider,
				clientId: `stub-${user.id}`,
				resources: {},
			});
		}
		await deleteUser(w, user.id);
		const seen: string[] = [];
		let cursor: string | null = null;
		do {
			const query: string = cursor ? `&cursor=${cursor}` : "";
			const res = await w.call(`/v1/admin/jobs?limit=2&user_id=${user.id}${query}`, {
				token: admin(),
			});
			expect(res.status).toBe(200);
			const page = (await res.json()) as { data: JobJson[]; next_cursor: string | null };
			seen.push(...page.data.map((j) => j.id));
			cursor = page.next_cursor;
		} while (cursor);
		expect(seen).toHaveLength(3);
		expect(new Set(seen).size).toBe(3);

		await run(w.services, [user.id], { findProvider: stub.find });
		const done = (await (
			await w.call(`/v1/admin/jobs?status=done&user_id=${user.id}`, { token: admin() })
		).json()) as { data: JobJson[] };
		expect(done.data.map((j) => j.id)).toHaveLength(1);
		await expectError(
			await w.call(`/v1/admin/jobs/${done.data[0]?.id}/retry`, { method: "POST", token: admin() }),
			409,
			"conflict",
		);
		await expectError(
			await w.call("/v1/admin/jobs/job_nope/retry", { method: "POST", token: admin() }),
			404,
			"not_found",
		);
		await expectError(
			await w.call("/v1/admin/jobs/job_nope", { token: admin() }),
			404,
			"not_found",
		);
		await expectError(
			await w.call("/v1/admin/jobs?status=stuck", { token: admin() }),
			400,
			"invalid_request",
		);
		const other = await userWithKey();
		await expectError(
			await w.call("/v1/admin/jobs", { token: other.key }),
			403,
			"insufficient_scope",
		);
		await expectError(
			await w.call("/v1/admin/maintenance/run", { method: "POST", token: other.key }),
			403,
			"insufficient_scope",
		);
		await expectError(
			await w.call("/v1/admin/maintenance/run", {
				method: "POST",
				token: admin(),
				json: { user_id: user.id, extra: 1 },
			}),
			400,
			"invalid_request",
		);
	});
});

/** Seals `secret` into a credential row written straight to the database, as a racing write would. */
async function insertCredential(
	services: Services,
	userId: string,
	fields: { provider: string; type: "api_key" | "oauth2"; managed: boolean },
	secret: Record<string, string>,
): Promise<string> {
	const id = newId("cred");
	const sealed = await sealSecret(
		services,
		{ id, userId, type: fields.type, provider: fields.provider, host: null },
		secret as never,
	);
	await db.db.insert(credentials).values({
		id,
		userId,
		provider: fields.provider,
		type: fields.type,
		title: "raced in",
		managed: fields.managed,
		ciphertext: sealed.ciphertext,
		dataKey: sealed.dataKey,
		keyId: sealed.keyId,
		aadVersion: sealed.aadVersion,
	});
	return id;
}

async function statusOf(w: ReturnType<typeof world>, userId: string): Promise<number | string> {
	const res = await w.call(`/v1/admin/users/${userId}`, { token: admin() });
	if (res.status !== 200) {
		await res.body?.cancel();
		return res.status;
	}
	return ((await res.json()) as { status: string }).status;
}

describe("purge guards", () => {
	it("an intent, a managed credential or an OAuth credential recorded after the run's catch-up holds that run's purge; the next run gives it a job and purges", async () => {
		const w = world();
		const late = stubProvider("stub-guard-late", async () => ({ status: "deleted" }));
		const ids: { intent?: string; managed?: string; oauth?: string } = {};
		// Each user's only job records something new for its user while it runs: after the
		// run's enqueue and before its purge, as a listing that started before the DELETE would.
		const racing = stubProvider("stub-guard", async (userId) => {
			if (userId === ids.intent) {
				await db.db.insert(managedProvisionings).values({
					userId,
					provider: "stub-guard-late",
					status: "done",
					clientId: `stub-${userId}`,
					resources: { thing_id: "late" },
					updatedAt: new Date(w.now().getTime() - 3600_000),
				});
			} else if (userId === ids.managed) {
				await insertCredential(
					w.services,
					userId,
					{ provider: "stub-guard-late", type: "api_key", managed: true },
					{ api_key: "managed-late" },
				);
			} else if (userId === ids.oauth) {
				await insertCredential(
					w.services,
					userId,
					{ provider: "github", type: "oauth2", managed: false },
					{ access_token: "gho_late" },
				);
			}
			return { status: "deleted" };
		});
		const find = async (s: Services, id: string) =>
			(await racing.find(s, id)) ?? (await late.find(s, id));
		const users = await Promise.all(
			[0, 1, 2].map(() => userWithProvisioning("stub-guard", { thing_id: "first" })),
		);
		[ids.intent, ids.managed, ids.oauth] = users.map((u) => u.id);
		const all = users.map((u) => u.id);
		for (const id of all) await deleteUser(w, id);

		// Every job of every user is done, yet none may be purged: each has a record without a job.
		expect(await run(w.services, all, { findProvider: find })).toMatchObject({
			enqueued: 0,
			claimed: 3,
			done: 3,
			purged_users: 0,
		});
		for (const id of all) expect(await statusOf(w, id)).toBe("deleting");
		expect(late.calls).toEqual([]);

		// The next run's catch-up enqueues what appeared; those jobs run, then the purge goes ahead.
		expect(await run(w.services, all, { findProvider: find })).toMatchObject({
			enqueued: 3,
			claimed: 3,
			done: 3,
			purged_users: 3,
		});
		expect(late.calls.map((c) => c.userId).sort()).toEqual([ids.intent, ids.managed].sort());
		expect(late.calls.find((c) => c.userId === ids.intent)?.resources).toEqual({
			thing_id: "late",
		});
		const oauthJobs = (await jobsOf(ids.oauth as string)).filter((j) => j.kind === "revoke_oauth");
		expect(oauthJobs).toMatchObject([{ status: "done" }]);
		for (const id of all) expect(await statusOf(w, id)).toBe(404);
	});

	it("purgeUsers alone, after every job is done, refuses a user with an intent that has no job", async () => {
		// Jobs run under a day's purge delay, so the run itself purges nothing; the purge is then
		// called on services of the same clock without the delay.
		const w = world({ LATCHKEY_PURGE_DELAY_SECONDS: "86400" });
		const noDelay = createServices(
			loadConfig({ ...testEnv, LATCHKEY_PURGE_DELAY_SECONDS: "0" }),
			createLogger("error"),
			new Timing(),
			w.now,
		);
		disposers.push(noDelay.dispose);
		const stub = stubProvider("stub-guard-direct", async () => ({ status: "deleted" }));
		const user = await userWithProvisioning("stub-guard-direct", { thing_id: "a" });
		await deleteUser(w, user.id);
		expect(await run(w.services, [user.id], { findProvider: stub.find })).toMatchObject({
			done: 1,
			purged_users: 0,
		});
		await db.db.insert(managedProvisionings).values({
			userId: user.id,
			provider: "stub-guard-direct-2",
			status: "done",
			clientId: `stub-${user.id}`,
			resources: { thing_id: "b" },
		});
		expect(await purgeUsers(noDelay.services, [user.id])).toBe(0);
		expect(await statusOf(w, user.id)).toBe("deleting");
		await db.db
			.delete(managedProvisionings)
			.where(
				and(
					eq(managedProvisionings.userId, user.id),
					eq(managedProvisionings.provider, "stub-guard-direct-2"),
				),
			);
		expect(await purgeUsers(noDelay.services, [user.id])).toBe(1);
	});
});

describe("failure branches of a job's attempt", () => {
	it("tokens that no longer decrypt fail the revocation at once, without a retry and without the tokens in last_error", async () => {
		const w = world();
		const user = await userWithKey();
		const created = await w.call("/v1/credentials", {
			method: "POST",
			token: user.key,
			json: { provider: "github", type: "oauth2", access_token: "gho_secretvalue123" },
		});
		expect(created.status).toBe(201);
		const { id } = (await created.json()) as { id: string };
		expect((await w.call("/v1/me", { method: "DELETE", token: user.key })).status).toBe(202);
		// One character of the sealed secret changes: the AEAD tag no longer matches.
		await db.db.execute(sql`
			update credentials set ciphertext = overlay(ciphertext placing
				(case when substr(ciphertext, 20, 1) = 'A' then 'B' else 'A' end) from 20 for 1)
			where id = ${id}`);
		expect(await run(w.services, [user.id])).toMatchObject({
			claimed: 1,
			failed: 1,
			retried: 0,
			done: 0,
			purged_users: 0,
		});
		const [job] = await jobsOf(user.id);
		expect(job).toMatchObject({ kind: "revoke_oauth", status: "failed", attempts: 1 });
		expect(job?.lastError).toBeTruthy();
		expect(job?.lastError).not.toContain("gho_secretvalue123");
		// Failed is final: the next runs leave it alone, and it holds the purge.
		w.advance(BACKOFF_BASE_SECONDS * 2);
		expect(await run(w.services, [user.id])).toMatchObject({ claimed: 0, purged_users: 0 });
	});

	it("a revocation whose credential is gone: done while the user exists (deleting it revoked the tokens), failed once the user was purged", async () => {
		const w = world({ LATCHKEY_JOB_MAX_ATTEMPTS: "1", LATCHKEY_FAILED_JOB_RETENTION_HOURS: "1" });
		// Gone while the user exists.
		const user = await userWithKey();
		const created = await w.call("/v1/credentials", {
			method: "POST",
			token: user.key,
			json: { provider: "github", type: "oauth2", access_token: "gho_gone" },
		});
		const { id } = (await created.json()) as { id: string };
		expect((await w.call("/v1/me", { method: "DELETE", token: user.key })).status).toBe(202);
		await db.db.delete(credentials).where(eq(credentials.id, id));
		expect(await run(w.services, [user.id])).toMatchObject({ done: 1, purged_users: 1 });
		expect((await jobsOf(user.id))[0]?.lastError).toMatch(/already deleted/);

		// Gone with its user: a retry after the purge has nothing left to revoke.
		const dead = await deletedWithDeadRevocation(w);
		expect(await run(w.services, [dead.user.id])).toMatchObject({ failed: 1, purged_users: 0 });
		w.advance(3600 + 1);
		expect(await run(w.services, [dead.user.id])).toMatchObject({ purged_users: 1 });
		const [job] = await jobsOf(dead.user.id);
		const retried = await w.call(`/v1/admin/jobs/${job?.id}/retry`, {
			method: "POST",
			token: admin(),
		});
		expect(retried.status).toBe(200);
		await retried.body?.cancel();
		expect(await run(w.services, [dead.user.id])).toMatchObject({
			claimed: 1,
			failed: 1,
			done: 0,
			retried: 0,
		});
		expect((await jobsOf(dead.user.id))[0]).toMatchObject({ status: "failed", attempts: 1 });
		expect((await jobsOf(dead.user.id))[0]?.lastError).toMatch(/purged/);
	});

	it("a managed provider this deployment does not know is retried, holding the purge, until it is configured again", async () => {
		const w = world();
		const stub = stubProvider("stub-unconfigured", async () => ({ status: "deleted" }));
		const none = async () => undefined;
		const user = await userWithProvisioning("stub-unconfigured", { thing_id: "u" });
		await deleteUser(w, user.id);
		expect(await run(w.services, [user.id], { findProvider: none })).toMatchObject({
			claimed: 1,
			retried: 1,
			failed: 0,
			done: 0,
			purged_users: 0,
		});
		const [job] = await jobsOf(user.id);
		expect(job).toMatchObject({ status: "pending", attempts: 1 });
		expect(job?.lastError).toMatch(/'stub-unconfigured' is not configured/);
		w.advance(BACKOFF_BASE_SECONDS);
		expect(await run(w.services, [user.id], { findProvider: stub.find })).toMatchObject({
			done: 1,
			purged_users: 1,
		});
		expect(stub.calls).toEqual([{ userId: user.id, resources: { thing_id: "u" } }]);
	});
});

describe("AgentMail answers 401, 403, 404 and 400 while deprovisioning", () => {
	it("401 and 403 are transient (retried, then deleted), a 404 for the pod is 'already gone', a 400 is permanent", async () => {
		const am = agentmailOrg(inject("agentmail").url);
		const w = world(am.env);
		const byStatus = new Map<number, { userId: string; podId: string }>();
		for (const status of [401, 403, 404, 400]) {
			const user = await userWithKey();
			const podId = await provisionAgentMail(w, am, user.id);
			byStatus.set(status, { userId: user.id, podId });
			await am.fail({ method: "GET", path: `^/v0/pods/${podId}$`, mode: "status", status });
			await deleteUser(w, user.id);
		}
		const ids = [...byStatus.values()].map((v) => v.userId);
		expect(await run(w.services, ids)).toMatchObject({
			claimed: 4,
			retried: 2,
			done: 1,
			failed: 1,
			purged_users: 1,
		});
		const jobOf = async (status: number) => (await jobsOf(byStatus.get(status)?.userId ?? ""))[0];
		for (const status of [401, 403]) {
			expect(await jobOf(status)).toMatchObject({ status: "pending", attempts: 1 });
			expect((await jobOf(status))?.lastError).toMatch(
				new RegExp(`AgentMail answered.*\\b${status}\\b`),
			);
		}
		expect(await jobOf(404)).toMatchObject({ status: "done", lastError: null });
		expect(await jobOf(400)).toMatchObject({ status: "failed", attempts: 1 });
		expect((await jobOf(400))?.lastError).toMatch(/AgentMail answered.*\b400\b/);

		// Once the key works again the transient ones finish and delete their pods.
		w.advance(BACKOFF_BASE_SECONDS);
		expect(await run(w.services, ids)).toMatchObject({ claimed: 2, done: 2, purged_users: 2 });
		const pods = (await am.state()).pods.map((p) => p.pod_id);
		expect(pods).not.toContain(byStatus.get(401)?.podId);
		expect(pods).not.toContain(byStatus.get(403)?.podId);
		expect(pods).toContain(byStatus.get(400)?.podId);
	});
});

describe("the managed store's 'user still active' fence", () => {
	it("a DELETE /v1/me while a provisioning is held stores no credential; the deletion job deprovisions what the provisioning recorded", async () => {
		const am = agentmailOrg(inject("agentmail").url);
		const w = world(am.env);
		const user = await userWithKey();
		// An intent from an earlier attempt, so the provisioning's first write is an update of a
		// row the test can lock.
		await db.db.insert(managedProvisionings).values({
			userId: user.id,
			provider: AGENTMAIL_ID,
			status: "pending",
			clientId: agentmailClientId(user.id),
			resources: {},
			updatedAt: new Date(w.now().getTime() - 3600_000),
		});
		const holder = await holdTransaction();
		let listing: Promise<Response> | undefined;
		try {
			await holder.query(
				"select 1 from managed_provisionings where user_id = $1 and provider = $2 for update",
				[user.id, AGENTMAIL_ID],
			);
			listing = w.call("/v1/credentials", { token: user.key });
			// The listing checked the user (active) and now waits on the intent row.
			await holder.waitForBlocked(1);
			expect((await w.call("/v1/me", { method: "DELETE", token: user.key })).status).toBe(202);
		} finally {
			await holder.release();
		}
		const listed = await listing;
		expect(listed.status).toBe(200);
		await listed.body?.cancel();

		// The provisioning ran to its end and recorded its pod, but stored no credential.
		const [intent] = await db.db
			.select()
			.from(managedProvisionings)
			.where(
				and(
					eq(managedProvisionings.userId, user.id),
					eq(managedProvisionings.provider, AGENTMAIL_ID),
				),
			);
		const podId = intent?.resources.pod_id;
		expect(podId).toBeTruthy();
		expect(intent?.status).toBe("pending");
		expect(
			await db.db
				.select({ id: credentials.id })
				.from(credentials)
				.where(and(eq(credentials.userId, user.id), eq(credentials.managed, true))),
		).toEqual([]);
		expect((await am.state()).pods.map((p) => p.pod_id)).toContain(podId);

		// The intent was touched a moment ago: the job waits for a provisioning that may still run,
		// then deletes the pod the intent names.
		const find = async (_s: Services, id: string) =>
			id === AGENTMAIL_ID ? agentmailProvider : undefined;
		expect(await run(w.services, [user.id], { findProvider: find })).toMatchObject({
			retried: 1,
		});
		w.advance(PROVISIONING_IN_FLIGHT_SECONDS + 1);
		expect(await run(w.services, [user.id], { findProvider: find })).toMatchObject({
			done: 1,
			purged_users: 1,
		});
		expect((await am.state()).pods.map((p) => p.pod_id)).not.toContain(podId);
	});
});

describe("LATCHKEY_PURGE_DELAY_SECONDS", () => {
	it("holds the purge until the delay has passed since the first deletion request; a repeated DELETE does not restart it", async () => {
		const w = world({ LATCHKEY_PURGE_DELAY_SECONDS: "3600" });
		const stub = stubProvider("stub-delay", async () => ({ status: "deleted" }));
		const user = await userWithProvisioning("stub-delay", { thing_id: "d" });
		await deleteUser(w, user.id);
		expect(await run(w.services, [user.id], { findProvider: stub.find })).toMatchObject({
			done: 1,
			purged_users: 0,
		});
		w.advance(1800);
		await deleteUser(w, user.id);
		w.advance(1799);
		expect(await run(w.services, [user.id], { findProvider: stub.find })).toMatchObject({
			purged_users: 0,
		});
		expect(await statusOf(w, user.id)).toBe("deleting");
		w.advance(1);
		expect(await run(w.services, [user.id], { findProvider: stub.find })).toMatchObject({
			claimed: 0,
			purged_users: 1,
		});
		expect(await statusOf(w, user.id)).toBe(404);
	});
});

// Last in the file: pruning is not scoped to users, and it runs with a clock past every job above.
describe("job retention", () => {
	it("prunes finished jobs of purged users after LATCHKEY_JOB_RETENTION_DAYS, and keeps those of users not purged", async () => {
		const w = world({
			LATCHKEY_FAILED_JOB_RETENTION_HOURS: "8760",
			LATCHKEY_JOB_MAX_ATTEMPTS: "1",
		});
		const ok = stubProvider("stub-prune", async () => ({ status: "deleted" }));
		const broken = stubProvider("stub-prune-broken", async () => {
			throw new ManagedProviderError("gone for good", true);
		});
		const find = async (s: Services, id: string) =>
			(await ok.find(s, id)) ?? (await broken.find(s, id));
		const purged = await userWithProvisioning("stub-prune", { thing_id: "p" });
		const held = await userWithProvisioning("stub-prune-broken", { thing_id: "h" });
		await deleteUser(w, purged.id);
		await deleteUser(w, held.id);
		expect(await run(w.services, [purged.id, held.id], { findProvider: find })).toMatchObject({
			done: 1,
			failed: 1,
			purged_users: 1,
		});
		w.advance(29 * 86_400);
		await pruneJobs(w.services);
		expect(await jobsOf(purged.id)).toHaveLength(1);
		w.advance(2 * 86_400);
		expect(await pruneJobs(w.services)).toBeGreaterThanOrEqual(1);
		expect(await jobsOf(purged.id)).toEqual([]);
		// Its user still exists (the failed job holds the purge for a year): the job stays.
		expect(await jobsOf(held.id)).toHaveLength(1);
	});
});

describe("AgentMail deprovisioning of a large pod (bounded steps across runs)", () => {
	it("a pod with 250 inboxes and several keys is deleted over several runs, each within its call budget, without spending attempts", async () => {
		const am = agentmailOrg(inject("agentmail").url);
		const w = world(am.env);
		const user = await userWithKey();
		const podId = await provisionAgentMail(w, am, user.id);
		const bulk = await fetch(
			`${am.baseUrl}/_control/orgs/${encodeURIComponent(am.orgKey)}/inboxes`,
			{
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify({ pod_id: podId, count: 249 }),
			},
		);
		expect(bulk.status).toBe(200);
		// More keys than one page of the fake's default size, made by the user's agents.
		for (let n = 0; n < 4; n++) {
			const key = await am.api(am.orgKey, "POST", `/v0/pods/${podId}/api-keys`, { name: `k${n}` });
			expect(key.status).toBe(200);
		}
		expect((await am.state()).inboxes.filter((i) => i.pod_id === podId)).toHaveLength(250);
		await deleteUser(w, user.id);

		let runs = 0;
		let callsBefore = (await am.state()).calls.length;
		let last: Awaited<ReturnType<typeof run>> | undefined;
		while (runs < 20) {
			runs += 1;
			last = await run(w.services, [user.id]);
			const calls = (await am.state()).calls.length;
			// One step per job per run, within the step budget.
			expect(calls - callsBefore).toBeLessThanOrEqual(40);
			expect(last.claimed).toBe(1);
			callsBefore = calls;
			if (last.done === 1) break;
			expect(last).toMatchObject({ continued: 1, retried: 0, failed: 0, purged_users: 0 });
			const [job] = await jobsOf(user.id);
			expect(job).toMatchObject({ status: "pending", attempts: 0 });
			expect(job?.lastError).toMatch(/deleted \d+ AgentMail keys and inboxes/);
		}
		expect(runs).toBeGreaterThan(5);
		expect(last).toMatchObject({ done: 1, purged_users: 1 });
		const state = await am.state();
		expect(state.pods).toEqual([]);
		expect(state.inboxes).toEqual([]);
		expect(state.api_keys).toEqual([]);
		expect((await jobsOf(user.id))[0]).toMatchObject({ status: "done", attempts: 1 });
	}, 120_000);
});
