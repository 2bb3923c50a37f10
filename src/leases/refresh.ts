import { Lock } from "@upstash/lock";
import type { Redis as NodeRedis } from "@upstash/redis";
import { and, eq } from "drizzle-orm";
import { openSecret, sealSecret } from "../credentials/service.ts";
import { getKeyRing, open, seal } from "../crypto/envelope.ts";
import { type CredentialRow, credentials } from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import { resolveProvider } from "../oauth/registry.ts";
import { type OAuthTokenSet, refreshAccessToken } from "../oauth/service.ts";
import type { Services } from "../services.ts";
import { needsRefresh, refreshBackoffMs } from "./policy.ts";
import { LeaseStore, leaseKeys, lockStoreDown } from "./store.ts";

/**
 * The refresh engine: one refresh per credential at a time across every isolate, however many
 * leases ask (single flight on the @upstash/lock lock); the tokens it writes are fenced by the
 * row's `version`; a rotated refresh token survives a failed database write in a sealed Redis
 * stash; a refresh that would invalidate leased tokens waits for those leases (writer intent).
 * See docs/leases.md for the state machine.
 */

/** The refresh lock's lease; extended while a refresh waits or runs (whole seconds: see extend). */
const LOCK_LEASE_MS = 15_000;
const LOCK_EXTEND_MS = 10_000;
/** How long the provider's answer is kept, sealed, until the database has it. */
const STASH_TTL_MS = 60 * 60 * 1000;
/** Added to the writer intent's life beyond the last held lease, so a refresher can finish. */
const WRITER_SLACK_MS = LOCK_LEASE_MS;

export type OAuthRow = CredentialRow & { type: "oauth2" };

/** Hooks for tests: barriers at the points where the engine waits or calls out. */
export interface RefreshHooks {
	/** The refresh waits for this many held leases to end. */
	waitingForHolders?(holders: number): void;
	/** A lease request waits for another request's refresh (single flight, or writer intent). */
	waitingForRefresh?(reason: "lock" | "writer"): void;
	/** Just before the token endpoint is called. */
	beforeProviderCall?(): void | Promise<void>;
	/** The provider answered; the database write comes next. */
	afterProviderCall?(): void | Promise<void>;
}

export interface RefreshOptions {
	ttlMs: number;
	/** Real time (performance.now()) after which waiting gives up with 503 refresh_pending. */
	deadline: number;
	/** Proactive refreshes never wait for held leases: they try again on the next run. */
	waitForHolders: boolean;
	hooks?: RefreshHooks;
}

export type RefreshOutcome =
	/** The row now holds tokens good for the lease (refreshed here or by someone else). */
	| { kind: "fresh"; row: OAuthRow }
	/** The refresh failed transiently or is backing off; the row's token may still be valid. */
	| { kind: "transient"; row: OAuthRow }
	/** Held leases still hold the token; the proactive refresh leaves it for now. */
	| { kind: "held"; row: OAuthRow };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const refreshPending = (retryAfterS: number) =>
	new LatchkeyError(
		"refresh_pending",
		"A token refresh is waiting for leases that hold the current token to end.",
		{ retryAfter: Math.max(1, Math.ceil(retryAfterS)) },
	);

export const reconnectRequired = (row: CredentialRow) =>
	new LatchkeyError(
		"reconnect_required",
		`Credential ${row.id} must be reconnected: the provider rejected its refresh token.`,
		{
			hint: `Reconnect with POST /v1/oauth/${row.provider}/authorize and credential_id ${row.id}.`,
		},
	);

export async function loadCredential(
	services: Services,
	id: string,
): Promise<CredentialRow | null> {
	const [row] = await services.db.select().from(credentials).where(eq(credentials.id, id)).limit(1);
	return row ?? null;
}

const stashAad = (credentialId: string, baseVersion: number) =>
	JSON.stringify(["refresh_stash", credentialId, baseVersion]);

interface StashedTokens {
	baseVersion: number;
	sealed: { ciphertext: string; dataKey: string; keyId: string };
}

