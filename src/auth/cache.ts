import type { KeyKind, UserStatus } from "../db/schema.ts";
import type { Scope } from "./scopes.ts";

/**
 * Isolate-local cache of authentication decisions, for reads only: authenticate() reads the
 * database past it for every other method. A busy reader costs no database query per request;
 * the price is that a revocation, roll or suspension made in another isolate reaches its reads
 * here within CACHE_TTL_MS. The isolate that makes a change drops its entries at once.
 */
export const CACHE_TTL_MS = 10_000;
const MAX_ENTRIES = 10_000;

interface Entry<T> {
	value: T;
	userId: string | null;
	tags: readonly string[];
	expiresAt: number;
}

/**
 * Entries expire CACHE_TTL_MS after they were stored. `get` and `set` take the request's clock
 * when they have one (`services.now()`), so an injected test clock moves cache expiry too.
 */
export class TtlCache<T> {
	private readonly map = new Map<string, Entry<T>>();

	constructor(
		private readonly ttlMs = CACHE_TTL_MS,
		private readonly clock: () => number = Date.now,
	) {}

	get(key: string, now = this.clock()): T | undefined {
		const hit = this.map.get(key);
		if (!hit) return undefined;
		if (hit.expiresAt <= now) {
			this.map.delete(key);
			return undefined;
		}
		return hit.value;
	}

	/** `tags` name other things the entry depends on, for `deleteTagged`. */
	set(
		key: string,
		value: T,
		userId: string | null,
		now = this.clock(),
		tags: readonly string[] = [],
	): void {
		// Re-inserting moves the key to the end, so eviction stays oldest-first.
		this.map.delete(key);
		if (this.map.size >= MAX_ENTRIES) {
			// Maps iterate in insertion order: dropping the first entry evicts the oldest.
			const oldest = this.map.keys().next().value;
			if (oldest !== undefined) this.map.delete(oldest);
		}
		this.map.set(key, { value, userId, tags, expiresAt: now + this.ttlMs });
	}

	delete(key: string): void {
		this.map.delete(key);
	}

	deleteUser(userId: string): void {
		for (const [key, entry] of this.map) if (entry.userId === userId) this.map.delete(key);
	}

	deleteTagged(tag: string): void {
		for (const [key, entry] of this.map) if (entry.tags.includes(tag)) this.map.delete(key);
	}

	clear(): void {
		this.map.clear();
	}
}

/** What the hot path needs to decide about a key, cached for a few seconds per isolate. */
export interface CachedKey {
	id: string;
	userId: string;
	kind: KeyKind;
	secretHash: string;
	scopes: Scope[];
	createdAt: number;
	expiresAt: number | null;
	revokedAt: number | null;
	userStatus: UserStatus;
}

/**
 * What a request with an access token needs to know about its session, as read in one query:
 * the session row, the key it came from, its user's status, and whether this very token was
 * replaced by a refresh retry. Judged against the request's clock on every use.
 */
export interface CachedSession {
	sessionId: string;
	userId: string;
	apiKeyId: string;
	revokedAt: number | null;
	revokedReason: string | null;
	expiresAt: number;
	keyRevokedAt: number | null;
	keyExpiresAt: number | null;
	userStatus: UserStatus;
	/** This access token belongs to a pair a refresh retry invalidated. */
	replaced: boolean;
}

/** Resolved API keys by public id (standard) or by hash (legacy); `null` caches a miss. */
export const keyCache = new TtlCache<CachedKey | null>();
/** User status by id, for external identity tokens, whose token cannot say the user was suspended. */
export const userStatusCache = new TtlCache<UserStatus | null>();
/**
 * Session state by access-token `jti` (`null`: no such session), for reads only: writes and
 * secret-returning requests always read it fresh. Tagged with the session and its key.
 */
export const sessionCache = new TtlCache<CachedSession | null>();

export const sessionTag = (sessionId: string) => `session:${sessionId}`;
export const keyTag = (keyId: string) => `key:${keyId}`;

/** A user's status changed (suspension, reactivation, deletion): forget everything about them. */
export function invalidateUser(userId: string): void {
	keyCache.deleteUser(userId);
	userStatusCache.delete(userId);
	sessionCache.deleteUser(userId);
}

/** A key was revoked or rolled: forget it, and the sessions obtained from it. */
export function invalidateKey(cacheKey: string, keyId = cacheKey): void {
	keyCache.delete(cacheKey);
	sessionCache.deleteTagged(keyTag(keyId));
}

/** A session was revoked, or one of its access tokens replaced. */
export function invalidateSession(sessionId: string): void {
	sessionCache.deleteTagged(sessionTag(sessionId));
}
