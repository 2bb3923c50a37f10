import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { oauthProviders, sessions } from "../../src/db/schema.ts";
import { leaseKeys } from "../../src/leases/store.ts";
import { createLogger } from "../../src/log.ts";
import { builtinProvider } from "../../src/oauth/providers.ts";
import { createServices, type Services } from "../../src/services.ts";
import { Timing } from "../../src/timing.ts";
import type { UpstreamRecord, UpstreamState } from "../setup/upstream-types.ts";
import { createKey, createUser, exchange, userWithKey } from "./fixtures.ts";
import { type CallInit, call, expectError, testEnv } from "./helpers.ts";
import {
	account,
	age,
	db,
	lease,
	leased,
	registerProviders,
	storeCredential,
	tokensOf as tokensOfRow,
} from "./lease-helpers.ts";
import {
	connect,
	introspect,
	providerBody,
	putProvider,
	refreshAttempts,
} from "./oauth-helpers.ts";

/**
 * The authenticated proxy (docs/proxy.md) against a real local upstream (test/setup/upstream.ts)
 * that records every request it gets, and the OAuth test server (oidc-provider) for the refresh
 * path. Each test uses a tenant of its own at the upstream and a provider of its own.
 */

const UP = inject("upstream").url;
const UP_HOST = new URL(UP).host;
const MiB = 1024 * 1024;

let services: Services;
let dispose: (() => Promise<void>) | undefined;
beforeAll(() => {
	const built = createServices(loadConfig(testEnv), createLogger("error"), new Timing());
	services = built.services;
	dispose = built.dispose;
});
afterAll(async () => {
	await dispose?.();
});

const tokensOf = (id: string) => tokensOfRow(services, id);

let seq = 0;
const tenant = () =>
	`p${Date.now().toString(36)}${(seq++).toString(36)}${Math.random().toString(36).slice(2, 6)}`;

const upstream = async (t: string) =>
	(await (await fetch(`${UP}/_control/${t}`)).json()) as UpstreamState;
const release = (t: string) => fetch(`${UP}/_control/${t}/release`, { method: "POST" });

const proxy = (
	key: string,
	credentialId: string,
	path: string,
	init: CallInit = {},
	env?: Record<string, string>,
) => call(`/v1/proxy/${credentialId}${path}`, { token: key, ...init }, env);

/** A provider of this test's own whose api_base_url is a tenant of the upstream. */
async function apiProvider(t: string, overrides: Record<string, unknown> = {}): Promise<string> {
	const id = `px-${t}`;
	await registerProviders([[id, { api_base_url: `${UP}/t/${t}`, ...overrides }]]);
	return id;
}

/** Every value of every response header, for "the secret is in none of them". */
const headerText = (res: Response) => [...res.headers].map(([n, v]) => `${n}: ${v}`).join("\n");

const basic = (user: string, password: string) => btoa(`${user}:${password}`);

