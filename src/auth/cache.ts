import type { KeyKind, UserStatus } from "../db/schema.ts";
import type { Scope } from "./scopes.ts";

/**
 * Isolate-local cache of authentication decisions. A busy client costs no database query per
 * request; the price is that a revocation, roll or suspension made in another isolate takes
 * effect here within CACHE_TTL_MS. The isolate that makes a change drops its entries at once.
 */
export const CACHE_TTL_MS = 10_000;
const MAX_ENTRIES = 10_000;

interface Entry<T> {
	value: T;
	userId: string | null;
	expiresAt: number;
}

export class TtlCache<T> {
	private readonly map = new Map<string, Entry<T>>();

	constructor(
		private readonly ttlMs = CACHE_TTL_MS,
		private readonly clock: () => number = Date.now,
	) {}

	get(key: string): T | undefined {
		const hit = this.map.get(key);
		if (!hit) return undefined;
		if (hit.expiresAt <= this.clock()) {
			this.map.delete(key);
			return undefined;
		}
		return hit.value;
	}

	set(key: string, value: T, userId: string | null): void {
		if (this.map.size >= MAX_ENTRIES) {
			// Maps iterate in insertion order: dropping the first entry evicts the oldest.
			const oldest = this.map.keys().next().value;
			if (oldest !== undefined) this.map.delete(oldest);
		}
		this.map.set(key, { value, userId, expiresAt: this.clock() + this.ttlMs });
	}

	delete(key: string): void {
		this.map.delete(key);
	}

	deleteUser(userId: string): void {
		for (const [key, entry] of this.map) if (entry.userId === userId) this.map.delete(key);
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

/** Resolved API keys by public id (standard) or by hash (legacy); `null` caches a miss. */
export const keyCache = new TtlCache<CachedKey | null>();
/** User status by id, for principals (JWTs) whose token alone cannot say the user was suspended. */
export const userStatusCache = new TtlCache<UserStatus | null>();

export function invalidateUser(userId: string): void {
	keyCache.deleteUser(userId);
	userStatusCache.delete(userId);
}

export function invalidateKey(cacheKey: string): void {
	keyCache.delete(cacheKey);
}
