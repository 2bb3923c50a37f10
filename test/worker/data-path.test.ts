import { describe, expect, inject, it } from "vitest";
import { admin, exchange, userWithKey } from "./fixtures.ts";
import { call, expectError } from "./helpers.ts";

/** Round trips a response reports in Server-Timing: `pg` over HTTP, `pg-ws` pool connections. */
function roundTrips(res: Response): { http: number; ws: number } {
	const timing = res.headers.get("server-timing") ?? "";
	const count = (name: string) => {
		const m = new RegExp(`(?:^|, )${name};dur=[\\d.]+;desc="(\\d+) calls?"`).exec(timing);
		return m ? Number(m[1]) : 0;
	};
	return { http: count("pg"), ws: count("pg-ws") };
}

/** Calls of one Server-Timing metric. */
function calls(res: Response, name: string): number {
	const m = new RegExp(`(?:^|, )${name};dur=[\\d.]+;desc="(\\d+) calls?"`).exec(
		res.headers.get("server-timing") ?? "",
	);
	return m ? Number(m[1]) : 0;
}

async function credentialOf(key: string): Promise<string> {
	const res = await call("/v1/credentials", {
		method: "POST",
		token: key,
		json: { provider: "datapath", type: "api_key", api_key: "dp_secret_0123456789" },
	});
	expect(res.status).toBe(201);
	return ((await res.json()) as { id: string }).id;
}

describe("data path: one HTTP round trip per query, no WebSocket on the hot paths", () => {
	it("/health/ready: one round trip", async () => {
		const res = await call("/health/ready");
		expect(res.status).toBe(200);
		expect(roundTrips(res)).toEqual({ http: 1, ws: 0 });
	});

	it("an authenticated read with a cached key: one round trip", async () => {
		const { key } = await userWithKey();
		const id = await credentialOf(key);
		// The first request above loaded the key; these find it in the isolate cache.
		const one = await call(`/v1/credentials/${id}`, { token: key });
		expect(one.status).toBe(200);
		expect(roundTrips(one)).toEqual({ http: 1, ws: 0 });
		const me = await call("/v1/me", { token: key });
		expect(me.status).toBe(200);
		expect(roundTrips(me)).toEqual({ http: 1, ws: 0 });
		const list = await call("/v1/credentials?limit=100", { token: key });
		expect(list.status).toBe(200);
		expect(roundTrips(list)).toEqual({ http: 1, ws: 0 });
	});

	it("a lease: one Postgres round trip (fresh key or session check batched with the read), one Redis call", async () => {
		const { key } = await userWithKey();
		const id = await credentialOf(key);
		const pair = await exchange(key);
		for (const token of [key, pair.access_token]) {
			// The first lease warms the isolate's key/session cache and the Lua script cache.
			expect((await call(`/v1/credentials/${id}/leases`, { method: "POST", token })).status).toBe(
				201,
			);
			const res = await call(`/v1/credentials/${id}/leases`, { method: "POST", token });
			expect(res.status).toBe(201);
			expect(roundTrips(res)).toEqual({ http: 1, ws: 0 });
			expect(calls(res, "redis")).toBe(1);
		}
	});

	it("a proxied call: the lease's one Postgres round trip, which also tells the proxy its target", async () => {
		const { key } = await userWithKey();
		const res = await call("/v1/credentials", {
			method: "POST",
			token: key,
			json: {
				provider: "upstream",
				type: "host_scoped",
				host: new URL(inject("upstream").url).host,
				headers: { "X-Token": "dp_proxy_secret" },
			},
		});
		expect(res.status).toBe(201);
		const id = ((await res.json()) as { id: string }).id;
		for (let i = 0; i < 2; i++) {
			// The first call warms the isolate's key cache and the lease's hint.
			const proxied = await call(`/v1/proxy/${id}/t/datapath/fast`, { method: "GET", token: key });
			expect(proxied.status).toBe(200);
			await proxied.body?.cancel();
			if (i === 1) expect(roundTrips(proxied)).toEqual({ http: 1, ws: 0 });
		}
	});

	it("the api_key token exchange: two round trips (key check, then one batch)", async () => {
		const { key } = await userWithKey();
		const res = await call("/v1/auth/token", {
			method: "POST",
			json: { grant_type: "api_key", api_key: key },
		});
		expect(res.status).toBe(200);
		expect(roundTrips(res)).toEqual({ http: 2, ws: 0 });
	});

	it("key revocation and account deletion: one batch each, all or nothing", async () => {
		const { key } = await userWithKey();
		const other = await call("/v1/api-keys", {
			method: "POST",
			token: key,
			json: { name: "second" },
		});
		const otherId = ((await other.json()) as { id: string }).id;
		const revoked = await call(`/v1/api-keys/${otherId}`, { method: "DELETE", token: key });
		expect(revoked.status).toBe(204);
		// Two: the key read now (a write never trusts the isolate cache, docs/auth.md), then the batch.
		expect(roundTrips(revoked)).toEqual({ http: 2, ws: 0 });
		const deleted = await call("/v1/me", { method: "DELETE", token: key });
		expect(deleted.status).toBe(202);
		expect(roundTrips(deleted)).toEqual({ http: 2, ws: 0 });
		// The same batch revoked the key: it no longer authenticates.
		await expectError(await call("/v1/me", { token: key }), 401, "unauthorized");
	});

	it("only the refresh grant, which locks rows, opens the WebSocket pool", async () => {
		const { key } = await userWithKey();
		const pair = await exchange(key);
		const res = await call("/v1/auth/token", {
			method: "POST",
			json: { grant_type: "refresh_token", refresh_token: pair.refresh_token },
		});
		expect(res.status).toBe(200);
		expect(roundTrips(res).ws).toBe(1);
	});
});

describe("transport failures are 503 with Retry-After, never 500", () => {
	const dropper = `127.0.0.1:${inject("dropperPort")}`;

	it("the HTTP path losing its connection mid-query", async () => {
		const res = await call(
			"/v1/admin/users",
			{ token: admin() },
			{ LATCHKEY_DB_HTTP_ENDPOINT: `http://${dropper}/sql` },
		);
		await expectError(res, 503, "dependency_unavailable");
		expect(res.headers.get("retry-after")).toBe("5");
	});

	it("the WebSocket path losing its Postgres connection inside a transaction", async () => {
		const { key } = await userWithKey();
		const pair = await exchange(key);
		const res = await call(
			"/v1/auth/token",
			{ method: "POST", json: { grant_type: "refresh_token", refresh_token: pair.refresh_token } },
			// The real WebSocket bridge, dialing a "Postgres" that drops the session as it starts.
			{ DATABASE_URL: `postgres://postgres@${dropper}/latchkey` },
		);
		await expectError(res, 503, "dependency_unavailable");
		expect(res.headers.get("retry-after")).toBe("5");
		// Nothing was consumed: the same refresh token still works once the database is back.
		const retry = await call("/v1/auth/token", {
			method: "POST",
			json: { grant_type: "refresh_token", refresh_token: pair.refresh_token },
		});
		expect(retry.status).toBe(200);
	});
});
