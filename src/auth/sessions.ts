import { and, eq, isNotNull, isNull, type SQL, sql } from "drizzle-orm";
import type { Config } from "../config.ts";
import { newId, randomBase62 } from "../crypto/encoding.ts";
import { sha256Hex } from "../crypto/hash.ts";
import type { Database, Queryable, Tx, TxDatabase } from "../db/client.ts";
import {
	type ApiKeyRow,
	apiKeys,
	refreshTokens,
	sessions,
	type UserStatus,
	users,
} from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import { type InactiveStatus, inactiveUserError } from "../user-status.ts";
import {
	type CachedSession,
	invalidateSession,
	keyTag,
	sessionCache,
	sessionTag,
} from "./cache.ts";
import { ACCESS_TOKEN_TTL_S, signAccessToken } from "./jwt.ts";
import type { Scope } from "./scopes.ts";

export const REFRESH_TOKEN_TTL_S = 7 * 24 * 3600;
export const SESSION_MAX_AGE_S = 30 * 24 * 3600;
/** A client that lost the response to a refresh may present the same token again this long. */
export const REFRESH_RETRY_GRACE_S = 30;
export const REFRESH_TOKEN_PREFIX = "lkr_";

export interface TokenPair {
	access_token: string;
	token_type: "Bearer";
	expires_in: number;
	refresh_token: string;
	refresh_expires_in: number;
	scope: string;
}

const secondsBetween = (later: Date, earlier: Date) =>
	Math.max(0, Math.floor((later.getTime() - earlier.getTime()) / 1000));

const minDate = (a: Date, b: Date) => (a < b ? a : b);

/**
 * Whether the key a session came from still authorises refreshing it. Here rather than with the
 * keys because only sessions ask, and api-keys.ts already depends on this module.
 */
function keyStillValid(row: Pick<ApiKeyRow, "revokedAt" | "expiresAt">, now: Date): boolean {
	if (row.revokedAt && row.revokedAt <= now) return false;
	return !(row.expiresAt && row.expiresAt <= now);
}

const invalidGrant = (message: string) =>
	new LatchkeyError("invalid_grant", message, { hint: "Exchange an API key for a new session." });

/**
 * The token endpoint's refusal of a user who may not act. A suspension can be lifted, so it keeps
 * its 403 `user_suspended`; an account being deleted (or gone) has made the key or refresh token
 * bad for good, and API.md answers a bad one with 401 `invalid_grant` whatever made it bad.
 */
export function inactiveUserGrantError(status: InactiveStatus): LatchkeyError {
	const refusal = inactiveUserError(status);
	if (refusal.code === "user_suspended") return refusal;
	return new LatchkeyError("invalid_grant", refusal.message, { hint: refusal.hint });
}

/**
 * Mints a refresh token plus its access token, both ending no later than the session, and
 * returns the refresh-token row for the caller to write with the rest of its statements.
 */
async function mintPair(
	config: Config,
	session: { id: string; userId: string; scopes: string[]; expiresAt: Date },
	now: Date,
): Promise<{ pair: TokenPair; refreshId: string; row: typeof refreshTokens.$inferInsert }> {
	const refreshToken = `${REFRESH_TOKEN_PREFIX}${randomBase62(43)}`;
	const refreshExpires = minDate(
		new Date(now.getTime() + REFRESH_TOKEN_TTL_S * 1000),
		session.expiresAt,
	);
	const accessExpires = minDate(
		new Date(now.getTime() + ACCESS_TOKEN_TTL_S * 1000),
		session.expiresAt,
	);
	const scope = session.scopes.join(" ");
	const { token, jti } = await signAccessToken(
		config,
		{ sub: session.userId, scope, sid: session.id },
		now,
		accessExpires,
	);
	const refreshId = newId("rt");
	return {
		refreshId,
		row: {
			id: refreshId,
			sessionId: session.id,
			tokenHash: await sha256Hex(refreshToken),
			accessJti: jti,
			createdAt: now,
			expiresAt: refreshExpires,
		},
		pair: {
			access_token: token,
			token_type: "Bearer",
			expires_in: secondsBetween(accessExpires, now),
			refresh_token: refreshToken,
			refresh_expires_in: secondsBetween(refreshExpires, now),
			scope,
		},
	};
}

