import { fork } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../scripts/lib/net.ts";
import { serveWorker } from "../scripts/lib/serve.ts";
import {
	ROOT,
	spawnWranglerDev,
	stopChild,
	waitUntilServing,
	writeVarsFile,
} from "../scripts/lib/wrangler.ts";

export interface BenchInfra {
	bindings: Record<string, string>;
	postgres: "real" | "embedded";
	redis: "real" | "embedded";
	databaseUrl: string;
	/** Requests and statements the SQL bridge has served so far. */
	sqlStats(): Promise<{ requests: number; statements: number }>;
	close(): Promise<void>;
}

/** Starts `bench/infra-process.ts` in a child process; see there for why. */
export async function startInfraProcess(): Promise<BenchInfra> {
	const child = fork(join(ROOT, "bench/infra-process.ts"), [], {
		execArgv: ["--import", "tsx"],
		stdio: ["ignore", "inherit", "inherit", "ipc"],
	});
	const next = <T>(key: string) =>
		new Promise<T>((resolve, reject) => {
			const onMessage = (message: Record<string, unknown>) => {
				if (!(key in message)) return;
				child.off("message", onMessage);
				child.off("exit", onExit);
				resolve(message as T);
			};
			const onExit = (code: number | null) => reject(new Error(`infra process exited (${code})`));
			child.on("message", onMessage);
			child.once("exit", onExit);
		});
	const { infra } = await next<{ infra: Omit<BenchInfra, "sqlStats" | "close"> }>("ready");
	return {
		...infra,
		sqlStats: async () => {
			const reply = next<{ stats: { requests: number; statements: number } }>("stats");
			child.send("stats");
			return (await reply).stats;
		},
		close: async () => {
			if (child.exitCode !== null) return;
			const exited = new Promise((resolve) => child.once("exit", resolve));
			child.send("close");
			await exited;
		},
	};
}

export interface Worker {
	url: string;
	stop(): Promise<void>;
}

/**
 * `--dev` or BENCH_DEV=1 measures under `wrangler dev` instead of `npm start`'s runtime. Its
 * proxy relays DevTools network events for every outbound fetch, which adds 3–4 ms to each
 * Postgres or Redis round trip and drops connections under a burst of hundreds of requests.
 */
const UNDER_WRANGLER_DEV = process.argv.includes("--dev") || process.env.BENCH_DEV === "1";

/**
 * Runs the real worker on workerd with the given bindings: as `npm start` serves it (the
 * deploy bundle through Miniflare's API), or under `wrangler dev` (see UNDER_WRANGLER_DEV).
 */
/**
 * What most benches start with: the infrastructure in its own process (its engines printed), the
 * worker on it (with `extra` bindings), the admin token and an API client; the infrastructure is
 * closed again when the worker fails to start.
 */
export async function startBenchStack(
	header: string,
	extra: Record<string, string> = {},
): Promise<{
	infra: BenchInfra;
	worker: Worker;
	admin: string;
	api: ReturnType<typeof apiClient>;
}> {
	const infra = await startInfraProcess();
	console.log(`postgres: ${infra.postgres}, redis: ${infra.redis}, ${header}`);
	const worker = await startBenchWorker(infra, extra);
	return {
		infra,
		worker,
		admin: infra.bindings.LATCHKEY_ADMIN_TOKEN as string,
		api: apiClient(worker.url),
	};
}