/** Polls (with backoff) until `done()` or the deadline; `done` is one Redis call. */
async function waitUntil(
	done: () => Promise<boolean>,
	deadline: number,
	retryAfterS: () => number,
): Promise<void> {
	let delay = POLL_FIRST_MS;
	// The first look comes after a typical refresh's duration, not at once: with a herd waiting,
	// every early poll is load on the very Redis and event loop the refresher needs.
	await sleep(jitter(delay));
	while (!(await done())) {
		if (performance.now() >= deadline) throw refreshPending(retryAfterS());
		delay = Math.min(delay * 2, POLL_MAX_MS);
		await sleep(Math.min(jitter(delay), Math.max(deadline - performance.now(), 0)));
	}
}

const POLL_FIRST_MS = 100;
const POLL_MAX_MS = 1_000;
/** ±50 %: waiters that arrived together must not poll together. */
const jitter = (ms: number) => Math.round(ms * (0.5 + Math.random()));

/** Waits until no refresh runs or is pending for the credential (lock free, no intent). */
export async function waitForRefresh(
	store: LeaseStore,
	credentialId: string,
	deadline: number,
): Promise<void> {
	await waitUntil(
		async () => !(await store.refreshInProgress(credentialId)),
		deadline,
		() => LOCK_LEASE_MS / 1000,
	);
}

/**
 * Makes sure the credential's token is good for a lease of `ttlMs`, refreshing it at most once
 * across all concurrent callers. Whoever takes the lock re-reads the row and refreshes only if
 * it still needs it; the others wait for the lock to go and read what it wrote.
 */
export async function ensureFresh(
	services: Services,
	initial: OAuthRow,
	options: RefreshOptions,
): Promise<RefreshOutcome> {
	const store = new LeaseStore(services.redis);
	const lock = new Lock({
		id: leaseKeys(initial.id).lock,
		// The lock library is typed against the Node entry of @upstash/redis; same client class.
		redis: services.redis as unknown as NodeRedis,
		lease: LOCK_LEASE_MS,
		retry: { attempts: 1, delay: 0 },
	});
	let row = initial;
	for (;;) {
		let acquired: boolean;
		try {
			acquired = await lock.acquire();
		} catch (err) {
			throw lockStoreDown(err);
		}
		if (acquired) {
			try {
				return await refreshHoldingLock(services, store, lock, row.id, options);
			} finally {
				await lock.release().catch((err: unknown) =>
					// The lock then lapses by its lease; nothing to undo.
					services.logger.warn("refresh lock release failed", {
						credential_id: row.id,
						error_name: err instanceof Error ? err.name : typeof err,
					}),
				);
			}
		}
		options.hooks?.waitingForRefresh?.("lock");
		await waitForRefresh(store, row.id, options.deadline);
		const reread = await loadCredential(services, row.id);
		if (reread?.type !== "oauth2") throw notFound();
		row = reread as OAuthRow;
		if (row.status === "reconnect_required") throw reconnectRequired(row);
		if (!stillNeedsRefresh(services, row, options.ttlMs)) return { kind: "fresh", row };
		// The refresher failed and recorded a backoff: nobody calls the provider until it passes.
		if (backingOff(services, row)) return { kind: "transient", row };
	}
}

const notFound = () => new LatchkeyError("not_found", "No such credential.");

function stillNeedsRefresh(services: Services, row: CredentialRow, ttlMs: number): boolean {
	return needsRefresh(
		{ expiresAt: row.accessTokenExpiresAt, issuedAt: row.tokenIssuedAt },
		row.updatedAt,
		services.now(),
		ttlMs,
	);
}

function backingOff(services: Services, row: CredentialRow): boolean {
	return row.refreshRetryAt !== null && row.refreshRetryAt.getTime() > services.now().getTime();
}

