import { spawn } from "node:child_process";
import { ROOT } from "../../scripts/lib/wrangler.ts";

/** The environment without this process's own Latchkey configuration, plus `extra`. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
	const env = Object.fromEntries(
		Object.entries(process.env).filter(
			([k]) =>
				!/^(LATCHKEY_|EXTERNAL_JWT_|AGENTMAIL_|OAUTH_|UPSTASH_)|^(DATABASE_URL|REDIS_URL|PORT|HOST)$/.test(
					k,
				),
		),
	);
	return { ...env, WRANGLER_SEND_METRICS: "false", ...extra };
}

/**
 * Runs a repository script (`node --import tsx <args>`) to its exit, killed with `signal` at the
 * deadline; resolves with its exit code, its stdout and stderr together, and how long it ran.
 */
export async function runScript(
	args: string[],
	env: NodeJS.ProcessEnv,
	options: { deadlineMs: number; signal?: NodeJS.Signals },
): Promise<{ code: number | null; output: string; ms: number }> {
	const t0 = Date.now();
	const child = spawn(process.execPath, ["--import", "tsx", ...args], {
		cwd: ROOT,
		env,
		stdio: ["ignore", "pipe", "pipe"],
	});
	let output = "";
	child.stdout.on("data", (chunk: Buffer) => {
		output += chunk;
	});
	child.stderr.on("data", (chunk: Buffer) => {
		output += chunk;
	});
	const timer = setTimeout(() => child.kill(options.signal ?? "SIGKILL"), options.deadlineMs);
	const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
	clearTimeout(timer);
	return { code, output, ms: Date.now() - t0 };
}