export async function startWorker(
	bindings: Record<string, string>,
	options: {
		onStdout?: (text: string) => void;
		/** Opens workerd's inspector on this loopback port (`npm start`'s runtime only). */
		inspectorPort?: number;
	} = {},
): Promise<Worker> {
	const port = await freePort();
	const publicUrl = `http://127.0.0.1:${port}`;
	if (!UNDER_WRANGLER_DEV) {
		const buildDir = join(ROOT, ".latchkey", `bench-build-${port}`);
		const served = await serveWorker({
			bindings: { ...bindings, LATCHKEY_PUBLIC_URL: publicUrl },
			host: "127.0.0.1",
			port,
			buildDir,
			quietStdout: true,
			...(options.onStdout ? { onStdout: options.onStdout } : {}),
			...(options.inspectorPort === undefined ? {} : { inspectorPort: options.inspectorPort }),
		}).catch((err: unknown) => {
			rmSync(buildDir, { recursive: true, force: true });
			throw err;
		});
		return {
			url: served.url,
			stop: async () => {
				await served.dispose();
				rmSync(buildDir, { recursive: true, force: true });
			},
		};
	}
	const dir = join(ROOT, ".latchkey");
	mkdirSync(dir, { recursive: true });
	const envFile = join(dir, `bench-${port}.vars`);
	await writeVarsFile(envFile, { ...bindings, LATCHKEY_PUBLIC_URL: publicUrl });
	const child = spawnWranglerDev({
		port,
		envFile,
		stdio: ["ignore", "ignore", "inherit"],
		extraArgs: ["--log-level", "error", "--show-interactive-dev-session=false"],
	});
	const stop = async () => {
		await stopChild(child);
		rmSync(envFile, { force: true });
	};
	if (!(await waitUntilServing(`${publicUrl}/health`, child))) {
		await stop();
		throw new Error("wrangler dev did not come up");
	}
	return { url: publicUrl, stop };
}

/** The lease limits lifted: benches measure speed, and would rightly be refused by the defaults. */
export const UNLIMITED_LEASES = {
	LATCHKEY_LEASE_BURST: "0",
	LATCHKEY_MAX_LEASES_PER_CREDENTIAL: "100000",
} as const;

/** startWorker on the infrastructure's bindings; the infrastructure is closed if it fails. */
export function startBenchWorker(
	infra: Pick<BenchInfra, "bindings" | "close">,
	extra: Record<string, string> = {},
	options: Parameters<typeof startWorker>[1] = {},
): Promise<Worker> {
	return startWorker({ ...infra.bindings, ...extra }, options).catch(async (err) => {
		await infra.close();
		throw err;
	});
}

export interface Result {
	name: string;
	concurrency: number;
	requests: number;
	rps: number;
	p50: number;
	p99: number;
	errors: number;
}

function percentile(sorted: number[], p: number): number {
	if (sorted.length === 0) return Number.NaN;
	const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
	return sorted[i] as number;
}

export type Scenario =
	| {
			name: string;
			/** Builds the i-th request, so scenarios can vary credentials per request. */
			request: (i: number) => { url: string; init?: RequestInit };
			expectStatus?: number;
	  }
	| {
			name: string;
			/** One call made of several requests (what an agent does for one call); false if any failed. */
			run: (i: number) => Promise<boolean>;
	  };

/** A scenario of one HTTP request per call (its round trips can be counted). */
export type RequestScenario = Extract<Scenario, { request: unknown }>;

/** One timed call of a scenario: whether it succeeded. */
async function callOnce(scenario: Scenario, i: number): Promise<boolean> {
	if ("run" in scenario) return scenario.run(i);
	const { url, init } = scenario.request(i);
	const res = await fetch(url, init);
	await res.arrayBuffer();
	return res.status === (scenario.expectStatus ?? 200);
}

async function closedLoop(
	scenario: Scenario,
	concurrency: number,
	total: number,
	offset: number,
	record: number[] | null,
): Promise<{ errors: number; seconds: number }> {
	let next = 0;
	let errors = 0;
	const client = async () => {
		for (;;) {
			const i = next++;
			if (i >= total) return;
			const t0 = performance.now();
			const ok = await callOnce(scenario, offset + i);
			record?.push(performance.now() - t0);
			if (!ok) errors++;
		}
	};
	const t0 = performance.now();
	await Promise.all(Array.from({ length: concurrency }, client));
	return { errors, seconds: (performance.now() - t0) / 1000 };
}

/**
 * Closed-loop load (`concurrency` clients, each sending its next request when the previous one
 * answers), interleaved: the scenarios take turns in `rounds` rounds, so background noise on a
 * shared machine lands on a scenario and its baseline alike.
 */
