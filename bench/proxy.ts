import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { freePort } from "../scripts/lib/net.ts";
import { startOAuthServer } from "../test/setup/oauth-server.ts";
import { startUpstream } from "../test/setup/upstream.ts";
import { connectInspector } from "./cdp.ts";
import {
	apiClient,
	benchUser,
	connectBenchOAuth,
	makeSettle,
	measureInterleaved,
	printTable,
	type Result,
	registerBenchProvider,
	type Scenario,
	saveResults,
	startBenchWorker,
	startInfraProcess,
	startWorker,
	UNLIMITED_LEASES,
} from "./lib.ts";

/**
 * `npm run bench` (proxy): what the authenticated proxy costs an agent against doing the same
 * itself: lease the secret from Latchkey, then call the API directly. Both on `npm start`'s
 * runtime against real Postgres and Redis (or the embedded engines, said loudly) and the same
 * local upstream (test/setup/upstream.ts, `/fast`: a small JSON answer); a stored API key and an
 * OAuth token connected through the real flow (oidc-provider). p50 and p99 at c=1 and c=32,
 * interleaved in rounds so background noise lands on both alike; the goal is a proxy p50 of at
 * most 1.1× lease-then-call.
 *
 * Then the memory of 50 MB and 200 MB transfers each way through the proxy, on a second worker
 * with workerd's inspector open: the isolate's JS heap in use (Runtime.getHeapUsage) and
 * workerd's resident memory (/proc), sampled every 20 ms, against the same worker idle. A peak
 * that does not grow with the size is a body that is not held.
 */
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 1000);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? "1,32").split(",").map(Number);
const TRANSFER_MB = Number(process.env.BENCH_PROXY_TRANSFER_MB ?? 50);

const infra = await startInfraProcess();
console.log(
	`postgres: ${infra.postgres}, redis: ${infra.redis}, requests per scenario and concurrency: ${REQUESTS}`,
);
const extra = { ...UNLIMITED_LEASES, LATCHKEY_PROXY_ALLOW_LOOPBACK: "true" };
const bindings = { ...infra.bindings, ...extra };
const worker = await startBenchWorker(infra, extra);
const oauth = await startOAuthServer({ redirectUris: [`${worker.url}/v1/oauth/callback`] });
const upstream = await startUpstream({
	introspectionUrl: oauth.introspectionUrl,
	clientId: oauth.clientId,
	clientSecret: oauth.clientSecret,
});
const admin = infra.bindings.LATCHKEY_ADMIN_TOKEN as string;
const api = apiClient(worker.url);
const TENANT = `bench${Date.now().toString(36)}`;
const API_ROOT = `${upstream.url}/t/${TENANT}`;

/** workerd processes this bench started (Miniflare spawns them as its children). */
function workerdChildren(): number[] {
	try {
		return execFileSync("pgrep", ["-P", String(process.pid), "workerd"], { encoding: "utf8" })
			.split("\n")
			.filter(Boolean)
			.map(Number);
	} catch {
		return [];
	}
}

async function ok(res: Response, status = 200): Promise<boolean> {
	await res.arrayBuffer();
	return res.status === status;
}