describe("the proxy injects each type's secret and strips the caller's credentials", () => {
	it("host_scoped: the stored headers, over the caller's; the caller's credentials, cookies and hop-by-hop headers stay behind", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const stored = `hs_${crypto.randomUUID()}`;
		const id = await storeCredential(key, {
			provider: "upstream",
			type: "host_scoped",
			host: UP_HOST,
			headers: { "X-Stored-Token": stored, "X-Api-Version": "7" },
		});
		const res = await proxy(key, id, `/t/${t}/echo/a/b?x=1&y=two`, {
			method: "POST",
			headers: {
				"content-type": "application/json",
				cookie: "session=caller-cookie",
				"proxy-authorization": "Basic caller-proxy",
				connection: "x-hop",
				"x-hop": "hop-value",
				"x-forwarded-for": "203.0.113.9",
				"x-caller": "kept",
				"x-stored-token": "caller-tries-its-own",
			},
			body: JSON.stringify({ hello: "world" }),
		});
		expect(res.status).toBe(200);
		const { requests } = await upstream(t);
		expect(requests).toHaveLength(1);
		const got = requests[0] as UpstreamRecord;
		expect(got.method).toBe("POST");
		expect(got.path).toBe(`/t/${t}/echo/a/b`);
		expect(got.query).toBe("?x=1&y=two");
		expect(got.body).toBe(JSON.stringify({ hello: "world" }));
		expect(got.headers["x-stored-token"]).toBe(stored);
		expect(got.headers["x-api-version"]).toBe("7");
		expect(got.headers["x-caller"]).toBe("kept");
		expect(got.headers["content-type"]).toBe("application/json");
		// The caller's bearer key for Latchkey never reaches the upstream, nor its cookies,
		// hop-by-hop headers or address.
		for (const name of [
			"authorization",
			"cookie",
			"proxy-authorization",
			"x-hop",
			"x-forwarded-for",
			"cf-connecting-ip",
		]) {
			expect(got.headers[name], name).toBeUndefined();
		}
		expect(JSON.stringify(got.headers)).not.toContain(key);

		// The answer: the upstream's status, body and headers, its request id and timing kept,
		// Latchkey's beside them; its cookie, CORS and the echo of the stored token dropped.
		const body = (await res.json()) as { path: string };
		expect(body.path).toBe(`/t/${t}/echo/a/b`);
		expect(res.headers.get("x-upstream")).toBe("yes");
		expect(res.headers.get("x-request-id")).toMatch(/^upstream-\d+$/);
		expect(res.headers.get("server-timing")).toBe("app;dur=1.5");
		expect(res.headers.get("x-latchkey-request-id")).toMatch(/^req_/);
		expect(res.headers.get("set-cookie")).toBeNull();
		expect(res.headers.get("access-control-allow-origin")).toBeNull();
		expect(res.headers.get("x-echo-stored-token")).toBeNull();
		expect(headerText(res)).not.toContain(stored);
	});

	it("api_key, default placement: Authorization: Bearer, below the provider's api_base_url", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const provider = await apiProvider(t);
		const secret = `ak_${crypto.randomUUID()}`;
		const id = await storeCredential(key, { provider, type: "api_key", api_key: secret });
		const res = await proxy(key, id, "/echo/items?limit=5", {
			headers: { authorization: `Bearer ${key}` },
		});
		expect(res.status).toBe(200);
		const got = (await upstream(t)).requests[0] as UpstreamRecord;
		expect(got.path).toBe(`/t/${t}/echo/items`);
		expect(got.query).toBe("?limit=5");
		expect(got.headers.authorization).toBe(`Bearer ${secret}`);
		expect(res.headers.get("x-echo-authorization")).toBeNull();
		expect(headerText(res)).not.toContain(secret);
	});

	it("api_key, a declared header: the key as the provider wants it", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const provider = await apiProvider(t, {
			api_key_placement: { in: "header", name: "X-Api-Key", prefix: "" },
		});
		const secret = `ak_${crypto.randomUUID()}`;
		const id = await storeCredential(key, { provider, type: "api_key", api_key: secret });
		const res = await proxy(key, id, "/echo");
		expect(res.status).toBe(200);
		const got = (await upstream(t)).requests[0] as UpstreamRecord;
		expect(got.headers["x-api-key"]).toBe(secret);
		expect(got.headers.authorization).toBeUndefined();
		expect(res.headers.get("x-echo-api-key")).toBeNull();
		expect(headerText(res)).not.toContain(secret);
	});

	it("api_key, a declared query parameter: replaces the caller's, keeps the rest of the query", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const provider = await apiProvider(t, { api_key_placement: { in: "query", name: "key" } });
		const secret = `ak/${crypto.randomUUID()}+=`;
		const id = await storeCredential(key, { provider, type: "api_key", api_key: secret });
		const res = await proxy(key, id, "/echo?a=1&key=callers-own&b=x%20y");
		expect(res.status).toBe(200);
		const got = (await upstream(t)).requests[0] as UpstreamRecord;
		expect(got.query).toBe(`?a=1&b=x%20y&key=${encodeURIComponent(secret)}`);
		expect(new URLSearchParams(got.query).getAll("key")).toEqual([secret]);
		// The upstream echoes its query in a header: it carries the key, so it is dropped.
		expect(res.headers.get("x-echo-query")).toBeNull();
		expect(headerText(res)).not.toContain(encodeURIComponent(secret));
	});

	it("oauth2: Authorization: Bearer with the stored access token", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const provider = await apiProvider(t);
		const id = await connect(key, account("proxy"), {}, provider);
		const { access_token } = await tokensOf(id);
		const res = await proxy(key, id, "/echo");
		expect(res.status).toBe(200);
		const got = (await upstream(t)).requests[0] as UpstreamRecord;
		expect(got.headers.authorization).toBe(`Bearer ${access_token}`);
		expect(headerText(res)).not.toContain(access_token);
	});

	it("user_password: Authorization: Basic", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const provider = await apiProvider(t);
		const password = `pw-${crypto.randomUUID()}`;
		const id = await storeCredential(key, {
			provider,
			type: "user_password",
			username: "ada",
			password,
		});
		const res = await proxy(key, id, "/echo");
		expect(res.status).toBe(200);
		const got = (await upstream(t)).requests[0] as UpstreamRecord;
		expect(got.headers.authorization).toBe(`Basic ${basic("ada", password)}`);
		expect(headerText(res)).not.toContain(basic("ada", password));
	});

	it("the upstream's status comes back unchanged, with the error body it sent", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const id = await storeCredential(key, {
			provider: "upstream",
			type: "host_scoped",
			host: UP_HOST,
			headers: { "X-Stored-Token": `hs_${crypto.randomUUID()}` },
		});
		const res = await proxy(key, id, `/t/${t}/status/418`, { method: "DELETE" });
		expect(res.status).toBe(418);
		expect(await res.json()).toEqual({ status: 418 });
		expect((await upstream(t)).requests.map((r) => r.method)).toEqual(["DELETE"]);
	});

	it("HEAD, the API root itself, and an encoded answer come through as the upstream sent them", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const provider = await apiProvider(t);
		const id = await storeCredential(key, { provider, type: "api_key", api_key: "ak_head" });
		const head = await proxy(key, id, "/echo/h", { method: "HEAD" });
		expect(head.status).toBe(200);
		expect(await head.text()).toBe("");
		// No path at all is the API root: the upstream's own 404 for it, with its body.
		const root = await proxy(key, id, "");
		expect(root.status).toBe(404);
		expect(await root.json()).toEqual({ error: "no such upstream route" });
		const gzipped = await proxy(key, id, "/gzip");
		expect(gzipped.status).toBe(200);
		expect(((await gzipped.json()) as { compressed: boolean }).compressed).toBe(true);
		expect((await upstream(t)).requests.map((r) => [r.method, r.path])).toEqual([
			["HEAD", `/t/${t}/echo/h`],
			["GET", `/t/${t}/`],
			["GET", `/t/${t}/gzip`],
		]);
	});

	it("the call's lease is released once the upstream has answered", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const provider = await apiProvider(t);
		const id = await storeCredential(key, { provider, type: "api_key", api_key: "ak_released" });
		expect((await proxy(key, id, "/echo")).status).toBe(200);
		expect(await services.redis.zcard(leaseKeys(id).holders)).toBe(0);
	});
});