export async function measureInterleaved(
	scenarios: Scenario[],
	concurrency: number,
	requests: number,
	opts: { rounds?: number; settle?: () => Promise<void> } = {},
): Promise<Result[]> {
	const rounds = opts.rounds ?? 5;
	const settle = opts.settle ?? (async () => {});
	const perRound = Math.ceil(requests / rounds);
	for (const s of scenarios)
		await closedLoop(s, concurrency, Math.min(100, perRound), 1_000_000, null);
	const acc = scenarios.map(() => ({ latencies: [] as number[], errors: 0, seconds: 0 }));
	for (let round = 0; round < rounds; round++) {
		for (const [k, s] of scenarios.entries()) {
			await settle();
			const a = acc[k] as (typeof acc)[number];
			const r = await closedLoop(s, concurrency, perRound, round * perRound, a.latencies);
			a.errors += r.errors;
			a.seconds += r.seconds;
		}
	}
	return scenarios.map((s, k) => {
		const a = acc[k] as (typeof acc)[number];
		a.latencies.sort((x, y) => x - y);
		const result: Result = {
			name: s.name,
			concurrency,
			requests: a.latencies.length,
			rps: a.latencies.length / a.seconds,
			p50: percentile(a.latencies, 50),
			p99: percentile(a.latencies, 99),
			errors: a.errors,
		};
		console.log(
			`  ${s.name} (c=${concurrency}): ${result.rps.toFixed(0)} req/s, p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms${result.errors ? `, ${result.errors} errors` : ""}`,
		);
		return result;
	});
}

/**
 * Waits until the worker is idle again: work a previous block left behind (pools closing in
 * waitUntil, background writes) must not be billed to the next scenario. Idle means five
 * sequential /health answers in a row within twice the idle latency measured at start; bounded.
 */
export async function makeSettle(url: string): Promise<() => Promise<void>> {
	const probe = async () => {
		const t0 = performance.now();
		await (await fetch(`${url}/health`)).arrayBuffer();
		return performance.now() - t0;
	};
	const idle: number[] = [];
	for (let i = 0; i < 30; i++) idle.push(await probe());
	idle.sort((a, b) => a - b);
	const threshold = Math.max(2, 2 * (idle[Math.floor(idle.length / 2)] as number));
	return async () => {
		const deadline = performance.now() + 15_000;
		let calm = 0;
		while (calm < 5 && performance.now() < deadline)
			calm = (await probe()) <= threshold ? calm + 1 : 0;
	};
}

export function printTable(results: Result[], baselineOf: (r: Result) => Result | undefined): void {
	const rows = results.map((r) => {
		const base = baselineOf(r);
		const ratio = (a: number, b: number | undefined) => (b ? (a / b).toFixed(2) : "—");
		return {
			scenario: r.name,
			c: r.concurrency,
			"req/s": r.rps.toFixed(0),
			"p50 ms": r.p50.toFixed(2),
			"p99 ms": r.p99.toFixed(2),
			baseline: base && base !== r ? base.name : "—",
			"p50 ×": base && base !== r ? ratio(r.p50, base.p50) : "—",
			"p99 ×": base && base !== r ? ratio(r.p99, base.p99) : "—",
			"req/s ×": base && base !== r ? ratio(r.rps, base.rps) : "—",
			errors: r.errors,
		};
	});
	console.table(rows);
}

export type ApiInit = RequestInit & { json?: unknown; token?: string };

/** A JSON client for the worker under test; any non-2xx answer throws with its body. */
export function apiClient(baseUrl: string) {
	return async function api<T>(path: string, init: ApiInit = {}): Promise<T> {
		const headers = new Headers(init.headers);
		if (init.token) headers.set("authorization", `Bearer ${init.token}`);
		if (init.json !== undefined) headers.set("content-type", "application/json");
		const res = await fetch(`${baseUrl}${path}`, {
			...init,
			headers,
			body: init.json === undefined ? init.body : JSON.stringify(init.json),
		});
		if (!res.ok)
			throw new Error(`${init.method ?? "GET"} ${path}: ${res.status} ${await res.text()}`);
		return (await res.json()) as T;
	};
}

