import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { fromBase64, randomBytes, toBase64 } from "../../src/crypto/encoding.ts";
import {
	cachedDataKeyCount,
	credentialAad,
	DATA_KEY_CACHE,
	getKeyRing,
	type KeyRing,
	open,
	providerAad,
	rewrap,
	type Sealed,
	seal,
} from "../../src/crypto/envelope.ts";
import { LatchkeyError } from "../../src/errors.ts";

// Straight from the bindings rather than through helpers.ts, so these tests do not depend on
// the whole app compiling.
const testEnv = env as unknown as Record<string, string>;

const newKey = () => toBase64(randomBytes(32));

/** A ring over exactly these keys, via the real config loader. */
function ringOf(keys: Record<string, string>, active: string): Promise<KeyRing> {
	return getKeyRing(
		loadConfig({
			...testEnv,
			LATCHKEY_ENCRYPTION_KEYS: JSON.stringify(keys),
			LATCHKEY_ENCRYPTION_ACTIVE_KEY: active,
		}),
	);
}

const K1 = newKey();
const K2 = newKey();
const ring1 = () => ringOf({ k1: K1 }, "k1");

const row = { id: "cred_A", userId: "usr_owner", type: "api_key" };
const AAD = credentialAad(row);

async function expectDecryptionFailure(
	promise: Promise<unknown>,
	label = "credential cred_A",
): Promise<LatchkeyError> {
	const err = await promise.then(
		() => {
			throw new Error("expected decryption to fail");
		},
		(e: unknown) => e,
	);
	expect(err).toBeInstanceOf(LatchkeyError);
	const le = err as LatchkeyError;
	expect(le.code).toBe("decryption_failed");
	expect(le.status).toBe(500);
	expect(le.message).toContain(label);
	expect(le.message).toContain("could not be decrypted");
	return le;
}

/** Flips one bit of byte `index` of a base64 field. */
function flip(field: string, index: number): string {
	const bytes = fromBase64(field);
	bytes[index] = (bytes[index] ?? 0) ^ 0x01;
	return toBase64(bytes);
}

describe("seal and open", () => {
	const plaintexts: [string, string][] = [
		["api_key", JSON.stringify({ api_key: "sk-live-0123456789abcdef" })],
		["user_password", JSON.stringify({ username: "ada", password: "p@ss w0rd\"'\\" })],
		[
			"host_scoped",
			JSON.stringify({
				host: "api.example.com",
				headers: { Authorization: "Bearer xyz", "X-Api-Key": "k" },
			}),
		],
		[
			"oauth2",
			JSON.stringify({
				access_token: "ya29.a0AfH6SM",
				refresh_token: "1//0gLk",
				access_token_expires_at: "2030-01-01T00:00:00Z",
				scopes: ["repo", "user"],
			}),
		],
		["empty string", ""],
		["non-ASCII", "pässwörd — 密码 — пароль — 🔑🗝️ — e\u0301 — \u{10FFFF}"],
		["leading BOM and NUL", "\uFEFF\u0000secret\u0000"],
		["~60 KiB", JSON.stringify({ api_key: "x".repeat(60 * 1024) })],
	];

	it.each(plaintexts)("round-trips %s", async (_name, plaintext) => {
		const ring = await ring1();
		const sealed = await seal(ring, plaintext, AAD);
		expect(sealed.keyId).toBe("k1");
		expect(Object.keys(sealed).sort()).toEqual(["ciphertext", "dataKey", "keyId"]);
		expect(await open(ring, sealed, AAD, "credential cred_A")).toBe(plaintext);
	});

	it("stores version byte || 12-byte IV || ciphertext+16-byte tag, for both fields", async () => {
		const ring = await ring1();
		const plaintext = "abc";
		const sealed = await seal(ring, plaintext, AAD);
		const ct = fromBase64(sealed.ciphertext);
		const dk = fromBase64(sealed.dataKey);
		expect(ct[0]).toBe(1);
		expect(ct.length).toBe(1 + 12 + plaintext.length + 16);
		expect(dk[0]).toBe(1);
		expect(dk.length).toBe(1 + 12 + 32 + 16);
		expect(sealed.ciphertext).not.toContain(btoa(plaintext));
	});

	it("never produces the same ciphertext or wrapped key twice", async () => {
		const ring = await ring1();
		const a = await seal(ring, "same secret", AAD);
		const b = await seal(ring, "same secret", AAD);
		expect(a.ciphertext).not.toBe(b.ciphertext);
		expect(a.dataKey).not.toBe(b.dataKey);
		// Different IVs as well, not just different data keys.
		expect(fromBase64(a.ciphertext).subarray(1, 13)).not.toEqual(
			fromBase64(b.ciphertext).subarray(1, 13),
		);
	});

	it("refuses a plaintext UTF-8 cannot carry rather than altering it", async () => {
		const ring = await ring1();
		await expect(seal(ring, "bad \uD800 surrogate", AAD)).rejects.toThrow(TypeError);
	});
});

