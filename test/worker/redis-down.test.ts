import { describe, expect, it } from "vitest";
import { userWithKey } from "./fixtures.ts";
import { call, expectError } from "./helpers.ts";

/**
 * What does not need Redis keeps working while Redis is unreachable (docs/security.md, "Under
 * faults"): metadata reads answer 200, the listing skips provisioning rather than fail, and what
 * does need Redis (a lease) is a prompt 503 with Retry-After, never a 500 or a hang.
 */
const REDIS_DOWN = { UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9" };

describe("Redis unreachable", () => {
	it("metadata reads and the listing answer 200; a lease is 503 with Retry-After", async () => {
		const { key } = await userWithKey();
		const created = await call("/v1/credentials", {
			method: "POST",
			token: key,
			json: { provider: "svc", type: "api_key", api_key: "k_redis_down" },
		});
		expect(created.status).toBe(201);
		const { id } = (await created.json()) as { id: string };

		for (const path of [`/v1/credentials/${id}`, "/v1/me", "/v1/credentials"]) {
			const res = await call(path, { token: key }, REDIS_DOWN);
			expect([path, res.status]).toEqual([path, 200]);
		}
		const started = Date.now();
		const lease = await call(
			`/v1/credentials/${id}/leases`,
			{ method: "POST", token: key },
			REDIS_DOWN,
		);
		await expectError(lease, 503, "dependency_unavailable");
		expect(Number(lease.headers.get("retry-after"))).toBeGreaterThan(0);
		// Prompt: the REST client's retries are few and short.
		expect(Date.now() - started).toBeLessThan(10_000);
	});
});
