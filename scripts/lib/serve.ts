import { basename, dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { Log, LogLevel, Miniflare } from "miniflare";
import { buildWorker, ROOT } from "./wrangler.ts";

/**
 * wrangler.toml's [[rules]] as Miniflare rules for the built bundle. wrangler matches a rule's
 * globs against the import specifier and writes each module it collects beside the bundle as
 * `<sha1>-<basename>`; Miniflare matches the file it finds, so a glob becomes one on that name.
 * Without this Miniflare would load a text `.js` module as CommonJS and refuse a `.css` one.
 * JavaScript rules are left out: wrangler bundles those modules rather than collecting them.
 */
function additionalModuleRules(
	rules: { type: string; globs: string[]; fallthrough?: boolean }[],
): { type: "Text" | "Data" | "CompiledWasm"; include: string[]; fallthrough?: boolean }[] {
	return rules.flatMap((rule) =>
		rule.type === "Text" || rule.type === "Data" || rule.type === "CompiledWasm"
			? [
					{
						type: rule.type,
						include: rule.globs.map((glob) => `**/*-${basename(glob)}`),
						fallthrough: rule.fallthrough ?? false,
					},
				]
			: [],
	);
}

export interface ServedWorker {
	/** Where workerd listens, e.g. http://127.0.0.1:8787 (IPv6 hosts bracketed). */
	url: string;
	crons: string[];
	/** Runs the worker's scheduled handler once, as Cloudflare's cron would. */
	scheduled(cron: string): Promise<{ outcome: string }>;
	dispose(): Promise<void>;
}

/**
 * The worker bundled as `wrangler deploy` bundles it, on workerd through Miniflare's API:
 * wrangler.toml's name, compatibility settings and [vars] (under `bindings`), and nothing of
 * `wrangler dev`'s proxy or inspector in front of it. `quietStdout` drops the worker's
 * console.log output (benchmarks); its errors still reach stderr.
 */
export async function serveWorker(opts: {
	bindings: Record<string, string>;
	host: string;
	port: number;
	/** Where the bundle is written. */
	buildDir: string;
	verbose?: boolean;
	quietStdout?: boolean;
	/** With quietStdout: the worker's console output goes here instead of nowhere (the soak's log check). */
	onStdout?: (text: string) => void;
	/** Opens workerd's inspector (Chrome DevTools Protocol) on this loopback port (bench/heap.ts). */
	inspectorPort?: number;
}): Promise<ServedWorker> {
	const [{ unstable_readConfig }, scriptPath] = await Promise.all([
		import("wrangler"),
		buildWorker(opts.buildDir),
	]);
	const config = unstable_readConfig({ config: join(ROOT, "wrangler.toml") });
	const plainVars = Object.fromEntries(
		Object.entries(config.vars).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
	);
	const miniflare = new Miniflare({
		name: config.name,
		modules: true,
		scriptPath,
		// Module names are paths relative to this; the bundle may live outside the repository.
		modulesRoot: dirname(scriptPath),
		modulesRules: additionalModuleRules(config.rules ?? []),
		compatibilityDate: config.compatibility_date,
		compatibilityFlags: config.compatibility_flags,
		bindings: { ...plainVars, ...opts.bindings },
		host: opts.host,
		port: opts.port,
		// The request's `cf` object would otherwise be fetched from Cloudflare at start-up.
		cf: false,
		logRequests: false,
		...(opts.inspectorPort === undefined ? {} : { inspectorPort: opts.inspectorPort }),
		log: new Log(opts.verbose ? LogLevel.DEBUG : LogLevel.WARN),
		...(opts.quietStdout
			? {
					handleRuntimeStdio: (stdout: Readable, stderr: Readable) => {
						const sink = opts.onStdout;
						if (sink) stdout.on("data", (chunk: Buffer) => sink(chunk.toString("utf8")));
						else stdout.resume();
						stderr.pipe(process.stderr);
					},
				}
			: {}),
	});
	try {
		const url = await miniflare.ready;
		const worker = await miniflare.getWorker();
		const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
		return {
			url: `http://${host}:${url.port}`,
			crons: config.triggers.crons ?? [],
			scheduled: (cron) => worker.scheduled({ cron, scheduledTime: new Date() }),
			dispose: () => miniflare.dispose(),
		};
	} catch (err) {
		await miniflare.dispose().catch(() => {});
		throw err;
	}
}
