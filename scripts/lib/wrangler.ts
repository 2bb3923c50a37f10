import { type ChildProcess, type StdioOptions, spawn } from "node:child_process";
import { chmod, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { formatDotenv } from "./dev-secrets.ts";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * With --env-file, wrangler runs the file through dotenv-expand, which would treat a `$` in a
 * value as a variable reference; `\$` is its escape for a literal dollar sign.
 */
function escapeForExpand(vars: Record<string, string>): Record<string, string> {
	return Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, v.replaceAll("$", "\\$")]));
}

/** Writes the bindings file wrangler reads; owner-only, since it holds secrets. */
export async function writeVarsFile(
	path: string,
	vars: Record<string, string>,
	header = "",
): Promise<void> {
	await writeFile(path, header + formatDotenv(escapeForExpand(vars)), { mode: 0o600 });
	await chmod(path, 0o600);
}

function wranglerBin(): string {
	const require = createRequire(import.meta.url);
	return join(require.resolve("wrangler/package.json"), "..", "bin", "wrangler.js");
}

/**
 * Bundles the worker the way `wrangler deploy` would (esbuild, nodejs_compat polyfills) into
 * `outDir`, without deploying, and resolves with the entry module's path. wrangler's output is
 * shown only when the build fails: on success it lists bindings that do not apply here.
 */
export async function buildWorker(outDir: string): Promise<string> {
	const child = spawn(
		process.execPath,
		[wranglerBin(), "deploy", "--dry-run", "--outdir", outDir],
		{
			cwd: ROOT,
			stdio: ["ignore", "pipe", "pipe"],
			env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
		},
	);
	let output = "";
	child.stdout.on("data", (chunk: Buffer) => {
		output += chunk;
	});
	child.stderr.on("data", (chunk: Buffer) => {
		output += chunk;
	});
	const code = await new Promise<number | null>((resolve, reject) => {
		child.once("error", reject);
		child.once("close", resolve);
	});
	if (code !== 0)
		throw new Error(`building the worker failed (wrangler exited ${code}):\n${output}`);
	return join(outDir, "index.js");
}

/**
 * Starts `wrangler dev` on 127.0.0.1. Secrets reach the worker from `envFile` as secret
 * bindings, which wrangler's binding table shows as "(hidden)"; `--var` would print them.
 * Spawning wrangler's own entry with this node avoids a shell and the .bin shim, so the pid a
 * caller signals is wrangler itself.
 */
export function spawnWranglerDev(opts: {
	port: number;
	envFile: string;
	stdio: StdioOptions;
	env?: NodeJS.ProcessEnv;
	extraArgs?: string[];
}): ChildProcess {
	const args = [
		wranglerBin(),
		"dev",
		"--port",
		String(opts.port),
		"--ip",
		"127.0.0.1",
		"--env-file",
		opts.envFile,
		...(opts.extraArgs ?? []),
	];
	return spawn(process.execPath, args, {
		cwd: ROOT,
		stdio: opts.stdio,
		env: { ...(opts.env ?? process.env), WRANGLER_SEND_METRICS: "false" },
	});
}

/** Polls `url` until it answers or the child exits; bounded at about a minute. */
export async function waitUntilServing(url: string, child: ChildProcess): Promise<boolean> {
	for (let i = 0; i < 600 && child.exitCode === null; i++) {
		try {
			const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
			await res.body?.cancel();
			return true;
		} catch {
			await new Promise((r) => setTimeout(r, 100));
		}
	}
	return false;
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the process is gone. */
export async function stopChild(child: ChildProcess): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null) return;
	const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
	child.kill("SIGTERM");
	const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
	await exited;
	clearTimeout(timer);
}