/** Mints a pair inside an interactive transaction and writes its refresh token there. */
async function issuePair(
	tx: Tx,
	config: Config,
	session: { id: string; userId: string; scopes: string[]; expiresAt: Date },
	now: Date,
): Promise<{ pair: TokenPair; refreshId: string }> {
	const minted = await mintPair(config, session, now);
	await tx.insert(refreshTokens).values(minted.row);
	return minted;
}

/**
 * The api_key grant: a new session, capped at 30 days from now. Nothing here depends on a read,
 * so the session and its first refresh token go in one batch: one round trip, all or nothing.
 */
export async function startSession(
	db: Database,
	config: Config,
	input: { userId: string; apiKeyId: string; scopes: Scope[] },
	now: Date,
): Promise<TokenPair> {
	const session = {
		id: newId("ses"),
		userId: input.userId,
		scopes: input.scopes,
		expiresAt: new Date(now.getTime() + SESSION_MAX_AGE_S * 1000),
	};
	const { pair, row } = await mintPair(config, session, now);
	await db.batch([
		db.insert(sessions).values({ ...session, apiKeyId: input.apiKeyId, createdAt: now }),
		db.insert(refreshTokens).values(row),
	]);
	return pair;
}

/** Revokes every live session matching `where` (one session, a key's, a user's). */
export function revokeSessionsWhere(
	db: Queryable,
	where: SQL | undefined,
	now: Date,
	reason: string,
) {
	return db
		.update(sessions)
		.set({ revokedAt: now, revokedReason: reason })
		.where(and(where, isNull(sessions.revokedAt)));
}

const revokeSession = (db: Queryable, sessionId: string, now: Date, reason: string) =>
	revokeSessionsWhere(db, eq(sessions.id, sessionId), now, reason);

/**
 * The refresh_token grant. Row locks on the token serialise concurrent presentations of the
 * same token, so exactly one of them counts as the first use; that read-then-decide is why this
 * one path needs an interactive transaction (the WebSocket pool) rather than a batch.
 */
