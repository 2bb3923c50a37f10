import {
	createExecutionContext,
	createScheduledController,
	waitOnExecutionContext,
} from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index.ts";
import { jobs } from "../../src/jobs/index.ts";
import { testEnv } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

interface JobLine {
	name: string;
	ok: boolean;
	result?: Record<string, number>;
	error?: string;
}

/** Runs the cron handler and returns its "maintenance run" summary line. */
async function scheduledSummary(env: Record<string, string>) {
	const lines: string[] = [];
	for (const m of ["log", "warn", "error"] as const) {
		vi.spyOn(console, m).mockImplementation((line: string) => {
			lines.push(String(line));
		});
	}
	const ctx = createExecutionContext();
	await worker.scheduled(createScheduledController({ cron: "*/5 * * * *" }), env as never, ctx);
	await waitOnExecutionContext(ctx);
	return lines
		.map((l) => JSON.parse(l) as Record<string, unknown>)
		.find((r) => r.msg === "maintenance run") as { jobs: JobLine[] } | undefined;
}

describe("scheduled jobs", () => {
	it("run every registered job, and every job succeeds with a summary of counters", async () => {
		const summary = await scheduledSummary(testEnv);
		expect(summary).toBeDefined();
		expect(summary?.jobs.map((j) => j.name)).toEqual(jobs.map((j) => j.name));
		for (const job of summary?.jobs ?? []) {
			expect(job, `${job.name}: ${job.error}`).toMatchObject({ ok: true });
			expect(job.error).toBeUndefined();
			expect(job.result).toBeDefined();
			for (const value of Object.values(job.result ?? {})) expect(typeof value).toBe("number");
		}
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
