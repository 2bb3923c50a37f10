/** Byte/text encodings shared by keys, tokens and ids. */

export const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export type Bytes = Uint8Array<ArrayBuffer>;

export const utf8 = (s: string): Bytes => encoder.encode(s) as Bytes;
export const fromUtf8 = (b: Uint8Array): string => decoder.decode(b);

export function randomBytes(n: number): Bytes {
	return crypto.getRandomValues(new Uint8Array(n));
}

/**
 * `length` characters drawn uniformly from base62. Rejection sampling avoids the modulo bias
 * that a plain `byte % 62` would give the first eight characters.
 */
export function randomBase62(length: number): string {
	let out = "";
	while (out.length < length) {
		for (const byte of randomBytes(length * 2)) {
			if (byte < 248) out += BASE62[byte % 62];
			if (out.length === length) break;
		}
	}
	return out;
}

/** Unsigned integer → base62, most significant digit first. */
export function toBase62(value: number): string {
	if (!Number.isSafeInteger(value) || value < 0)
		throw new RangeError("expected a non-negative integer");
	if (value === 0) return "0";
	let out = "";
	let v = value;
	while (v > 0) {
		out = BASE62[v % 62] + out;
		v = Math.floor(v / 62);
	}
	return out;
}

export function toBase64(bytes: Uint8Array): string {
	let bin = "";
	for (const b of bytes) bin += String.fromCharCode(b);
	return btoa(bin);
}

export function fromBase64(text: string): Bytes {
	const bin = atob(text);
	const out = new Uint8Array(bin.length);
	for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
	return out;
}

export function toBase64Url(bytes: Uint8Array): string {
	return toBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function fromBase64Url(text: string): Bytes {
	const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
	return fromBase64(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
}

export function toHex(bytes: Uint8Array): string {
	let out = "";
	for (const b of bytes) out += b.toString(16).padStart(2, "0");
	return out;
}

export function fromHex(hex: string): Bytes {
	const out = new Uint8Array(hex.length >>> 1);
	for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
	return out;
}

/** Prefixed opaque identifier, e.g. `usr_4f9…`; 20 base62 chars ≈ 119 bits. */
export function newId(prefix: string): string {
	return `${prefix}_${randomBase62(20)}`;
}

export function concat(...parts: Uint8Array[]): Bytes {
	const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
	let offset = 0;
	for (const part of parts) {
		out.set(part, offset);
		offset += part.length;
	}
	return out;
}
