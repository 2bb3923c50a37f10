import { mkdirSync, writeFileSync } from "node:fs";
import { freePort } from "../scripts/lib/net.ts";
import { connectInspector } from "./cdp.ts";
import {
	apiClient,
	benchUser,
	saveResults,
	startBenchWorker,
	startInfraProcess,
	UNLIMITED_LEASES,
} from "./lib.ts";

/**
 * `npx tsx bench/cpu.ts` (part of `npm run bench`): the worker's own CPU per request, read from
 * a V8 CPU profile taken over workerd's inspector on `npm start`'s runtime. Latency benches
 * cannot tell the isolate's work from waiting on Postgres and Redis; at high concurrency that
 * work is what bounds throughput, since one isolate runs one request's JavaScript at a time.
 * Per scenario: warm up, profile BENCH_CPU_REQUESTS requests at concurrency 4, and count the
 * sampled time that was not idle. The lease's heaviest functions (self time) are printed and
 * the profiles written to bench/results/cpu-*.cpuprofile for DevTools.
 */
const REQUESTS = Number(process.env.BENCH_CPU_REQUESTS ?? 2000);
const CONCURRENCY = 4;
const TOP = 25;

interface ProfileNode {
	id: number;
	callFrame: { functionName: string; url: string; lineNumber: number };
	children?: number[];
}
interface Profile {
	nodes: ProfileNode[];
	samples: number[];
	timeDeltas: number[];
	startTime: number;
	endTime: number;
}

/** Busy microseconds (every sample but idle) and self time per function. */
function analyse(profile: Profile) {
	const byId = new Map(profile.nodes.map((n) => [n.id, n]));
	const self = new Map<string, number>();
	let busy = 0;
	let total = 0;
	// A sample's duration is the delta to the next one.
	for (let i = 0; i < profile.samples.length; i++) {
		const dt = profile.timeDeltas[i + 1] ?? 0;
		total += dt;
		const node = byId.get(profile.samples[i] as number);
		if (!node) continue;
		const f = node.callFrame;
		if (f.functionName === "(idle)") continue;
		busy += dt;
		const file = f.url.split("/").pop() ?? "";
		const key = `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`;
		self.set(key, (self.get(key) ?? 0) + dt);
	}
	return { busy, total, self };
}

const infra = await startInfraProcess();
const inspectorPort = await freePort();
const served = await startBenchWorker(infra, UNLIMITED_LEASES, { inspectorPort });
let stopped: ((profile: Profile) => void) | undefined;
const inspector = await connectInspector(inspectorPort, (method, params) => {
	if (method === "Profiler.stop") stopped?.((params as { profile: Profile }).profile);
});
/** Stops the profiler; workerd may answer by id or as a `Profiler.stop` message. */
const stopProfile = () =>
	new Promise<Profile>((resolve, reject) => {
		stopped = resolve;
		inspector.call<{ profile: Profile }>("Profiler.stop").then((r) => resolve(r.profile), reject);
	});
const admin = infra.bindings.LATCHKEY_ADMIN_TOKEN as string;
const api = apiClient(served.url);
const figures: Record<string, unknown> = {};
console.log(
	`postgres: ${infra.postgres}, redis: ${infra.redis}, ${REQUESTS} requests per scenario at c=${CONCURRENCY}`,
);

try {
	const { key } = await benchUser(api, admin, "cpu");
	const auth = { authorization: `Bearer ${key}` };
	const cred = await api<{ id: string }>("/v1/credentials", {
		method: "POST",
		token: key,
		json: { type: "api_key", provider: "bench", title: "cpu", api_key: "k".repeat(40) },
	});
	const scenarios: { name: string; url: string; init?: RequestInit; status: number }[] = [
		{ name: "/health", url: `${served.url}/health`, status: 200 },
		{ name: "GET /v1/me", url: `${served.url}/v1/me`, init: { headers: auth }, status: 200 },
		{
			name: "metadata read: GET /v1/credentials/{id}",
			url: `${served.url}/v1/credentials/${cred.id}`,
			init: { headers: auth },
			status: 200,
		},
		{
			name: "lease: stored API key",
			url: `${served.url}/v1/credentials/${cred.id}/leases`,
			init: {
				method: "POST",
				headers: { ...auth, "content-type": "application/json" },
				body: JSON.stringify({ ttl_seconds: 60 }),
			},
			status: 201,
		},
	];
	const run = async (s: (typeof scenarios)[number], n: number) => {
		let next = 0;
		await Promise.all(
			Array.from({ length: CONCURRENCY }, async () => {
				while (next < n) {
					next++;
					const res = await fetch(s.url, s.init);
					await res.arrayBuffer();
					if (res.status !== s.status) throw new Error(`${s.name}: ${res.status}`);
				}
			}),
		);
	};
	inspector.send("Profiler.enable");
	inspector.send("Profiler.setSamplingInterval", { interval: 50 });
	const rows: Record<string, string | number>[] = [];
	mkdirSync("bench/results", { recursive: true });
	for (const s of scenarios) {
		await run(s, 300);
		inspector.send("Profiler.start");
		const t0 = performance.now();
		await run(s, REQUESTS);
		const wall = performance.now() - t0;
		const profile = await stopProfile();
		const { busy, self } = analyse(profile);
		const perRequest = busy / REQUESTS / 1000;
		rows.push({
			scenario: s.name,
			"CPU ms/request": perRequest.toFixed(3),
			"isolate busy %": ((busy / 1000 / wall) * 100).toFixed(0),
		});
		figures[s.name] = { cpu_ms_per_request: Number(perRequest.toFixed(3)) };
		const slug = s.name.replace(/[^a-z0-9]+/gi, "-").replace(/^-|-$/g, "");
		writeFileSync(`bench/results/cpu-${slug}.cpuprofile`, JSON.stringify(profile));
		if (s.name.startsWith("lease")) {
			console.log(`${s.name}: heaviest functions (self time per request, µs)`);
			const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, TOP);
			for (const [fn, us] of top) console.log(`  ${(us / REQUESTS).toFixed(1).padStart(7)}  ${fn}`);
		}
	}
	const health = Number((figures["/health"] as { cpu_ms_per_request: number }).cpu_ms_per_request);
	for (const r of rows) r["× /health"] = (Number(r["CPU ms/request"]) / health).toFixed(2);
	console.table(rows);
	saveResults("cpu", infra, figures);
} finally {
	inspector.close();
	await served.stop();
	await infra.close();
}
