import {
	createExecutionContext,
	createScheduledController,
	waitOnExecutionContext,
} from "cloudflare:test";
import { createRoute, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import { HTTPException } from "hono/http-exception";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createApp } from "../../src/app.ts";
import worker from "../../src/index.ts";
import { call, expectError, testEnv } from "./helpers.ts";

afterEach(() => {
	vi.restoreAllMocks();
});

describe("health", () => {
	it("GET /health answers without touching dependencies", async () => {
		// Dependencies pointed at nothing: liveness must not care.
		const res = await call("/health", {}, { UPSTASH_REDIS_REST_URL: "http://127.0.0.1:1" });
		expect(res.status).toBe(200);
		expect(await res.json()).toEqual({ status: "ok" });
	});

	it("GET /health/ready checks Postgres and Redis for real and reports timing", async () => {
		const res = await call("/health/ready");
		expect(res.status).toBe(200);
		expect(await res.json()).toEqual({ status: "ok", postgres: "ok", redis: "ok" });
		const timing = res.headers.get("server-timing") ?? "";
		expect(timing).toMatch(/pg;dur=\d+(\.\d+)?/);
		expect(timing).toMatch(/redis;dur=\d+(\.\d+)?/);
	});

	it("reports a dead Redis as 503 naming it", async () => {
		const res = await call("/health/ready", {}, { UPSTASH_REDIS_REST_URL: "http://127.0.0.1:1" });
		const body = await expectError(res, 503, "dependency_unavailable");
		expect(body.error.message).toContain("redis");
		expect(body.error.message).not.toContain("postgres");
		expect(body.error.detail).toEqual({
			status: "unavailable",
			postgres: "ok",
			redis: "unavailable",
		});
		expect(res.headers.get("retry-after")).toBe("5");
	});

	it("reports a dead Postgres as 503 naming it", async () => {
		const dead = new URL(testEnv.DATABASE_URL);
		dead.port = "1";
		const res = await call("/health/ready", {}, { DATABASE_URL: dead.toString() });
		const body = await expectError(res, 503, "dependency_unavailable");
		expect(body.error.detail).toEqual({
			status: "unavailable",
			postgres: "unavailable",
			redis: "ok",
		});
	});

	it("reports a dead database bridge as 503 too", async () => {
		const res = await call(
			"/health/ready",
			{},
			{ LATCHKEY_DB_HTTP_ENDPOINT: "http://127.0.0.1:1/sql" },
		);
		const body = await expectError(res, 503, "dependency_unavailable");
		expect(body.error.message).toContain("postgres");
	});
});

describe("configuration", () => {
	it("names a missing variable with 500 misconfigured", async () => {
		const res = await call("/health", {}, { LATCHKEY_ADMIN_TOKEN: undefined });
		const body = await expectError(res, 500, "misconfigured");
		expect(body.error.message).toContain("LATCHKEY_ADMIN_TOKEN");
		expect(body.error.detail).toEqual([{ variable: "LATCHKEY_ADMIN_TOKEN", problem: "missing" }]);
	});

	it("names invalid variables and never echoes secret values", async () => {
		const badKeys = JSON.stringify({ k1: btoa("too-short-key-material") });
		const res = await call(
			"/health",
			{},
			{
				LATCHKEY_ENCRYPTION_KEYS: badKeys,
				LATCHKEY_JWT_SIGNING_KEYS: "{not json",
				DATABASE_URL: "mysql://root:hunter2@db/x",
			},
		);
		const body = await expectError(res, 500, "misconfigured");
		const text = JSON.stringify(body);
		for (const name of ["LATCHKEY_ENCRYPTION_KEYS", "LATCHKEY_JWT_SIGNING_KEYS", "DATABASE_URL"]) {
			expect(body.error.message).toContain(name);
		}
		expect(text).not.toContain("hunter2");
		expect(text).not.toContain(btoa("too-short-key-material"));
		for (const secret of [testEnv.LATCHKEY_ADMIN_TOKEN, testEnv.UPSTASH_REDIS_REST_TOKEN]) {
			expect(text).not.toContain(secret);
		}
	});

	it("requires the active encryption key to be in the key ring", async () => {
		const res = await call("/health", {}, { LATCHKEY_ENCRYPTION_ACTIVE_KEY: "nope" });
		const body = await expectError(res, 500, "misconfigured");
		expect(body.error.message).toContain("LATCHKEY_ENCRYPTION_ACTIVE_KEY");
	});
});

