import pg from "pg";
import { freePort } from "../scripts/lib/net.ts";
import { startOAuthServer } from "../test/setup/oauth-server.ts";
import { connectInspector } from "./cdp.ts";
import {
	apiClient,
	benchUser,
	connectBenchOAuth,
	registerBenchProvider,
	startBenchWorker,
	startInfraProcess,
	UNLIMITED_LEASES,
} from "./lib.ts";

/**
 * `npx tsx bench/heap.ts`: the worker's JavaScript heap per in-flight lease, on `npm start`'s
 * runtime (the deploy bundle on workerd through Miniflare), read over workerd's inspector with
 * the Chrome DevTools Protocol (Runtime.getHeapUsage; HeapProfiler.collectGarbage for the
 * retained figures). Leases are held in flight by a herd on an expired OAuth token whose refresh
 * the authorization server delays (its token-fault control): one lease refreshes, the others
 * wait for it, all inside the one isolate. Prints the heap before, with ~100 leases in flight,
 * per in-flight lease, and the peak during a burst of 500, against Workers' 128 MB limit.
 */
const IN_FLIGHT = Number(process.env.BENCH_HEAP_IN_FLIGHT ?? 100);
const BURST = Number(process.env.BENCH_HEAP_BURST ?? 500);
/** How long the provider sits on the refresh: long enough to sample, short of the lease wait. */
const DELAY_MS = Number(process.env.BENCH_HEAP_DELAY_MS ?? 6000);
const LIMIT_MB = 128;