describe("the proxy calls the credential's own target, never a private one", () => {
	it("refuses private, link-local, metadata and wildcard hosts, and loopback unless allowed", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const hostScoped = (host: string) =>
			storeCredential(key, {
				provider: "upstream",
				type: "host_scoped",
				host,
				headers: { "X-Stored-Token": `hs_${crypto.randomUUID()}` },
			});
		for (const host of [
			"10.0.0.5",
			"192.168.1.1",
			"169.254.169.254",
			"metadata.google.internal",
			"db.internal",
			"*.example.com",
		]) {
			const id = await hostScoped(host);
			const body = await expectError(await proxy(key, id, "/x"), 409, "proxy_target_refused");
			expect(body.error.message, host).toContain(id);
		}
		// The test upstream itself, on a deployment that does not allow the proxy loopback: refused
		// before anything is sent.
		const local = await hostScoped(UP_HOST);
		for (const flag of ["false", ""]) {
			await expectError(
				await proxy(key, local, `/t/${t}/echo`, {}, { LATCHKEY_PROXY_ALLOW_LOOPBACK: flag }),
				409,
				"proxy_target_refused",
			);
		}
		const localhost = await hostScoped(`localhost:${new URL(UP).port}`);
		await expectError(
			await proxy(key, localhost, `/t/${t}/echo`, {}, { LATCHKEY_PROXY_ALLOW_LOOPBACK: "false" }),
			409,
			"proxy_target_refused",
		);
		expect((await upstream(t)).requests).toHaveLength(0);
		// Allowed, it is reached over http.
		expect((await proxy(key, local, `/t/${t}/echo`)).status).toBe(200);
		expect((await upstream(t)).requests).toHaveLength(1);
	});

	it("an api_base_url must be https on a public host: refused when registered, and again at call time", async () => {
		const t = tenant();
		for (const [url, flag] of [
			["https://10.1.2.3/api", "true"],
			["https://169.254.169.254/latest", "true"],
			["http://api.example.com", "true"],
			["https://api.example.com/v1?token=x", "true"],
			[`${UP}/t/${t}`, "false"],
		] as const) {
			const res = await call(
				`/v1/admin/providers/px-bad-${t}`,
				{
					method: "PUT",
					token: testEnv.LATCHKEY_ADMIN_TOKEN,
					json: providerBody({ name: "bad", api_base_url: url }),
				},
				{ LATCHKEY_PROXY_ALLOW_LOOPBACK: flag },
			);
			const body = await expectError(res, 400, "invalid_request");
			expect(JSON.stringify(body.error.detail), url).toContain("api_base_url");
		}
		// A row written before the rule (or in the database directly) is refused when used.
		const { key } = await userWithKey();
		const provider = await apiProvider(t);
		const id = await storeCredential(key, { provider, type: "api_key", api_key: "ak_private" });
		await db
			.update(oauthProviders)
			.set({ apiBaseUrl: "https://10.9.9.9/api" })
			.where(eq(oauthProviders.id, provider));
		await expectError(await proxy(key, id, "/echo"), 409, "proxy_target_refused");
	});

	it("an API key whose provider has no api_base_url is not proxied", async () => {
		const { key } = await userWithKey();
		const id = await storeCredential(key, { provider: "nowhere", type: "api_key", api_key: "k" });
		const body = await expectError(await proxy(key, id, "/x"), 409, "proxy_target_refused");
		expect(body.error.hint).toContain("api_base_url");
	});

	it("a redirect to another host is refused; one within the target is passed on, not followed", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const provider = await apiProvider(t);
		const secret = `ak_${crypto.randomUUID()}`;
		const id = await storeCredential(key, { provider, type: "api_key", api_key: secret });
		for (const to of [
			"https://attacker.example/steal",
			"//attacker.example/x",
			"http://127.0.0.1:1/x",
		]) {
			const res = await proxy(key, id, `/redirect?to=${encodeURIComponent(to)}`);
			const body = await expectError(res, 502, "upstream_unavailable");
			expect(body.error.message).toContain("redirect");
			expect(JSON.stringify(body)).not.toContain("attacker");
		}
		const same = await proxy(key, id, `/redirect?to=${encodeURIComponent(`/t/${t}/echo`)}`);
		expect(same.status).toBe(302);
		expect(same.headers.get("location")).toBe(`/t/${t}/echo`);
		// Not followed: the upstream saw the redirects only.
		const paths = (await upstream(t)).requests.map((r) => r.path);
		expect(paths).toEqual(Array(4).fill(`/t/${t}/redirect`));
	});

	it("another user's credential is 404 and nothing is sent", async () => {
		const owner = await userWithKey();
		const other = await userWithKey();
		const t = tenant();
		const provider = await apiProvider(t);
		const id = await storeCredential(owner.key, { provider, type: "api_key", api_key: "k_o" });
		await expectError(await proxy(other.key, id, "/echo"), 404, "not_found");
		await expectError(await proxy(other.key, "cred_nope", "/echo"), 404, "not_found");
		expect((await upstream(t)).requests).toHaveLength(0);
	});
});