async function refreshHoldingLock(
	services: Services,
	store: LeaseStore,
	lock: Lock,
	credentialId: string,
	options: RefreshOptions,
): Promise<RefreshOutcome> {
	// Re-read under the lock: another isolate may have refreshed since this request read the row.
	const current = await loadCredential(services, credentialId);
	if (current?.type !== "oauth2") throw notFound();
	const row = current as OAuthRow;
	if (row.status === "reconnect_required") throw reconnectRequired(row);
	if (!stillNeedsRefresh(services, row, options.ttlMs)) return { kind: "fresh", row };

	// A provider answer that reached Redis but not the database (the write failed): use it, the
	// old refresh token may already be dead.
	const recovered = await recoverStash(services, store, row);
	let tokens: OAuthTokenSet;
	const writer = crypto.randomUUID();
	if (recovered) {
		tokens = recovered;
		services.logger.info("refresh recovered from stash", { credential_id: row.id });
	} else {
		if (backingOff(services, row)) return { kind: "transient", row };
		const secret = await openSecret(services, row);
		if (!secret.refresh_token) {
			// Nothing to refresh with: usable until it expires, then only a reconnect helps.
			if (row.accessTokenExpiresAt && row.accessTokenExpiresAt <= services.now()) {
				throw await markReconnect(services, row, "no_refresh_token");
			}
			return { kind: "transient", row };
		}
		const provider = await resolveProvider(services, row.provider);
		if (provider.refreshInvalidatesAccessToken) {
			const drained = await drainHolders(services, store, lock, row, writer, options);
			if (!drained) return { kind: "held", row };
		}
		const heartbeat = keepLock(services, lock, row.id);
		try {
			await options.hooks?.beforeProviderCall?.();
			tokens = await refreshAccessToken(services, row.provider, secret.refresh_token);
		} catch (err) {
			heartbeat.stop();
			await store.abandonWrite(row.id, writer).catch(() => {});
			if (err instanceof LatchkeyError && err.code === "reconnect_required") {
				throw await markReconnect(services, row, "invalid_grant");
			}
			if (err instanceof LatchkeyError && err.code === "provider_unavailable") {
				return { kind: "transient", row: await recordFailure(services, row) };
			}
			throw err;
		}
		heartbeat.stop();
		await options.hooks?.afterProviderCall?.();
		// Before the database write: a rotated refresh token must outlive a failed write.
		await stashTokens(services, store, row, tokens);
	}
	const written = await writeTokens(services, row, tokens);
	if (!written) {
		// Fenced: someone whose lock had not expired wrote newer tokens; theirs stand.
		await store.dropStash(row.id);
		await store.abandonWrite(row.id, writer);
		const latest = await loadCredential(services, row.id);
		if (!latest) throw notFound();
		return { kind: "fresh", row: latest as OAuthRow };
	}
	await store.commitWrite(row.id, writer, written.version);
	return { kind: "fresh", row: written };
}

/**
 * Writer priority for providers whose refresh kills the old access token: announce the refresh
 * (new leases queue behind it), then wait until every unexpired lease of the old token has
 * ended. A crashed holder blocks no longer than its lease's TTL. False when the caller does not
 * wait (proactive refresh) and leases are held.
 */
async function drainHolders(
	services: Services,
	store: LeaseStore,
	lock: Lock,
	row: OAuthRow,
	writer: string,
	options: RefreshOptions,
): Promise<boolean> {
	let lastExtend = performance.now();
	let delay = 20;
	let announced = false;
	for (;;) {
		const now = services.now().getTime();
		const { holders, lastLeaseEnd } = await store.beginWrite({
			credentialId: row.id,
			writer,
			now,
			slackMs: WRITER_SLACK_MS,
		});
		if (holders === 0) return true;
		if (!options.waitForHolders) {
			await store.abandonWrite(row.id, writer);
			return false;
		}
		if (!announced) {
			options.hooks?.waitingForHolders?.(holders);
			announced = true;
		}
		if (performance.now() >= options.deadline) {
			// The intent stays (it lapses after the last holder): new leases keep queueing, and the
			// first request after the drain refreshes.
			throw refreshPending((lastLeaseEnd - now) / 1000);
		}
		if (performance.now() - lastExtend > LOCK_LEASE_MS / 3) {
			await lock.extend(LOCK_EXTEND_MS).catch(() => false);
			lastExtend = performance.now();
		}
		await sleep(delay);
		delay = Math.min(delay * 2, 250);
	}
}

/** Extends the lock while the provider call runs, so a slow provider does not lose it. */
function keepLock(services: Services, lock: Lock, credentialId: string) {
	let stopped = false;
	let timer: ReturnType<typeof setTimeout> | undefined;
	const tick = () => {
		timer = setTimeout(async () => {
			if (stopped) return;
			const ok = await lock.extend(LOCK_EXTEND_MS).catch(() => false);
			if (!ok) services.logger.warn("refresh lock not extended", { credential_id: credentialId });
			tick();
		}, LOCK_LEASE_MS / 3);
	};
	tick();
	return {
		stop() {
			stopped = true;
			if (timer) clearTimeout(timer);
		},
	};
}

