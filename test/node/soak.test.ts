import { describe, expect, it } from "vitest";
import { runScript } from "./run-script.ts";

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
			const { code, output } = await runScript(
				["bench/soak.ts"],
				{ ...process.env, SOAK_SECONDS: "10", WRANGLER_SEND_METRICS: "false" },
				{ deadlineMs: BUDGET_MS - 5_000, signal: "SIGINT" },
			);
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
