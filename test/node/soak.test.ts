import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/lib/wrangler.ts";

/**
 * The soak (bench/soak.ts) in its short form: 10 s of mixed traffic with every fault (Redis
 * killed and back empty, Postgres connections cut, OAuth 500s/invalid_grant/slow, AgentMail
 * hanging), then its invariants. It runs in a process of its own, on the engines the suite
 * runs on (LATCHKEY_ENGINES is inherited; with the embedded ones it skips only the Redis kill).
 */
const BUDGET_MS = 60_000;

describe("soak (short)", () => {
	it(
		"keeps every invariant through the faults",
		async () => {
			const child = spawn(process.execPath, ["--import", "tsx", "bench/soak.ts"], {
				cwd: ROOT,
				env: { ...process.env, SOAK_SECONDS: "10", WRANGLER_SEND_METRICS: "false" },
				stdio: ["ignore", "pipe", "pipe"],
			});
			let output = "";
			child.stdout.on("data", (chunk: Buffer) => {
				output += chunk;
			});
			child.stderr.on("data", (chunk: Buffer) => {
				output += chunk;
			});
			const timer = setTimeout(() => child.kill("SIGINT"), BUDGET_MS - 5_000);
			const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
			clearTimeout(timer);
			// The soak's own report (without the worker's log lines) tells why when it fails.
			const report = output
				.split("\n")
				.filter((l) => !l.startsWith('{"level"'))
				.join("\n");
			expect(code, report).toBe(0);
			expect(report).toContain("SOAK PASSED");
		},
		BUDGET_MS,
	);
});