export async function refreshSession(
	db: TxDatabase,
	config: Config,
	presented: string,
	now: Date,
	/** Told which session a detected reuse revoked, before the refusal is thrown (the audit log). */
	onReuse?: (session: { id: string; userId: string }) => void,
): Promise<TokenPair> {
	if (!presented.startsWith(REFRESH_TOKEN_PREFIX)) throw invalidGrant("Unknown refresh token.");
	const hash = await sha256Hex(presented);
	const outcome = await db.transaction(async (tx) => {
		const [row] = await tx
			.select({ token: refreshTokens, session: sessions, key: apiKeys, userStatus: users.status })
			.from(refreshTokens)
			.innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
			.innerJoin(apiKeys, eq(apiKeys.id, sessions.apiKeyId))
			.innerJoin(users, eq(users.id, sessions.userId))
			.where(eq(refreshTokens.tokenHash, hash))
			.for("update", { of: [refreshTokens, sessions] });
		if (!row) return { error: invalidGrant("Unknown refresh token.") };
		const { token, session, key } = row;
		// The user's status first: a suspension also ends the session, and the caller should
		// hear the reason that will not go away by exchanging a key again.
		if (row.userStatus !== "active") return { error: inactiveUserGrantError(row.userStatus) };
		if (session.revokedAt) return { error: invalidGrant("The session has been revoked.") };
		if (session.expiresAt <= now)
			return { error: invalidGrant("The session has reached its 30-day limit.") };
		if (!keyStillValid(key, now)) {
			return { error: invalidGrant("The API key behind this session is no longer valid.") };
		}

		const reused = () => {
			return { reuse: session.id, userId: session.userId };
		};
		if (token.invalidatedAt) return reused();
		if (token.expiresAt <= now) return { error: invalidGrant("The refresh token has expired.") };

		if (!token.usedAt) {
			const { pair, refreshId } = await issuePair(tx, config, session, now);
			await tx
				.update(refreshTokens)
				.set({ usedAt: now, successorId: refreshId })
				.where(eq(refreshTokens.id, token.id));
			return { pair };
		}

		// Presented again: a lost response is retried within the grace, and only while the
		// pair it lost has not been used; anything else is treated as theft.
		const withinGrace = now.getTime() - token.usedAt.getTime() <= REFRESH_RETRY_GRACE_S * 1000;
		if (!withinGrace || !token.successorId) return reused();
		const [successor] = await tx
			.select()
			.from(refreshTokens)
			.where(eq(refreshTokens.id, token.successorId))
			.for("update");
		if (!successor || successor.usedAt || successor.invalidatedAt) return reused();
		await tx
			.update(refreshTokens)
			.set({ invalidatedAt: now })
			.where(eq(refreshTokens.id, successor.id));
		const { pair, refreshId } = await issuePair(tx, config, session, now);
		await tx
			.update(refreshTokens)
			.set({ successorId: refreshId })
			.where(eq(refreshTokens.id, token.id));
		return { pair, replaced: session.id };
	});
	if ("pair" in outcome && outcome.pair) {
		// The lost pair's access token is now refused; this isolate must not remember it as good.
		if (outcome.replaced) invalidateSession(outcome.replaced);
		return outcome.pair;
	}
	if ("reuse" in outcome && outcome.reuse) {
		// Outside the transaction above, which only read: the revocation must stick even though
		// the request fails.
		await revokeSession(db, outcome.reuse, now, "refresh_token_reused");
		invalidateSession(outcome.reuse);
		onReuse?.({ id: outcome.reuse, userId: outcome.userId });
		throw new LatchkeyError(
			"refresh_token_reused",
			"This refresh token was already used; the session is revoked.",
			{
				hint: "Exchange an API key for a new session.",
			},
		);
	}
	throw (outcome as { error: LatchkeyError }).error;
}

/**
 * POST /v1/auth/revoke: holding the refresh token is enough to end its session. The session (and
 * its user) it ended, or null for a token it does not know.
 */
export async function revokeByRefreshToken(
	db: Database,
	presented: string,
	now: Date,
): Promise<{ sessionId: string; userId: string } | null> {
	const hash = await sha256Hex(presented);
	const [row] = await db
		.select({ sessionId: refreshTokens.sessionId, userId: sessions.userId })
		.from(refreshTokens)
		.innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
		.where(eq(refreshTokens.tokenHash, hash))
		.limit(1);
	if (!row) return null;
	await revokeSession(db, row.sessionId, now, "revoked_by_client");
	invalidateSession(row.sessionId);
	return row;
}

export interface AccessClaims {
	sessionId: string;
	userId: string;
	jti: string;
}

/** Why an access token's session no longer lets it act; `null` when it still does. */
export type SessionEnd =
	| { reason: "unknown" | "expired" | "replaced" | "key_invalid" }
	| { reason: "revoked"; revokedReason: string | null }
	| { reason: "inactive_user"; userStatus: Exclude<UserStatus, "active"> }
	| null;

/**
 * The session behind an access token, its key, its user's status and whether this token was
 * replaced by a refresh retry: one statement, one round trip on the HTTP path (or one item of
 * a caller's batch: see sessionCheck).
 */
