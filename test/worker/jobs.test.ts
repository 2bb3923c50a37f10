import {
	createExecutionContext,
	createScheduledController,
	waitOnExecutionContext,
} from "cloudflare:test";
import { eq, inArray } from "drizzle-orm";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { refreshTokens, sessions } from "../../src/db/schema.ts";
import worker from "../../src/index.ts";
import { jobs } from "../../src/jobs/index.ts";
import { sweepSessions } from "../../src/jobs/sweep.ts";
import { createLogger } from "../../src/log.ts";
import { createServices } from "../../src/services.ts";
import { Timing } from "../../src/timing.ts";
import { exchange, userWithKey } from "./fixtures.ts";
import { testDb, testEnv } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

interface JobLine {
	name: string;
	ok: boolean;
	result?: Record<string, number>;
	error?: string;
}

/**
 * The real clock and the shared test database: the proactive refresh stays off here, or it would
 * refresh OAuth tokens other test files have aged on purpose (test/worker/leases.test.ts tests it).
 */
const cronEnv = { ...testEnv, LATCHKEY_PROACTIVE_REFRESH_SECONDS: "0" };

/** Runs the cron handler and returns its "maintenance run" summary line. */
async function scheduledSummary(env: Record<string, string>) {
	const lines: string[] = [];
	for (const m of ["log", "warn", "error"] as const) {
		vi.spyOn(console, m).mockImplementation((line: string) => {
			lines.push(String(line));
		});
	}
	const ctx = createExecutionContext();
	await worker.scheduled(createScheduledController({ cron: "* * * * *" }), env as never, ctx);
	await waitOnExecutionContext(ctx);
	return lines
		.map((l) => JSON.parse(l) as Record<string, unknown>)
		.find((r) => r.msg === "maintenance run") as { jobs: JobLine[] } | undefined;
}

describe("scheduled jobs", () => {
	it("run every registered job, and every job succeeds with a summary of counters", async () => {
		const summary = await scheduledSummary(cronEnv);
		expect(summary).toBeDefined();
		expect(summary?.jobs.map((j) => j.name)).toEqual(jobs.map((j) => j.name));
		for (const job of summary?.jobs ?? []) {
			expect(job, `${job.name}: ${job.error}`).toMatchObject({ ok: true });
			expect(job.error).toBeUndefined();
			expect(job.result).toBeDefined();
			for (const value of Object.values(job.result ?? {})) expect(typeof value).toBe("number");
		}
		expect(summary?.jobs.find((j) => j.name === "account-deletion")?.result).toMatchObject({
			enqueued: expect.any(Number),
			claimed: expect.any(Number),
			done: expect.any(Number),
			retried: expect.any(Number),
			failed: expect.any(Number),
			purged_users: expect.any(Number),
			due_remaining: expect.any(Number),
		});
		expect(summary?.jobs.find((j) => j.name === "sweep-sessions")?.result).toMatchObject({
			deleted_sessions: expect.any(Number),
			deleted_refresh_token_count: expect.any(Number),
		});
		const rewrap = summary?.jobs.find((j) => j.name === "rewrap-data-keys");
		expect(rewrap?.result).toMatchObject({
			rewrapped: expect.any(Number),
			resealed: expect.any(Number),
			failed: expect.any(Number),
			conflicts: expect.any(Number),
			remaining: expect.any(Number),
			legacy_aad_remaining: expect.any(Number),
		});
	});

	it("a job that cannot reach its database is reported as failed, not as done", async () => {
		// The same assertion as above must be able to fail: point the jobs at a dead database.
		const summary = await scheduledSummary({
			...testEnv,
			DATABASE_URL: "postgres://nobody@127.0.0.1:1/none",
			LATCHKEY_DB_HTTP_ENDPOINT: "http://127.0.0.1:1/sql",
		});
		const rewrap = summary?.jobs.find((j) => j.name === "rewrap-data-keys");
		expect(rewrap).toMatchObject({ ok: false, error: expect.any(String) });
		expect(rewrap?.result).toBeUndefined();
	});
});

describe("session sweep", () => {
	const db = testDb();
	afterAll(() => db.end());

	async function sessionOf(apiKey: string) {
		const pair = await exchange(apiKey);
		const [, payload] = pair.access_token.split(".");
		const { sid } = JSON.parse(atob((payload ?? "").replace(/-/g, "+").replace(/_/g, "/"))) as {
			sid: string;
		};
		return sid;
	}

	it("deletes sessions ended longer ago than the retention, with their refresh tokens, and nothing else", async () => {
		const { key } = await userWithKey();
		const [revokedLongAgo, expiredLongAgo, revokedRecently, live] = await Promise.all(
			[1, 2, 3, 4].map(() => sessionOf(key)),
		);
		const day = 86_400_000;
		const now = Date.now();
		await db.db
			.update(sessions)
			.set({ revokedAt: new Date(now - 31 * day), revokedReason: "test" })
			.where(eq(sessions.id, revokedLongAgo as string));
		await db.db
			.update(sessions)
			.set({ expiresAt: new Date(now - 31 * day) })
			.where(eq(sessions.id, expiredLongAgo as string));
		await db.db
			.update(sessions)
			.set({ revokedAt: new Date(now - 29 * day), revokedReason: "test" })
			.where(eq(sessions.id, revokedRecently as string));
		const ids = [revokedLongAgo, expiredLongAgo, revokedRecently, live] as string[];

		const { services, dispose } = createServices(
			loadConfig(testEnv),
			createLogger("error"),
			new Timing(),
		);
		try {
			const result = await sweepSessions(services);
			expect(result.deleted_sessions).toBeGreaterThanOrEqual(2);
			expect(result.deleted_refresh_token_count).toBeGreaterThanOrEqual(2);
		} finally {
			await dispose();
		}
		const left = await db.db
			.select({ id: sessions.id })
			.from(sessions)
			.where(inArray(sessions.id, ids));
		expect(left.map((r) => r.id).sort()).toEqual([revokedRecently, live].sort());
		const tokens = await db.db
			.select({ sessionId: refreshTokens.sessionId })
			.from(refreshTokens)
			.where(inArray(refreshTokens.sessionId, ids));
		expect([...new Set(tokens.map((t) => t.sessionId))].sort()).toEqual(
			[revokedRecently, live].sort(),
		);
	});
});