describe("tamper resistance", () => {
	it("binds the row id, owner and type", async () => {
		const ring = await ring1();
		const sealed = await seal(ring, '{"api_key":"k"}', AAD);
		const others = [
			credentialAad({ ...row, id: "cred_B" }),
			credentialAad({ ...row, userId: "usr_other" }),
			credentialAad({ ...row, userId: null }),
			credentialAad({ ...row, type: "host_scoped" }),
			providerAad("cred_A"),
			"",
		];
		for (const aad of others) {
			await expectDecryptionFailure(open(ring, sealed, aad, "credential cred_A"));
		}
	});

	it("names system credentials' owner 'system' and keeps provider AADs apart", () => {
		expect(credentialAad({ ...row, userId: null })).toContain('"system"');
		expect(credentialAad({ ...row, userId: null })).not.toBe(credentialAad(row));
		expect(providerAad("github")).not.toBe(providerAad("gitlab"));
		expect(providerAad("github")).not.toBe(
			credentialAad({ id: "github", userId: null, type: "oauth2" }),
		);
	});

	it("rejects a wrapped data key copied from another row, or from another seal of the same row", async () => {
		const ring = await ring1();
		const mine = await seal(ring, "mine", AAD);
		const otherAad = credentialAad({ ...row, id: "cred_B" });
		const theirs = await seal(ring, "theirs", otherAad);
		await expectDecryptionFailure(
			open(ring, { ...mine, dataKey: theirs.dataKey }, AAD, "credential cred_A"),
		);
		// Both columns moved together still fail: the ciphertext is bound to the other row.
		await expectDecryptionFailure(open(ring, theirs, AAD, "credential cred_A"));
		const again = await seal(ring, "mine", AAD);
		await expectDecryptionFailure(
			open(ring, { ...mine, dataKey: again.dataKey }, AAD, "credential cred_A"),
		);
	});

	it("rejects a flipped bit in any byte of the ciphertext or the wrapped key", async () => {
		const ring = await ring1();
		const sealed = await seal(ring, '{"password":"hunter2"}', AAD);
		const ctLength = fromBase64(sealed.ciphertext).length;
		const dkLength = fromBase64(sealed.dataKey).length;
		const attempts: Promise<LatchkeyError>[] = [];
		for (let i = 0; i < ctLength; i++) {
			const tampered = { ...sealed, ciphertext: flip(sealed.ciphertext, i) };
			attempts.push(expectDecryptionFailure(open(ring, tampered, AAD, "credential cred_A")));
		}
		for (let i = 0; i < dkLength; i++) {
			const tampered = { ...sealed, dataKey: flip(sealed.dataKey, i) };
			attempts.push(expectDecryptionFailure(open(ring, tampered, AAD, "credential cred_A")));
		}
		expect(await Promise.all(attempts)).toHaveLength(ctLength + dkLength);
	});

	it("rejects an unknown key id, and a relabelled one even when both ids hold the same key", async () => {
		const ring = await ringOf({ k1: K1, alias: K1 }, "k1");
		const sealed = await seal(ring, "secret", AAD);
		const unknown = await expectDecryptionFailure(
			open(ring, { ...sealed, keyId: "k9" }, AAD, "credential cred_A"),
		);
		expect(unknown.message).toContain("not in LATCHKEY_ENCRYPTION_KEYS");
		await expectDecryptionFailure(
			open(ring, { ...sealed, keyId: "alias" }, AAD, "credential cred_A"),
		);
	});

	it("rejects malformed encodings without throwing anything but decryption_failed", async () => {
		const ring = await ring1();
		const good = await seal(ring, "secret", AAD);
		const wrongVersion = fromBase64(good.ciphertext);
		wrongVersion[0] = 2;
		const cases: Partial<Sealed>[] = [
			{ ciphertext: "not base64!!" },
			{ dataKey: "%%%" },
			{ ciphertext: "" },
			{ dataKey: "" },
			{ ciphertext: toBase64(fromBase64(good.ciphertext).subarray(0, 20)) },
			{ dataKey: toBase64(fromBase64(good.dataKey).subarray(0, 40)) },
			{ dataKey: toBase64(new Uint8Array([...fromBase64(good.dataKey), 0])) },
			{ ciphertext: toBase64(wrongVersion) },
		];
		for (const change of cases) {
			await expectDecryptionFailure(open(ring, { ...good, ...change }, AAD, "credential cred_A"));
		}
	});

	it("names the label in the error and leaks neither ciphertext nor keys", async () => {
		const ring = await ring1();
		const sealed = await seal(ring, "top secret value", AAD);
		const err = await expectDecryptionFailure(
			open(ring, sealed, credentialAad({ ...row, id: "cred_Z" }), "credential cred_123"),
			"credential cred_123",
		);
		const everything = JSON.stringify({ message: err.message, hint: err.hint, detail: err.detail });
		for (const leak of [sealed.ciphertext, sealed.dataKey, K1, "top secret value"]) {
			expect(everything).not.toContain(leak);
		}
		// Fragments as well: a prefix of the base64 must not appear either.
		expect(everything).not.toContain(sealed.ciphertext.slice(0, 12));
		expect(everything).not.toContain(sealed.dataKey.slice(0, 12));
	});
});

