import { describe, expect, it } from "vitest";
import { toBase64Url, utf8 } from "../../src/crypto/encoding.ts";
import { hmacSha256 } from "../../src/crypto/hash.ts";
import { createUnsubscribeToken } from "../../src/users/unsubscribe.ts";
import { createUser } from "./fixtures.ts";
import { call, expectError, testEnv } from "./helpers.ts";

const K2 = "k2-secret-0123456789abcdefghijklmnopqrstuvwxyz";
const K3 = "k3-secret-0123456789abcdefghijklmnopqrstuvwxyz";

/** A link as e-mailed before key ids existed: version 1, signed with LATCHKEY_HMAC_SECRET. */
async function legacyToken(userId: string): Promise<string> {
	const payload = toBase64Url(utf8(JSON.stringify({ v: 1, p: "unsubscribe", u: userId })));
	return `${payload}.${await hmacSha256(testEnv.LATCHKEY_HMAC_SECRET, payload)}`;
}

const unsubscribe = (token: string, env: Record<string, string | undefined>) =>
	call(`/v1/unsubscribe?token=${encodeURIComponent(token)}`, {}, env);

/** The deployment after rotating to k2, then after rotating again to k3 (k2 kept to verify). */
const rotatedToK2 = {
	LATCHKEY_HMAC_KEYS: JSON.stringify({ k2: K2 }),
	LATCHKEY_HMAC_ACTIVE_KEY: "k2",
};
const rotatedToK3 = {
	LATCHKEY_HMAC_KEYS: JSON.stringify({ k2: K2, k3: K3 }),
	LATCHKEY_HMAC_ACTIVE_KEY: "k3",
};

describe("unsubscribe HMAC key rotation", () => {
	it("links e-mailed before a rotation keep working after it", async () => {
		const user = await createUser();
		const legacy = await legacyToken(user.id);
		const signedByDefault = await createUnsubscribeToken(testEnv.LATCHKEY_HMAC_SECRET, user.id);
		const signedByK2 = await createUnsubscribeToken(
			{ active: "k2", keys: { k2: K2 }, legacy: testEnv.LATCHKEY_HMAC_SECRET },
			user.id,
		);
		for (const token of [legacy, signedByDefault, signedByK2]) {
			expect((await unsubscribe(token, rotatedToK2)).status, token).toBe(200);
			expect((await unsubscribe(token, rotatedToK3)).status, token).toBe(200);
		}
	});

	it("refuses a token whose key id was edited, names an unknown key, or was signed by a dropped key", async () => {
		const user = await createUser();
		const byK2 = await createUnsubscribeToken(
			{ active: "k2", keys: { k2: K2 }, legacy: testEnv.LATCHKEY_HMAC_SECRET },
			user.id,
		);
		const [payload, signature] = byK2.split(".") as [string, string];
		const claims = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/")));
		for (const k of ["default", "k3", "nope"]) {
			const edited = toBase64Url(utf8(JSON.stringify({ ...claims, k })));
			await expectError(
				await unsubscribe(`${edited}.${signature}`, rotatedToK3),
				400,
				"invalid_request",
			);
		}
		// A version 1 payload with a key id is not a legacy token.
		const mixed = toBase64Url(utf8(JSON.stringify({ ...claims, v: 1 })));
		await expectError(
			await unsubscribe(`${mixed}.${signature}`, rotatedToK3),
			400,
			"invalid_request",
		);
		// k2 dropped from the ring: its links stop verifying.
		await expectError(
			await unsubscribe(byK2, {
				LATCHKEY_HMAC_KEYS: JSON.stringify({ k3: K3 }),
				LATCHKEY_HMAC_ACTIVE_KEY: "k3",
			}),
			400,
			"invalid_request",
		);
	});

	it("signs new links with the active key, naming it", async () => {
		const token = await createUnsubscribeToken(
			{ active: "k3", keys: { k2: K2, k3: K3 }, legacy: testEnv.LATCHKEY_HMAC_SECRET },
			"usr_x",
		);
		const payload = token.split(".")[0] as string;
		const claims = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/")));
		expect(claims).toEqual({ v: 2, p: "unsubscribe", u: "usr_x", k: "k3" });
		expect(token.split(".")[1]).toBe(await hmacSha256(K3, payload));
	});

	it("refuses an active key id that is not in the ring", async () => {
		const res = await call("/health/ready", {}, { LATCHKEY_HMAC_ACTIVE_KEY: "k9" });
		expect(res.status).toBe(500);
	});
});
