import pg from "pg";
import { startOAuthServer } from "../test/setup/oauth-server.ts";
import {
	apiClient,
	benchUser,
	connectBenchOAuth,
	makeSettle,
	measureInterleaved,
	printAgainst,
	type RequestScenario,
	type Result,
	registerBenchProvider,
	saveResults,
	startBenchWorker,
	startInfraProcess,
	timingCalls,
	UNLIMITED_LEASES,
} from "./lib.ts";

/**
 * `npm run bench` (leases): the worker on `npm start`'s runtime (`--dev`: `wrangler dev`) against real Postgres and Redis (or
 * the embedded engines, said loudly), a real authorization server (oidc-provider) for the OAuth
 * credential, real HTTP. Prints, per lease, the Postgres round trips counted at the SQL bridge
 * and the Redis calls the worker reports in Server-Timing; latency and throughput at c=1 and
 * c=32 next to /health of the same run; and the thundering herd: 500 concurrent leases of an
 * expired token, with the token-endpoint calls counted at the authorization server.
 */
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 2000);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? "1,32").split(",").map(Number);
const HERD = Number(process.env.BENCH_HERD ?? 500);
const METADATA_READ = "metadata read: GET /v1/credentials/{id}";
/** Live leases whose Redis footprint is measured. */
const MEMORY_LEASES = Number(process.env.BENCH_MEMORY_LEASES ?? 2000);

const infra = await startInfraProcess();
const RTT_MS = Number(process.env.BENCH_RTT_MS ?? 0);
console.log(
	`postgres: ${infra.postgres}, redis: ${infra.redis}, requests per scenario: ${REQUESTS}${RTT_MS ? `, ${RTT_MS} ms added to every Postgres and Redis round trip (BENCH_RTT_MS)` : ""}`,
);
// The bench measures speed, so the per-key lease rate and the per-credential cap are lifted:
// thousands of 60 s leases of one credential within a minute would otherwise (rightly) be 429.
const worker = await startBenchWorker(infra, UNLIMITED_LEASES);
// The same worker with the fast path off: the serial lease (row read, then grant) as the
// baseline of the same run.
const serialWorker = await startBenchWorker(infra, {
	...UNLIMITED_LEASES,
	LATCHKEY_LEASE_FAST_PATH: "off",
}).catch(async (err) => {
	await worker.stop();
	throw err;
});
const oauth = await startOAuthServer({ redirectUris: [`${worker.url}/v1/oauth/callback`] });
const admin = infra.bindings.LATCHKEY_ADMIN_TOKEN as string;

const api = apiClient(worker.url);

const redisCalls = (res: Response) => timingCalls(res, "redis");

const accessTokensIssued = async (account: string) => {
	const res = await fetch(`${oauth.tokensUrl}?account=${account}`);
	return ((await res.json()) as Record<string, number>)["access_token.saved"] ?? 0;
};

const results: Result[] = [];
/**
 * Per lease: Postgres requests counted at the SQL stand-in (all of them, the audit event written
 * after the response included), those the worker made before answering (Server-Timing), and
 * Redis calls before answering.
 */
