import { and, eq, gt, isNull, lt, or, type SQL } from "drizzle-orm";
import type { Config } from "../config.ts";
import { fromHex, randomBase62 } from "../crypto/encoding.ts";
import { sha256, sha256Hex, timingSafeEqualBytes } from "../crypto/hash.ts";
import type { Database, Queryable, TxDatabase } from "../db/client.ts";
import { type CursorKey, keysetAfter, keysetOrder } from "../db/pagination.ts";
import { type ApiKeyRow, apiKeys, sessions, type UserStatus, users } from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import { type CachedKey, invalidateKey, keyCache } from "./cache.ts";
import {
	generateKey,
	KEY_ID_LENGTH,
	KEY_PREFIX,
	LEGACY_KEY_PATTERN,
	type ParsedKey,
	parseKey,
} from "./key-format.ts";
import type { Principal } from "./principal.ts";
import { isScope, SCOPES, type Scope, USER_SCOPES } from "./scopes.ts";
import { revokeSessionsWhere } from "./sessions.ts";

export type KeyCheck =
	| { ok: true; key: CachedKey; principal: Principal }
	| { ok: false; reason: "unknown" | "revoked" | "expired" }
	/** The key is good but its user may not act; src/user-status.ts says how to refuse. */
	| { ok: false; reason: "inactive_user"; userStatus: Exclude<UserStatus, "active"> };

const legacyCacheKey = (hash: string) => `legacy:${hash}`;
const DUMMY_DIGEST = "0".repeat(64);

function keyQuery(db: Database, where: SQL | undefined) {
	return db
		.select({ key: apiKeys, userStatus: users.status })
		.from(apiKeys)
		.innerJoin(users, eq(users.id, apiKeys.userId))
		.where(where)
		.limit(1);
}

type KeyQueryRow = Awaited<ReturnType<typeof keyQuery>>[number];

function toCachedKey(row: KeyQueryRow | undefined): CachedKey | null {
	if (!row) return null;
	return {
		id: row.key.id,
		userId: row.key.userId,
		kind: row.key.kind,
		secretHash: row.key.secretHash,
		scopes: row.key.scopes.filter(isScope),
		createdAt: row.key.createdAt.getTime(),
		expiresAt: row.key.expiresAt?.getTime() ?? null,
		revokedAt: row.key.revokedAt?.getTime() ?? null,
		userStatus: row.userStatus,
	};
}

async function loadKey(db: Database, where: SQL | undefined): Promise<CachedKey | null> {
	const [row] = await keyQuery(db, where);
	return toCachedKey(row);
}

function judge(key: CachedKey, now: Date): KeyCheck {
	const t = now.getTime();
	if (key.revokedAt !== null && key.revokedAt <= t) return { ok: false, reason: "revoked" };
	if (key.expiresAt !== null && key.expiresAt <= t) return { ok: false, reason: "expired" };
	if (key.userStatus !== "active") {
		return { ok: false, reason: "inactive_user", userStatus: key.userStatus };
	}
	return {
		ok: true,
		key,
		principal: {
			method: key.kind === "legacy" ? "legacy_key" : "api_key",
			userId: key.userId,
			scopes: key.scopes,
			keyId: key.id,
		},
	};
}

/**
 * Checks a well-formed `lk_` key. `fresh` bypasses the isolate cache, for requests that write,
 * mint a key or a session, or hand out a secret; what it reads refreshes the cache.
 */
async function verifyStandardKey(
	db: Database,
	parsed: ParsedKey,
	now: Date,
	fresh = false,
): Promise<KeyCheck> {
	let key = fresh ? undefined : keyCache.get(parsed.id, now.getTime());
	if (key === undefined) {
		key = await loadKey(db, and(eq(apiKeys.id, parsed.id), eq(apiKeys.kind, "standard")));
		keyCache.set(parsed.id, key, key?.userId ?? null, now.getTime());
	}
	// Hash even on a miss so an unknown id and a wrong secret take the same time.
	// Both sides are SHA-256 digests of equal length, so a constant-time byte comparison is all
	// that is needed; an unknown id compares against a dummy digest to take the same path.
	const presented = await sha256(parsed.secret);
	const match = timingSafeEqualBytes(presented, fromHex(key?.secretHash ?? DUMMY_DIGEST));
	if (!key || !match) return { ok: false, reason: "unknown" };
	return judge(key, now);
}

