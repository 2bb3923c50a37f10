import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
// Brings the example into `npm run check`'s type check (tsconfig.node.json); it runs below.
import type {} from "../../examples/agent-runtime.ts";
import { ROOT } from "../../scripts/lib/wrangler.ts";
import {
	DEFAULT_RETRY,
	isLatchkeyError,
	LatchkeyClient,
	type LatchkeyClientOptions,
	LatchkeyError,
	type LeaseEvent,
	type LeaseHandle,
	parseRetryAfter,
	platformTimers,
	retryDelay,
	secretHeaders,
	type Timers,
} from "../../src/client/index.ts";
import { type FaultProxy, startFaultProxy } from "../client/fault-proxy.ts";
import { startTestWorker } from "../client/worker.ts";
import { cleanEnv, runScript } from "./run-script.ts";

/**
 * The typed client (`latchkey/client`) against the real worker on workerd, with the suite's
 * Postgres and Redis behind it. Calls go through a transparent proxy (test/client/fault-proxy.ts)
 * that counts them and injects the faults: a 503 with Retry-After, a dropped connection, a 409.
 */
const bindings = inject("bindings");

let worker: { url: string; stop(): Promise<void> };
let proxy: FaultProxy;
let admin: LatchkeyClient;
let userId: string;
let apiKey: string;
/** An api_key credential of the user's, and the secret it holds. */
let credentialId: string;
let storedSecret: string;

/** A client of the user's, through the proxy. */
const userClient = (options: Partial<LatchkeyClientOptions> = {}) =>
	new LatchkeyClient({ baseUrl: proxy.url, apiKey, ...options });

/**
 * The status Latchkey gives a renewal of the lease now (200 while it lives, 410 once released or
 * ended), asked directly with the API key. Without a TTL it never shortens the lease.
 */
async function renewStatus(leaseId: string): Promise<number> {
	const res = await fetch(`${worker.url}/v1/leases/${leaseId}/renew`, {
		method: "POST",
		headers: { authorization: `Bearer ${apiKey}` },
	});
	await res.body?.cancel();
	return res.status;
}

/** A promise and its resolver: a barrier a test waits on. */
function barrier<T = void>() {
	let resolve!: (value: T) => void;
	const promise = new Promise<T>((r) => {
		resolve = r;
	});
	return { promise, resolve };
}

/** `promise`, or a failure naming `what` after `ms`: a barrier that never opens fails the test. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
	return Promise.race([
		promise,
		new Promise<never>((_, reject) =>
			setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms),
		),
	]);
}

/** Events of a withCredential run, with a barrier for the first one that satisfies `until`. */
function eventLog(until: (e: LeaseEvent, all: LeaseEvent[]) => boolean = () => false) {
	const events: LeaseEvent[] = [];
	const reached = barrier<LeaseEvent>();
	return {
		events,
		reached: reached.promise,
		onEvent: (e: LeaseEvent) => {
			events.push(e);
			if (until(e, events)) reached.resolve(e);
		},
	};
}

/** The platform's timers, recording every delay asked for. */
function recordingTimers(offset = { ms: 0 }): Timers & { delays: number[] } {
	const delays: number[] = [];
	return {
		delays,
		now: () => Date.now() + offset.ms,
		setTimeout: (callback, ms) => {
			delays.push(ms);
			return platformTimers.setTimeout(callback, ms);
		},
		clearTimeout: (handle) => platformTimers.clearTimeout(handle),
	};
}

const isLeasePost = (id: string) => (r: { method: string; path: string }) =>
	r.method === "POST" && r.path === `/v1/credentials/${id}/leases`;

beforeAll(async () => {
	worker = await startTestWorker(bindings);
	proxy = await startFaultProxy(worker.url);
	admin = new LatchkeyClient({
		baseUrl: worker.url,
		token: bindings.LATCHKEY_ADMIN_TOKEN as string,
	});
	const user = await admin.post("/v1/admin/users", {
		body: { email: `client-${crypto.randomUUID()}@example.com` },
	});
	userId = user.id;
	const key = await admin.post("/v1/admin/users/{user_id}/api-keys", {
		params: { user_id: userId },
		body: { name: "agent runtime" },
	});
	apiKey = key.key;
	storedSecret = `tp_${crypto.randomUUID().replaceAll("-", "")}`;
	const credential = await new LatchkeyClient({ baseUrl: worker.url, apiKey }).post(
		"/v1/credentials",
		{ body: { provider: "third-party", type: "api_key", api_key: storedSecret } },
	);
	credentialId = credential.id;
}, 90_000);