async function stashTokens(
	services: Services,
	store: LeaseStore,
	row: OAuthRow,
	tokens: OAuthTokenSet,
): Promise<void> {
	const ring = await getKeyRing(services.config);
	const sealed = await seal(
		ring,
		JSON.stringify({ ...tokens, expiresAt: tokens.expiresAt?.toISOString() ?? null }),
		stashAad(row.id, row.version),
	);
	const value: StashedTokens = { baseVersion: row.version, sealed };
	await store.stash(row.id, JSON.stringify(value), STASH_TTL_MS);
}

async function recoverStash(
	services: Services,
	store: LeaseStore,
	row: OAuthRow,
): Promise<OAuthTokenSet | null> {
	const raw = await store.readStash(row.id);
	if (!raw) return null;
	try {
		const stashed = JSON.parse(raw) as StashedTokens;
		// Based on another version: the row moved on (a reconnect, or a write that did land).
		if (stashed.baseVersion !== row.version) {
			await store.dropStash(row.id);
			return null;
		}
		const ring = await getKeyRing(services.config);
		const plain = JSON.parse(
			await open(ring, stashed.sealed, stashAad(row.id, row.version), `refresh stash of ${row.id}`),
		) as Omit<OAuthTokenSet, "expiresAt"> & { expiresAt: string | null };
		return { ...plain, expiresAt: plain.expiresAt ? new Date(plain.expiresAt) : null };
	} catch (err) {
		services.logger.warn("refresh stash unreadable", {
			credential_id: row.id,
			error_name: err instanceof Error ? err.name : typeof err,
		});
		await store.dropStash(row.id);
		return null;
	}
}

/** The fenced write: only over the version the refresh started from. Null when fenced off. */
async function writeTokens(
	services: Services,
	row: OAuthRow,
	tokens: OAuthTokenSet,
): Promise<OAuthRow | null> {
	const current = await openSecret(services, row);
	const refresh = tokens.refreshToken ?? current.refresh_token;
	const now = services.now();
	const sealed = await sealSecret(services, row, {
		access_token: tokens.accessToken,
		token_type: tokens.tokenType || current.token_type || "Bearer",
		...(refresh ? { refresh_token: refresh } : {}),
	});
	const [updated] = await services.db
		.update(credentials)
		.set({
			...sealed,
			accessTokenExpiresAt: tokens.expiresAt,
			tokenIssuedAt: now,
			// Providers that restate scopes on refresh say what the token now carries.
			...(tokens.scopes.length ? { scopes: tokens.scopes } : {}),
			status: "active",
			refreshFailures: 0,
			refreshRetryAt: null,
			refreshError: null,
			version: row.version + 1,
			updatedAt: now,
		})
		.where(and(eq(credentials.id, row.id), eq(credentials.version, row.version)))
		.returning();
	return (updated as OAuthRow | undefined) ?? null;
}

/** A definitive refusal: the credential needs the user, and is never retried with this token. */
async function markReconnect(
	services: Services,
	row: OAuthRow,
	reason: string,
): Promise<LatchkeyError> {
	await services.db
		.update(credentials)
		.set({
			status: "reconnect_required",
			refreshError: reason,
			version: row.version + 1,
			updatedAt: services.now(),
		})
		.where(and(eq(credentials.id, row.id), eq(credentials.version, row.version)));
	return reconnectRequired(row);
}

/** Bookkeeping, not a change of the credential: the version (and ETag) stay. */
async function recordFailure(services: Services, row: OAuthRow): Promise<OAuthRow> {
	const failures = row.refreshFailures + 1;
	const retryAt = new Date(services.now().getTime() + refreshBackoffMs(failures));
	const [updated] = await services.db
		.update(credentials)
		.set({
			refreshFailures: failures,
			refreshRetryAt: retryAt,
			refreshError: "provider_unavailable",
		})
		.where(eq(credentials.id, row.id))
		.returning();
	return (updated as OAuthRow | undefined) ?? row;
}