/**
 * Checks a presented string as either kind of key: a well-formed `lk_` key by its id and secret,
 * an `sk-` legacy key by the hash of the whole key. Null when it has the shape of neither, so the
 * caller can try other credentials. `fresh` bypasses the isolate cache.
 */
export async function verifyPresentedKey(
	db: Database,
	presented: string,
	now: Date,
	fresh = false,
): Promise<KeyCheck | null> {
	const parsed = presented.startsWith(KEY_PREFIX) ? parseKey(presented) : null;
	if (parsed) return verifyStandardKey(db, parsed, now, fresh);
	if (LEGACY_KEY_PATTERN.test(presented)) return verifyLegacyKey(db, presented, now, fresh);
	return null;
}

/** After LEGACY_KEYS_SUNSET a legacy key neither authenticates nor starts a session. */
export function assertLegacyNotSunset(config: Config, now: Date): void {
	const sunset = config.LEGACY_KEYS_SUNSET ? Date.parse(config.LEGACY_KEYS_SUNSET) : null;
	if (sunset !== null && now.getTime() >= sunset) {
		throw new LatchkeyError("legacy_key_expired", "Legacy keys are no longer accepted.", {
			hint: "Create an lk_ key with POST /v1/api-keys and use it instead.",
		});
	}
}

/** Legacy keys carry no id: the hash of the whole key is the lookup. */
async function verifyLegacyKey(
	db: Database,
	presented: string,
	now: Date,
	fresh = false,
): Promise<KeyCheck> {
	const hash = await sha256Hex(presented);
	const cacheKey = legacyCacheKey(hash);
	let key = fresh ? undefined : keyCache.get(cacheKey, now.getTime());
	if (key === undefined) {
		key = await loadKey(db, and(eq(apiKeys.secretHash, hash), eq(apiKeys.kind, "legacy")));
		keyCache.set(cacheKey, key, key?.userId ?? null, now.getTime());
	}
	if (!key) return { ok: false, reason: "unknown" };
	return judge(key, now);
}

// Last write per key in this isolate; the SQL condition bounds writes across isolates too.
const lastTouched = new Map<string, number>();
const TOUCH_INTERVAL_MS = 60_000;

/** Returns the write to run off the response path, or null when one ran within the minute. */
export function touchKey(db: Database, keyId: string, now: Date): Promise<unknown> | null {
	const last = lastTouched.get(keyId);
	if (last !== undefined && now.getTime() - last < TOUCH_INTERVAL_MS) return null;
	if (lastTouched.size > 50_000) lastTouched.clear();
	lastTouched.set(keyId, now.getTime());
	const threshold = new Date(now.getTime() - TOUCH_INTERVAL_MS);
	return db
		.update(apiKeys)
		.set({ lastUsedAt: now })
		.where(
			and(eq(apiKeys.id, keyId), or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, threshold))),
		)
		.then(
			() => undefined,
			() => lastTouched.delete(keyId),
		);
}

/**
 * A key may carry only scopes its creator has, and never `admin`. A name that is no scope at all
 * is a malformed request (400), not a question of rights (403).
 */