afterAll(async () => {
	await proxy?.close();
	await worker?.stop();
});

describe("LatchkeyClient: typed calls and errors", () => {
	it("types every route's parameters, body and answer from the served document", async () => {
		const client = userClient();
		const credential = await client.request("get", "/v1/credentials/{id}", {
			params: { id: credentialId },
		});
		const version: number = credential.version;
		expect(version).toBeGreaterThan(0);
		const list = await client.get("/v1/credentials", { query: { provider: "third-party" } });
		expect(list.data.map((c) => c.id)).toContain(credentialId);
		const full = await client.requestFull("get", "/v1/credentials/{id}", {
			params: { id: credentialId },
		});
		expect(full.headers.get("etag")).toBe(`"${version}"`);
		expect(full.requestId).toMatch(/^req_/);
		// raw: authenticated, the answer as it came, whatever its status.
		const raw = await client.raw("get", `/v1/credentials/${credentialId}`);
		expect(raw.status).toBe(200);
		expect(((await raw.json()) as { id: string }).id).toBe(credentialId);
		const rawMissing = await client.raw("get", "/v1/credentials/cred_0000000000000000000000");
		expect(rawMissing.status).toBe(404);
		await rawMissing.body?.cancel();

		// Compile-time checks (tsc -p tsconfig.node.json, `npm run check`): wrong calls do not build.
		const wrongCalls = async () => {
			// @ts-expect-error the path parameter is required
			await client.request("get", "/v1/credentials/{id}");
			// @ts-expect-error there is no PUT on this path
			await client.request("put", "/v1/credentials/{id}", { params: { id: "x" } });
			const ttl = { ttl_seconds: "5" };
			// @ts-expect-error ttl_seconds is a number
			await client.post("/v1/credentials/{id}/leases", { params: { id: "x" }, body: ttl });
			// @ts-expect-error a credential needs a body
			await client.post("/v1/credentials", {});
			// @ts-expect-error no such query parameter
			await client.get("/v1/credentials", { query: { nope: 1 } });
			const released = await client.delete("/v1/leases/{lease_id}", { params: { lease_id: "x" } });
			// @ts-expect-error a 204 has no body
			const body: string = released;
			return body;
		};
		expect(typeof wrongCalls).toBe("function");
	});

	it("surfaces a 404 and a 403 as a LatchkeyError with Latchkey's code, hint and request id", async () => {
		const client = userClient();
		const missing = "cred_0000000000000000000000";
		const notFound = await client
			.get("/v1/credentials/{id}", { params: { id: missing } })
			.catch((e: unknown) => e);
		expect(notFound).toBeInstanceOf(LatchkeyError);
		const e404 = notFound as LatchkeyError;
		expect({ status: e404.status, code: e404.code, name: e404.name }).toEqual({
			status: 404,
			code: "not_found",
			name: "LatchkeyError",
		});
		expect(e404.hint.length).toBeGreaterThan(0);
		expect(e404.message.length).toBeGreaterThan(0);
		const answered = proxy.seen.filter((s) => s.path === `/v1/credentials/${missing}`);
		expect(e404.requestId).toBe(answered.at(-1)?.requestId);
		expect(e404.requestId).toMatch(/^req_/);
		expect(Object.keys(e404.toJSON())).not.toContain("stack");

		// A key of the same user that may only read: leasing is 403 insufficient_scope, and
		// withCredential never calls its function.
		const readOnly = await admin.post("/v1/admin/users/{user_id}/api-keys", {
			params: { user_id: userId },
			body: { name: "read only", scopes: ["credentials:read"] },
		});
		const reader = userClient({ apiKey: readOnly.key });
		let called = false;
		const forbidden = await reader
			.withCredential(credentialId, () => {
				called = true;
			})
			.catch((e: unknown) => e);
		expect(called).toBe(false);
		expect(isLatchkeyError(forbidden, 403, "insufficient_scope")).toBe(true);
		expect((forbidden as LatchkeyError).hint.length).toBeGreaterThan(0);
		expect((forbidden as LatchkeyError).requestId).toMatch(/^req_/);
	});
});

