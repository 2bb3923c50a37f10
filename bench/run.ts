import { mkdirSync, writeFileSync } from "node:fs";
import pg from "pg";
import { startInfra } from "../scripts/lib/infra.ts";
import { generateKey } from "../src/auth/key-format.ts";
import { benchCrypto } from "./crypto.ts";
import { makeSettle, measureInterleaved, printTable, type Result, startWorker } from "./lib.ts";

/**
 * `npm run bench`: the worker under `wrangler dev` against real Postgres and Redis (or the
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
const infra = await startInfra({ requireReal: false, label: "bench" });
console.log(
	`postgres: ${infra.postgres}, redis: ${infra.redis}, requests per scenario: ${REQUESTS}`,
);
const worker = await startWorker(infra.bindings);
const admin = infra.bindings.LATCHKEY_ADMIN_TOKEN as string;

async function api<T>(
	path: string,
	init: RequestInit & { json?: unknown; token?: string } = {},
): Promise<T> {
	const headers = new Headers(init.headers);
	if (init.token) headers.set("authorization", `Bearer ${init.token}`);
	if (init.json !== undefined) headers.set("content-type", "application/json");
	const res = await fetch(`${worker.url}${path}`, {
		...init,
		headers,
		body: init.json === undefined ? init.body : JSON.stringify(init.json),
	});
	if (!res.ok)
		throw new Error(`${init.method ?? "GET"} ${path}: ${res.status} ${await res.text()}`);
	return (await res.json()) as T;
}

const results: Result[] = [];
try {
	const user = await api<{ id: string }>("/v1/admin/users", {
		method: "POST",
		token: admin,
		json: { email: `bench-${Date.now()}@example.com` },
	});
	const { key } = await api<{ key: string }>(`/v1/admin/users/${user.id}/api-keys`, {
		method: "POST",
		token: admin,
		json: { name: "bench" },
	});
	const pair = await api<{ access_token: string }>("/v1/auth/token", {
		method: "POST",
		json: { grant_type: "api_key", api_key: key },
	});

	// Two more users holding 10 and 200 credentials, for the listing scenarios.
	const holders: Record<number, string> = {};
	for (const count of [10, 200]) {
		const holder = await api<{ id: string }>("/v1/admin/users", {
			method: "POST",
			token: admin,
			json: { email: `bench-${count}-${Date.now()}@example.com` },
		});
		const holderKey = (
			await api<{ key: string }>(`/v1/admin/users/${holder.id}/api-keys`, {
				method: "POST",
				token: admin,
				json: { name: "bench" },
			})
		).key;
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
	const uncachedCount = (REQUESTS + 300) * CONCURRENCY.length;
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

	const get = (path: string, token?: string) => (): { url: string; init?: RequestInit } => ({
		url: `${worker.url}${path}`,
		init: token ? { headers: { authorization: `Bearer ${token}` } } : undefined,
	});
	const settle = await makeSettle(worker.url);
	const uncachedRequest = () => ({
		url: `${worker.url}/v1/whoami`,
		init: { headers: { authorization: `Bearer ${uncached[uncachedNext++ % uncached.length]}` } },
	});
	for (const c of CONCURRENCY) {
		// Two groups, each interleaved with its own baseline, so the I/O-bound scenarios' leftovers
		// never land on the no-I/O ones.
		results.push(
			...(await measureInterleaved(
				[
					{ name: "/health", request: get("/health") },
					{ name: "whoami: cached API key", request: get("/v1/whoami", key) },
					{ name: "whoami: access JWT", request: get("/v1/whoami", pair.access_token) },
				],
				c,
				REQUESTS,
				{ settle },
			)),
		);
		results.push(
			...(await measureInterleaved(
				[
					{ name: "/health/ready", request: get("/health/ready") },
					{ name: "whoami: uncached API key", request: uncachedRequest },
					{ name: "list credentials: 10", request: get("/v1/credentials", holders[10]) },
					{
						name: "list credentials: 200 (limit=100)",
						request: get("/v1/credentials?limit=100", holders[200]),
					},
				],
				c,
				REQUESTS,
				{ settle },
			)),
		);
	}
} finally {
	await worker.stop();
	await infra.close();
}

const baselineName: Record<string, string> = {
	"/health/ready": "/health",
	"whoami: cached API key": "/health",
	"whoami: access JWT": "/health",
	"whoami: uncached API key": "/health/ready",
	"list credentials: 10": "/health/ready",
	"list credentials: 200 (limit=100)": "/health/ready",
};
printTable(results, (r) => {
	const name = baselineName[r.name];
	return name ? results.find((b) => b.name === name && b.concurrency === r.concurrency) : undefined;
});
mkdirSync("bench/results", { recursive: true });
writeFileSync(
	"bench/results/latest.json",
	`${JSON.stringify({ at: new Date().toISOString(), crypto_us: cryptoFigures, results }, null, 2)}\n`,
);
