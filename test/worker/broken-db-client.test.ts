import { DrizzleQueryError } from "drizzle-orm";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import type { AppEnv } from "../../src/http/context.ts";
import { onError, toLatchkeyError } from "../../src/http/error-handler.ts";

/**
 * Found by the soak (bench/soak.ts): with every Postgres connection terminated
 * (pg_terminate_backend), `POST /v1/auth/token` with a refresh token, whose rotation runs in an
 * interactive transaction on the WebSocket pool, answered 500 internal_error. The pg client of
 * @neondatabase/serverless refuses the transaction's next query with "Client has encountered a
 * connection error and is not queryable" and no SQLSTATE; that is a dead dependency (503 with
 * Retry-After), not a bug.
 */
const wrapped = (message: string) =>
	new DrizzleQueryError(
		"select 1 from refresh_tokens where token_hash = $1",
		["x"],
		new Error(message),
	);

describe("a pooled Postgres client whose connection broke", () => {
	it.each([
		"Client has encountered a connection error and is not queryable",
		"Client was closed and is not queryable",
	])("%s → 503 dependency_unavailable with Retry-After", async (message) => {
		for (const err of [new Error(message), wrapped(message)]) {
			const mapped = toLatchkeyError(err);
			expect(mapped.code).toBe("dependency_unavailable");
			expect(mapped.status).toBe(503);
			expect(mapped.retryAfter).toBeGreaterThan(0);
		}
		const app = new Hono<AppEnv>();
		app.get("/boom", () => {
			throw wrapped(message);
		});
		app.onError(onError);
		const res = await app.request("/boom");
		expect(res.status).toBe(503);
		expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
		const body = (await res.json()) as { error: Record<string, string> };
		expect(body.error.code).toBe("dependency_unavailable");
		expect(body.error.hint?.length).toBeGreaterThan(0);
	});

	it("a statement that merely quotes the words stays a bug (500)", () => {
		const quoting = new DrizzleQueryError(
			"select 'Client was closed and is not queryable'",
			[],
			new Error("boom"),
		);
		expect(toLatchkeyError(quoting).code).toBe("internal_error");
	});
});