describe("key ring and rotation", () => {
	it("imports a config's keys once and exposes only their ids", async () => {
		const config = loadConfig({
			...testEnv,
			LATCHKEY_ENCRYPTION_KEYS: JSON.stringify({ k1: K1, k2: K2 }),
			LATCHKEY_ENCRYPTION_ACTIVE_KEY: "k2",
		});
		const ring = await getKeyRing(config);
		expect(await getKeyRing(config)).toBe(ring);
		expect(ring.activeKeyId).toBe("k2");
		expect([...ring.keyIds].sort()).toEqual(["k1", "k2"]);
		const shown = JSON.stringify(ring);
		expect(shown).not.toContain(K1);
		expect(shown).not.toContain(K2);
	});

	it("keeps old rows readable, seals new ones under the new key, and re-wraps onto it", async () => {
		const before = await ringOf({ k1: K1 }, "k1");
		const rotated = await ringOf({ k1: K1, k2: K2 }, "k2");
		const after = await ringOf({ k2: K2 }, "k2");

		const old = await seal(before, "old secret", AAD);
		expect(old.keyId).toBe("k1");
		expect(await open(rotated, old, AAD, "credential cred_A")).toBe("old secret");

		const fresh = await seal(rotated, "new secret", AAD);
		expect(fresh.keyId).toBe("k2");
		expect(await open(after, fresh, AAD, "credential cred_A")).toBe("new secret");

		const moved = await rewrap(rotated, old);
		if (!moved) throw new Error("expected a re-wrapped row");
		expect(moved.keyId).toBe("k2");
		expect(moved.ciphertext).toBe(old.ciphertext);
		expect(moved.dataKey).not.toBe(old.dataKey);
		expect(await open(after, moved, AAD, "credential cred_A")).toBe("old secret");
		await expectDecryptionFailure(open(after, old, AAD, "credential cred_A"));
		// The re-wrapped key is still bound to its ciphertext and key id.
		await expectDecryptionFailure(
			open(after, { ...moved, ciphertext: fresh.ciphertext }, AAD, "credential cred_A"),
		);

		expect(await rewrap(rotated, moved)).toBeNull();
		expect(await rewrap(rotated, fresh)).toBeNull();
	});

	it("refuses to re-wrap what it cannot unwrap", async () => {
		const rotated = await ringOf({ k1: K1, k2: K2 }, "k2");
		const sealed = await seal(await ring1(), "secret", AAD);
		for (const broken of [
			{ ...sealed, keyId: "k9" },
			{ ...sealed, dataKey: flip(sealed.dataKey, 20) },
			{ ...sealed, ciphertext: flip(sealed.ciphertext, 20) },
		]) {
			const err = await rewrap(rotated, broken).then(
				() => null,
				(e: unknown) => e,
			);
			expect(err).toBeInstanceOf(LatchkeyError);
			expect((err as LatchkeyError).code).toBe("decryption_failed");
		}
	});
});