describe("the caller is checked as for a lease", () => {
	it("needs credentials:use", async () => {
		const user = await createUser();
		const key = await createKey(user.id, ["credentials:read", "credentials:write"]);
		const t = tenant();
		const provider = await apiProvider(t);
		const id = await storeCredential(key, { provider, type: "api_key", api_key: "k_s" });
		await expectError(await proxy(key, id, "/echo"), 403, "insufficient_scope");
		expect((await upstream(t)).requests).toHaveLength(0);
	});

	it("a revoked key or session is refused at once, even when the isolate's cache still trusts it", async () => {
		const { id: userId, key } = await userWithKey();
		const t = tenant();
		const provider = await apiProvider(t);
		const id = await storeCredential(key, { provider, type: "api_key", api_key: "k_r" });
		const pair = await exchange(key);
		expect((await proxy(pair.access_token, id, "/echo", { method: "GET" })).status).toBe(200);
		expect((await proxy(key, id, "/echo", { method: "GET" })).status).toBe(200);
		await db
			.update(sessions)
			.set({ revokedAt: new Date(), revokedReason: "revoked" })
			.where(eq(sessions.userId, userId));
		await expectError(await proxy(pair.access_token, id, "/echo"), 401, "unauthorized");
		await db.execute(sql`update api_keys set revoked_at = now() where user_id = ${userId}`);
		await expectError(await proxy(key, id, "/echo"), 401, "unauthorized");
		expect((await upstream(t)).requests).toHaveLength(2);
	});

	it("counts against the lease rate of the caller's key", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const provider = await apiProvider(t);
		const id = await storeCredential(key, { provider, type: "api_key", api_key: "k_rate" });
		// A bucket of 2, refilled once a second: a lease and a proxied call spend it.
		const env = { LATCHKEY_LEASE_BURST: "2", LATCHKEY_LEASE_RATE_PER_SECOND: "1" };
		await leased(await lease(key, id, undefined, env));
		expect((await proxy(key, id, "/echo", {}, env)).status).toBe(200);
		const res = await proxy(key, id, "/echo", {}, env);
		await expectError(res, 429, "rate_limited");
		expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
		expect((await upstream(t)).requests).toHaveLength(1);
	});

	it("counts against the credential's cap of live leases", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const provider = await apiProvider(t);
		const id = await storeCredential(key, { provider, type: "api_key", api_key: "k_cap" });
		const env = { LATCHKEY_MAX_LEASES_PER_CREDENTIAL: "1" };
		await leased(await lease(key, id, { ttl_seconds: 60 }, env));
		await expectError(await proxy(key, id, "/echo", {}, env), 429, "rate_limited");
		expect((await upstream(t)).requests).toHaveLength(0);
	});
});