describe("LatchkeyClient: retries", () => {
	it("waits out a 503's Retry-After, then succeeds", async () => {
		const timers = recordingTimers();
		const client = userClient({ timers });
		await client.get("/v1/me"); // the token exchange happens first, unfaulted
		proxy.inject({
			match: isLeasePost(credentialId),
			status: 503,
			headers: { "retry-after": "1" },
		});
		const before = proxy.count(isLeasePost(credentialId));
		const started = Date.now();
		const lease = await client.lease(credentialId, { ttlSeconds: 5 });
		const elapsed = Date.now() - started;
		const tries = proxy.seen.filter(isLeasePost(credentialId)).slice(before);
		expect(tries.map((t) => [t.status, t.injected])).toEqual([
			[503, true],
			[201, false],
		]);
		// The wait honoured Retry-After (1 s), plus at most 20 % jitter.
		const waits = timers.delays.filter((ms) => ms >= 500 && ms < 60_000);
		expect(waits).toHaveLength(1);
		expect(waits[0]).toBeGreaterThanOrEqual(1000);
		expect(waits[0]).toBeLessThanOrEqual(1200);
		expect(elapsed).toBeGreaterThanOrEqual(1000);
		expect(lease.secret).toEqual({ type: "api_key", api_key: storedSecret });
		await client.releaseLease(lease.lease_id);
	});

	it("gives up with the typed 503 when retries run out, and at once on a Retry-After past its limit", async () => {
		const client = userClient({ retry: { maxAttempts: 2, maxRetryAfterMs: 5_000 } });
		await client.get("/v1/me");
		proxy.inject({
			match: isLeasePost(credentialId),
			status: 503,
			headers: { "retry-after": "0" },
			times: 2,
		});
		const exhausted = await client.lease(credentialId).catch((e: unknown) => e);
		expect(isLatchkeyError(exhausted, 503, "dependency_unavailable")).toBe(true);
		expect((exhausted as LatchkeyError).retryAfterSeconds).toBe(0);

		proxy.inject({
			match: isLeasePost(credentialId),
			status: 429,
			headers: { "retry-after": "120" },
			body: {
				error: {
					code: "rate_limited",
					message: "Too many leases.",
					hint: "Wait.",
					request_id: "req_injected",
				},
			},
		});
		const before = proxy.count(isLeasePost(credentialId));
		const limited = await client.lease(credentialId).catch((e: unknown) => e);
		expect(isLatchkeyError(limited, 429, "rate_limited")).toBe(true);
		expect((limited as LatchkeyError).retryAfterSeconds).toBe(120);
		expect((limited as LatchkeyError).requestId).toBe("req_injected");
		expect(proxy.count(isLeasePost(credentialId)) - before).toBe(1);
	});

	it("a truncated answer is a typed error that quotes none of it (JSON.parse's would)", async () => {
		const client = userClient();
		await client.get("/v1/me");
		const secret = `sk-truncated-${crypto.randomUUID()}`;
		proxy.inject({
			match: isLeasePost(credentialId),
			status: 201,
			rawBody: `{"lease_id":"lease_x","secret":{"type":"api_key","api_key":"${secret}"`,
		});
		const broken = await client.lease(credentialId).catch((e: unknown) => e);
		expect(isLatchkeyError(broken, 201, "invalid_response")).toBe(true);
		const shown = `${String(broken)} ${JSON.stringify(broken)} ${(broken as Error).stack ?? ""} ${String((broken as Error).cause ?? "")}`;
		expect(shown).not.toContain(secret.slice(-10));
	});

	it("sends a lost GET again, but never a lost lease request", async () => {
		const client = userClient({ retry: { baseDelayMs: 10 } });
		await client.get("/v1/me");
		proxy.inject({ match: (r) => r.path === "/v1/me", status: 0, drop: true });
		const me = await client.get("/v1/me");
		expect(me.id).toBe(userId);

		proxy.inject({ match: isLeasePost(credentialId), status: 0, drop: true });
		const before = proxy.count(isLeasePost(credentialId));
		const lost = await client.lease(credentialId).catch((e: unknown) => e);
		expect(isLatchkeyError(lost, 0, "network_error")).toBe(true);
		expect(proxy.count(isLeasePost(credentialId)) - before).toBe(1);
	});

	it("backs off exponentially with jitter, capped, and never under Retry-After", () => {
		const policy = { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 1_000 };
		const low = () => 0;
		const high = () => 0.999999;
		expect([0, 1, 2, 3, 4, 5].map((a) => retryDelay(a, null, policy, low))).toEqual([
			50, 100, 200, 400, 500, 500,
		]);
		expect([0, 1, 2, 3, 4, 5].map((a) => retryDelay(a, null, policy, high))).toEqual([
			100, 200, 400, 800, 1000, 1000,
		]);
		expect(retryDelay(0, 3_000, policy, low)).toBe(3_000);
		expect(retryDelay(0, 3_000, policy, high)).toBe(3_600);
		const now = Date.parse("2026-12-05T12:00:00Z");
		expect(parseRetryAfter("7", now)).toBe(7_000);
		expect(parseRetryAfter("Sat, 05 Dec 2026 12:00:09 GMT", now)).toBe(9_000);
		expect(parseRetryAfter("soon", now)).toBeNull();
		expect(parseRetryAfter(null, now)).toBeNull();
	});
});

