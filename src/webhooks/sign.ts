/**
 * Standard Webhooks signing (https://www.standardwebhooks.com/): the secret is `whsec_` and the
 * base64 of its key bytes; a delivery carries `webhook-id`, `webhook-timestamp` (Unix seconds)
 * and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`. WebCrypto only.
 */
import { fromBase64, randomBytes, toBase64, utf8 } from "../crypto/encoding.ts";

export const SECRET_PREFIX = "whsec_";
/** Key bytes of a generated secret (the spec asks for 24 to 64). */
const SECRET_BYTES = 32;
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;

export function generateWebhookSecret(): string {
	return `${SECRET_PREFIX}${toBase64(randomBytes(SECRET_BYTES))}`;
}

/** The key bytes of a `whsec_…` secret, or null when it is not one. */
export function secretBytes(secret: string): Uint8Array<ArrayBuffer> | null {
	if (!secret.startsWith(SECRET_PREFIX)) return null;
	const body = secret.slice(SECRET_PREFIX.length);
	if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return null;
	let bytes: Uint8Array<ArrayBuffer>;
	try {
		bytes = fromBase64(body);
	} catch {
		return null;
	}
	return bytes.length >= MIN_SECRET_BYTES && bytes.length <= MAX_SECRET_BYTES ? bytes : null;
}

/** `v1,<base64 signature>` of one delivery. */
export async function signWebhook(
	secret: string,
	id: string,
	timestamp: number,
	body: string,
): Promise<string> {
	const bytes = secretBytes(secret);
	if (bytes === null) throw new Error("not a whsec_ secret");
	const key = await crypto.subtle.importKey(
		"raw",
		bytes,
		{ name: "HMAC", hash: "SHA-256" },
		false,
		["sign"],
	);
	const mac = await crypto.subtle.sign("HMAC", key, utf8(`${id}.${timestamp}.${body}`));
	return `v1,${toBase64(new Uint8Array(mac))}`;
}
