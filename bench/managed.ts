import { startAgentMail } from "../test/setup/agentmail.ts";
import {
	benchUser,
	makeSettle,
	measureInterleaved,
	printAgainst,
	type Result,
	type Scenario,
	saveResults,
	startBenchStack,
	timingCalls,
} from "./lib.ts";

/**
 * Managed credentials: what auto-provisioning costs a credential listing once the user's managed
 * credentials exist. The worker runs on `npm start`'s runtime (`--dev`: `wrangler dev`) with AgentMail enabled against the
 * AgentMail fake (test/setup/agentmail.ts), real Postgres and Redis (or the embedded engines,
 * said loudly). Prints, per listing, the Postgres round trips counted at the SQL bridge, the
 * Redis calls the worker reports in Server-Timing and the AgentMail calls counted at the fake;
 * then latency and throughput of the listing next to /health/ready (one Postgres and one Redis
 * round trip) at c=1 and c=32. Goal: listing p50 ≤ 1.3 × /health/ready.
 */
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 2000);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? "1,32").split(",").map(Number);

const agentmail = await startAgentMail();
const orgKey = `am_org_bench_${Date.now()}`;
const { infra, worker, admin, api } = await startBenchStack(`requests per scenario: ${REQUESTS}`, {
	AGENTMAIL_API_KEY: orgKey,
	AGENTMAIL_BASE_URL: agentmail.url,
}).catch(async (err) => {
	await agentmail.close();
	throw err;
});

const redisCalls = (res: Response) => timingCalls(res, "redis");

const agentmailCalls = async () => {
	const res = await fetch(`${agentmail.url}/_control/orgs/${encodeURIComponent(orgKey)}`);
	return ((await res.json()) as { calls: unknown[] }).calls.length;
};

const results: Result[] = [];
let perListing: Record<string, number> = {};
let provisioning: Record<string, number> = {};
try {
	const { key } = await benchUser(api, admin, "managed");
	await api("/v1/credentials", {
		method: "POST",
		token: key,
		json: { provider: "bench", type: "api_key", api_key: `secret-${crypto.randomUUID()}` },
	});

	// The first listing provisions (pod, key, stored credential); timed once, for the record.
	const t0 = performance.now();
	const first = await api<{ data: { provider: string; managed: boolean }[] }>("/v1/credentials", {
		token: key,
	});
	provisioning = {
		first_listing_ms: Math.round(performance.now() - t0),
		agentmail_calls: await agentmailCalls(),
	};
	if (!first.data.some((c) => c.provider === "agentmail" && c.managed)) {
		throw new Error("the first listing did not provision the AgentMail credential");
	}
	console.log("First listing (provisions):", provisioning);

	const scenarios: Scenario[] = [
		{ name: "/health/ready", request: () => ({ url: `${worker.url}/health/ready` }) },
		{
			name: "list credentials (managed present)",
			request: () => ({
				url: `${worker.url}/v1/credentials`,
				init: { headers: { authorization: `Bearer ${key}` } },
			}),
		},
	];
	const settle = await makeSettle(worker.url);

	await settle();
	const n = 100;
	const before = await infra.sqlStats();
	const amBefore = await agentmailCalls();
	let redis = 0;
	for (let i = 0; i < n; i++) {
		const res = await fetch(`${worker.url}/v1/credentials`, {
			headers: { authorization: `Bearer ${key}` },
		});
		await res.arrayBuffer();
		if (res.status !== 200) throw new Error(`listing: ${res.status}`);
		redis += redisCalls(res);
	}
	await settle();
	const after = await infra.sqlStats();
	perListing = {
		postgres_round_trips: (after.requests - before.requests) / n,
		redis_calls: redis / n,
		agentmail_calls: ((await agentmailCalls()) - amBefore) / n,
	};
	console.log("Per listing (managed credential present):", perListing);

	for (const c of CONCURRENCY) {
		results.push(...(await measureInterleaved(scenarios, c, REQUESTS, { settle })));
	}
	if ((await agentmailCalls()) !== provisioning.agentmail_calls) {
		throw new Error("listings reached AgentMail after the credential existed");
	}
} finally {
	await worker.stop();
	await agentmail.close();
	await infra.close();
}

printAgainst(results, "/health/ready");
saveResults("managed", infra, {
	first_listing: provisioning,
	per_listing: perListing,
	results,
});
