import { decodeProtectedHeader, exportJWK, generateKeyPair, type JWK } from "jose";
import { describe, expect, it } from "vitest";
import {
	JWKS_CACHE_TTL_S,
	publicJwks,
	signAccessToken,
	verifyAccessToken,
} from "../../src/auth/jwt.ts";
import { loadConfig } from "../../src/config.ts";
import { testEnv } from "./helpers.ts";

async function privateJwk(kid: string): Promise<JWK> {
	const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
	return { ...(await exportJWK(privateKey)), kid, alg: "EdDSA" };
}

const configWith = (keys: (JWK & { nbf?: number })[]) =>
	loadConfig({ ...testEnv, LATCHKEY_JWT_SIGNING_KEYS: JSON.stringify({ keys }) });

const claims = { sub: "usr_rotation", scope: "credentials:read", sid: "ses_rotation" };

async function kidSigningAt(config: ReturnType<typeof configWith>, at: Date): Promise<string> {
	const { token } = await signAccessToken(config, claims, at, new Date(at.getTime() + 900_000));
	// Whatever signs, the published set verifies it.
	await verifyAccessToken(config, token, at);
	return decodeProtectedHeader(token).kid as string;
}

describe("JWT signing-key rotation", () => {
	it("publishes a new key at once but signs with it only from its nbf", async () => {
		const deployedAt = new Date("2030-01-01T00:00:00Z");
		const nbf = deployedAt.getTime() / 1000 + JWKS_CACHE_TTL_S + 60;
		const config = configWith([{ ...(await privateJwk("new")), nbf }, await privateJwk("old")]);

		const jwks = await publicJwks(config);
		expect(jwks.keys.map((k) => k.kid)).toEqual(["new", "old"]);
		for (const k of jwks.keys) {
			expect(k).not.toHaveProperty("d");
			expect(k).not.toHaveProperty("nbf");
		}

		// A client that fetched the JWKS just before the deploy holds it for JWKS_CACHE_TTL_S: the
		// whole time the old key keeps signing.
		expect(await kidSigningAt(config, deployedAt)).toBe("old");
		expect(await kidSigningAt(config, new Date((nbf - 1) * 1000))).toBe("old");
		expect(await kidSigningAt(config, new Date(nbf * 1000))).toBe("new");
		expect(await kidSigningAt(config, new Date((nbf + 86_400) * 1000))).toBe("new");
	});

	it("refuses a set in which no private key may sign without waiting", async () => {
		expect(() =>
			configWith([{ ...({} as JWK), kty: "OKP", kid: "pub", crv: "Ed25519", x: "AAAA" }]),
		).toThrow(/LATCHKEY_JWT_SIGNING_KEYS/);
	});

	it("refuses an nbf on a public key", async () => {
		const { d: _d, ...pub } = await privateJwk("pub");
		const signer = await privateJwk("signer");
		expect(() => configWith([signer, { ...pub, nbf: 2_000_000_000 }])).toThrow(
			/LATCHKEY_JWT_SIGNING_KEYS/,
		);
	});
});