describe("upstream failures", () => {
	it("an upstream that says nothing is 504 upstream_timeout, in the error shape", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const provider = await apiProvider(t);
		const id = await storeCredential(key, { provider, type: "api_key", api_key: "k_t" });
		const res = await proxy(key, id, "/hang", {}, { LATCHKEY_PROXY_TIMEOUT_SECONDS: "1" });
		const body = await expectError(res, 504, "upstream_timeout");
		expect(body.error.hint).toBeTruthy();
		expect(res.headers.get("x-latchkey-request-id")).toBe(body.error.request_id);
		await release(t);
	});

	it("an upstream that drops the connection is 502 upstream_unavailable", async () => {
		const { key } = await userWithKey();
		const id = await storeCredential(key, {
			provider: "dropper",
			type: "host_scoped",
			host: `127.0.0.1:${inject("dropperPort")}`,
			headers: { "X-Stored-Token": "hs_dropped_value" },
		});
		await expectError(await proxy(key, id, "/x"), 502, "upstream_unavailable");
	});

	it("a body over the proxy's limit is 413, declared or found while streaming", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const provider = await apiProvider(t);
		const id = await storeCredential(key, { provider, type: "api_key", api_key: "k_big" });
		const env = { LATCHKEY_PROXY_MAX_REQUEST_BYTES: "1000" };
		const declared = await proxy(
			key,
			id,
			"/upload",
			{ method: "POST", body: new Uint8Array(2000) },
			env,
		);
		await expectError(declared, 413, "payload_too_large");
		const chunked = await proxy(
			key,
			id,
			"/upload",
			{ method: "POST", body: streamOf(2000, 500) },
			env,
		);
		await expectError(chunked, 413, "payload_too_large");
		expect((await upstream(t)).upload.done).toBe(false);
		// Within the limit, and a JSON body over the API's own 64 KiB limit, both go through.
		const ok = await proxy(key, id, "/upload", {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: streamOf(100 * 1024, 4096),
		});
		expect(((await ok.json()) as { bytes: number }).bytes).toBe(100 * 1024);
	});
});

/** `total` pattern bytes (byte i = i % 251) as a stream of `chunk`-byte pieces, of unknown length. */
function streamOf(total: number, chunk: number): ReadableStream<Uint8Array> {
	let sent = 0;
	return new ReadableStream<Uint8Array>({
		pull(controller) {
			if (sent >= total) {
				controller.close();
				return;
			}
			const n = Math.min(chunk, total - sent);
			controller.enqueue(pattern(sent, n));
			sent += n;
		},
	});
}