export function resolveScopes(creator: Principal, requested: string[] | undefined): Scope[] {
	const creatorScopes =
		creator.method === "admin" ? USER_SCOPES : creator.scopes.filter((s) => s !== "admin");
	if (requested === undefined) return [...creatorScopes];
	const unknown = requested.flatMap((s, i) => (isScope(s) ? [] : [{ s, i }]));
	if (unknown.length > 0) {
		throw new LatchkeyError(
			"invalid_request",
			`Unknown scope: ${unknown.map((u) => JSON.stringify(u.s)).join(", ")}.`,
			{
				hint: `Scopes are ${SCOPES.join(", ")}.`,
				detail: unknown.map((u) => ({
					field: `scopes.${u.i}`,
					location: "json",
					message: "not a scope",
				})),
			},
		);
	}
	const denied = requested.filter((s) => s === "admin" || !creatorScopes.includes(s as Scope));
	if (denied.length > 0) {
		throw new LatchkeyError(
			"insufficient_scope",
			`A key cannot be given scopes its creator lacks: ${denied.join(", ")}.`,
			{
				detail: { denied },
			},
		);
	}
	return [...new Set(requested as Scope[])];
}

export interface NewKey {
	row: ApiKeyRow;
	key: string;
}

export async function createApiKey(
	db: Queryable,
	input: {
		userId: string;
		name: string;
		scopes: Scope[];
		expiresAt: Date | null;
		rolledFrom?: string;
	},
): Promise<NewKey> {
	const { id, secret, key } = generateKey();
	const [row] = await db
		.insert(apiKeys)
		.values({
			id,
			userId: input.userId,
			name: input.name,
			kind: "standard",
			secretHash: await sha256Hex(secret),
			scopes: input.scopes,
			expiresAt: input.expiresAt,
			rolledFrom: input.rolledFrom ?? null,
		})
		.returning();
	return { row: row as ApiKeyRow, key };
}

export async function importLegacyKey(
	db: Database,
	input: { userId: string; name: string; key: string; scopes?: Scope[] },
): Promise<ApiKeyRow> {
	if (!LEGACY_KEY_PATTERN.test(input.key)) {
		throw new LatchkeyError(
			"invalid_request",
			"A legacy key must look like sk-… (16 to 200 characters of [A-Za-z0-9_-]).",
			{
				detail: [{ field: "key", message: "not a legacy key" }],
			},
		);
	}
	const rows = await db
		.insert(apiKeys)
		.values({
			id: randomBase62(KEY_ID_LENGTH),
			userId: input.userId,
			name: input.name,
			kind: "legacy",
			secretHash: await sha256Hex(input.key),
			scopes: input.scopes ?? USER_SCOPES,
		})
		.onConflictDoNothing()
		.returning();
	const row = rows[0];
	if (!row) throw new LatchkeyError("conflict", "This legacy key has already been imported.");
	return row;
}

export async function listApiKeys(
	db: Database,
	userId: string,
	page: { limit: number; after?: CursorKey },
): Promise<ApiKeyRow[]> {
	return db
		.select()
		.from(apiKeys)
		.where(
			and(
				eq(apiKeys.userId, userId),
				isNull(apiKeys.revokedAt),
				keysetAfter(apiKeys.createdAt, apiKeys.id, page.after),
			),
		)
		.orderBy(...keysetOrder(apiKeys.createdAt, apiKeys.id))
		.limit(page.limit + 1);
}

const revokeSessionsOfKey = (db: Queryable, keyId: string, now: Date, reason: string) =>
	revokeSessionsWhere(db, eq(sessions.apiKeyId, keyId), now, reason);

/** Drops the key, and the sessions obtained from it, from this isolate's caches. */
function forgetKey(row: Pick<ApiKeyRow, "id" | "kind" | "secretHash">): void {
	invalidateKey(row.kind === "legacy" ? legacyCacheKey(row.secretHash) : row.id, row.id);
}

