import pg from "pg";
import { generateKey } from "../src/auth/key-format.ts";
import { benchCrypto } from "./crypto.ts";
import {
	benchUser,
	makeSettle,
	measureInterleaved,
	printAgainst,
	type RequestScenario,
	type Result,
	saveResults,
	startBenchStack,
} from "./lib.ts";

/**
 * `npm run bench`: the worker on `npm start`'s runtime (`--dev`: `wrangler dev`) against real Postgres and Redis (or the
 * embedded engines when those are absent, said loudly), driven over real HTTP. Every figure is
 * reported next to a baseline measured in the same run, because absolute numbers on a shared
 * two-core machine mean little.
 */
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 2000);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? "1,32").split(",").map(Number);

async function sha256Hex(text: string): Promise<string> {
	const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
	return Buffer.from(digest).toString("hex");
}

const cryptoFigures = await benchCrypto();
const { infra, worker, admin, api } = await startBenchStack(`requests per scenario: ${REQUESTS}`);

const results: Result[] = [];
const roundTrips: Record<string, { http: number; statements: number }> = {};
try {
	const user = await benchUser(api, admin, "main");
	const { key } = user;
	const pair = await api<{ access_token: string }>("/v1/auth/token", {
		method: "POST",
		json: { grant_type: "api_key", api_key: key },
	});

	// Another user holding 200 credentials, for the listing scenario.
	const holders: Record<number, string> = {};
	for (const count of [200]) {
		const holderKey = (await benchUser(api, admin, `holder-${count}`)).key;
		for (let i = 0; i < count; i++) {
			await api("/v1/credentials", {
				method: "POST",
				token: holderKey,
				json: {
					provider: "bench",
					type: "api_key",
					api_key: `secret-${i}-${crypto.randomUUID()}`,
					title: `bench ${i}`,
				},
			});
		}
		holders[count] = holderKey;
	}

	// Uncached keys: one distinct key per request, inserted straight into the database, so no
	// request can hit the 10 s isolate cache.
	const uncachedCount = (REQUESTS + 400) * CONCURRENCY.length;
	const uncached: string[] = [];
	const db = new pg.Client({ connectionString: infra.databaseUrl });
	await db.connect();
	for (let start = 0; start < uncachedCount; start += 500) {
		const batch = Array.from({ length: Math.min(500, uncachedCount - start) }, () => generateKey());
		const values: unknown[] = [];
		const rows = await Promise.all(
			batch.map(async (k, i) => {
				values.push(k.id, user.id, await sha256Hex(k.secret));
				return `($${i * 3 + 1}, $${i * 3 + 2}, 'bench', 'standard', $${i * 3 + 3}, '{credentials:read}')`;
			}),
		);
		await db.query(
			`insert into api_keys (id, user_id, name, kind, secret_hash, scopes) values ${rows.join(",")}`,
			values,
		);
		uncached.push(...batch.map((k) => k.key));
	}
	await db.end();
	let uncachedNext = 0;

	const credential = await api<{ id: string }>("/v1/credentials", {
		method: "POST",
		token: key,
		json: { provider: "bench", type: "api_key", api_key: `secret-${crypto.randomUUID()}` },
	});

	const get = (path: string, token?: string) => (): { url: string; init?: RequestInit } => ({
		url: `${worker.url}${path}`,
		init: token ? { headers: { authorization: `Bearer ${token}` } } : undefined,
	});
	const exchange = () => ({
		url: `${worker.url}/v1/auth/token`,
		init: {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ grant_type: "api_key", api_key: key }),
		},
	});
	const settle = await makeSettle(worker.url);
	const uncachedRequest = () => ({
		url: `${worker.url}/v1/whoami`,
		init: { headers: { authorization: `Bearer ${uncached[uncachedNext++ % uncached.length]}` } },
	});
	const scenarios: RequestScenario[] = [
		{ name: "/health", request: get("/health") },
		{ name: "/health/ready", request: get("/health/ready") },
		{ name: "whoami: cached API key (no query)", request: get("/v1/whoami", key) },
		{ name: "whoami: access JWT (no query)", request: get("/v1/whoami", pair.access_token) },
		{ name: "GET /v1/me (cached key)", request: get("/v1/me", key) },
		{
			name: "GET /v1/credentials/{id} (cached key)",
			request: get(`/v1/credentials/${credential.id}`, key),
		},
		{
			name: "GET /v1/credentials/{id} (access JWT)",
			request: get(`/v1/credentials/${credential.id}`, pair.access_token),
		},
		{
			name: "list: 200 credentials, page of 100",
			request: get("/v1/credentials?limit=100", holders[200]),
		},
		{ name: "POST /v1/auth/token (api_key grant)", request: exchange },
		{ name: "whoami: uncached API key", request: uncachedRequest },
	];

	// Round trips each request makes to Postgres, counted where they arrive: at the stand-in for
	// Neon's HTTP endpoint (statements and batches) and at the WebSocket bridge (connections).
	for (const s of scenarios) {
		await settle();
		const before = await infra.sqlStats();
		const n = 50;
		for (let i = 0; i < n; i++) {
			const { url, init } = s.request(2_000_000 + i);
			await (await fetch(url, init)).arrayBuffer();
		}
		await settle();
		const after = await infra.sqlStats();
		roundTrips[s.name] = {
			http: (after.requests - before.requests) / n,
			statements: (after.statements - before.statements) / n,
		};
	}
	console.log("Postgres round trips per request (HTTP requests to the SQL endpoint):");
	for (const [name, rt] of Object.entries(roundTrips)) {
		console.log(
			`  ${name}: ${rt.http.toFixed(2)} round trips, ${rt.statements.toFixed(2)} statements`,
		);
	}

	for (const c of CONCURRENCY) {
		results.push(...(await measureInterleaved(scenarios, c, REQUESTS, { settle })));
	}
} finally {
	await worker.stop();
	await infra.close();
}

// Every figure against /health of the same run and concurrency: the cost of the worker and of
// wrangler's local proxy, with no I/O.
printAgainst(results, "/health");
saveResults("latest", infra, {
	crypto_us: cryptoFigures,
	pg_round_trips: roundTrips,
	results,
});