describe("LatchkeyClient: tokens", () => {
	it("refreshes an expiring access token once, however many calls need it at once", async () => {
		const clock = { ms: 0 };
		const client = userClient({ timers: recordingTimers(clock) });
		const grants = (grant: string) =>
			proxy.count((s) => s.path === "/v1/auth/token" && s.grant === grant);
		const exchanges = grants("api_key");
		await client.get("/v1/me");
		expect(grants("api_key") - exchanges).toBe(1);

		// 890 s later by the client's clock: the 900 s token is inside its refresh margin.
		clock.ms = 890_000;
		const refreshes = grants("refresh_token");
		const answers = await Promise.all(Array.from({ length: 12 }, () => client.get("/v1/me")));
		expect(answers.every((me) => me.id === userId)).toBe(true);
		expect(grants("refresh_token") - refreshes).toBe(1);
		expect(grants("api_key") - exchanges).toBe(1);

		// The refreshed token serves the next calls without another exchange.
		await client.get("/v1/me");
		expect(grants("refresh_token") - refreshes).toBe(1);
	});

	it("starts a new session with the key when Latchkey ends the current one, and signs out", async () => {
		const client = userClient();
		await client.get("/v1/me");
		const exchanges = proxy.count((s) => s.path === "/v1/auth/token" && s.grant === "api_key");
		// The session ends behind the client's back (revoked with its refresh token).
		const refreshToken = proxy.refreshTokens.at(-1) as string;
		const revoked = await fetch(`${worker.url}/v1/auth/revoke`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ refresh_token: refreshToken }),
		});
		expect(revoked.status).toBe(200);
		// A lease refuses an ended session's access token at once: 401, a new exchange, the lease.
		const before = proxy.seen.length;
		const lease = await client.lease(credentialId, { ttlSeconds: 5 });
		const after = proxy.seen.slice(before).map((s) => `${s.method} ${s.path} ${s.status}`);
		expect(after).toEqual([
			`POST /v1/credentials/${credentialId}/leases 401`,
			"POST /v1/auth/token 200",
			`POST /v1/credentials/${credentialId}/leases 201`,
		]);
		expect(proxy.count((s) => s.path === "/v1/auth/token" && s.grant === "api_key")).toBe(
			exchanges + 1,
		);
		await client.releaseLease(lease.lease_id);

		// signOut revokes the session: its refresh token no longer works.
		const current = proxy.refreshTokens.at(-1) as string;
		await client.signOut();
		const reuse = await fetch(`${worker.url}/v1/auth/token`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ grant_type: "refresh_token", refresh_token: current }),
		});
		expect(reuse.status).toBe(401);
	});
});

