import { createServer, type Server } from "node:net";
import { neonConfig, Pool } from "@neondatabase/serverless";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { WebSocket } from "ws";
import { isLoopbackHost, parseAddress, startWsProxy } from "../../scripts/bridges/neon-ws.ts";
import type { RunningServer } from "../../scripts/lib/net.ts";

// The suite's Postgres: the real one, or the embedded server where there is none.
const POSTGRES_URL = inject("infra").adminUrl;

let proxy: RunningServer;

beforeAll(async () => {
	proxy = await startWsProxy();
	// The same settings the worker applies when LATCHKEY_DB_WS_PROXY is set.
	neonConfig.webSocketConstructor = WebSocket;
	neonConfig.wsProxy = (host, port) => `127.0.0.1:${proxy.port}/v1?address=${host}:${port}`;
	neonConfig.useSecureWebSocket = false;
	neonConfig.pipelineTLS = false;
	neonConfig.pipelineConnect = false;
});

afterAll(async () => {
	await proxy?.close();
});

/** Resolves with the HTTP status the proxy answered an upgrade with, or 101 if it upgraded. */
function upgradeStatus(address: string, path = "/v1"): Promise<number> {
	return new Promise((resolve, reject) => {
		const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}${path}?address=${address}`);
		ws.on("unexpected-response", (_req, res) => {
			resolve(res.statusCode ?? 0);
			ws.terminate();
		});
		ws.on("open", () => {
			resolve(101);
			ws.terminate();
		});
		ws.on("error", (err) => {
			if (!String(err.message).includes("Unexpected server response")) reject(err);
		});
	});
}

describe("ws-proxy", () => {
	it("carries the Neon driver to a real Postgres", async () => {
		const pool = new Pool({ connectionString: POSTGRES_URL, max: 2 });
		try {
			const one = await pool.query("select 1 as one");
			expect(one.rows).toEqual([{ one: 1 }]);
			const params = await pool.query("select $1::int + 1 as n, $2::text as t, $3::jsonb as j", [
				41,
				"zé ✓",
				JSON.stringify({ a: [1, 2] }),
			]);
			expect(params.rows).toEqual([{ n: 42, t: "zé ✓", j: { a: [1, 2] } }]);
			// A result far bigger than one WebSocket frame, to exercise streaming and backpressure.
			const big = await pool.query("select repeat('x', 1000) as s from generate_series(1, 3000)");
			expect(big.rows).toHaveLength(3000);
			expect(big.rows.every((r: { s: string }) => r.s.length === 1000)).toBe(true);
		} finally {
			await pool.end();
		}
	});

	it("refuses targets that are not loopback and malformed requests", async () => {
		expect(await upgradeStatus("10.1.2.3:5432")).toBe(403);
		expect(await upgradeStatus("example.com:5432")).toBe(403);
		expect(await upgradeStatus("[2001:db8::1]:5432")).toBe(403);
		expect(await upgradeStatus("127.0.0.1")).toBe(400);
		expect(await upgradeStatus("127.0.0.1:99999")).toBe(400);
		expect(await upgradeStatus("127.0.0.1:5432", "/v2")).toBe(404);
		expect(await upgradeStatus("127.0.0.1:5432")).toBe(101);
	});

	it("makes the Neon driver fail cleanly for a refused target", async () => {
		const pool = new Pool({
			connectionString: "postgres://postgres@10.1.2.3:5432/postgres",
			max: 1,
		});
		try {
			await expect(pool.query("select 1")).rejects.toThrow();
		} finally {
			await pool.end().catch(() => {});
		}
	});

	it("delivers bytes the server sends before the client says anything", async () => {
		// Postgres waits for the client, but the bridge must not assume every server does.
		const greeting = Buffer.from([0x00, 0xff, 0x10, 0x41, 0x42]);
		const server: Server = createServer((socket) => socket.end(greeting));
		await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
		const address = server.address();
		const port = typeof address === "object" && address ? address.port : 0;
		try {
			const received = await new Promise<Buffer>((resolve, reject) => {
				const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/v1?address=127.0.0.1:${port}`);
				const chunks: Buffer[] = [];
				ws.on("message", (data: Buffer) => chunks.push(data));
				ws.on("close", () => resolve(Buffer.concat(chunks)));
				ws.on("error", reject);
			});
			expect(received).toEqual(greeting);
		} finally {
			await new Promise<void>((resolve) => server.close(() => resolve()));
		}
	});

	it("classifies loopback hosts and parses addresses", () => {
		for (const host of [
			"127.0.0.1",
			"127.1.2.3",
			"::1",
			"localhost",
			"LOCALHOST",
			"db.localhost",
		]) {
			expect(isLoopbackHost(host), host).toBe(true);
		}
		for (const host of [
			"10.0.0.1",
			"128.0.0.1",
			"example.com",
			"::2",
			"localhost.example.com",
			"0.0.0.0",
		]) {
			expect(isLoopbackHost(host), host).toBe(false);
		}
		expect(parseAddress("127.0.0.1:5432")).toEqual({ host: "127.0.0.1", port: 5432 });
		expect(parseAddress("[::1]:6543")).toEqual({ host: "::1", port: 6543 });
		expect(parseAddress("::1:6543")).toEqual({ host: "::1", port: 6543 });
		expect(parseAddress("127.0.0.1:0")).toBeUndefined();
		expect(parseAddress(null)).toBeUndefined();
	});
});