describe("request ids", () => {
	it("echoes a sane caller id and replaces anything else", async () => {
		const sane = "client-req:1234.abcd";
		const echoed = await call("/health", { headers: { "x-request-id": sane } });
		expect(echoed.headers.get("x-request-id")).toBe(sane);
		for (const bad of ["short", "has space in it", "x".repeat(129), "semi;colon-1234"]) {
			const res = await call("/health", { headers: { "x-request-id": bad } });
			const id = res.headers.get("x-request-id");
			expect(id).not.toBe(bad);
			expect(id).toMatch(/^req_[0-9a-f-]{36}$/);
		}
	});

	it("puts the same id in the error body and the header", async () => {
		const res = await call("/nope", { headers: { "x-request-id": "trace-abcdef-42" } });
		const body = await expectError(res, 404, "not_found");
		expect(body.error.request_id).toBe("trace-abcdef-42");
	});
});

describe("error shape", () => {
	// A scratch app built by the same factory, to exercise the shared validation and error paths.
	function scratchApp() {
		const app = createApp();
		app.openapi(
			createRoute({
				method: "post",
				path: "/scratch",
				request: {
					body: {
						content: {
							"application/json": {
								schema: z.object({ name: z.string().min(1), count: z.number().int() }),
							},
						},
					},
				},
				responses: { 200: { description: "ok" } },
			}),
			(c) => c.json({ ok: true }, 200),
		);
		app.get("/scratch/401", () => {
			throw new HTTPException(401, { message: "nope" });
		});
		app.get("/scratch/boom", () => {
			throw new Error("database said: password=hunter2 for sk-abcdefghijklmnop");
		});
		app.get("/scratch/bad-sql", async (c) => {
			// A statement Postgres rejects, with a parameter that must never reach a log.
			await c
				.get("services")
				.db.execute(sql`select * from no_such_table_here where v = ${"param-opaque-4711"}`);
			return c.text("unreachable");
		});
		return app;
	}

	async function scratch(path: string, init?: RequestInit) {
		const ctx = createExecutionContext();
		const res = await scratchApp().fetch(
			new Request(`http://latchkey.test${path}`, init),
			testEnv,
			ctx,
		);
		await waitOnExecutionContext(ctx);
		return res;
	}

	it("400 lists the offending fields", async () => {
		const res = await scratch("/scratch", {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ name: "", count: 1.5 }),
		});
		const body = await expectError(res, 400, "invalid_request");
		const fields = (body.error.detail as { field: string }[]).map((d) => d.field).sort();
		expect(fields).toEqual(["count", "name"]);
	});

	it("400 for malformed JSON", async () => {
		const res = await scratch("/scratch", {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: "{nope",
		});
		await expectError(res, 400, "invalid_request");
	});

	it("401 carries WWW-Authenticate", async () => {
		const res = await scratch("/scratch/401");
		await expectError(res, 401, "unauthorized");
		expect(res.headers.get("www-authenticate")).toBe("Bearer");
	});

	it("500 hides the error and logs it redacted", async () => {
		const logged: string[] = [];
		vi.spyOn(console, "error").mockImplementation((line: string) => {
			logged.push(line);
		});
		const res = await scratch("/scratch/boom");
		const body = await expectError(res, 500, "internal_error");
		expect(JSON.stringify(body)).not.toMatch(/hunter2|sk-abc|database said|at /);
		const log = logged.join("\n");
		expect(log).toContain("request failed");
		expect(log).not.toContain("hunter2");
		expect(log).not.toContain("sk-abcdefghijklmnop");
	});

	it("500 from a rejected statement logs Postgres's code and message, never its parameters", async () => {
		const logged: string[] = [];
		vi.spyOn(console, "error").mockImplementation((line: string) => {
			logged.push(line);
		});
		const res = await scratch("/scratch/bad-sql");
		const body = await expectError(res, 500, "internal_error");
		expect(JSON.stringify(body)).not.toMatch(/param-opaque|no_such_table/);
		const entry = JSON.parse(logged.find((l) => l.includes("request failed")) ?? "{}");
		expect(entry.pg_code).toBe("42P01");
		expect(entry.error_message).toMatch(/no_such_table_here/);
		expect(logged.join("\n")).not.toContain("param-opaque-4711");
	});

	it("404 for an unknown route", async () => {
		await expectError(await call("/v1/nothing-here"), 404, "not_found");
	});

	it("413 for a declared body over 64 KiB", async () => {
		const res = await call("/v1/anything", {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ pad: "x".repeat(65 * 1024) }),
		});
		await expectError(res, 413, "payload_too_large");
	});

	it("413 for a streamed body over 64 KiB without Content-Length", async () => {
		const chunk = new TextEncoder().encode("x".repeat(16 * 1024));
		let sent = 0;
		const stream = new ReadableStream<Uint8Array>({
			pull(controller) {
				if (sent++ < 5) controller.enqueue(chunk);
				else controller.close();
			},
		});
		const res = await scratch("/scratch", {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: stream,
			duplex: "half",
		} as RequestInit);
		await expectError(res, 413, "payload_too_large");
	});

	it("a body just under the limit passes the limit and reaches validation", async () => {
		const res = await scratch("/scratch", {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ name: "x".repeat(60 * 1024), count: 1 }),
		});
		expect(res.status).toBe(200);
	});
});

