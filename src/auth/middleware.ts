import { eq } from "drizzle-orm";
import type { Context, MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { errors as joseErrors } from "jose";
import type { Config } from "../config.ts";
import { sha256, timingSafeEqualBytes } from "../crypto/hash.ts";
import type { BatchedCheck, Database } from "../db/client.ts";
import { type UserStatus, users } from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import type { AppEnv } from "../http/context.ts";
import type { Services } from "../services.ts";
import { assertUserActive, inactiveUserError, sessionEndedByUserError } from "../user-status.ts";
import {
	assertLegacyNotSunset,
	type KeyCheck,
	keyCheck,
	touchKey,
	verifyPresentedKey,
} from "./api-keys.ts";
import { userStatusCache } from "./cache.ts";
import { isExternalToken, verifyExternalToken } from "./external.ts";
import { resolveExternalUser } from "./external-users.ts";
import { verifyAccessToken } from "./jwt.ts";
import { KEY_PREFIX } from "./key-format.ts";
import { hasScope, type Principal } from "./principal.ts";
import { failureSource, recordAuthFailure } from "./rate-limit.ts";
import { isScope, parseScopeClaim, type Scope, USER_SCOPES } from "./scopes.ts";
import { REFRESH_TOKEN_PREFIX, type SessionEnd, sessionCheck, sessionEnd } from "./sessions.ts";

export type AuthVariables = {
	principal: Principal;
	accessTokenJti?: string;
	/** authenticate() checked the credential against the database, not a cache, for this request. */
	credentialCheckedLive?: boolean;
};

export interface AuthenticateOptions {
	/**
	 * For routes that read the database anyway before acting: the fresh check of the credential
	 * is left to the route, which runs `liveCheckOf(c)` in the same batch as its own read (one
	 * round trip for both). The route must run it before it acts.
	 */
	deferLiveCheck?: boolean;
}
export type AuthEnv = {
	Bindings: AppEnv["Bindings"];
	Variables: AppEnv["Variables"] & AuthVariables;
};

const unauthorized = (
	message: string,
	hint = "Send a valid credential as 'Authorization: Bearer <token>'.",
) => new LatchkeyError("unauthorized", message, { hint });

/** Auth failures leave as HTTPException (Hono's convention), carrying the precise error. */
const refuse = (err: LatchkeyError) =>
	new HTTPException(err.status as 401, { message: err.message, cause: err });

const adminHashes = new WeakMap<Config, Promise<Uint8Array>>();

async function isAdminToken(config: Config, token: string): Promise<boolean> {
	let expected = adminHashes.get(config);
	if (!expected) {
		expected = sha256(config.LATCHKEY_ADMIN_TOKEN);
		adminHashes.set(config, expected);
	}
	// Compare digests, so neither the admin token's length nor its prefix leaks through timing.
	return timingSafeEqualBytes(await sha256(token), await expected);
}

function keyFailure(check: Exclude<KeyCheck, { ok: true }>): LatchkeyError {
	switch (check.reason) {
		case "inactive_user":
			return inactiveUserError(check.userStatus);
		case "revoked":
			return unauthorized("This API key has been revoked.");
		case "expired":
			return unauthorized("This API key has expired.");
		default:
			return unauthorized("Invalid API key.");
	}
}

const NEW_SESSION_HINT = "Exchange an API key for a new session (POST /v1/auth/token).";

const sessionEnded = (message: string) =>
	new LatchkeyError("unauthorized", message, { hint: NEW_SESSION_HINT });

/** Why an access token is refused, in the words of what ended its session. */
function sessionFailure(end: NonNullable<SessionEnd>): LatchkeyError {
	switch (end.reason) {
		case "inactive_user":
			return sessionEndedByUserError(end.userStatus);
		case "revoked":
			switch (end.revokedReason) {
				case "refresh_token_reused":
					return sessionEnded(
						"This session has been revoked: one of its refresh tokens was presented twice.",
					);
				case "key_revoked":
				case "key_rolled":
					return sessionEnded("This session has been revoked with the API key it came from.");
				case "user_suspended":
					return sessionEndedByUserError("suspended");
				case "user_deleted":
					return sessionEndedByUserError("deleting");
				default:
					return sessionEnded("This session has been revoked.");
			}
		case "expired":
			return sessionEnded("This session has reached its 30-day limit.");
		case "key_invalid":
			return sessionEnded("The API key this session came from is no longer valid.");
		case "replaced":
			return sessionEnded("This access token was replaced when its refresh token was retried.");
		default:
			return sessionEnded("The session behind this access token no longer exists.");
	}
}

async function userStatus(
	db: Database,
	userId: string,
	now: Date,
	fresh: boolean,
): Promise<UserStatus | null> {
	let status = fresh ? undefined : userStatusCache.get(userId, now.getTime());
	if (status === undefined) {
		const [row] = await db
			.select({ status: users.status })
			.from(users)
			.where(eq(users.id, userId))
			.limit(1);
		status = row?.status ?? null;
		userStatusCache.set(userId, status, userId, now.getTime());
	}
	return status;
}

async function requireActiveUser(
	db: Database,
	userId: string,
	now: Date,
	fresh: boolean,
): Promise<void> {
	assertUserActive(await userStatus(db, userId, now, fresh));
}

interface Resolved {
	principal: Principal;
	jti?: string;
	legacyImportedAt?: number;
}

function looksLikeJwt(token: string): boolean {
	return token.startsWith("eyJ") && token.split(".").length === 3;
}

/**
 * Who is calling. `fresh` decides against the database as it is now: keys, sessions and user
 * status are read past the isolate cache. Without it, answers up to CACHE_TTL_MS old will do.
 */
export async function resolvePrincipal(
	services: Services,
	token: string,
	fresh = false,
): Promise<Resolved> {
	const { config, db } = services;
	const now = services.now();
	// Well-formed keys and tokens go straight to their own check; only what is none of them is
	// compared with the admin token. Which path a request takes depends on the shape of what it
	// sent, never on the admin token, so nothing about the admin token leaks through timing.
	const check = await verifyPresentedKey(db, token, now, fresh);
	if (check) {
		if (!check.ok) throw keyFailure(check);
		if (check.key.kind !== "legacy") return { principal: check.principal };
		assertLegacyNotSunset(config, now);
		return { principal: check.principal, legacyImportedAt: check.key.createdAt };
	}
	if (looksLikeJwt(token)) return resolveJwt(services, token, fresh);
	if (await isAdminToken(config, token)) {
		return { principal: { method: "admin", userId: null, scopes: ["admin", ...USER_SCOPES] } };
	}
	if (token.startsWith(KEY_PREFIX))
		throw unauthorized("Malformed API key (bad format or checksum).");
	if (token.startsWith(REFRESH_TOKEN_PREFIX)) {
		throw unauthorized(
			"A refresh token is not a bearer credential.",
			"Exchange it at POST /v1/auth/token (grant_type refresh_token) and send the access token it returns.",
		);
	}
	throw unauthorized("Unrecognised credential.");
}

async function resolveJwt(services: Services, token: string, fresh: boolean): Promise<Resolved> {
	const { config, db } = services;
	const now = services.now();
	if (isExternalToken(config, token)) {
		const payload = await verifyExternalToken(config, token, now);
		const userId = await resolveExternalUser(db, payload);
		await requireActiveUser(db, userId, now, fresh);
		return { principal: { method: "external", userId, scopes: [...USER_SCOPES] } };
	}
	let claims: Awaited<ReturnType<typeof verifyAccessToken>>;
	try {
		claims = await verifyAccessToken(config, token, now);
	} catch (err) {
		// A genuine token past its exp (the signature checks) is the common case: say how to renew.
		if (err instanceof joseErrors.JWTExpired) {
			throw unauthorized(
				"The access token has expired.",
				"Get a new one at POST /v1/auth/token with grant_type refresh_token (or exchange the API key again).",
			);
		}
		throw unauthorized("The access token is invalid or expired.");
	}
	// The session, its key and its user in one query (or, for a read, this isolate's answer from
	// at most CACHE_TTL_MS ago): an access token lives no longer than its session.
	const ended = await sessionEnd(
		db,
		{ sessionId: claims.sid, userId: claims.sub, jti: claims.jti },
		now,
		fresh,
	);
	if (ended) throw sessionFailure(ended);
	return {
		principal: {
			method: "access_token",
			userId: claims.sub,
			scopes: parseScopeClaim(claims.scope).filter((s) => s !== "admin"),
			sessionId: claims.sid,
		},
		jti: claims.jti,
	};
}

function bearerToken(header: string | undefined): string | null {
	if (!header) return null;
	const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
	return m?.[1] ?? null;
}

/** Methods that change nothing: the only ones allowed to trust the isolate cache. */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Resolves the caller from `Authorization: Bearer …` into `c.get("principal")`. Failed attempts
 * (malformed keys included) count against the source's failure budget; once it is spent the
 * failure becomes a 429, while valid credentials from the same source keep working.
 *
 * Revocation policy, by method, so that no route can forget it (API.md, token exchange): a
 * request that may write, mint a key or a session, or return a secret (every method but
 * GET/HEAD/OPTIONS) is judged against the database as it is now, one query: the key row, or the
 * session with its key and user. A read may use this isolate's answer from at most
 * CACHE_TTL_MS ago. Routes that return a secret on a GET add requireLiveCredential().
 */
export function authenticate(options: AuthenticateOptions = {}): MiddlewareHandler<AuthEnv> {
	const { deferLiveCheck = false } = options;
	if (typeof deferLiveCheck !== "boolean") {
		throw new TypeError("authenticate: deferLiveCheck must be a boolean");
	}
	return async function authenticate(c, next) {
		const services = c.get("services");
		const token = bearerToken(c.req.header("authorization"));
		if (!token) throw refuse(unauthorized("Missing bearer token."));
		const fresh = !deferLiveCheck && !SAFE_METHODS.has(c.req.method);
		let resolved: Resolved;
		try {
			resolved = await resolvePrincipal(services, token, fresh);
		} catch (err) {
			if (!(err instanceof LatchkeyError) || err.status !== 401) throw err;
			await countFailure(services, c.req.header("cf-connecting-ip"));
			throw refuse(err);
		}
		const { principal } = resolved;
		c.set("principal", principal);
		c.set("credentialCheckedLive", fresh);
		if (resolved.jti) c.set("accessTokenJti", resolved.jti);
		if (principal.keyId && (principal.method === "api_key" || principal.method === "legacy_key")) {
			const write = touchKey(services.db, principal.keyId, services.now());
			if (write) c.executionCtx.waitUntil(write);
		}
		await next();
		if (resolved.legacyImportedAt !== undefined) {
			for (const [name, value] of Object.entries(
				legacyKeyHeaders(services.config, resolved.legacyImportedAt),
			))
				c.header(name, value);
		}
	};
}

/**
 * What every response to a legacy key carries, the token exchange included: `Deprecation`
 * (RFC 9745, the key's import time) and, once a sunset is configured, `Sunset` (RFC 8594).
 */
export function legacyKeyHeaders(config: Config, importedAtMs: number): Record<string, string> {
	const headers: Record<string, string> = { Deprecation: `@${Math.floor(importedAtMs / 1000)}` };
	if (config.LEGACY_KEYS_SUNSET) headers.Sunset = new Date(config.LEGACY_KEYS_SUNSET).toUTCString();
	return headers;
}

/** Counts one failure; a limiter that cannot reach Redis must not turn a 401 into a 500. */
export async function countFailure(services: Services, ip: string | undefined): Promise<void> {
	let outcome: Awaited<ReturnType<typeof recordAuthFailure>>;
	try {
		outcome = await recordAuthFailure(services.redis, failureSource(ip));
	} catch {
		services.logger.warn("auth failure limiter unavailable");
		return;
	}
	if (outcome.limited) {
		throw new LatchkeyError("rate_limited", "Too many failed authentication attempts.", {
			retryAfter: outcome.retryAfter,
		});
	}
}

export function requireScope(scope: Scope): MiddlewareHandler<AuthEnv> {
	if (!isScope(scope)) throw new Error(`requireScope: unknown scope ${String(scope)}`);
	return async function requireScope(c, next) {
		const principal = c.get("principal");
		if (!principal) throw new Error("requireScope must run after authenticate()");
		if (!hasScope(principal, scope)) {
			throw refuse(
				new LatchkeyError("insufficient_scope", `This route needs the '${scope}' scope.`, {
					detail: { required: scope, granted: principal.scopes },
				}),
			);
		}
		await next();
	};
}

/** For routes that act on "my" data: the admin token belongs to no user. */
export function requireUser(): MiddlewareHandler<AuthEnv> {
	return async function requireUser(c, next) {
		const principal = c.get("principal");
		if (!principal) throw new Error("requireUser must run after authenticate()");
		if (principal.userId === null) {
			throw refuse(
				new LatchkeyError("forbidden", "The admin token acts for no user.", {
					hint: "Use a user's API key or token, or the /v1/admin routes.",
				}),
			);
		}
		await next();
	};
}

/** The user a route acts for, once requireUser() has refused the admin token. */
export function userIdOf(c: Context<AuthEnv>): string {
	const { userId } = c.get("principal");
	if (!userId) throw new Error("userIdOf needs requireUser() on the route");
	return userId;
}

/**
 * Whom a lease (or a proxied call, which leases) is counted against by the lease rate limit: the
 * key, shared by the sessions obtained from it, else the user.
 */
export function leasePrincipalOf(c: Context<AuthEnv>): string {
	const { keyId } = c.get("principal");
	return keyId ? `key:${keyId}` : `user:${userIdOf(c)}`;
}

/**
 * The fresh check a route with `deferLiveCheck` owes, as one statement: the session with its key
 * and user, the key with its user, or the user alone; `assert` throws the refusal authenticate()
 * would have. Null when authenticate() already checked fresh, or for the admin token (which no
 * database row can revoke).
 */
export function liveCheckOf(c: Context<AuthEnv>): BatchedCheck | null {
	if (c.get("credentialCheckedLive")) return null;
	const principal = c.get("principal");
	const services = c.get("services");
	const { db } = services;
	const now = () => services.now();
	const settled = () => c.set("credentialCheckedLive", true);
	if (principal.method === "access_token" && principal.sessionId && principal.userId) {
		const check = sessionCheck(db, {
			sessionId: principal.sessionId,
			userId: principal.userId,
			jti: c.get("accessTokenJti") ?? "",
		});
		return {
			query: check.query,
			assert(rows) {
				const ended = check.judge(rows, now());
				if (ended) throw refuse(sessionFailure(ended));
				settled();
			},
		};
	}
	if ((principal.method === "api_key" || principal.method === "legacy_key") && principal.keyId) {
		const check = keyCheck(db, principal.keyId);
		return {
			query: check.query,
			assert(rows) {
				const verdict = check.judge(rows, now());
				if (!verdict.ok) throw refuse(keyFailure(verdict));
				settled();
			},
		};
	}
	if (principal.method === "external" && principal.userId) {
		const userId = principal.userId;
		return {
			query: db.select({ status: users.status }).from(users).where(eq(users.id, userId)).limit(1),
			assert(rows) {
				const status = (rows as { status: UserStatus }[])[0]?.status ?? null;
				userStatusCache.set(userId, status, userId, now().getTime());
				try {
					assertUserActive(status);
				} catch (err) {
					throw err instanceof LatchkeyError ? refuse(err) : err;
				}
				settled();
			},
		};
	}
	return null;
}

/**
 * For reads that return a secret: re-checks, against the database and not the isolate cache,
 * that the credential is still good at this moment (session not revoked, key not revoked or
 * rolled past its grace, user active). authenticate() already does this for every other method,
 * in which case this costs nothing.
 */
export function requireLiveCredential(): MiddlewareHandler<AuthEnv> {
	return async function requireLiveCredential(c, next) {
		if (!c.get("principal")) throw new Error("requireLiveCredential must run after authenticate()");
		const check = liveCheckOf(c);
		if (check) {
			const [rows] = await c.get("services").db.batch([check.query]);
			check.assert(rows);
		}
		await next();
	};
}