const perLease: Record<string, { pg: number; pgInRequest: number; redis: number }> = {};
let herd: Record<string, number | string> = {};
let memory: Record<string, number> = {};
try {
	const { key } = await benchUser(api, admin, "lease");
	const apiKey = await api<{ id: string }>("/v1/credentials", {
		method: "POST",
		token: key,
		json: { provider: "bench", type: "api_key", api_key: `secret-${crypto.randomUUID()}` },
	});

	// An OAuth credential connected the way a user connects one.
	await registerBenchProvider(api, admin, "bench-idp", oauth);
	const account = `bench-${Date.now()}`;
	const oauthCredential = await connectBenchOAuth(api, oauth, "bench-idp", key, account);

	/**
	 * What a lease leaves in Redis: used_memory before and after MEMORY_LEASES live leases of one
	 * credential, after they are released (the records stay 5 minutes, for the 410), and the
	 * longest any of those keys still has to live. Asked through the same REST bridge the worker
	 * uses.
	 */
	const redisCommand = async <T>(...command: (string | number)[]): Promise<T> => {
		const res = await fetch(infra.bindings.UPSTASH_REDIS_REST_URL as string, {
			method: "POST",
			headers: { authorization: `Bearer ${infra.bindings.UPSTASH_REDIS_REST_TOKEN}` },
			body: JSON.stringify(command),
		});
		return ((await res.json()) as { result: T }).result;
	};
	const usedMemory = async () => {
		const info = await redisCommand<string>("INFO", "memory");
		return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? Number.NaN);
	};
	const leaseMemory = async (credentialId: string) => {
		const taken: string[] = [];
		const before = await usedMemory();
		for (let i = 0; i < MEMORY_LEASES; i += 50) {
			const batch = await Promise.all(
				Array.from({ length: 50 }, async () => {
					const { url, init } = lease(credentialId)();
					const res = await fetch(url, init);
					if (res.status !== 201) throw new Error(`memory lease: ${res.status}`);
					return ((await res.json()) as { lease_id: string }).lease_id;
				}),
			);
			taken.push(...batch);
		}
		const live = await usedMemory();
		const tag = `{${credentialId}}`;
		const oneRecord = await redisCommand<number>(
			"MEMORY",
			"USAGE",
			`lk:lease:${tag}:l:${taken[0]}`,
		);
		for (let i = 0; i < taken.length; i += 50) {
			await Promise.all(
				taken.slice(i, i + 50).map((id) =>
					fetch(`${worker.url}/v1/leases/${id}`, {
						method: "DELETE",
						headers: { authorization: `Bearer ${key}` },
					}).then((r) => r.arrayBuffer()),
				),
			);
		}
		const released = await usedMemory();
		let longestTtlMs = 0;
		for (const id of taken.slice(0, 50)) {
			longestTtlMs = Math.max(
				longestTtlMs,
				await redisCommand<number>("PTTL", `lk:lease:${tag}:l:${id}`),
			);
		}
		const holders = await redisCommand<number>("ZCARD", `lk:lease:${tag}:holders`);
		return {
			leases: MEMORY_LEASES,
			bytes_per_live_lease: Math.round((live - before) / MEMORY_LEASES),
			memory_usage_of_one_record: oneRecord,
			bytes_per_lease_after_release: Math.round((released - before) / MEMORY_LEASES),
			holders_left_after_release: holders,
			longest_ttl_left_s: Math.round(longestTtlMs / 1000),
		};
	};

	const lease =
		(id: string, base = worker.url) =>
		() => ({
			url: `${base}/v1/credentials/${id}/leases`,
			init: {
				method: "POST",
				headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
				body: JSON.stringify({ ttl_seconds: 60 }),
			},
		});
	const scenarios: RequestScenario[] = [
		{ name: "/health", request: () => ({ url: `${worker.url}/health` }) },
		// The lease's natural yardstick: one authenticated read of the same row, no secret.
		{
			name: METADATA_READ,
			request: () => ({
				url: `${worker.url}/v1/credentials/${apiKey.id}`,
				init: { headers: { authorization: `Bearer ${key}` } },
			}),
		},
		{ name: "lease: stored API key", request: lease(apiKey.id), expectStatus: 201 },
		{
			name: "lease: stored API key, serial (LATCHKEY_LEASE_FAST_PATH=off)",
			request: lease(apiKey.id, serialWorker.url),
			expectStatus: 201,
		},
		{ name: "lease: fresh OAuth token", request: lease(oauthCredential.id), expectStatus: 201 },
	];
	const settle = await makeSettle(worker.url);

	// Round trips per lease, counted where they arrive (Postgres) or as the worker made them (Redis).
	for (const s of scenarios.filter((s) => s.name.startsWith("lease"))) {
		await settle();
		const before = await infra.sqlStats();
		const n = 50;
		let redis = 0;
		let pgInRequest = 0;
		for (let i = 0; i < n; i++) {
			const { url, init } = s.request(i);
			const res = await fetch(url, init);
			await res.arrayBuffer();
			if (res.status !== 201) throw new Error(`${s.name}: ${res.status}`);
			redis += redisCalls(res);
			pgInRequest += timingCalls(res, "pg");
		}
		await settle();
		const after = await infra.sqlStats();
		perLease[s.name] = {
			pg: (after.requests - before.requests) / n,
			pgInRequest: pgInRequest / n,
			redis: redis / n,
		};
	}
	console.log("Per lease:");
	for (const [name, c] of Object.entries(perLease)) {
		console.log(
			`  ${name}: ${c.pgInRequest.toFixed(2)} Postgres round trips and ${c.redis.toFixed(2)} Redis calls before the response; ${c.pg.toFixed(2)} Postgres requests in all (after the response: last_used_at, the audit event)`,
		);
	}

	memory = await leaseMemory(apiKey.id);
	console.log("Redis memory of lease bookkeeping:", memory);

	for (const c of CONCURRENCY) {
		results.push(...(await measureInterleaved(scenarios, c, REQUESTS, { settle })));
	}

	// Thundering herd: HERD leases arrive at once. First on the fresh token (the same burst with
	// no refresh: the baseline), then on the token expired.
	const burst = async (label: string) => {
		await settle();
		const issuedBefore = await accessTokensIssued(account);
		const latencies: number[] = [];
		const tokens = new Set<string>();
		let failures = 0;
		const failureCodes: Record<string, number> = {};
		const t0 = performance.now();
		await Promise.all(
			Array.from({ length: HERD }, async () => {
				const { url, init } = lease(oauthCredential.id)();
				const s = performance.now();
				const res = await fetch(url, init);
				const text = await res.text();
				let body: { secret?: { access_token?: string } } = {};
				try {
					body = JSON.parse(text);
				} catch {
					// Counted as a failure below (e.g. wrangler restarting the worker mid-request).
				}
				latencies.push(performance.now() - s);
				if (res.status !== 201 || !body.secret) {
					failures++;
					const code = `${res.status} ${(body as { error?: { code?: string } }).error?.code ?? text.slice(0, 40)}`;
					failureCodes[code] = (failureCodes[code] ?? 0) + 1;
				} else if (body.secret?.access_token) tokens.add(body.secret.access_token);
			}),
		);
		latencies.sort((a, b) => a - b);
		const figures = {
			leases: HERD,
			provider_calls: (await accessTokensIssued(account)) - issuedBefore,
			failures,
			...(failures ? { failure_codes: JSON.stringify(failureCodes) } : {}),
			distinct_tokens: tokens.size,
			p50_ms: Math.round(latencies[Math.floor(latencies.length / 2)] ?? 0),
			p99_ms: Math.round(latencies[Math.ceil(latencies.length * 0.99) - 1] ?? 0),
			seconds: Number(((performance.now() - t0) / 1000).toFixed(2)),
		};
		console.log(`${label}:`, figures);
		return figures;
	};
	// BENCH_HERD=0 skips the herd (the RTT run of `npm run bench` measures latency only).
	if (HERD > 0) {
		const fresh = await burst("Burst of leases, fresh token (baseline)");
		const db = new pg.Client({ connectionString: infra.databaseUrl });
		await db.connect();
		await db.query(
			"update credentials set access_token_expires_at = now() - interval '1 minute', token_issued_at = now() - interval '61 minutes' where id = $1",
			[oauthCredential.id],
		);
		await db.end();
		const expired = await burst("Thundering herd, expired token");
		herd = {
			...expired,
			baseline_p50_ms: fresh.p50_ms,
			baseline_p99_ms: fresh.p99_ms,
			p99_vs_baseline: Number((expired.p99_ms / Math.max(fresh.p99_ms, 1)).toFixed(2)),
		};
	}
} finally {
	await oauth.close();
	await worker.stop();
	await serialWorker.stop();
	await infra.close();
}

printAgainst(results, "/health");
console.log("Against the metadata read of the same credential:");
printAgainst(results, METADATA_READ);
saveResults(RTT_MS ? `leases-rtt-${RTT_MS}ms` : "leases", infra, {
	rtt_ms: RTT_MS,
	per_lease: perLease,
	herd,
	memory,
	results,
});
