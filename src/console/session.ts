import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { decodeJwt } from "jose";
import { fromBase64Url, fromUtf8, randomBytes, toBase64Url, utf8 } from "../crypto/encoding.ts";
import { hmacSha256, hmacVerify } from "../crypto/hash.ts";

/**
 * The console's session lives in one cookie the browser holds and the worker seals (AES-256-GCM
 * under a key derived from LATCHKEY_HMAC_SECRET): no console table, no server-side copy of a
 * user's tokens. A user's session is an API session (POST /v1/auth/token): the cookie carries its
 * access and refresh tokens, so revoking the key, suspending the user or reuse detection ends the
 * console session exactly as it ends the API's. The admin has no API session (the admin token is
 * never put in a cookie): an admin console session is a random id that must also exist in Redis,
 * so signing out ends it everywhere.
 *
 * Cookies are `__Host-` (Secure, Path=/, no Domain), HttpOnly and SameSite=Lax. Every form carries
 * a CSRF token, an HMAC of the session id: a token of another session, or none, is refused.
 */
export const SESSION_COOKIE = "__Host-latchkey_console";
/** Binds the sign-in form to the browser that loaded it (login CSRF). */
export const PRE_SESSION_COOKIE = "__Host-latchkey_signin";

export const ADMIN_SESSION_TTL_S = 8 * 3600;
const PRE_SESSION_TTL_S = 3600;
/** Refresh the access token this long before it expires, so a page's API calls never see it lapse. */
const REFRESH_MARGIN_S = 60;

export interface UserSession {
	kind: "user";
	/** The API session's id (the access token's `sid`): what CSRF tokens are bound to. */
	sid: string;
	sub: string;
	accessToken: string;
	refreshToken: string;
	/** Access token expiry, unix seconds. */
	accessExp: number;
	/** When the cookie stops being accepted, unix seconds (the refresh token's expiry). */
	exp: number;
}

export interface AdminSession {
	kind: "admin";
	sid: string;
	exp: number;
}

export type ConsoleSession = UserSession | AdminSession;

const AAD = utf8("latchkey console session v1");
const sealKeys = new Map<string, Promise<CryptoKey>>();

function sealKey(secret: string): Promise<CryptoKey> {
	let key = sealKeys.get(secret);
	if (!key) {
		key = (async () => {
			const base = await crypto.subtle.importKey("raw", utf8(secret), "HKDF", false, ["deriveKey"]);
			return crypto.subtle.deriveKey(
				{ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: AAD },
				base,
				{ name: "AES-GCM", length: 256 },
				false,
				["encrypt", "decrypt"],
			);
		})();
		sealKeys.set(secret, key);
	}
	return key;
}

export async function seal(secret: string, session: ConsoleSession): Promise<string> {
	const iv = randomBytes(12);
	const sealed = new Uint8Array(
		await crypto.subtle.encrypt(
			{ name: "AES-GCM", iv, additionalData: AAD },
			await sealKey(secret),
			utf8(JSON.stringify(session)),
		),
	);
	const out = new Uint8Array(iv.length + sealed.length);
	out.set(iv);
	out.set(sealed, iv.length);
	return toBase64Url(out);
}

/** The session a cookie holds, or null when it is absent, forged, damaged or expired. */
export async function unseal(
	secret: string,
	value: string | undefined,
	now: Date,
): Promise<ConsoleSession | null> {
	if (!value || value.length > 4096) return null;
	try {
		const bytes = fromBase64Url(value);
		if (bytes.length < 12 + 16) return null;
		const plain = await crypto.subtle.decrypt(
			{ name: "AES-GCM", iv: bytes.slice(0, 12), additionalData: AAD },
			await sealKey(secret),
			bytes.slice(12),
		);
		const session = JSON.parse(fromUtf8(new Uint8Array(plain))) as ConsoleSession;
		if (typeof session.exp !== "number" || session.exp <= now.getTime() / 1000) return null;
		return session;
	} catch {
		return null;
	}
}

export function needsRefresh(session: UserSession, now: Date): boolean {
	return session.accessExp - REFRESH_MARGIN_S <= now.getTime() / 1000;
}

const cookieOptions = (maxAge: number) =>
	({
		path: "/",
		httpOnly: true,
		secure: true,
		sameSite: "Lax",
		maxAge: Math.max(0, Math.floor(maxAge)),
	}) as const;

export async function writeSessionCookie(
	c: Context,
	secret: string,
	session: ConsoleSession,
	now: Date,
): Promise<void> {
	setCookie(
		c,
		SESSION_COOKIE,
		await seal(secret, session),
		cookieOptions(session.exp - now.getTime() / 1000),
	);
}

export function clearSessionCookie(c: Context): void {
	deleteCookie(c, SESSION_COOKIE, { path: "/", secure: true });
}

export function readSessionCookie(c: Context): string | undefined {
	return getCookie(c, SESSION_COOKIE);
}

/** The sign-in form's binding: a random value in its own cookie, set when the form is served. */
export function preSessionOf(c: Context): string {
	const existing = getCookie(c, PRE_SESSION_COOKIE);
	if (existing && /^[A-Za-z0-9_-]{22}$/.test(existing)) return existing;
	const fresh = toBase64Url(randomBytes(16));
	setCookie(c, PRE_SESSION_COOKIE, fresh, cookieOptions(PRE_SESSION_TTL_S));
	return fresh;
}

/** Spent once the form signed someone in: a new sign-in form gets a new binding. */
export function clearPreSession(c: Context): void {
	deleteCookie(c, PRE_SESSION_COOKIE, { path: "/", secure: true });
}

export function readPreSession(c: Context): string | undefined {
	return getCookie(c, PRE_SESSION_COOKIE);
}

/** A form's CSRF token: bound to one session (or one sign-in form), useless with any other. */
export function csrfToken(secret: string, binding: string): Promise<string> {
	return hmacSha256(secret, `console-csrf:${binding}`);
}

/** Constant-time (WebCrypto's HMAC verify); a missing or malformed token is simply false. */
export async function csrfValid(
	secret: string,
	binding: string,
	presented: unknown,
): Promise<boolean> {
	if (typeof presented !== "string" || !/^[A-Za-z0-9_-]{43}$/.test(presented)) return false;
	const mac = fromBase64Url(presented);
	// One spelling per token: a last character whose unused low bits differ decodes to the same
	// bytes, and a token must be the token, not another text that happens to verify.
	if (toBase64Url(mac) !== presented) return false;
	return hmacVerify(secret, `console-csrf:${binding}`, mac);
}

export const adminSessionKey = (sid: string) => `lk:console:admin:${sid}`;

export function newAdminSessionId(): string {
	return toBase64Url(randomBytes(24));
}

/**
 * The access token's claims the console needs, read (jose's decodeJwt, not verified: the token
 * comes straight from the API's own answer, and every API call verifies it).
 */
export function accessClaims(token: string): { sid: string; sub: string; exp: number } | null {
	try {
		const { sid, sub, exp } = decodeJwt(token);
		if (typeof sid !== "string" || typeof sub !== "string" || typeof exp !== "number") return null;
		return { sid, sub, exp };
	} catch {
		return null;
	}
}
