import type { Config } from "../src/config.ts";
import { credentialAad, getKeyRing, open, seal } from "../src/crypto/envelope.ts";

/**
 * Cost of sealing and opening one credential secret with the envelope scheme (fresh data key,
 * AES-256-GCM, data key wrapped by the ring key), against the baseline of a single AES-256-GCM
 * encryption/decryption of the same plaintext under an already-imported key. Runs on Node's
 * WebCrypto (OpenSSL); workerd uses BoringSSL, so the ratio is the figure to read.
 */
export async function benchCrypto(iterations = 3000) {
	const keyB64 = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64");
	const config = {
		LATCHKEY_ENCRYPTION_KEYS: { bench: keyB64 },
		LATCHKEY_ENCRYPTION_ACTIVE_KEY: "bench",
	} as unknown as Config;
	const ring = await getKeyRing(config);
	const secret = JSON.stringify({
		access_token: `ya29.${"x".repeat(160)}`,
		refresh_token: `1//${"y".repeat(100)}`,
		token_type: "Bearer",
	});
	const aad = credentialAad({ id: "cred_bench", userId: "usr_bench", type: "oauth2" });
	const rawKey = await crypto.subtle.importKey(
		"raw",
		Buffer.from(keyB64, "base64"),
		"AES-GCM",
		false,
		["encrypt", "decrypt"],
	);
	const plain = new TextEncoder().encode(secret);

	const time = async (fn: () => Promise<unknown>) => {
		for (let i = 0; i < 200; i++) await fn();
		const t0 = performance.now();
		for (let i = 0; i < iterations; i++) await fn();
		return ((performance.now() - t0) / iterations) * 1000;
	};
	const sealed = await seal(ring, secret, aad);
	const iv = crypto.getRandomValues(new Uint8Array(12));
	const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, rawKey, plain);
	const rows = {
		"seal (envelope)": await time(() => seal(ring, secret, aad)),
		"open (envelope)": await time(() => open(ring, sealed, aad, "credential cred_bench")),
		"baseline: AES-GCM encrypt": await time(() =>
			crypto.subtle.encrypt({ name: "AES-GCM", iv }, rawKey, plain),
		),
		"baseline: AES-GCM decrypt": await time(() =>
			crypto.subtle.decrypt({ name: "AES-GCM", iv }, rawKey, ct),
		),
	};
	console.log(
		`\nEnvelope encryption, ${secret.length}-byte OAuth secret, ${iterations} iterations (Node WebCrypto):`,
	);
	console.table(
		Object.entries(rows).map(([op, us]) => ({
			operation: op,
			"µs/op": us.toFixed(1),
			"× baseline": op.startsWith("seal")
				? (us / rows["baseline: AES-GCM encrypt"]).toFixed(2)
				: op.startsWith("open")
					? (us / rows["baseline: AES-GCM decrypt"]).toFixed(2)
					: "—",
		})),
	);
	return rows;
}
