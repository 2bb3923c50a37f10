import { BASE62, randomBase62, toBase62 } from "../crypto/encoding.ts";

/**
 * Latchkey API keys: `lk_<12 id>_<32 secret><6 checksum>`. The id is the database lookup; only a
 * hash of the secret is stored. The CRC-32 lets anyone (clients, secret scanners, this service
 * before any I/O) reject a mistyped or made-up key offline.
 */
export const KEY_PREFIX = "lk_";
export const KEY_ID_LENGTH = 12;
export const KEY_SECRET_LENGTH = 32;
export const KEY_CHECKSUM_LENGTH = 6;
export const KEY_LENGTH =
	KEY_PREFIX.length + KEY_ID_LENGTH + 1 + KEY_SECRET_LENGTH + KEY_CHECKSUM_LENGTH;

const KEY_PATTERN = new RegExp(
	`^lk_([0-9A-Za-z]{${KEY_ID_LENGTH}})_([0-9A-Za-z]{${KEY_SECRET_LENGTH}})([0-9A-Za-z]{${KEY_CHECKSUM_LENGTH}})$`,
);

const CRC_TABLE = (() => {
	const table = new Uint32Array(256);
	for (let n = 0; n < 256; n++) {
		let c = n;
		for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
		table[n] = c >>> 0;
	}
	return table;
})();

/** CRC-32 (IEEE 802.3, zlib's `crc32`) of ASCII text. */
export function crc32(text: string): number {
	let crc = 0xffffffff;
	for (let i = 0; i < text.length; i++) {
		crc = (CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff] ?? 0) ^ (crc >>> 8);
	}
	return (crc ^ 0xffffffff) >>> 0;
}

export function checksum(body: string): string {
	return toBase62(crc32(body)).padStart(KEY_CHECKSUM_LENGTH, BASE62[0]);
}

export interface ParsedKey {
	id: string;
	secret: string;
}

export function formatKey(id: string, secret: string): string {
	const body = `${KEY_PREFIX}${id}_${secret}`;
	return body + checksum(body);
}

export function generateKey(): { id: string; secret: string; key: string } {
	const id = randomBase62(KEY_ID_LENGTH);
	const secret = randomBase62(KEY_SECRET_LENGTH);
	return { id, secret, key: formatKey(id, secret) };
}

/** Returns null for anything that is not a well-formed key with a valid checksum. */
export function parseKey(key: string): ParsedKey | null {
	if (key.length !== KEY_LENGTH) return null;
	const m = KEY_PATTERN.exec(key);
	if (!m) return null;
	const [, id, secret, sum] = m as unknown as [string, string, string, string];
	if (checksum(key.slice(0, -KEY_CHECKSUM_LENGTH)) !== sum) return null;
	return { id, secret };
}

export const LEGACY_KEY_PATTERN = /^sk-[A-Za-z0-9_-]{16,200}$/;