/** Heap figures over workerd's inspector. */
async function inspect(port: number) {
	let chunks: string[] = [];
	const { call, close } = await connectInspector(port, (method, params) => {
		if (method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(String(params.chunk ?? ""));
	});
	return {
		/** Bytes of the isolate's JS heap in use (garbage not yet collected included). */
		used: async () => (await call<{ usedSize: number }>("Runtime.getHeapUsage")).usedSize,
		/**
		 * What is retained: the sum of the objects' sizes in a heap snapshot, which V8 takes after
		 * a full collection (workerd's inspector does not answer HeapProfiler.collectGarbage).
		 */
		retained: async () => {
			chunks = [];
			await call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
			const snapshot = JSON.parse(chunks.join("")) as {
				snapshot: { meta: { node_fields: string[] } };
				nodes: number[];
			};
			chunks = [];
			const fields = snapshot.snapshot.meta.node_fields;
			const selfSize = fields.indexOf("self_size");
			let total = 0;
			for (let i = selfSize; i < snapshot.nodes.length; i += fields.length) {
				total += snapshot.nodes[i] as number;
			}
			return total;
		},
		close,
	};
}

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const kb = (bytes: number) => (bytes / 1024).toFixed(1);

const infra = await startInfraProcess();
const inspectorPort = await freePort();
const served = await startBenchWorker(infra, UNLIMITED_LEASES, { inspectorPort });
const oauth = await startOAuthServer({ redirectUris: [`${served.url}/v1/oauth/callback`] });
console.error("[heap] worker and authorization server up; connecting the inspector");
const heap = await inspect(inspectorPort);
console.error("[heap] inspector connected");
const admin = infra.bindings.LATCHKEY_ADMIN_TOKEN as string;
const api = apiClient(served.url);
const figures: Record<string, string | number> = {};

try {
	const { key } = await benchUser(api, admin, "heap");
	await registerBenchProvider(api, admin, "bench-idp", oauth);
	const account = `heap-${Date.now()}`;
	const credential = await connectBenchOAuth(api, oauth, "bench-idp", key, account);
	const lease = () =>
		fetch(`${served.url}/v1/credentials/${credential.id}/leases`, {
			method: "POST",
			headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
			body: JSON.stringify({ ttl_seconds: 60 }),
		}).then(async (res) => ({ status: res.status, body: await res.text() }));

	console.error("[heap] credential connected");
	// Warm: the code paths compiled and the connections open, so the baseline is the steady state.
	for (let i = 0; i < 20; i++) await lease();
	const db = new pg.Client({ connectionString: infra.databaseUrl });
	db.on("error", () => {});
	await db.connect();
	const expire = () =>
		db.query(
			"update credentials set access_token_expires_at = now() - interval '1 minute', token_issued_at = now() - interval '61 minutes' where id = $1",
			[credential.id],
		);
	const delayRefresh = () =>
		fetch(oauth.tokenFaultsUrl, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ rules: [{ account, mode: "delay", delay_ms: DELAY_MS, times: 1 }] }),
		}).then((r) => r.body?.cancel());
	const delaysApplied = async () =>
		((await (await fetch(oauth.tokenFaultsUrl)).json()) as { applied: unknown[] }).applied.length;

	/**
	 * `n` leases at once on the expired token while the refresh is held; samples the heap every
	 * 25 ms until they are answered. `retainedAt` (ms after the provider got the refresh) takes
	 * one retained figure, after a full collection, with every lease still waiting.
	 */
	const herd = async (n: number, retainedAt?: number) => {
		await expire();
		await delayRefresh();
		const appliedBefore = await delaysApplied();
		let sampling = true;
		let peak = 0;
		const sampler = (async () => {
			while (sampling) {
				peak = Math.max(peak, await heap.used());
				await new Promise((r) => setTimeout(r, 25));
			}
		})();
		const t0 = performance.now();
		const answered = Promise.all(Array.from({ length: n }, lease));
		let retained: number | undefined;
		if (retainedAt !== undefined) {
			// The refresh reached the provider: the lock is held, the rest of the herd waits.
			const deadline = Date.now() + DELAY_MS;
			while ((await delaysApplied()) === appliedBefore && Date.now() < deadline) {
				await new Promise((r) => setTimeout(r, 20));
			}
			await new Promise((r) => setTimeout(r, retainedAt));
			retained = await heap.retained();
		}
		const results = await answered;
		const seconds = (performance.now() - t0) / 1000;
		sampling = false;
		await sampler;
		const failed = results.filter((r) => r.status !== 201).length;
		return { peak, retained, failed, seconds };
	};

	console.error(`[heap] warmed; ${IN_FLIGHT} leases held in flight, then a burst of ${BURST}`);
	const before = await heap.retained();
	const beforeUsed = await heap.used();
	// Half the delay after the refresh starts, every lease of the herd has arrived and waits.
	const held = await herd(IN_FLIGHT, Math.min(DELAY_MS / 2, 3000));
	const afterHeld = await heap.retained();
	const burst = await herd(BURST);
	const afterBurst = await heap.retained();
	await db.end();

	const retained = held.retained ?? Number.NaN;
	const perLease = (retained - before) / IN_FLIGHT;
	figures.heap_before_mb = Number(mb(before));
	figures.heap_before_in_use_mb = Number(mb(beforeUsed));
	figures[`retained_${IN_FLIGHT}_in_flight_mb`] = Number(mb(retained));
	figures[`peak_${IN_FLIGHT}_in_flight_mb`] = Number(mb(held.peak));
	figures.per_in_flight_lease_kb = Number(kb(perLease));
	figures[`peak_burst_${BURST}_mb`] = Number(mb(burst.peak));
	figures[`burst_${BURST}_failed`] = burst.failed;
	figures[`burst_${BURST}_seconds`] = Number(burst.seconds.toFixed(2));
	figures.retained_after_mb = Number(mb(afterBurst));
	figures.retained_after_held_mb = Number(mb(afterHeld));
	figures.limit_mb = LIMIT_MB;
	figures[`projected_${BURST}_retained_mb`] = Number(mb(before + perLease * BURST));
	figures.leases_to_limit = Math.floor((LIMIT_MB * 1024 * 1024 - before) / perLease);
	console.log(`JS heap of the worker (workerd via Miniflare, refresh delayed ${DELAY_MS} ms):`);
	console.log(`  before (retained, after GC):     ${mb(before)} MB (${mb(beforeUsed)} MB in use)`);
	console.log(
		`  ${IN_FLIGHT} leases in flight:           ${mb(retained)} MB retained, ${mb(held.peak)} MB peak in use (${held.failed} failed)`,
	);
	console.log(`  per in-flight lease:             ${kb(perLease)} KB retained`);
	console.log(
		`  burst of ${BURST}:                    ${mb(burst.peak)} MB peak in use, ${burst.failed} failed, ${burst.seconds.toFixed(1)} s`,
	);
	console.log(
		`  after (retained):                ${mb(afterBurst)} MB; Workers' limit ${LIMIT_MB} MB: ` +
			`${((burst.peak / (LIMIT_MB * 1024 * 1024)) * 100).toFixed(0)} % at the burst's peak, ` +
			`~${figures.leases_to_limit} in-flight leases to reach it`,
	);
} finally {
	heap.close();
	await oauth.close();
	await served.stop();
	await infra.close();
}
console.log(JSON.stringify(figures));