function sessionQuery(db: Database, claims: AccessClaims) {
	const replaced = db
		.select({ id: refreshTokens.id })
		.from(refreshTokens)
		.where(and(eq(refreshTokens.accessJti, claims.jti), isNotNull(refreshTokens.invalidatedAt)));
	return db
		.select({
			session: {
				id: sessions.id,
				apiKeyId: sessions.apiKeyId,
				revokedAt: sessions.revokedAt,
				revokedReason: sessions.revokedReason,
				expiresAt: sessions.expiresAt,
			},
			keyRevokedAt: apiKeys.revokedAt,
			keyExpiresAt: apiKeys.expiresAt,
			userStatus: users.status,
			replaced: sql<boolean>`exists (${replaced})`,
		})
		.from(sessions)
		.innerJoin(apiKeys, eq(apiKeys.id, sessions.apiKeyId))
		.innerJoin(users, eq(users.id, sessions.userId))
		.where(and(eq(sessions.id, claims.sessionId), eq(sessions.userId, claims.userId)))
		.limit(1);
}

type SessionQueryRow = Awaited<ReturnType<typeof sessionQuery>>[number];

function toCachedSession(
	row: SessionQueryRow | undefined,
	claims: AccessClaims,
): CachedSession | null {
	if (!row) return null;
	return {
		sessionId: row.session.id,
		userId: claims.userId,
		apiKeyId: row.session.apiKeyId,
		revokedAt: row.session.revokedAt?.getTime() ?? null,
		revokedReason: row.session.revokedReason,
		expiresAt: row.session.expiresAt.getTime(),
		keyRevokedAt: row.keyRevokedAt?.getTime() ?? null,
		keyExpiresAt: row.keyExpiresAt?.getTime() ?? null,
		userStatus: row.userStatus,
		replaced: Boolean(row.replaced),
	};
}

async function loadSession(db: Database, claims: AccessClaims): Promise<CachedSession | null> {
	const [row] = await sessionQuery(db, claims);
	return toCachedSession(row, claims);
}

/**
 * The fresh session check as a statement the caller runs inside its own batch (one round trip
 * for the check and the caller's read), and the verdict on what it returned.
 */
export function sessionCheck(db: Database, claims: AccessClaims) {
	return {
		query: sessionQuery(db, claims),
		judge(rows: unknown, now: Date): SessionEnd {
			const session = toCachedSession((rows as SessionQueryRow[])[0], claims);
			cacheSession(claims, session, now);
			return judgeSession(session, now);
		},
	};
}

function cacheSession(claims: AccessClaims, session: CachedSession | null, now: Date): void {
	sessionCache.set(
		claims.jti,
		session,
		claims.userId,
		now.getTime(),
		session ? [sessionTag(session.sessionId), keyTag(session.apiKeyId)] : [],
	);
}

function judgeSession(session: CachedSession | null, now: Date): SessionEnd {
	const t = now.getTime();
	if (!session) return { reason: "unknown" };
	if (session.revokedAt !== null && session.revokedAt <= t) {
		return { reason: "revoked", revokedReason: session.revokedReason };
	}
	if (session.userStatus !== "active") {
		return { reason: "inactive_user", userStatus: session.userStatus };
	}
	if (session.expiresAt <= t) return { reason: "expired" };
	if (
		(session.keyRevokedAt !== null && session.keyRevokedAt <= t) ||
		(session.keyExpiresAt !== null && session.keyExpiresAt <= t)
	) {
		return { reason: "key_invalid" };
	}
	if (session.replaced) return { reason: "replaced" };
	return null;
}

/**
 * Has the session behind an access token ended? `fresh` (writes, anything that mints a key or a
 * session or returns a secret) reads the database now; otherwise (reads) an answer up to
 * CACHE_TTL_MS old from this isolate may do. Either way the answer read is cached for the next
 * read, and the isolate that ends a session drops its entries at once.
 */
export async function sessionEnd(
	db: Database,
	claims: AccessClaims,
	now: Date,
	fresh: boolean,
): Promise<SessionEnd> {
	let session = fresh ? undefined : sessionCache.get(claims.jti, now.getTime());
	if (session === undefined) {
		session = await loadSession(db, claims);
		cacheSession(claims, session, now);
	}
	return judgeSession(session, now);
}