// One period-aligned source: a chunk at any offset is a copy of a slice of it.
const PERIOD = 251;
const SOURCE = Uint8Array.from({ length: 64 * 1024 + PERIOD }, (_, i) => i % PERIOD);
const pattern = (offset: number, n: number) => {
	const out = new Uint8Array(n);
	for (let at = 0; at < n; at += 64 * 1024) {
		const len = Math.min(64 * 1024, n - at);
		const start = (offset + at) % PERIOD;
		out.set(SOURCE.subarray(start, start + len), at);
	}
	return out;
};

describe("bodies stream both ways", () => {
	it("a 50 MB upload reaches the upstream while the caller is still sending it", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const provider = await apiProvider(t);
		const id = await storeCredential(key, { provider, type: "api_key", api_key: "k_up" });
		const total = 50 * MiB;
		const half = 25 * MiB;
		let sent = 0;
		let midway: { reached: boolean; received: number } | undefined;
		const body = new ReadableStream<Uint8Array>({
			async pull(controller) {
				if (sent === half && !midway) {
					// Half sent, the rest held back until the upstream says what it has: a proxy that
					// buffered the body would have sent it nothing yet.
					const res = await fetch(`${UP}/_control/${t}/wait?received=${20 * MiB}&timeout_ms=8000`);
					midway = (await res.json()) as { reached: boolean; received: number };
				}
				if (sent >= total) {
					controller.close();
					return;
				}
				const n = Math.min(256 * 1024, total - sent);
				controller.enqueue(pattern(sent, n));
				sent += n;
			},
		});
		const res = await proxy(key, id, "/upload", {
			method: "POST",
			headers: { "content-length": String(total), "content-type": "application/octet-stream" },
			body,
		});
		expect(midway).toEqual({ reached: true, received: expect.any(Number) });
		expect(midway?.received).toBeLessThan(total);
		expect(res.status).toBe(200);
		expect(await res.json()).toEqual({
			bytes: total,
			pattern_ok: true,
			// The declared length is kept: the upstream gets Content-Length, not a chunked body.
			content_length: String(total),
			transfer_encoding: null,
		});
	}, 60_000);

	it("a 50 MB download reaches the caller while the upstream is still sending it", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const provider = await apiProvider(t);
		const id = await storeCredential(key, { provider, type: "api_key", api_key: "k_down" });
		const total = 50 * MiB;
		// The upstream sends half, then holds the rest until released (or for 10 s, then goes on
		// and says so): the caller releases it after reading 20 MiB through the proxy.
		const res = await proxy(key, id, `/download?bytes=${total}&hold_at=${25 * MiB}`);
		expect(res.status).toBe(200);
		expect(res.headers.get("content-length")).toBe(String(total));
		const reader = (res.body as ReadableStream<Uint8Array>).getReader();
		let seen = 0;
		let released = false;
		let intact = true;
		for (;;) {
			const { done, value } = await reader.read();
			if (done) break;
			if (intact) {
				for (let i = 0; i < value.length; i += 4099) {
					if (value[i] !== (seen + i) % PERIOD) intact = false;
				}
			}
			seen += value.length;
			if (!released && seen >= 20 * MiB) {
				released = true;
				await release(t);
			}
		}
		expect(seen).toBe(total);
		expect(intact).toBe(true);
		expect((await upstream(t)).download.released_by).toBe("control");
	}, 60_000);
});

/**
 * The upstream stops accepting an access token the authorization server still honours (an API
 * whose own view of the token ended early). Revoking it at oidc-provider would revoke the grant's
 * refresh tokens too, leaving nothing to refresh with.
 */
async function distrust(t: string, token: string): Promise<void> {
	const res = await fetch(`${UP}/_control/${t}/distrust`, {
		method: "POST",
		body: JSON.stringify({ token }),
	});
	expect(res.status).toBe(200);
}