describe("headers", () => {
	it("sets security headers", async () => {
		const res = await call("/health");
		expect(res.headers.get("x-content-type-options")).toBe("nosniff");
		expect(res.headers.get("x-frame-options")).toBe("DENY");
		expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
		expect(res.headers.get("strict-transport-security")).toContain("max-age=");
	});

	it("allows CORS only for configured origins", async () => {
		const allowed = await call("/health", { headers: { origin: "https://app.example.com" } });
		expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
		const other = await call("/health", { headers: { origin: "https://evil.example" } });
		expect(other.headers.get("access-control-allow-origin")).toBeNull();
		const preflight = await call("/health", {
			method: "OPTIONS",
			headers: { origin: "https://app.example.com", "access-control-request-method": "POST" },
		});
		expect(preflight.status).toBe(204);
		expect(preflight.headers.get("access-control-allow-methods")).toContain("POST");
	});
});

describe("openapi and docs", () => {
	it("serves an OpenAPI 3.1 document covering the routes", async () => {
		const res = await call("/openapi.json");
		expect(res.status).toBe(200);
		const doc = (await res.json()) as {
			openapi: string;
			paths: Record<string, unknown>;
			components: { schemas: object };
		};
		expect(doc.openapi).toBe("3.1.0");
		expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/health", "/health/ready"]));
		expect(doc.components.schemas).toHaveProperty("Error");
	});

	it("serves the interactive reference", async () => {
		const res = await call("/docs");
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toContain("text/html");
		// Swagger UI, started by a same-origin script that loads /openapi.json (docs.test.ts).
		expect(await res.text()).toContain('<script src="/docs/assets/init.js"></script>');
	});
});

describe("scheduled", () => {
	it("runs the job list and logs a structured summary", async () => {
		const lines: string[] = [];
		vi.spyOn(console, "log").mockImplementation((line: string) => {
			lines.push(String(line));
		});
		const ctx = createExecutionContext();
		// Proactive refresh off: on the shared database it would refresh tokens other files age.
		const env = { ...testEnv, LATCHKEY_PROACTIVE_REFRESH_SECONDS: "0" };
		await worker.scheduled(createScheduledController({ cron: "*/5 * * * *" }), env, ctx);
		await waitOnExecutionContext(ctx);
		const summary = lines.map((l) => JSON.parse(l)).find((r) => r.msg === "maintenance run");
		expect(summary).toMatchObject({ level: "info", cron: "*/5 * * * *", jobs: expect.any(Array) });
		expect(summary.started_at).toMatch(/^\d{4}-\d\d-\d\dT/);
		// Every job ran and succeeded; a failing job would report ok: false.
		expect(summary.jobs.length).toBeGreaterThan(0);
		expect(summary.jobs.filter((j: { ok: boolean }) => !j.ok)).toEqual([]);
	});
});
