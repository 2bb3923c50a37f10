import {
	benchUser,
	makeSettle,
	measureInterleaved,
	printAgainst,
	type Result,
	type Scenario,
	saveResults,
	startBenchStack,
} from "./lib.ts";

/**
 * The console's cost over the API it wraps: a console page is one or two in-process API calls
 * plus the rendering (docs/console.md). Measured on `npm start`'s runtime, real Postgres and
 * Redis (or the embedded engines, said loudly), interleaved with its baseline: the integrations
 * page against `GET /v1/credentials` with the same user's key, and the keys page against
 * `GET /v1/api-keys`. Goal: a page's p50 ≤ 1.5 × its API call's.
 */
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 1000);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? "1,32").split(",").map(Number);

const { infra, worker, admin, api } = await startBenchStack(`requests per scenario: ${REQUESTS}`);

/** Signs in through the console's own form, as a browser does; returns the session cookie. */
async function consoleSession(key: string): Promise<string> {
	const form = await fetch(`${worker.url}/console/sign-in`);
	const pre = (form.headers.getSetCookie()[0] ?? "").split(";")[0] ?? "";
	const csrf = /name="_csrf" value="([^"]+)"/.exec(await form.text())?.[1] ?? "";
	const signed = await fetch(`${worker.url}/console/sign-in`, {
		method: "POST",
		redirect: "manual",
		headers: {
			cookie: pre,
			origin: worker.url,
			"content-type": "application/x-www-form-urlencoded",
		},
		body: new URLSearchParams({ _csrf: csrf, key }),
	});
	await signed.arrayBuffer();
	const session = signed.headers
		.getSetCookie()
		.find((c) => c.startsWith("__Host-latchkey_console="));
	if (signed.status !== 303 || !session) throw new Error(`console sign-in: ${signed.status}`);
	return session.split(";")[0] as string;
}

const results: Result[] = [];
try {
	const { key } = await benchUser(api, admin, "console");
	for (let i = 0; i < 10; i++) {
		await api("/v1/credentials", {
			method: "POST",
			token: key,
			json: { provider: "bench", type: "api_key", title: `bench ${i}`, api_key: `k-${i}` },
		});
	}
	const cookie = await consoleSession(key);
	const bearer = { headers: { authorization: `Bearer ${key}` } };
	const page = { headers: { cookie } };
	const scenarios: Scenario[] = [
		{
			name: "GET /v1/credentials",
			request: () => ({ url: `${worker.url}/v1/credentials`, init: bearer }),
		},
		{
			name: "console integrations page",
			request: () => ({ url: `${worker.url}/console/integrations`, init: page }),
		},
		{
			name: "GET /v1/api-keys",
			request: () => ({ url: `${worker.url}/v1/api-keys`, init: bearer }),
		},
		{
			name: "console keys page",
			request: () => ({ url: `${worker.url}/console/keys`, init: page }),
		},
	];
	// Each page must answer the page, not a redirect to sign-in.
	for (const path of ["/console/integrations", "/console/keys"]) {
		const res = await fetch(`${worker.url}${path}`, { ...page, redirect: "manual" });
		const html = await res.text();
		if (res.status !== 200 || !html.includes("bench")) throw new Error(`${path}: ${res.status}`);
	}
	const settle = await makeSettle(worker.url);
	for (const c of CONCURRENCY) {
		results.push(...(await measureInterleaved(scenarios, c, REQUESTS, { settle })));
	}
} finally {
	await worker.stop();
	await infra.close();
}

// Each page against the API call it wraps.
for (const [pageName, baseline] of [
	["console integrations page", "GET /v1/credentials"],
	["console keys page", "GET /v1/api-keys"],
]) {
	printAgainst(
		results.filter((r) => r.name === pageName || r.name === baseline),
		baseline as string,
	);
}
saveResults("console", infra, { results });
