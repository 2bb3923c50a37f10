/**
 * `npm start`: the worker as `wrangler deploy` would bundle it, served by workerd through
 * Miniflare's API, with the configuration of `npm run dev` (wrangler.toml's [vars], .dev.vars,
 * the environment, and the embedded Postgres and Redis behind loopback-only bridges when no
 * DATABASE_URL / REDIS_URL is given). Unlike `wrangler dev` there is no dev proxy and no
 * inspector between the client and workerd: that proxy relays DevTools network events for
 * every outbound fetch, which costs each Postgres or Redis round trip milliseconds and drops
 * connections under bursts.
 *
 * Flags: `--data-dir DIR` (state: bundle and embedded Postgres cluster; default .latchkey),
 * `--vars-file FILE` (default .dev.vars). Environment: PORT (8787), HOST (127.0.0.1).
 * SIGUSR2 runs the scheduled handler now, as the cron would.
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { type CronSchedule, parseCron } from "./lib/cron.ts";
import { prepareLocal } from "./lib/local.ts";
import { checkPortFree, portAdvice } from "./lib/net.ts";
import { serveWorker } from "./lib/serve.ts";
import { ROOT } from "./lib/wrangler.ts";

const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
type Level = (typeof LOG_LEVELS)[number];

const started = Date.now();
const cleanups: Array<() => Promise<void>> = [];
let stopServing: (() => Promise<void>) | undefined;
let shuttingDown = false;
let level: Level = "warn";

function logAt(at: Level, message: string): void {
	if (LOG_LEVELS.indexOf(at) < LOG_LEVELS.indexOf(level)) return;
	(at === "warn" || at === "error" ? console.error : console.log)(`[latchkey] ${message}`);
}

async function shutdown(code: number): Promise<never> {
	if (shuttingDown) process.exit(code);
	shuttingDown = true;
	await stopServing?.().catch((err: unknown) => logAt("error", `workerd: ${String(err)}`));
	for (const cleanup of cleanups.reverse()) {
		await cleanup().catch((err: unknown) => logAt("error", `cleanup: ${String(err)}`));
	}
	process.exit(code);
}

/** Runs the worker's scheduled handler at every minute its crons match, as Cloudflare would. */
function scheduleCrons(crons: string[], run: (cron: string) => Promise<void>): void {
	const schedules: Array<[string, CronSchedule]> = crons.map((c) => [c, parseCron(c)]);
	const tick = () => {
		const now = new Date();
		for (const [cron, matches] of schedules) if (matches(now)) void run(cron);
		// Re-armed from the clock each time, so a slow tick does not make the next one drift.
		setTimeout(tick, 60_000 - (Date.now() % 60_000) + 5).unref();
	};
	setTimeout(tick, 60_000 - (Date.now() % 60_000) + 5).unref();
}

async function main(): Promise<void> {
	const { values: flags } = parseArgs({
		options: { "data-dir": { type: "string" }, "vars-file": { type: "string" } },
	});
	let firstSignalAt = 0;
	for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
		process.on(signal, () => {
			if (shuttingDown) {
				// Ctrl-C reaches this process twice (from the terminal and relayed by tsx).
				if (Date.now() - firstSignalAt > 1000) process.exit(130);
				return;
			}
			firstSignalAt = Date.now();
			logAt("warn", `${signal} received, stopping…`);
			void shutdown(0);
		});
	}

	const env = process.env;
	const host = env.HOST || "127.0.0.1";
	const port = Number(env.PORT ?? 8787);
	const taken = await checkPortFree(host, port);
	if (taken) {
		console.error(`[latchkey] ${portAdvice(host, port, taken, "npm start")}`);
		process.exit(1);
	}

	const stateDir = resolve(flags["data-dir"] ?? join(ROOT, ".latchkey"));
	const local = await prepareLocal({
		command: "npm start",
		varsFile: resolve(flags["vars-file"] ?? join(ROOT, ".dev.vars")),
		stateDir,
		log: (message) => logAt("warn", message),
		cleanups,
		env,
		defaults: { LATCHKEY_LOG_LEVEL: "warn" },
	});
	const wanted = local.vars.LATCHKEY_LOG_LEVEL as Level;
	if (LOG_LEVELS.includes(wanted)) level = wanted;
	const served = await serveWorker({
		bindings: local.vars,
		host,
		port,
		buildDir: join(stateDir, "build"),
		verbose: level === "debug",
	});
	stopServing = served.dispose;

	const runScheduled = async (cron: string) => {
		const t0 = Date.now();
		try {
			const { outcome } = await served.scheduled(cron);
			logAt(
				outcome === "ok" ? "info" : "warn",
				`scheduled (${cron}): ${outcome} in ${Date.now() - t0} ms`,
			);
		} catch (err) {
			logAt("error", `scheduled (${cron}): ${err instanceof Error ? err.message : String(err)}`);
		}
	};
	scheduleCrons(served.crons, runScheduled);
	process.on("SIGUSR2", () => {
		for (const cron of served.crons.length > 0 ? served.crons : ["manual"]) void runScheduled(cron);
	});

	const seconds = ((Date.now() - started) / 1000).toFixed(1);
	console.log(
		`[latchkey] ready in ${seconds}s: ${served.url} (workerd via Miniflare, log level ${level})`,
	);
	for (const line of local.describe()) logAt("info", line);
}

main().catch(async (err: unknown) => {
	console.error(`[latchkey] ${err instanceof Error ? err.message : String(err)}`);
	await shutdown(1);
});