/** Calls of one Server-Timing metric the worker reports (e.g. `redis`). */
export function timingCalls(res: Response, metric: string): number {
	const m = new RegExp(`(?:^|, )${metric};dur=[\\d.]+;desc="(\\d+) calls?"`).exec(
		res.headers.get("server-timing") ?? "",
	);
	return m ? Number(m[1]) : 0;
}

/** A fresh user and an API key with every user scope, through the admin routes. */
export async function benchUser(
	api: ReturnType<typeof apiClient>,
	admin: string,
	label: string,
): Promise<{ id: string; key: string }> {
	const user = await api<{ id: string }>("/v1/admin/users", {
		method: "POST",
		token: admin,
		json: { email: `bench-${label}-${Date.now()}-${crypto.randomUUID().slice(0, 8)}@example.com` },
	});
	const { key } = await api<{ key: string }>(`/v1/admin/users/${user.id}/api-keys`, {
		method: "POST",
		token: admin,
		json: { name: "bench" },
	});
	return { id: user.id, key };
}

/** The table of every result next to `baseline` measured in the same run and concurrency. */
export function printAgainst(results: Result[], baseline: string): void {
	printTable(results, (r) =>
		results.find((b) => b.name === baseline && b.concurrency === r.concurrency),
	);
}

/** Writes `bench/results/<name>.json`: when, on which engines, and the bench's own figures. */
export function saveResults(
	name: string,
	infra: Pick<BenchInfra, "postgres" | "redis">,
	figures: Record<string, unknown>,
): void {
	mkdirSync("bench/results", { recursive: true });
	const record = {
		at: new Date().toISOString(),
		// wrangler dev's relay adds ~4 ms to every outbound fetch: a figure must say where it was taken.
		runtime: UNDER_WRANGLER_DEV ? "wrangler dev" : "npm start (workerd via Miniflare)",
		engines: { postgres: infra.postgres, redis: infra.redis },
		...figures,
	};
	writeFileSync(`bench/results/${name}.json`, `${JSON.stringify(record, null, 2)}\n`);
}

/** What the benches need of the local authorization server (test/setup/oauth-server.ts). */
export interface BenchAuthServer {
	authorizeUrl: string;
	tokenUrl: string;
	revokeUrl: string;
	userinfoUrl: string;
	clientId: string;
	clientSecret: string;
	driveUrl: string;
}

type Api = ReturnType<typeof apiClient>;

/** Registers the local authorization server as provider `id`, as an admin would. */
export async function registerBenchProvider(
	api: Api,
	admin: string,
	id: string,
	as: BenchAuthServer,
): Promise<void> {
	await api(`/v1/admin/providers/${id}`, {
		method: "PUT",
		token: admin,
		json: {
			name: `Bench ${id}`,
			authorize_url: as.authorizeUrl,
			token_url: as.tokenUrl,
			revoke_url: as.revokeUrl,
			userinfo_url: as.userinfoUrl,
			default_scopes: ["openid", "profile"],
			scope_separator: " ",
			pkce: true,
			client_auth: "basic",
			authorize_params: {},
			client_id: as.clientId,
			client_secret: as.clientSecret,
		},
	});
}

/**
 * An OAuth credential connected the way a platform's front end connects one: authorize, the
 * user logs in at the server as `account`, the redirect's code and state go to the POST callback.
 */
export async function connectBenchOAuth(
	api: Api,
	as: BenchAuthServer,
	provider: string,
	key: string,
	account: string,
): Promise<{ id: string }> {
	const started = await api<{ authorization_url: string }>(`/v1/oauth/${provider}/authorize`, {
		method: "POST",
		token: key,
		json: {},
	});
	const driven = (await (
		await fetch(as.driveUrl, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ authorization_url: started.authorization_url, username: account }),
		})
	).json()) as { redirect: string };
	const back = new URL(driven.redirect);
	return api<{ id: string }>("/v1/oauth/callback", {
		method: "POST",
		token: key,
		json: { code: back.searchParams.get("code"), state: back.searchParams.get("state") },
	});
}
