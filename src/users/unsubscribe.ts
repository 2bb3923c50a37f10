import type { Config } from "../config.ts";
import { type Bytes, fromBase64Url, fromUtf8, toBase64Url, utf8 } from "../crypto/encoding.ts";
import { hmacSha256, hmacVerify } from "../crypto/hash.ts";

/**
 * Unsubscribe links: `<payload>.<signature>`, both base64url. The payload names its version and
 * purpose as well as the user, so a signature made with the same secret for anything else can
 * never pass as an unsubscribe token. Links in sent e-mails must keep working, hence no expiry.
 *
 * Version 2 payloads also name the key id (`k`) of the HMAC key that signed them, so the signing
 * key can rotate while links already e-mailed keep verifying with the key they name. Version 1
 * tokens (no key id) verify with LATCHKEY_HMAC_SECRET only. The version and key id are read
 * before the signature is checked, but only to choose the key: a token is trusted only once the
 * HMAC over the whole payload (version and key id included) verifies. See docs/security.md.
 */

/** The HMAC keys of unsubscribe links: `active` signs, every key of `keys` verifies. */
export interface UnsubscribeKeys {
	readonly active: string;
	readonly keys: Readonly<Record<string, string>>;
	/** Verifies version 1 tokens, which carry no key id. */
	readonly legacy: string;
}

/** The key id LATCHKEY_HMAC_SECRET has in the ring. */
export const DEFAULT_HMAC_KEY_ID = "default";

/**
 * The ring from the configuration: LATCHKEY_HMAC_KEYS plus LATCHKEY_HMAC_SECRET as key
 * "default"; LATCHKEY_HMAC_ACTIVE_KEY (default "default") signs.
 */
export function unsubscribeKeys(
	config: Pick<Config, "LATCHKEY_HMAC_SECRET" | "LATCHKEY_HMAC_KEYS" | "LATCHKEY_HMAC_ACTIVE_KEY">,
): UnsubscribeKeys {
	return {
		active: config.LATCHKEY_HMAC_ACTIVE_KEY ?? DEFAULT_HMAC_KEY_ID,
		keys: { ...config.LATCHKEY_HMAC_KEYS, [DEFAULT_HMAC_KEY_ID]: config.LATCHKEY_HMAC_SECRET },
		legacy: config.LATCHKEY_HMAC_SECRET,
	};
}

/** A bare secret is a ring of one: it signs as "default" and verifies legacy tokens too. */
function ringOf(keys: string | UnsubscribeKeys): UnsubscribeKeys {
	if (typeof keys !== "string") return keys;
	return { active: DEFAULT_HMAC_KEY_ID, keys: { [DEFAULT_HMAC_KEY_ID]: keys }, legacy: keys };
}

const LEGACY_VERSION = 1;
const VERSION = 2;
const PURPOSE = "unsubscribe";
const MAX_TOKEN_LENGTH = 512;
const USER_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

export async function createUnsubscribeToken(
	keys: string | UnsubscribeKeys,
	userId: string,
): Promise<string> {
	const ring = ringOf(keys);
	const secret = Object.hasOwn(ring.keys, ring.active) ? ring.keys[ring.active] : undefined;
	if (secret === undefined) throw new Error("the active unsubscribe key is not in the ring");
	const payload = toBase64Url(
		utf8(JSON.stringify({ v: VERSION, p: PURPOSE, u: userId, k: ring.active })),
	);
	return `${payload}.${await hmacSha256(secret, payload)}`;
}

/** The user id the token was issued for, or null for anything not issued by this service. */
export async function verifyUnsubscribeToken(
	keys: string | UnsubscribeKeys,
	token: string,
): Promise<string | null> {
	const ring = ringOf(keys);
	if (token.length > MAX_TOKEN_LENGTH) return null;
	const parts = token.split(".");
	if (parts.length !== 2) return null;
	const [payload, signature] = parts as [string, string];
	if (!BASE64URL.test(payload) || !BASE64URL.test(signature)) return null;
	let signatureBytes: Bytes;
	try {
		signatureBytes = fromBase64Url(signature);
	} catch {
		return null;
	}
	// base64url's last character has spare bits: only the canonical spelling is accepted, so no
	// edited token verifies.
	if (toBase64Url(signatureBytes) !== signature) return null;
	// Unauthenticated until the HMAC below verifies: read only to choose the key.
	let claims: unknown;
	try {
		claims = JSON.parse(fromUtf8(fromBase64Url(payload)));
	} catch {
		return null;
	}
	if (typeof claims !== "object" || claims === null) return null;
	const { v, p, u, k } = claims as Record<string, unknown>;
	let secret: string | undefined;
	if (v === LEGACY_VERSION && k === undefined) secret = ring.legacy;
	else if (v === VERSION && typeof k === "string" && Object.hasOwn(ring.keys, k))
		secret = ring.keys[k];
	if (secret === undefined) return null;
	if (!(await hmacVerify(secret, payload, signatureBytes))) return null;
	if (p !== PURPOSE || typeof u !== "string" || !USER_ID_PATTERN.test(u)) return null;
	return u;
}

/** The link to put in notification e-mails. */
export async function unsubscribeUrl(
	publicUrl: string,
	secret: string | UnsubscribeKeys,
	userId: string,
): Promise<string> {
	// Appended rather than resolved, so a public URL with a path prefix keeps it.
	const url = new URL(`${publicUrl.replace(/\/+$/, "")}/v1/unsubscribe`);
	url.searchParams.set("token", await createUnsubscribeToken(secret, userId));
	return url.toString();
}
