import { describe, expect, it } from "vitest";
import { ERROR_STATUS, type ErrorCode, errorBody, LatchkeyError } from "../../src/errors.ts";
import { admin, createUser, userWithKey } from "./fixtures.ts";
import { call, expectError } from "./helpers.ts";

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