describe("an upstream 401 on an OAuth2 token: one forced refresh, one retry", () => {
	async function connectedAt(t: string) {
		const { key } = await userWithKey();
		const provider = await apiProvider(t);
		const username = account("proxy401");
		const id = await connect(key, username, {}, provider);
		// Obtained ten minutes ago (still valid for an hour at the provider): old enough to blame.
		await age(id, 600, 3000);
		return { key, id, before: await tokensOf(id) };
	}

	it("a token the provider no longer honours is refreshed and the call retried", async () => {
		const t = tenant();
		const { key, id, before } = await connectedAt(t);
		await distrust(t, before.access_token);

		const res = await proxy(key, id, "/introspected", {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ a: 1 }),
		});
		expect(res.status, await res.clone().text()).toBe(200);
		const after = await tokensOf(id);
		expect(after.access_token).not.toBe(before.access_token);
		expect((await introspect(after.access_token)).active).toBe(true);
		expect(await refreshAttempts(before.refresh_token ?? "")).toBe(1);
		const seen = (await upstream(t)).requests;
		expect(seen.map((r) => [r.status, r.headers.authorization])).toEqual([
			[401, `Bearer ${before.access_token}`],
			[200, `Bearer ${after.access_token}`],
		]);
		expect(await services.redis.zcard(leaseKeys(id).holders)).toBe(0);
	});

	it("ten calls that meet the 401 at once make one refresh", async () => {
		const t = tenant();
		const { key, id, before } = await connectedAt(t);
		await distrust(t, before.access_token);
		const answers = await Promise.all(
			Array.from({ length: 10 }, () => proxy(key, id, "/introspected")),
		);
		expect(answers.map((r) => r.status)).toEqual(Array(10).fill(200));
		expect(await refreshAttempts(before.refresh_token ?? "")).toBe(1);
		const after = await tokensOf(id);
		const retried = (await upstream(t)).requests.filter((r) => r.status === 200);
		expect(new Set(retried.map((r) => r.headers.authorization))).toEqual(
			new Set([`Bearer ${after.access_token}`]),
		);
	});

	it("never more than one retry; a token just obtained is not refreshed again", async () => {
		const t = tenant();
		const { key, id, before } = await connectedAt(t);
		const res = await proxy(key, id, "/status/401");
		expect(res.status).toBe(401);
		expect((await upstream(t)).requests).toHaveLength(2);
		expect(await refreshAttempts(before.refresh_token ?? "")).toBe(1);
		// The refreshed token is seconds old: another 401 is passed on without a refresh.
		const fresh = await tokensOf(id);
		expect((await proxy(key, id, "/status/401")).status).toBe(401);
		expect((await upstream(t)).requests).toHaveLength(3);
		expect(await refreshAttempts(fresh.refresh_token ?? "")).toBe(0);
		expect((await tokensOf(id)).access_token).toBe(fresh.access_token);
	});

	it("a body too large to send twice: the 401 is passed on, and the token refreshed for the next call", async () => {
		const t = tenant();
		const { key, id, before } = await connectedAt(t);
		await distrust(t, before.access_token);
		const res = await proxy(key, id, "/introspected", {
			method: "POST",
			body: streamOf(200 * 1024, 8192),
		});
		expect(res.status).toBe(401);
		expect((await upstream(t)).requests).toHaveLength(1);
		expect((await proxy(key, id, "/introspected")).status).toBe(200);
		expect(await refreshAttempts(before.refresh_token ?? "")).toBe(1);
	});
});

describe("no secret in a proxied answer's headers or in a log line", () => {
	function captureConsole(): string[] {
		const lines: string[] = [];
		for (const m of ["log", "warn", "error", "info", "debug"] as const) {
			vi.spyOn(console, m).mockImplementation((...args: unknown[]) => {
				lines.push(args.map(String).join(" "));
			});
		}
		return lines;
	}

	it("across every type, the retry path and the failures", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const provider = await apiProvider(t, { api_key_placement: { in: "query", name: "key" } });
		const apiKey = `plain${crypto.randomUUID().replaceAll("-", "")}`;
		const password = `pw${crypto.randomUUID().replaceAll("-", "")}`;
		const stored = `hs${crypto.randomUUID().replaceAll("-", "")}`;
		// A key header whose name says nothing of a secret (Honeycomb's, say) is as secret.
		const team = `tm${crypto.randomUUID().replaceAll("-", "")}`;
		const ids = [
			await storeCredential(key, { provider, type: "api_key", api_key: apiKey }),
			await storeCredential(key, { provider, type: "user_password", username: "u", password }),
			await storeCredential(key, {
				provider: "upstream",
				type: "host_scoped",
				host: UP_HOST,
				headers: { "X-Stored-Token": stored, "X-Honeycomb-Team": team },
			}),
		];
		const oauthTenant = tenant();
		const oauth = await connectedAt401(oauthTenant);
		const secrets = [
			apiKey,
			password,
			basic("u", password),
			stored,
			team,
			oauth.before.access_token,
		];

		const lines = captureConsole();
		const answers: Response[] = [];
		try {
			answers.push(await proxy(key, ids[0] as string, "/echo?x=1"));
			answers.push(await proxy(key, ids[1] as string, "/echo"));
			answers.push(await proxy(key, ids[2] as string, `/t/${t}/echo`));
			answers.push(
				await proxy(key, ids[0] as string, `/redirect?to=https://elsewhere.example/?key=${apiKey}`),
			);
			answers.push(
				await proxy(key, ids[0] as string, "/hang", {}, { LATCHKEY_PROXY_TIMEOUT_SECONDS: "1" }),
			);
			answers.push(await proxy(oauth.key, oauth.id, "/introspected"));
		} finally {
			vi.restoreAllMocks();
			await release(t);
		}
		expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 502, 504, 200]);
		const after = await tokensOf(oauth.id);
		secrets.push(after.access_token);
		const headers = answers.map(headerText).join("\n");
		const logs = lines.join("\n");
		expect(logs).toContain("/v1/proxy/");
		for (const secret of secrets) {
			expect(headers).not.toContain(secret);
			expect(logs).not.toContain(secret);
		}
	});

	async function connectedAt401(t: string) {
		const { key } = await userWithKey();
		const provider = await apiProvider(t);
		const id = await connect(key, account("proxylog"), {}, provider);
		await age(id, 600, 3000);
		const before = await tokensOf(id);
		await distrust(t, before.access_token);
		return { key, id, before };
	}
});

