import { randomBytes } from "node:crypto";
import { importJWK, jwtVerify, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { formatDotenv, generateDevSecrets, parseDotenv } from "../../scripts/lib/dev-secrets.ts";

describe("generateDevSecrets", () => {
	it("produces every secret in the documented format", async () => {
		const s = await generateDevSecrets();
		expect(s.LATCHKEY_ADMIN_TOKEN).toMatch(/^lka_[A-Za-z0-9_-]{43}$/);
		expect(s.LATCHKEY_HMAC_SECRET).toMatch(/^[A-Za-z0-9_-]{43}$/);
		expect(s.UPSTASH_REDIS_REST_TOKEN).toMatch(/^[A-Za-z0-9_-]{32,}$/);

		const keys = JSON.parse(s.LATCHKEY_ENCRYPTION_KEYS) as Record<string, string>;
		expect(Object.keys(keys)).toEqual([s.LATCHKEY_ENCRYPTION_ACTIVE_KEY]);
		expect(s.LATCHKEY_ENCRYPTION_ACTIVE_KEY).toMatch(/^k\d{8}$/);
		expect(Buffer.from(keys[s.LATCHKEY_ENCRYPTION_ACTIVE_KEY] ?? "", "base64")).toHaveLength(32);

		const jwks = JSON.parse(s.LATCHKEY_JWT_SIGNING_KEYS) as { keys: Record<string, string>[] };
		expect(jwks.keys).toHaveLength(1);
		const jwk = jwks.keys[0] ?? {};
		expect(jwk).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
		expect(jwk.kid).toBeTruthy();
		expect(jwk.d).toBeTruthy();
	});

	it("gives a signing key that signs and verifies", async () => {
		const s = await generateDevSecrets();
		const jwk =
			(JSON.parse(s.LATCHKEY_JWT_SIGNING_KEYS) as { keys: Record<string, string>[] }).keys[0] ?? {};
		const privateKey = await importJWK(jwk, "EdDSA");
		const { d: _d, ...publicJwk } = jwk;
		const publicKey = await importJWK(publicJwk, "EdDSA");
		const token = await new SignJWT({ sub: "agent" })
			.setProtectedHeader({ alg: "EdDSA", kid: jwk.kid })
			.sign(privateKey);
		const { payload } = await jwtVerify(token, publicKey);
		expect(payload.sub).toBe("agent");
	});

	it("is different every time", async () => {
		const [a, b] = await Promise.all([generateDevSecrets(), generateDevSecrets()]);
		for (const key of Object.keys(a) as (keyof typeof a)[]) {
			if (key === "LATCHKEY_ENCRYPTION_ACTIVE_KEY") continue;
			expect(a[key], key).not.toBe(b[key]);
		}
	});
});

describe("dotenv helpers", () => {
	it("round-trips generated secrets and awkward values", async () => {
		const values: Record<string, string> = {
			...(await generateDevSecrets()),
			EMPTY: "",
			SPACES: "a value with spaces",
			HASH: "before#after",
			JSON_QUOTES: '{"a":"b c","d":[1,2]}',
			SINGLE: "it's",
			BOTH: `it's "quoted"`,
			NEWLINE: "line one\nline two",
			// Spelled in two parts: this is a literal dotenv-expand reference, not a template.
			DOLLAR: "cost: $5 $" + "{HOME}",
			BACKSLASH: "C:\\path\\",
			UNICODE: "zé ✓ 🚀",
			URL: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
			BASE64: randomBytes(40).toString("base64"),
		};
		const text = formatDotenv(values);
		expect(parseDotenv(text)).toEqual(values);
		// JSON must survive as-is for wrangler's dotenv too, which does not unescape \" in
		// double quotes; single quotes keep it literal for both readers.
		expect(text).toContain(`JSON_QUOTES='{"a":"b c","d":[1,2]}'`);
	});

	it("reads comments, export prefixes, quotes and inline comments like dotenv", () => {
		const text = [
			"# a comment",
			"",
			"PLAIN=value",
			"export EXPORTED=yes",
			"SPACED = padded  ",
			'DOUBLE="a\\nb"',
			"SINGLE='a\\nb'",
			"INLINE=value # trailing comment",
			'QUOTED_HASH="has # inside"',
			"MULTI='first",
			"second'",
			"not a valid line",
			"LAST=1",
		].join("\n");
		expect(parseDotenv(text)).toEqual({
			PLAIN: "value",
			EXPORTED: "yes",
			SPACED: "padded",
			DOUBLE: "a\nb",
			SINGLE: "a\\nb",
			INLINE: "value",
			QUOTED_HASH: "has # inside",
			MULTI: "first\nsecond",
			LAST: "1",
		});
	});

	it("rejects names that are not variables", () => {
		expect(() => formatDotenv({ "BAD NAME": "x" })).toThrow(/invalid variable name/);
	});
});
