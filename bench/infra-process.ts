/**
 * The bridges and engines of `startInfra`, in a process of their own: in production Neon's and
 * Upstash's endpoints are other machines, so the stand-ins must not share an event loop with
 * the load generator, whose work would otherwise be billed to every round trip.
 * Speaks to its parent over the IPC channel: it sends `{ready, infra}` once up, answers
 * `"stats"` with the SQL bridge's counters and exits on `"close"`.
 */
import { fork } from "node:child_process";
import http from "node:http";
import { engineChoice, startInfra } from "../scripts/lib/infra.ts";

// Benches keep to a Redis database of their own, never the developer's 0 nor the test suite's
// 15 (whose teardown empties it); a TEST_REDIS_URL given (the soak's own server) is used as is.
process.env.TEST_REDIS_URL ??= "redis://127.0.0.1:6379/14";

const infra = await startInfra({ engines: engineChoice(), label: "bench" });

/**
 * BENCH_RTT_MS: every request to the Neon and Upstash stand-ins waits this long before it is
 * forwarded, as a round trip from a Worker to Neon and Upstash near it would. On loopback a
 * round trip costs almost nothing, so what a request's shape costs in round trips (serial or
 * side by side) only shows with them.
 */
const RTT_MS = Number(process.env.BENCH_RTT_MS ?? 0);

async function delayed(target: string, ms: number): Promise<{ url: string; close(): void }> {
	const upstream = new URL(target);
	const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
	const server = http.createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on("data", (c: Buffer) => chunks.push(c));
		req.on("end", () => {
			setTimeout(() => {
				const out = http.request(
					{
						host: upstream.hostname,
						port: upstream.port,
						path: req.url,
						method: req.method,
						headers: req.headers,
						agent,
					},
					(answer) => {
						res.writeHead(answer.statusCode ?? 502, answer.headers);
						answer.pipe(res);
					},
				);
				out.on("error", () => res.destroy());
				out.end(Buffer.concat(chunks));
			}, ms);
		});
	});
	server.keepAliveTimeout = 60_000;
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as { port: number };
	const url = new URL(target);
	url.host = `127.0.0.1:${port}`;
	return {
		url: url.toString().replace(/\/$/, target.endsWith("/") ? "/" : ""),
		close: () => server.close(),
	};
}

// With a real Redis, its REST stand-in runs in a process of its own (the embedded Redis lives in
// this one, so its bridge stays here).
if (infra.redis === "real") {
	const child = fork(new URL("./redis-bridge-process.ts", import.meta.url).pathname, [], {
		execArgv: ["--import", "tsx"],
		stdio: ["ignore", "inherit", "inherit", "ipc"],
		env: {
			...process.env,
			BRIDGE_TOKEN: infra.bindings.UPSTASH_REDIS_REST_TOKEN,
			BRIDGE_REDIS_URL: process.env.TEST_REDIS_URL,
		},
	});
	const { url } = await new Promise<{ url: string }>((resolve, reject) => {
		child.once("message", (m) => resolve(m as { url: string }));
		child.once("exit", (code) => reject(new Error(`Redis bridge process exited (${code})`)));
	});
	infra.bindings.UPSTASH_REDIS_REST_URL = url;
	process.on("exit", () => child.kill());
}

if (RTT_MS > 0) {
	for (const name of ["LATCHKEY_DB_HTTP_ENDPOINT", "UPSTASH_REDIS_REST_URL"]) {
		const target = infra.bindings[name];
		if (!target) throw new Error(`BENCH_RTT_MS: no ${name} to delay`);
		infra.bindings[name] = (await delayed(target, RTT_MS)).url;
	}
}
const send = (message: unknown) => process.send?.(message);
send({
	ready: true,
	infra: {
		bindings: infra.bindings,
		postgres: infra.postgres,
		redis: infra.redis,
		databaseUrl: infra.databaseUrl,
	},
});
process.on("message", async (message) => {
	if (message === "stats") send({ stats: infra.sqlBridge.stats() });
	if (message === "close") {
		await infra.close();
		process.exit(0);
	}
});
process.on("disconnect", async () => {
	await infra.close();
	process.exit(0);
});
