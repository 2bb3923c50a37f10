import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { REDACTED, redact } from "../../src/log.ts";

describe("redact", () => {
	it("masks secret-named fields at any depth but keeps ids and timestamps", () => {
		const out = redact({
			password: "p@ss",
			nested: {
				client_secret: "cs",
				list: [{ access_token: "at" }],
				headers: { "x-api-key": "k" },
			},
			api_key_id: "key_123",
			token_expires_at: "2026-01-01T00:00:00Z",
			revoked: true,
		});
		expect(out).toEqual({
			password: REDACTED,
			nested: { client_secret: REDACTED, list: [{ access_token: REDACTED }], headers: REDACTED },
			api_key_id: "key_123",
			token_expires_at: "2026-01-01T00:00:00Z",
			revoked: true,
		});
	});

	it("masks secret shapes inside free text", () => {
		const text = [
			"key lk_0123456789AB_abcdefghijklmnopqrstuvwxyzABCDEF000000",
			"refresh lkr_abcdefghijklmnop",
			"legacy sk-abcdefghijkl",
			"jwt eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.c2ln",
			"auth Bearer abc.def-ghi",
			"url https://x/cb?code=SECRETCODE&state=S123",
			'body {"access_token":"ya29.A0ARrdaM","token_type":"bearer"}',
		].join("\n");
		const out = redact(text) as string;
		for (const secret of [
			"lk_0123",
			"lkr_abc",
			"sk-abc",
			"eyJhbGci",
			"abc.def-ghi",
			"SECRETCODE",
			"S123",
			"ya29.A0",
		]) {
			expect(out).not.toContain(secret);
		}
		expect(out).toContain("token_type");
	});

	it("never lets a Latchkey-format key through, whatever surrounds it", () => {
		const b62 = fc.stringMatching(/^[0-9A-Za-z]{12}$/);
		const secret = fc.stringMatching(/^[0-9A-Za-z]{38}$/);
		fc.assert(
			fc.property(fc.string(), b62, secret, fc.string(), (before, id, s, after) => {
				const key = `lk_${id}_${s}`;
				const out = JSON.stringify(redact({ message: `${before} ${key} ${after}` }));
				return !out.includes(key);
			}),
		);
	});
});