/** Revokes a live key of the user (404 otherwise) and every session obtained from it. */
export async function revokeApiKey(
	db: Database,
	userId: string,
	keyId: string,
	now: Date,
): Promise<void> {
	// One batch, one round trip. The session update names the user too, so it cannot touch
	// another user's sessions even when the key turns out not to be this user's.
	const [[row]] = await db.batch([
		db
			.update(apiKeys)
			.set({ revokedAt: now })
			.where(and(eq(apiKeys.id, keyId), eq(apiKeys.userId, userId), isNull(apiKeys.revokedAt)))
			.returning(),
		revokeSessionsWhere(
			db,
			and(eq(sessions.apiKeyId, keyId), eq(sessions.userId, userId)),
			now,
			"key_revoked",
		),
	]);
	if (!row) throw new LatchkeyError("not_found", "No such API key.");
	forgetKey(row);
}

/**
 * Issues a replacement with the same name and scopes. The old key keeps working for the grace
 * period (never past its own expiry); with no grace it is revoked at once, sessions included.
 * A roll never grants what the caller lacks: rolling a key that holds any scope the caller does
 * not is 403 `insufficient_scope`, and nothing changes.
 */
export async function rollApiKey(
	db: TxDatabase,
	caller: Principal,
	keyId: string,
	graceSeconds: number,
	now: Date,
): Promise<NewKey> {
	const userId = caller.userId;
	if (userId === null) throw new LatchkeyError("forbidden", "The admin token acts for no user.");
	const callerScopes: Scope[] = caller.scopes.filter((s) => s !== "admin");
	return db.transaction(async (tx) => {
		const [old] = await tx
			.select()
			.from(apiKeys)
			.where(
				and(
					eq(apiKeys.id, keyId),
					eq(apiKeys.userId, userId),
					isNull(apiKeys.revokedAt),
					or(isNull(apiKeys.expiresAt), gt(apiKeys.expiresAt, now)),
				),
			)
			.for("update");
		if (!old) throw new LatchkeyError("not_found", "No such API key.");
		const beyond = old.scopes.filter((s) => !callerScopes.includes(s as Scope));
		if (beyond.length > 0) {
			// Thrown inside the transaction, before any write: it rolls back with nothing done.
			throw new LatchkeyError(
				"insufficient_scope",
				`This key holds scopes the caller lacks: ${beyond.join(", ")}.`,
				{
					hint: "Roll it with a key or token that holds every scope of the rolled key.",
					detail: { required: old.scopes, granted: callerScopes },
				},
			);
		}
		const created = await createApiKey(tx, {
			userId,
			name: old.name,
			scopes: old.scopes.filter(isScope),
			expiresAt: old.expiresAt,
			rolledFrom: old.id,
		});
		if (graceSeconds === 0) {
			await tx.update(apiKeys).set({ revokedAt: now }).where(eq(apiKeys.id, old.id));
			await revokeSessionsOfKey(tx, old.id, now, "key_rolled");
		} else {
			const graceEnd = new Date(now.getTime() + graceSeconds * 1000);
			const expiresAt = old.expiresAt && old.expiresAt < graceEnd ? old.expiresAt : graceEnd;
			await tx.update(apiKeys).set({ expiresAt }).where(eq(apiKeys.id, old.id));
		}
		forgetKey(old);
		return created;
	});
}

/**
 * Account deletion: the statements that stop every key and session of the user, for the caller
 * to run in its own batch; it must call `invalidateUser` once they have run.
 */
export function userAccessRevocations(db: Database, userId: string, now: Date) {
	return [
		db
			.update(apiKeys)
			.set({ revokedAt: now })
			.where(and(eq(apiKeys.userId, userId), isNull(apiKeys.revokedAt))),
		revokeSessionsWhere(db, eq(sessions.userId, userId), now, "user_deleted"),
	] as const;
}

/** The fresh key check as a statement for the caller's batch, and the verdict on its rows. */
export function keyCheck(db: Database, keyId: string) {
	return {
		query: keyQuery(db, eq(apiKeys.id, keyId)),
		judge(rows: unknown, now: Date): KeyCheck {
			const key = toCachedKey((rows as KeyQueryRow[])[0]);
			return key ? judge(key, now) : { ok: false, reason: "unknown" };
		},
	};
}
