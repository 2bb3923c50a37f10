import { describe, expect, it } from "vitest";
import { ERROR_STATUS, type ErrorCode, errorBody, LatchkeyError } from "../../src/errors.ts";
import { admin, createUser, exchange, userWithKey } from "./fixtures.ts";
import { call, clockedApp, expectError } from "./helpers.ts";

describe("error hints", () => {
	it("every code in the table has a non-empty default hint in the error body", () => {
		const codes = Object.keys(ERROR_STATUS) as ErrorCode[];
		expect(codes.length).toBeGreaterThan(20);
		const missing = codes.filter((code) => {
			for (const hint of [undefined, ""]) {
				const body = errorBody(new LatchkeyError(code, "m", { hint }), "req_1");
				if (typeof body.error.hint !== "string" || body.error.hint.trim() === "") return true;
			}
			return false;
		});
		expect(missing).toEqual([]);
	});

	it("a suspended user's 403 user_suspended carries a hint", async () => {
		const user = await userWithKey();
		const suspend = await call(`/v1/admin/users/${user.id}`, {
			method: "PATCH",
			token: admin(),
			json: { status: "suspended" },
		});
		expect(suspend.status).toBe(200);
		const body = await expectError(
			await call("/v1/me", { token: user.key }),
			403,
			"user_suspended",
		);
		expect(body.error.hint?.length).toBeGreaterThan(0);
	});

	it("a duplicate e-mail's 409 carries a hint", async () => {
		const user = await createUser();
		const res = await call("/v1/admin/users", {
			method: "POST",
			token: admin(),
			json: { email: user.email },
		});
		expect(res.status).toBe(409);
		const body = (await res.json()) as { error: { hint?: string } };
		expect(body.error.hint?.length).toBeGreaterThan(0);
	});
});

describe("hints that fit the error", () => {
	it("an expired but genuine access token points at the refresh grant", async () => {
		const user = await userWithKey();
		const clock = clockedApp();
		const res = await clock.call("/v1/auth/token", {
			method: "POST",
			json: { grant_type: "api_key", api_key: user.key },
		});
		const { access_token } = (await res.json()) as { access_token: string };
		clock.advance(3600);
		const body = await expectError(
			await clock.call("/v1/me", { token: access_token }),
			401,
			"unauthorized",
		);
		expect(body.error.message).toContain("expired");
		expect(body.error.hint).toContain("grant_type refresh_token");
	});

	it("a refresh token sent as a bearer says so", async () => {
		const user = await userWithKey();
		const pair = await exchange(user.key);
		const body = await expectError(
			await call("/v1/me", { token: pair.refresh_token }),
			401,
			"unauthorized",
		);
		expect(body.error.message).toContain("refresh token");
		expect(body.error.hint).toContain("POST /v1/auth/token");
	});

	it("an unknown route is not told to check an id", async () => {
		const body = await expectError(await call("/v1/no-such-route"), 404, "not_found");
		expect(body.error.hint).toContain("/openapi.json");
		expect(body.error.hint).not.toContain("id");
	});

	it("a body that is not JSON gets a hint that promises no field list it lacks", async () => {
		const user = await userWithKey();
		const res = await call("/v1/credentials", {
			method: "POST",
			token: user.key,
			headers: { "content-type": "application/json" },
			body: "{not json",
		});
		const body = await expectError(res, 400, "invalid_request");
		expect(body.error.hint).not.toContain("detail");
		expect(body.error.hint).toContain("JSON");
	});
});
