import { existsSync, readFileSync, statSync } from "node:fs";

/**
 * wrangler appends to its log file behind the traffic (one append per entry, inspector traffic
 * included), so the file is read once it stopped growing for a second; bounded at `maxMs`.
 */
export async function waitForQuietLog(path: string, maxMs = 30_000): Promise<void> {
	if (!existsSync(path)) return;
	const size = () => (existsSync(path) ? statSync(path).size : 0);
	const start = Date.now();
	let last = size();
	let still = 0;
	while (still < 4 && Date.now() - start < maxMs) {
		await new Promise((r) => setTimeout(r, 250));
		const now = size();
		still = now === last ? still + 1 : 0;
		last = now;
	}
}

/**
 * Tees what this process writes to stderr: startWorker runs the worker on workerd through
 * Miniflare and pipes the worker's stderr (its `warn` and `error` log lines) into ours, while it
 * drops the worker's stdout (`info` lines).
 */
export function captureStderr(): { text(): string; stop(): void } {
	const chunks: string[] = [];
	const original = process.stderr.write;
	const tee = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
		chunks.push(
			typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString("utf8"),
		);
		return (original as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
	};
	process.stderr.write = tee as typeof process.stderr.write;
	return {
		text: () => chunks.join(""),
		stop: () => {
			process.stderr.write = original;
		},
	};
}

/**
 * The worker's log lines, as `wrangler dev` records them (startWorker under BENCH_DEV=1): startWorker discards the worker's
 * stdout, but wrangler writes every line it handles (the worker's console output included) to
 * its debug log file, whose path the soak chooses through WRANGLER_LOG_PATH. Entries look like
 * `--- <time> <level>\n<message>\n---`; `debug` entries are wrangler's own inspector traffic
 * (the devtools protocol, outbound bodies included), not log lines, and are left out.
 */
export function readWorkerLog(path: string): { lines: string[]; requestLines: number } {
	if (!existsSync(path)) return { lines: [], requestLines: 0 };
	const text = readFileSync(path, "utf8");
	const lines: string[] = [];
	const entry = /^--- \S+ (\w+)\n([\s\S]*?)\n---$/gm;
	for (let m = entry.exec(text); m; m = entry.exec(text)) {
		if (m[1] === "debug") continue;
		lines.push(...(m[2] ?? "").split("\n"));
	}
	const requestLines = lines.filter((l) => l.includes('"msg":"request"')).length;
	return { lines, requestLines };
}

/** Every planted secret that occurs in a line, with the line (secret masked) for the report. */
export function findSecrets(
	lines: string[],
	secrets: Iterable<string>,
): { secret: string; line: string }[] {
	const wanted = [...new Set(secrets)].filter((s) => s.length >= 8);
	const found: { secret: string; line: string }[] = [];
	for (const line of lines) {
		for (const secret of wanted) {
			if (!line.includes(secret)) continue;
			found.push({
				secret: `${secret.slice(0, 6)}…(${secret.length} chars)`,
				line: line.replaceAll(secret, "<SECRET>").slice(0, 400),
			});
		}
	}
	return found;
}