describe("the audit log", () => {
	it("records each proxied call as proxy.call, refusals too, without path, query or secret", async () => {
		const { id: userId, key } = await userWithKey();
		const t = tenant();
		const provider = await apiProvider(t, { api_key_placement: { in: "query", name: "key" } });
		const secret = `ak_${crypto.randomUUID()}`;
		const id = await storeCredential(key, { provider, type: "api_key", api_key: secret });
		expect(
			(await proxy(key, id, "/echo/private-path?q=private-query", { method: "PUT" })).status,
		).toBe(200);
		expect((await proxy(key, id, "/status/503")).status).toBe(503);
		await expectError(
			await proxy(key, id, "/hang", {}, { LATCHKEY_PROXY_TIMEOUT_SECONDS: "1" }),
			504,
			"upstream_timeout",
		);
		await release(t);
		const res = await call(`/v1/audit?action=proxy.call&target=credential:${id}`, { token: key });
		expect(res.status).toBe(200);
		const { data } = (await res.json()) as {
			data: { outcome: string; user_id: string; detail: Record<string, unknown> }[];
		};
		const seen = data.map((e) => [e.outcome, e.detail]);
		expect(seen).toEqual(
			expect.arrayContaining([
				["success", { method: "PUT", host: new URL(UP).host, status: 200 }],
				["failure", { method: "GET", host: new URL(UP).host, status: 503 }],
				["failure", { code: "upstream_timeout", status: 504 }],
			]),
		);
		expect(data).toHaveLength(3);
		expect(data.every((e) => e.user_id === userId)).toBe(true);
		const text = JSON.stringify(data);
		for (const leak of ["private-path", "private-query", secret]) expect(text).not.toContain(leak);
	});
});

describe("the provider API", () => {
	it("api_base_url and api_key_placement are set, read back, and built-ins have theirs", async () => {
		const t = tenant();
		const id = `px-${t}`;
		const res = await putProvider(
			id,
			providerBody({
				name: id,
				api_base_url: `${UP}/t/${t}`,
				api_key_placement: { in: "header", name: "X-Api-Key" },
			}),
		);
		expect(res.status).toBe(200);
		const body = (await res.json()) as Record<string, unknown>;
		expect(body.api_base_url).toBe(`${UP}/t/${t}`);
		expect(body.api_key_placement).toEqual({ in: "header", name: "X-Api-Key", prefix: "" });
		const bad = await putProvider(
			id,
			providerBody({ name: id, api_key_placement: { in: "header", name: "Host" } }),
		);
		await expectError(bad, 400, "invalid_request");
		// Built-in providers ship with their API roots.
		expect(builtinProvider("github")?.apiBaseUrl).toBe("https://api.github.com");
		expect(builtinProvider("github")?.apiKeyPlacement).toEqual({
			in: "header",
			name: "Authorization",
			prefix: "Bearer ",
		});
	});
});
