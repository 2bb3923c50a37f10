import { type Bytes, toBase64Url, toHex, utf8 } from "./encoding.ts";

export async function sha256(data: string | Bytes): Promise<Bytes> {
	const bytes: Bytes = typeof data === "string" ? utf8(data) : data;
	return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

export async function sha256Hex(data: string | Bytes): Promise<string> {
	return toHex(await sha256(data));
}

const hmacKeys = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
	let key = hmacKeys.get(secret);
	if (!key) {
		key = crypto.subtle.importKey("raw", utf8(secret), { name: "HMAC", hash: "SHA-256" }, false, [
			"sign",
			"verify",
		]);
		hmacKeys.set(secret, key);
	}
	return key;
}

export async function hmacSha256Bytes(secret: string, data: string): Promise<Bytes> {
	return new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(secret), utf8(data)));
}

export async function hmacSha256(secret: string, data: string): Promise<string> {
	return toBase64Url(await hmacSha256Bytes(secret, data));
}

/** HMAC verification happens inside WebCrypto, which compares in constant time. */
export async function hmacVerify(secret: string, data: string, signature: Bytes): Promise<boolean> {
	return crypto.subtle.verify("HMAC", await hmacKey(secret), signature, utf8(data));
}

/** Constant-time comparison of equal-length byte strings (digests, MACs). */
export function timingSafeEqualBytes(a: Uint8Array, b: Uint8Array): boolean {
	if (a.byteLength !== b.byteLength) return false;
	const subtle = crypto.subtle as SubtleCrypto & {
		timingSafeEqual?: (a: ArrayBufferView, b: ArrayBufferView) => boolean;
	};
	if (subtle.timingSafeEqual) return subtle.timingSafeEqual(a, b);
	let diff = 0;
	for (let i = 0; i < a.byteLength; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
	return diff === 0;
}