describe("data-key cache", () => {
	afterEach(() => vi.restoreAllMocks());

	/** AES-GCM decryptions done by `work`: two for a full open (wrap, content), one from cache. */
	async function decryptionsOf(work: () => Promise<unknown>): Promise<number> {
		const spy = vi.spyOn(crypto.subtle, "decrypt");
		try {
			await work();
			return spy.mock.calls.length;
		} finally {
			spy.mockRestore();
		}
	}

	it("unwraps a data key once, then opens from the cache", async () => {
		const ring = await ringOf({ k1: K1 }, "k1");
		const sealed = await seal(ring, "secret", AAD);
		expect(await decryptionsOf(() => open(ring, sealed, AAD, "credential cred_A"))).toBe(2);
		expect(await decryptionsOf(() => open(ring, sealed, AAD, "credential cred_A"))).toBe(1);
		expect(cachedDataKeyCount(ring)).toBe(1);
	});

	it("skips no check: a cached key opens nothing but its own ciphertext under its own AAD", async () => {
		const ring = await ringOf({ k1: K1 }, "k1");
		const sealed = await seal(ring, "secret", AAD);
		const other = await seal(ring, "other", AAD);
		expect(await open(ring, sealed, AAD, "credential cred_A")).toBe("secret");
		// Another seal's ciphertext under this (cached) wrap, the wrong AAD, a flipped ciphertext.
		await expectDecryptionFailure(
			open(ring, { ...sealed, ciphertext: other.ciphertext }, AAD, "credential cred_A"),
		);
		expect(await open(ring, sealed, AAD, "credential cred_A")).toBe("secret");
		await expectDecryptionFailure(
			open(ring, sealed, credentialAad({ ...row, id: "cred_B" }), "credential cred_A"),
		);
		await expectDecryptionFailure(
			open(ring, { ...sealed, ciphertext: flip(sealed.ciphertext, 20) }, AAD, "credential cred_A"),
		);
	});

	it("forgets a key after its maximum age", async () => {
		const ring = await ringOf({ k1: K1 }, "k1");
		const sealed = await seal(ring, "secret", AAD);
		const start = Date.now();
		const now = vi.spyOn(Date, "now").mockReturnValue(start);
		await open(ring, sealed, AAD, "credential cred_A");
		now.mockReturnValue(start + DATA_KEY_CACHE.maxAgeMs - 1);
		expect(await decryptionsOf(() => open(ring, sealed, AAD, "credential cred_A"))).toBe(1);
		now.mockReturnValue(start + DATA_KEY_CACHE.maxAgeMs + 1);
		expect(await decryptionsOf(() => open(ring, sealed, AAD, "credential cred_A"))).toBe(2);
	});

	it("holds at most its bound, dropping the oldest", async () => {
		const ring = await ringOf({ k1: K1 }, "k1");
		const first = await seal(ring, "first", AAD);
		await open(ring, first, AAD, "credential cred_A");
		for (let i = 0; i < DATA_KEY_CACHE.maxEntries; i++) {
			await open(ring, await seal(ring, `s${i}`, AAD), AAD, "credential cred_A");
		}
		expect(cachedDataKeyCount(ring)).toBe(DATA_KEY_CACHE.maxEntries);
		expect(await decryptionsOf(() => open(ring, first, AAD, "credential cred_A"))).toBe(2);
	});

	it("drops the old wrap's key on re-wrap, and a new configuration starts empty", async () => {
		const rotated = await ringOf({ k1: K1, k2: K2 }, "k2");
		const old = await seal(await ring1(), "old secret", AAD);
		await open(rotated, old, AAD, "credential cred_A");
		expect(cachedDataKeyCount(rotated)).toBe(1);
		const moved = await rewrap(rotated, old);
		if (!moved) throw new Error("expected a re-wrapped row");
		expect(cachedDataKeyCount(rotated)).toBe(0);
		// k1 retired: the old wrap no longer opens, cache or not.
		const retired = await ringOf({ k2: K2 }, "k2");
		expect(cachedDataKeyCount(retired)).toBe(0);
		await expectDecryptionFailure(open(retired, old, AAD, "credential cred_A"));
		expect(await open(retired, moved, AAD, "credential cred_A")).toBe("old secret");
	});
});