describe("LatchkeyClient.withCredential", () => {
	it("passes the secret, returns fn's value and releases the lease", async () => {
		const client = userClient();
		let leaseId = "";
		const value = await client.withCredential(credentialId, (secret, lease) => {
			leaseId = lease.id;
			expect(secret).toEqual({ type: "api_key", api_key: storedSecret });
			expect(secretHeaders(secret)).toEqual({ authorization: `Bearer ${storedSecret}` });
			return 42;
		});
		expect(value).toBe(42);
		expect(proxy.count((s) => s.method === "DELETE" && s.path === `/v1/leases/${leaseId}`)).toBe(1);
		expect(await renewStatus(leaseId)).toBe(410);
	});

	it("releases the lease when fn throws, and rethrows fn's error", async () => {
		const client = userClient();
		let leaseId = "";
		const boom = new Error("the agent's tool failed");
		const thrown = await client
			.withCredential(credentialId, async (_secret, lease) => {
				leaseId = lease.id;
				await Promise.resolve();
				throw boom;
			})
			.catch((e: unknown) => e);
		expect(thrown).toBe(boom);
		expect(leaseId).toMatch(/^lease_/);
		expect(await renewStatus(leaseId)).toBe(410);
	});

	it("releases the lease when the caller aborts mid-fn, without waiting for fn", async () => {
		const client = userClient();
		const controller = new AbortController();
		const inside = barrier<LeaseHandle>();
		const run = client.withCredential(
			credentialId,
			async (_secret, lease) => {
				inside.resolve(lease);
				await new Promise(() => {}); // a tool that never returns
			},
			{ signal: controller.signal, ttlSeconds: 60 },
		);
		const lease = await inside.promise;
		const leaseId = lease.id;
		expect(await renewStatus(leaseId)).toBe(200);
		controller.abort();
		const outcome = await run.catch((e: unknown) => e);
		expect((outcome as Error).name).toBe("AbortError");
		expect(lease.signal.aborted).toBe(true);
		expect(proxy.count((s) => s.method === "DELETE" && s.path === `/v1/leases/${leaseId}`)).toBe(1);
		expect(await renewStatus(leaseId)).toBe(410);
	});

	it("renews in the background while fn outlasts the lease's TTL", async () => {
		const client = userClient();
		let originalEnd = 0;
		// Opens at the first renewal answered after the lease's original end had passed.
		const log = eventLog(
			(e) => e.type === "renewed" && originalEnd > 0 && Date.now() > originalEnd,
		);
		const renewals = (id: string) =>
			proxy.count((s) => s.method === "POST" && s.path === `/v1/leases/${id}/renew`);
		let firstId = "";
		await client.withCredential(
			credentialId,
			async (_secret, lease) => {
				firstId = lease.id;
				originalEnd = lease.expiresAt.getTime();
				await within(log.reached, 15_000, "renewal after the lease's first TTL");
				// Past the first TTL, the same lease is alive (an ended one answers 410).
				expect(Date.now()).toBeGreaterThan(originalEnd);
				expect(lease.id).toBe(firstId);
				expect(await renewStatus(firstId)).toBe(200);
			},
			{ ttlSeconds: 2, onEvent: log.onEvent },
		);
		expect(renewals(firstId)).toBeGreaterThanOrEqual(2);
		expect(log.events.filter((e) => e.type === "replaced")).toEqual([]);
		expect(log.events.at(-1)).toEqual({ type: "released", leaseId: firstId });
		expect(await renewStatus(firstId)).toBe(410);
	});

	it("on 409 token_expiring takes a fresh lease for the next use, without failing fn", async () => {
		const client = userClient();
		const log = eventLog((e) => e.type === "replaced");
		const renewed = `tp_${crypto.randomUUID().replaceAll("-", "")}`;
		let firstId = "";
		let freshId = "";
		const value = await client.withCredential(
			credentialId,
			async (secret, lease) => {
				firstId = lease.id;
				// The credential's key changes (existing leases keep theirs), and Latchkey refuses
				// the next renewal: the token is expiring.
				await client.patch("/v1/credentials/{id}", {
					params: { id: credentialId },
					body: { api_key: renewed },
				});
				proxy.inject({
					match: (r) => r.path === `/v1/leases/${firstId}/renew`,
					status: 409,
					body: {
						error: {
							code: "token_expiring",
							message: "The leased token is about to be refreshed; the lease cannot be extended.",
							hint: "Release the lease and lease again.",
							request_id: "req_injected_409",
						},
					},
				});
				await within(log.reached, 15_000, "replacement lease");
				freshId = lease.id;
				expect(freshId).not.toBe(firstId);
				// The first secret stays what fn was given; the handle now holds the fresh one.
				expect(secret).toEqual({ type: "api_key", api_key: storedSecret });
				expect(lease.secret).toEqual({ type: "api_key", api_key: renewed });
				return "finished";
			},
			{ ttlSeconds: 2, onEvent: log.onEvent },
		);
		expect(value).toBe("finished");
		expect(log.events.find((e) => e.type === "replaced")).toMatchObject({
			previousLeaseId: firstId,
			leaseId: freshId,
			reason: "token_expiring",
		});
		// Both leases were released: the old one once replaced, the fresh one at the end.
		expect(log.events.filter((e) => e.type === "released").map((e) => e.leaseId)).toEqual([
			firstId,
			freshId,
		]);
		expect(await renewStatus(firstId)).toBe(410);
		expect(await renewStatus(freshId)).toBe(410);
		await client.patch("/v1/credentials/{id}", {
			params: { id: credentialId },
			body: { api_key: storedSecret },
		});
	});

	it("keeps fn going when a real OAuth token runs out and cannot be refreshed", async () => {
		const client = userClient();
		// An imported OAuth token without a refresh token, valid for 6 s. Renewals succeed until
		// the token's expiry comes before their end: 409 token_expiring. A fresh lease then gets
		// the still-valid token cut to its expiry; once it has expired, a lease would need a
		// refresh, and Latchkey refuses it (409 reconnect_required).
		const accessToken = `gho_${crypto.randomUUID().replaceAll("-", "")}`;
		const oauth = await client.post("/v1/credentials", {
			body: {
				provider: "github",
				type: "oauth2",
				access_token: accessToken,
				access_token_expires_at: new Date(Date.now() + 6_000).toISOString(),
			},
		});
		// The final refusal: a transient failure before it (a request cut off on a loaded machine)
		// is retried by the client and is not what this test is about.
		const log = eventLog((e) => e.type === "renewal_failed" && !e.willRetry);
		const value = await client.withCredential(
			oauth.id,
			async (secret, lease) => {
				expect(secret).toMatchObject({ type: "oauth2", access_token: accessToken });
				const failed = await within(log.reached, 15_000, "refused replacement");
				expect(failed).toMatchObject({ type: "renewal_failed", willRetry: false });
				const error = (failed as { error: unknown }).error;
				expect(isLatchkeyError(error, 409, "reconnect_required")).toBe(true);
				expect(lease.secret).toMatchObject({ access_token: accessToken });
				return "done with the token it had";
			},
			{ ttlSeconds: 1, onEvent: log.onEvent },
		);
		expect(value).toBe("done with the token it had");
		const leases = log.events.flatMap((e) =>
			e.type === "leased" || e.type === "replaced" ? [e.leaseId] : [],
		);
		const renewals = proxy.seen.filter(
			(s) => s.method === "POST" && leases.some((id) => s.path === `/v1/leases/${id}/renew`),
		);
		expect(renewals.filter((s) => s.status === 200).length).toBeGreaterThanOrEqual(1);
		expect(renewals.some((s) => s.status === 409)).toBe(true);
		for (const id of leases) expect(await renewStatus(id)).toBe(410);
	});

	it("never prints a secret: not in the handle, the client, the events or the errors", async () => {
		const client = userClient();
		const log = eventLog();
		const printed: string[] = [];
		const methods = ["log", "info", "warn", "error", "debug"] as const;
		const original = methods.map((m) => console[m]);
		for (const m of methods)
			console[m] = (...args: unknown[]) => {
				printed.push(args.map((a) => inspect(a)).join(" "));
			};
		let seen = "";
		try {
			await client
				.withCredential(
					credentialId,
					(_secret, lease) => {
						seen = [inspect(lease), JSON.stringify(lease), inspect(client)].join("\n");
						throw new Error("fail on purpose");
					},
					{ onEvent: log.onEvent },
				)
				.catch(() => {});
		} finally {
			methods.forEach((m, i) => {
				console[m] = original[i] as (typeof console)[typeof m];
			});
		}
		expect(seen).toContain("lease_");
		const everything = [seen, JSON.stringify(log.events), inspect(log.events), ...printed].join(
			"\n",
		);
		expect(everything).not.toContain(storedSecret);
		expect(everything).not.toContain(apiKey);
		expect(everything).not.toMatch(/eyJ[\w-]+\.[\w-]+\./); // no access token (JWT)
		expect(everything).not.toContain("lkr_");
		expect(printed).toEqual([]);
	});
});

