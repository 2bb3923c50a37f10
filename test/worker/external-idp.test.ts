import { importJWK, type JWK, SignJWT } from "jose";
import { describe, expect, inject, it } from "vitest";
import { MAX_EXTERNAL_TOKEN_AGE_S } from "../../src/auth/external.ts";
import { call, expectError } from "./helpers.ts";

const idp = inject("idp");
const externalEnv = {
	EXTERNAL_JWT_JWKS_URL: idp.jwksUrl,
	EXTERNAL_JWT_ISSUER: idp.issuer,
	EXTERNAL_JWT_AUDIENCE: "latchkey-platform",
};

async function idToken(claims: Record<string, unknown>) {
	const jwk = idp.privateJwks.find((k) => k.kid === "idp-rsa") as JWK;
	const alg = jwk.alg as string;
	const sub = `ext-${crypto.randomUUID()}`;
	const payload = Object.fromEntries(
		Object.entries({
			iss: idp.issuer,
			aud: "latchkey-platform",
			sub,
			email: `${sub}@idp.example`,
			email_verified: true,
			...claims,
		}).filter(([, v]) => v !== undefined),
	);
	return new SignJWT(payload)
		.setProtectedHeader({ alg, kid: jwk.kid })
		.sign(await importJWK(jwk, alg));
}

const whoami = async (token: string) => call("/v1/whoami", { token }, externalEnv);

describe("external identity tokens: exp required, lifetime bounded", () => {
	const now = () => Math.floor(Date.now() / 1000);
	const DAY = MAX_EXTERNAL_TOKEN_AGE_S;

	it("bounds tokens at 24 hours", () => {
		expect(MAX_EXTERNAL_TOKEN_AGE_S).toBe(86_400);
	});

	it("accepts a short-lived token", async () => {
		expect((await whoami(await idToken({ iat: now(), exp: now() + 300 }))).status).toBe(200);
	});

	it("refuses a token without exp (with or without iat)", async () => {
		const withIat = await expectError(
			await whoami(await idToken({ iat: now() })),
			401,
			"unauthorized",
		);
		expect(withIat.error.message).toContain("exp");
		await expectError(await whoami(await idToken({})), 401, "unauthorized");
	});

	it("refuses an iat older than 24 hours, even with a far exp", async () => {
		const token = await idToken({ iat: now() - DAY - 3600, exp: now() + 300 });
		await expectError(await whoami(token), 401, "unauthorized");
	});

	it("refuses exp - iat beyond 24 hours, and an exp more than 24 hours ahead", async () => {
		await expectError(
			await whoami(await idToken({ iat: now(), exp: now() + DAY + 3600 })),
			401,
			"unauthorized",
		);
		await expectError(
			await whoami(await idToken({ exp: now() + 10 * 365 * DAY })),
			401,
			"unauthorized",
		);
	});
});