const results: Result[] = [];
const memory: Record<string, number | string> = {};
try {
	const { key } = await benchUser(api, admin, "proxy");
	// A provider whose API root is the local upstream: the API key's and the OAuth token's target.
	await registerBenchProvider(api, admin, "bench-proxy", oauth);
	await api("/v1/admin/providers/bench-proxy", {
		method: "PUT",
		token: admin,
		json: {
			name: "Bench proxy",
			authorize_url: oauth.authorizeUrl,
			token_url: oauth.tokenUrl,
			revoke_url: oauth.revokeUrl,
			userinfo_url: oauth.userinfoUrl,
			default_scopes: ["openid", "profile"],
			client_id: oauth.clientId,
			client_secret: oauth.clientSecret,
			api_base_url: API_ROOT,
		},
	});
	const apiKey = await api<{ id: string }>("/v1/credentials", {
		method: "POST",
		token: key,
		json: { provider: "bench-proxy", type: "api_key", api_key: `ak_${crypto.randomUUID()}` },
	});
	const oauthCredential = await connectBenchOAuth(
		api,
		oauth,
		"bench-proxy",
		key,
		`bench-proxy-${Date.now()}`,
	);

	const auth = { authorization: `Bearer ${key}` };
	const leaseThenCall = (id: string, release: boolean) => async () => {
		const leasing = await fetch(`${worker.url}/v1/credentials/${id}/leases`, {
			method: "POST",
			headers: { ...auth, "content-type": "application/json" },
			body: JSON.stringify({ ttl_seconds: 60 }),
		});
		if (leasing.status !== 201) {
			await leasing.arrayBuffer();
			return false;
		}
		const lease = (await leasing.json()) as {
			lease_id: string;
			secret: { api_key?: string; access_token?: string };
		};
		const secret = lease.secret.api_key ?? lease.secret.access_token;
		const called = await ok(
			await fetch(`${API_ROOT}/fast`, { headers: { authorization: `Bearer ${secret}` } }),
		);
		if (!release) return called;
		const released = await fetch(`${worker.url}/v1/leases/${lease.lease_id}`, {
			method: "DELETE",
			headers: auth,
		});
		return called && (await ok(released, 204));
	};
	const proxied = (id: string) => async () =>
		ok(await fetch(`${worker.url}/v1/proxy/${id}/fast`, { headers: auth }));

	const runs: Scenario[] = [
		{
			name: "upstream alone",
			run: async () => ok(await fetch(`${API_ROOT}/fast`, { headers: auth })),
		},
		{ name: "API key: lease, then call", run: leaseThenCall(apiKey.id, false) },
		{ name: "API key: lease, call, release", run: leaseThenCall(apiKey.id, true) },
		{ name: "API key: proxy", run: proxied(apiKey.id) },
		{ name: "OAuth: lease, then call", run: leaseThenCall(oauthCredential.id, false) },
		{ name: "OAuth: proxy", run: proxied(oauthCredential.id) },
	];
	const settle = await makeSettle(worker.url);
	for (const c of CONCURRENCY)
		results.push(...(await measureInterleaved(runs, c, REQUESTS, { settle })));

	// Memory of large transfers, on a worker of its own with the inspector open.
	const inspectorPort = await freePort();
	const before = new Set(workerdChildren());
	const probed = await startWorker(
		{ ...bindings, LATCHKEY_PROXY_MAX_REQUEST_BYTES: String(2 ** 31) },
		{ inspectorPort },
	);
	try {
		const pid = workerdChildren().find((p) => !before.has(p));
		const inspector = await connectInspector(inspectorPort);
		const heapUsed = async () =>
			(await inspector.call<{ usedSize: number }>("Runtime.getHeapUsage")).usedSize;
		const rss = () => {
			if (pid === undefined) return Number.NaN;
			const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
			return m ? Number(m[1]) * 1024 : Number.NaN;
		};
		const sampled = async (work: () => Promise<void>) => {
			let heap = await heapUsed();
			let resident = rss();
			let stop = false;
			const sampler = (async () => {
				while (!stop) {
					heap = Math.max(heap, await heapUsed());
					resident = Math.max(resident, rss());
					await new Promise((r) => setTimeout(r, 20));
				}
			})();
			const t0 = performance.now();
			await work();
			const seconds = (performance.now() - t0) / 1000;
			stop = true;
			await sampler;
			return { heap, resident, seconds };
		};
		const mb = (bytes: number) => Number((bytes / 1024 / 1024).toFixed(1));
		// Warm the isolate (a call through the proxy), then the idle figures.
		const probedCall = (path: string, init: RequestInit = {}) =>
			fetch(`${probed.url}/v1/proxy/${apiKey.id}${path}`, {
				...init,
				headers: { ...auth, ...(init.headers as Record<string, string>) },
			});
		await (await probedCall("/fast")).arrayBuffer();
		const idle = await sampled(async () => {
			await new Promise((r) => setTimeout(r, 500));
		});
		Object.assign(memory, { idle_heap_mb: mb(idle.heap), idle_rss_mb: mb(idle.resident) });
		// Two sizes: memory that does not grow with the size is memory that does not hold the body.
		for (const megabytes of [TRANSFER_MB, 4 * TRANSFER_MB]) {
			const size = megabytes * 1024 * 1024;
			const payload = new Uint8Array(size);
			for (let i = 0; i < size; i++) payload[i] = i % 251;
			const upload = await sampled(async () => {
				const res = await probedCall("/upload", {
					method: "POST",
					headers: { "content-type": "application/octet-stream" },
					body: payload,
				});
				const body = (await res.json()) as { bytes: number; pattern_ok: boolean };
				if (body.bytes !== size || !body.pattern_ok) {
					throw new Error(`upload: ${JSON.stringify(body)}`);
				}
			});
			const download = await sampled(async () => {
				const res = await probedCall(`/download?bytes=${size}`);
				const got = (await res.arrayBuffer()).byteLength;
				if (got !== size) throw new Error(`download: ${got} bytes`);
			});
			Object.assign(memory, {
				[`upload_${megabytes}mb_peak_heap_mb`]: mb(upload.heap),
				[`upload_${megabytes}mb_peak_rss_mb`]: mb(upload.resident),
				[`upload_${megabytes}mb_per_s`]: Number((megabytes / upload.seconds).toFixed(0)),
				[`download_${megabytes}mb_peak_heap_mb`]: mb(download.heap),
				[`download_${megabytes}mb_peak_rss_mb`]: mb(download.resident),
				[`download_${megabytes}mb_per_s`]: Number((megabytes / download.seconds).toFixed(0)),
			});
		}
		inspector.close();
	} finally {
		await probed.stop();
	}
} finally {
	await upstream.close();
	await oauth.close();
	await worker.stop();
	await infra.close();
}

console.log(
	"Proxy against leasing and then calling the same upstream directly (goal: p50 ≤ 1.1×):",
);
printTable(results, (r) => {
	const kind = r.name.split(":")[0];
	if (!r.name.endsWith("proxy")) return undefined;
	return results.find(
		(b) => b.name === `${kind}: lease, then call` && b.concurrency === r.concurrency,
	);
});
console.log(
	`Worker memory while ${TRANSFER_MB} MB and ${4 * TRANSFER_MB} MB go through the proxy each way:`,
	memory,
);
saveResults("proxy", infra, { results, memory });
