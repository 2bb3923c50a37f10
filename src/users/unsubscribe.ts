import { type Bytes, fromBase64Url, fromUtf8, toBase64Url, utf8 } from "../crypto/encoding.ts";
import { hmacSha256, hmacVerify } from "../crypto/hash.ts";

/**
 * Unsubscribe links: `<payload>.<signature>`, both base64url. The payload names its version and
 * purpose as well as the user, so a signature made with the same secret for anything else can
 * never pass as an unsubscribe token. Links in sent e-mails must keep working, hence no expiry;
 * the version leaves room to change that.
 */

const VERSION = 1;
const PURPOSE = "unsubscribe";
const MAX_TOKEN_LENGTH = 512;
const USER_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

export async function createUnsubscribeToken(secret: string, userId: string): Promise<string> {
	const payload = toBase64Url(utf8(JSON.stringify({ v: VERSION, p: PURPOSE, u: userId })));
	return `${payload}.${await hmacSha256(secret, payload)}`;
}

/** The user id the token was issued for, or null for anything not issued by this service. */
export async function verifyUnsubscribeToken(
	secret: string,
	token: string,
): Promise<string | null> {
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
	if (!(await hmacVerify(secret, payload, signatureBytes))) return null;
	let claims: unknown;
	try {
		claims = JSON.parse(fromUtf8(fromBase64Url(payload)));
	} catch {
		return null;
	}
	if (typeof claims !== "object" || claims === null) return null;
	const { v, p, u } = claims as Record<string, unknown>;
	if (v !== VERSION || p !== PURPOSE || typeof u !== "string" || !USER_ID_PATTERN.test(u))
		return null;
	return u;
}

/** The link to put in notification e-mails. */
export async function unsubscribeUrl(
	publicUrl: string,
	secret: string,
	userId: string,
): Promise<string> {
	// Appended rather than resolved, so a public URL with a path prefix keeps it.
	const url = new URL(`${publicUrl.replace(/\/+$/, "")}/v1/unsubscribe`);
	url.searchParams.set("token", await createUnsubscribeToken(secret, userId));
	return url.toString();
}