describe("latchkey/client runs on any fetch platform", () => {
	it("uses no Node-only API (Node 20+, Workers, browsers)", () => {
		const dir = join(ROOT, "src", "client");
		const offending = readdirSync(dir)
			.filter((f) => f.endsWith(".ts"))
			.flatMap((f) => {
				const text = readFileSync(join(dir, f), "utf8");
				return [
					/from\s+["']node:/.test(text) && `${f}: imports node:`,
					/\bBuffer\b/.test(text) && `${f}: Buffer`,
					/\bprocess\./.test(text) && `${f}: process`,
					/\brequire\(/.test(text) && `${f}: require`,
				].filter(Boolean);
			});
		expect(offending).toEqual([]);
		// And it is the package's `latchkey/client` entry.
		const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
			exports: Record<string, string>;
		};
		expect(pkg.exports["./client"]).toBe("./src/client/index.ts");
	});
});

describe("examples/agent-runtime.ts", () => {
	it("runs an agent against the real worker: leases, calls the API, releases, cleans up", async () => {
		const { code, output } = await runScript(
			["examples/agent-runtime.ts"],
			cleanEnv({ LATCHKEY_URL: proxy.url, LATCHKEY_API_KEY: apiKey }),
			{ deadlineMs: 30_000 },
		);
		expect(code, output).toBe(0);
		expect(output).toMatch(/^third-party API: listening on http:\/\/127\.0\.0\.1:\d+$/m);
		const credential = output.match(
			/^platform: stored credential (cred_\w+) \(api_key, v1\)$/m,
		)?.[1];
		const lease = output.match(/^agent run: leased (lease_\w+) until \S+Z$/m)?.[1];
		expect(credential, output).toBeDefined();
		expect(lease, output).toBeDefined();
		expect(output).toContain("agent run: Lisbon: rain, 21 °C");
		expect(output).toContain("agent run: Oslo: rain, 21 °C");
		expect(output).toContain("agent run: Nairobi: sunny, 21 °C");
		expect(output).toContain("agent run: done, 3 authorized calls to the third-party API");
		expect(output).toContain(`lease: leased ${lease}`);
		expect(output).toContain(`lease: released ${lease}`);
		expect(output).toContain(`platform: deleted credential ${credential}`);
		// Nothing secret was printed: not the API's token, the key, or an access token.
		expect(output).not.toMatch(/wx_[0-9a-f]{8,}/);
		expect(output).not.toContain(apiKey);
		expect(output).not.toMatch(/eyJ[\w-]+\.[\w-]+\./);
		// Against the service: the lease was released, and the credential is gone.
		expect(await renewStatus(lease as string)).toBe(410);
		const gone = await userClient()
			.get("/v1/credentials/{id}", { params: { id: credential as string } })
			.catch((e: unknown) => e);
		expect(isLatchkeyError(gone, 404)).toBe(true);
		// The example's lease went through the proxy: created, then released.
		expect(proxy.count((s) => s.method === "DELETE" && s.path === `/v1/leases/${lease}`)).toBe(1);
	}, 40_000);
});
