import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parseCron } from "../../scripts/lib/cron.ts";
import { parseDotenv } from "../../scripts/lib/dev-secrets.ts";
import { freePort, listen } from "../../scripts/lib/net.ts";
import { ROOT } from "../../scripts/lib/wrangler.ts";

/**
 * `npm start` as an operator runs it: scripts/start.ts in a process of its own, on the Postgres
 * and Redis the suite runs on (real ones as they are; with the embedded engines, start.ts's own
 * embedded defaults in a scratch directory, as on a bare machine).
 */
const infra = inject("infra");
const DEADLINE_MS = 25_000;

interface Started {
	child: ChildProcess;
	output: () => string;
	exited: Promise<number | null>;
}

function startScript(dir: string, extraEnv: Record<string, string>): Started {
	// Nothing of this process's own configuration may leak into the server under test.
	const env = Object.fromEntries(
		Object.entries(process.env).filter(
			([k]) =>
				!/^(LATCHKEY_|EXTERNAL_JWT_|AGENTMAIL_|OAUTH_|UPSTASH_)|^(DATABASE_URL|REDIS_URL|PORT|HOST)$/.test(
					k,
				),
		),
	);
	const child = spawn(
		process.execPath,
		[
			"--import",
			"tsx",
			"scripts/start.ts",
			"--data-dir",
			dir,
			"--vars-file",
			join(dir, ".dev.vars"),
		],
		{
			cwd: ROOT,
			env: { ...env, WRANGLER_SEND_METRICS: "false", ...extraEnv },
			stdio: ["ignore", "pipe", "pipe"],
		},
	);
	let output = "";
	child.stdout?.on("data", (chunk: Buffer) => {
		output += chunk;
	});
	child.stderr?.on("data", (chunk: Buffer) => {
		output += chunk;
	});
	const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
	return { child, output: () => output, exited };
}

/** Polls `check` until it holds, the process exits, or the deadline passes. */
async function until(
	what: string,
	started: Started,
	check: () => Promise<boolean> | boolean,
): Promise<void> {
	const deadline = Date.now() + DEADLINE_MS;
	while (Date.now() < deadline) {
		if (started.child.exitCode !== null)
			throw new Error(
				`start.ts exited (${started.child.exitCode}) before ${what}:\n${started.output()}`,
			);
		if (await check()) return;
		await new Promise((r) => setTimeout(r, 100));
	}
	throw new Error(`no ${what} within ${DEADLINE_MS} ms:\n${started.output()}`);
}

describe("npm start (scripts/start.ts)", () => {
	let dir: string;
	let running: Started | undefined;

	beforeAll(async () => {
		dir = await mkdtemp(join(tmpdir(), "latchkey-start-"));
	});

	afterAll(async () => {
		if (running && running.child.exitCode === null) {
			running.child.kill("SIGKILL");
			await running.exited;
		}
		await rm(dir, { recursive: true, force: true });
	});

	it("refuses a port that is taken, with advice, before starting anything", async () => {
		const blocker = createServer();
		const port = await listen(blocker);
		try {
			const started = startScript(dir, { PORT: String(port) });
			const code = await started.exited;
			expect(code).not.toBe(0);
			expect(started.output()).toContain(`cannot listen on 127.0.0.1:${port}`);
			expect(started.output()).toContain("PORT=");
		} finally {
			await new Promise((r) => blocker.close(r));
		}
	});

	it("serves, answers an authenticated request, runs the scheduled handler and stops on SIGTERM", async () => {
		const port = await freePort();
		const url = `http://127.0.0.1:${port}`;
		const engines: Record<string, string> = {};
		if (infra.postgres === "real") engines.DATABASE_URL = infra.databaseUrl;
		if (infra.redis === "real")
			engines.REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
		// info, so that the scheduled run's outcome is printed.
		running = startScript(dir, { PORT: String(port), LATCHKEY_LOG_LEVEL: "info", ...engines });
		const started = running;

		await until("/health/ready 200", started, async () => {
			const res = await fetch(`${url}/health/ready`).catch(() => undefined);
			await res?.body?.cancel();
			return res?.status === 200;
		});

		// start.ts generated the vars file with fresh secrets, as on a first run.
		const vars = parseDotenv(await readFile(join(dir, ".dev.vars"), "utf8"));
		const email = `start-${crypto.randomUUID()}@example.com`;
		const res = await fetch(`${url}/v1/admin/users`, {
			method: "POST",
			headers: {
				authorization: `Bearer ${vars.LATCHKEY_ADMIN_TOKEN}`,
				"content-type": "application/json",
			},
			body: JSON.stringify({ email }),
		});
		expect(res.status).toBe(201);
		expect(((await res.json()) as { email: string }).email).toBe(email);

		started.child.kill("SIGUSR2");
		await until("scheduled run", started, () =>
			/scheduled \(\* \* \* \* \*\): ok in \d+ ms/.test(started.output()),
		);

		started.child.kill("SIGTERM");
		expect(await started.exited).toBe(0);
		await expect(fetch(`${url}/health`)).rejects.toThrow();
	}, 40_000);
});

describe("wrangler.toml crons outside Cloudflare (scripts/lib/cron.ts)", () => {
	const at = (iso: string) => new Date(iso);
	it("matches in UTC, with steps, ranges, lists and cron's either-day rule", () => {
		expect(parseCron("* * * * *")(at("2026-12-05T16:51:00Z"))).toBe(true);
		const fifth = parseCron("*/5 * * * *");
		expect(fifth(at("2026-12-05T16:55:00Z"))).toBe(true);
		expect(fifth(at("2026-12-05T16:56:00Z"))).toBe(false);
		const office = parseCron("0 9-17/4 * * 1-5");
		expect(office(at("2026-12-07T13:00:00Z"))).toBe(true); // Monday
		expect(office(at("2026-12-06T13:00:00Z"))).toBe(false); // Sunday
		const either = parseCron("0 0 1 * 0");
		expect(either(at("2026-12-01T00:00:00Z"))).toBe(true); // the 1st, a Tuesday
		expect(either(at("2026-12-06T00:00:00Z"))).toBe(true); // a Sunday
		expect(either(at("2026-12-02T00:00:00Z"))).toBe(false);
		expect(parseCron("30 2 * * 7")(at("2026-12-06T02:30:00Z"))).toBe(true);
	});
	it("refuses what it cannot evaluate instead of never firing", () => {
		expect(() => parseCron("* * * *")).toThrow(/five fields/);
		expect(() => parseCron("0 0 * * MON")).toThrow(/unsupported/);
		expect(() => parseCron("61 * * * *")).toThrow(/out of range/);
	});
});
