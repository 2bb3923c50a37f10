import { Lock } from "@upstash/lock";
import type { Redis as NodeRedis } from "@upstash/redis";
import { and, eq, ne, sql } from "drizzle-orm";
import { systemRecord, writeAfterResponse } from "../audit/index.ts";
import type { OAuthTokenSet, SecretOf } from "../credentials/secrets.ts";
import { openSecret, sealSecret } from "../credentials/service.ts";
import { getKeyRing, open, seal } from "../crypto/envelope.ts";
import { type CredentialRow, credentials } from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import { refreshAccessToken } from "../oauth/service.ts";
import type { Services } from "../services.ts";
import { needsRefresh, refreshBackoffMs, tokenTimesOf } from "./policy.ts";
import { type LeaseStore, leaseKeys, leaseStoreOf, lockStoreDown } from "./store.ts";

/**
 * The refresh engine: one refresh per credential at a time across every isolate, however many
 * leases ask (single flight on the @upstash/lock lock); the tokens it writes are fenced by the
 * row's `token_version` (only another token write can fence a refresh, never an edit of the
 * title or metadata); a rotated refresh token survives a failed database write in a sealed Redis
 * stash that the scheduled worker also recovers; a refresh that would invalidate leased tokens
 * waits for those leases (writer intent). See docs/leases.md for the state machine and its
 * invariants.
 */

/** The refresh lock's lease; extended while a refresh waits or runs. */
const LOCK_LEASE_MS = 15_000;
/** How long the provider's answer is kept, sealed, until the database has it: many cron runs. */
const STASH_TTL_MS = 24 * 60 * 60 * 1000;
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
	/** The provider answered; the stash and the database write come next. */
	afterProviderCall?(): void | Promise<void>;
}

export interface RefreshOptions {
	ttlMs: number;
	/** The provider's refresh kills the previous access token (writer priority applies). */
	invalidates: boolean;
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

async function loadOAuth(services: Services, id: string): Promise<OAuthRow> {
	const row = await loadCredential(services, id);
	if (row?.type !== "oauth2") throw notFound();
	return row as OAuthRow;
}

/** The stash is bound to the credential and the token version it refreshed from. */
const stashAad = (credentialId: string, tokenVersion: number) =>
	JSON.stringify(["refresh_stash", credentialId, tokenVersion]);

interface StashedAnswer extends Omit<OAuthTokenSet, "expiresAt"> {
	expiresAt: string | null;
	/** When the provider answered: the token's issue time, whenever the answer is written. */
	obtainedAt: string;
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
 * Takes the refresh lock as `holder`. The REST client retries a request whose reply was lost;
 * its second SET NX then fails against the first one's success, so a refused acquisition checks
 * whether the lock is in fact ours before waiting on it.
 */
async function acquireLock(
	services: Services,
	store: LeaseStore,
	credentialId: string,
	holder: string,
): Promise<boolean> {
	const lock = new Lock({
		id: leaseKeys(credentialId).lock,
		// The lock library is typed against the Node entry of @upstash/redis; same client class.
		redis: services.redis as unknown as NodeRedis,
		lease: LOCK_LEASE_MS,
		retry: { attempts: 1, delay: 0 },
	});
	let acquired: boolean;
	try {
		acquired = await lock.acquire({ uuid: holder });
	} catch (err) {
		throw lockStoreDown(err);
	}
	return acquired || (await store.holdsLock(credentialId, holder));
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
	const store = leaseStoreOf(services);
	let row = initial;
	for (;;) {
		const holder = crypto.randomUUID();
		if (await acquireLock(services, store, row.id, holder)) {
			try {
				return await refreshHoldingLock(services, store, holder, row.id, options);
			} finally {
				await store.releaseLock(row.id, holder).catch((err: unknown) =>
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
		row = await loadOAuth(services, row.id);
		if (row.status === "reconnect_required") throw reconnectRequired(row);
		if (!stillNeedsRefresh(services, row, options)) return { kind: "fresh", row };
		// The refresher failed and recorded a backoff: nobody calls the provider until it passes.
		if (backingOff(services, row)) return { kind: "transient", row };
	}
}

/**
 * Writes back a stash the database never got, holding the lock; the scheduled worker's way in
 * (a lease finds stashes itself). Skips a credential whose lock is held: that holder recovers it.
 */
export async function recoverStash(
	services: Services,
	credentialId: string,
	ownedBy?: readonly string[],
): Promise<"written" | "dropped" | "busy" | "skipped"> {
	const store = leaseStoreOf(services);
	const holder = crypto.randomUUID();
	if (!(await acquireLock(services, store, credentialId, holder))) return "busy";
	try {
		const row = await loadCredential(services, credentialId);
		// A scoped run (the maintenance route's user_id) touches only those users' credentials.
		if (ownedBy && row && !ownedBy.includes(row.userId ?? "")) return "skipped";
		if (row?.type !== "oauth2") {
			await store.dropStash(credentialId, -1);
			return "dropped";
		}
		const applied = await applyStash(services, store, row as OAuthRow);
		return applied ? "written" : "dropped";
	} finally {
		await store.releaseLock(credentialId, holder).catch(() => {});
	}
}

const notFound = () => new LatchkeyError("not_found", "No such credential.");

function stillNeedsRefresh(services: Services, row: CredentialRow, options: RefreshOptions) {
	return needsRefresh(
		tokenTimesOf(row),
		row.updatedAt,
		services.now(),
		options.ttlMs,
		options.invalidates,
	);
}

function backingOff(services: Services, row: CredentialRow): boolean {
	return row.refreshRetryAt !== null && row.refreshRetryAt.getTime() > services.now().getTime();
}

async function refreshHoldingLock(
	services: Services,
	store: LeaseStore,
	holder: string,
	credentialId: string,
	options: RefreshOptions,
): Promise<RefreshOutcome> {
	// Re-read under the lock: another isolate may have refreshed since this request read the row.
	let row = await loadOAuth(services, credentialId);
	// A provider answer that reached Redis but not the database: write it back before anything
	// else, even over `reconnect_required` (a refresher that presented the rotated-away token set
	// that; these tokens are the live ones). A recovered token that has since expired is then
	// refreshed like any other, with the recovered refresh token.
	row = (await applyStash(services, store, row)) ?? row;
	if (row.status === "reconnect_required") throw reconnectRequired(row);
	if (!stillNeedsRefresh(services, row, options)) return { kind: "fresh", row };
	if (backingOff(services, row)) return { kind: "transient", row };

	const secret = await openSecret(services, row);
	if (!secret.refresh_token) {
		// Nothing to refresh with: usable until it expires, then only a reconnect helps.
		if (row.accessTokenExpiresAt && row.accessTokenExpiresAt <= services.now()) {
			throw await markReconnect(services, row, "no_refresh_token");
		}
		return { kind: "transient", row };
	}
	const intent = `${holder}|${row.tokenVersion}`;
	if (options.invalidates) {
		const drained = await drainHolders(services, store, holder, row, options);
		if (drained === "held") return { kind: "held", row };
		if (drained === "superseded") return { kind: "fresh", row: await loadOAuth(services, row.id) };
	}
	// The lock and the intent both outlive the refresh they guard, however slow the provider.
	const heartbeat = keepAlive(services, store, row.id, holder, options.invalidates ? intent : null);
	try {
		let tokens: OAuthTokenSet;
		try {
			await options.hooks?.beforeProviderCall?.();
			tokens = await refreshAccessToken(services, row.provider, secret.refresh_token);
		} catch (err) {
			if (options.invalidates) await store.abandonWrite(row.id, intent).catch(() => {});
			if (err instanceof LatchkeyError && err.code === "reconnect_required") {
				throw await markReconnect(services, row, "invalid_grant");
			}
			if (err instanceof LatchkeyError && err.code === "provider_unavailable") {
				return { kind: "transient", row: await recordFailure(services, row) };
			}
			throw err;
		}
		const obtainedAt = services.now();
		await options.hooks?.afterProviderCall?.();
		return {
			kind: "fresh",
			row: await keepTokens(services, store, row, tokens, obtainedAt, secret.refresh_token),
		};
	} finally {
		heartbeat.stop();
	}
}

/**
 * The provider has answered (and, if it rotates, killed the old refresh token): from here the
 * answer must reach the database or stay in the stash. The stash is a safety net, never a gate:
 * if sealing it into Redis fails the database write still goes ahead.
 */
async function keepTokens(
	services: Services,
	store: LeaseStore,
	row: OAuthRow,
	tokens: OAuthTokenSet,
	obtainedAt: Date,
	presented: string,
): Promise<OAuthRow> {
	const stashed = await stashTokens(services, store, row, tokens, obtainedAt).then(
		() => true,
		(err: unknown) => {
			services.logger.warn("refresh stash not written; writing the database regardless", {
				credential_id: row.id,
				error_name: err instanceof Error ? err.name : typeof err,
			});
			return false;
		},
	);
	let written: OAuthRow | null;
	try {
		written = await writeTokens(services, row, tokens, obtainedAt);
	} catch (err) {
		if (!stashed) {
			// The one moment tokens can be lost: say so loudly, with what an operator needs.
			services.logger.error(
				"refresh tokens at risk: neither the stash nor the database took them",
				{
					credential_id: row.id,
					error_name: err instanceof Error ? err.name : typeof err,
				},
			);
		}
		throw err;
	}
	if (!written) {
		// Fenced: a newer token write (another refresh, a reconnect, a PATCH of the secret) landed
		// since this refresh read the row; its tokens stand. If it kept the refresh token this
		// refresh consumed, the rotated one is carried over. Committing the newer version clears
		// an intent and a stash of the older one.
		const latest = await loadOAuth(services, row.id);
		const current = (await graftRefreshToken(services, latest, presented, tokens)) ?? latest;
		await commit(services, store, current);
		return current;
	}
	await commit(services, store, written);
	return written;
}

/**
 * A newer token write that kept the refresh token this refresh presented (an edit of the access
 * token alone) would leave the row holding a refresh token the provider has just rotated away:
 * the rotated one replaces it, and the write's access token stays. Null when there is nothing to
 * carry over or the row moved on again meanwhile (then the stash, kept until now, is all there
 * was; it goes with the newer version's commit).
 */
async function graftRefreshToken(
	services: Services,
	latest: OAuthRow,
	presented: string,
	tokens: OAuthTokenSet,
): Promise<OAuthRow | null> {
	const rotated = tokens.refreshToken;
	if (!rotated || rotated === presented) return null;
	const secret = await openSecret(services, latest);
	if (secret.refresh_token !== presented) return null;
	const updated = await fencedTokenWrite(services, latest, { ...secret, refresh_token: rotated });
	if (!updated) {
		services.logger.warn("rotated refresh token not carried over: the credential moved on", {
			credential_id: latest.id,
		});
		return null;
	}
	return updated;
}

/** Redis learns of the write: intent done, older tokens no longer granted, stash spent. */
async function commit(services: Services, store: LeaseStore, written: OAuthRow): Promise<void> {
	await store.commitWrite(written.id, written.tokenVersion).catch((err: unknown) =>
		// The tokens are safe in the database; the intent lapses by its TTL and the stash is
		// recognised as stale by its version.
		services.logger.warn("refresh commit not recorded in Redis", {
			credential_id: written.id,
			error_name: err instanceof Error ? err.name : typeof err,
		}),
	);
}

type Drain = "drained" | "held" | "superseded";

/**
 * Writer priority for providers whose refresh kills the old access token: announce the refresh
 * (new leases queue behind it), then wait until every unexpired lease of the old token has
 * ended. A crashed holder blocks no longer than its lease's TTL. A caller that does not wait
 * (the proactive refresh) leaves a token that leases hold, and any intent, as they are.
 */
async function drainHolders(
	services: Services,
	store: LeaseStore,
	holder: string,
	row: OAuthRow,
	options: RefreshOptions,
): Promise<Drain> {
	let lastExtend = performance.now();
	let delay = 20;
	let announced = false;
	for (;;) {
		const now = services.now().getTime();
		const state = await store.beginWrite({
			credentialId: row.id,
			writer: holder,
			tokenVersion: row.tokenVersion,
			now,
			slackMs: WRITER_SLACK_MS,
			announce: options.waitForHolders,
		});
		if (state.superseded) return "superseded";
		if (state.holders === 0) return "drained";
		if (!options.waitForHolders) return "held";
		if (!announced) {
			options.hooks?.waitingForHolders?.(state.holders);
			announced = true;
		}
		if (performance.now() >= options.deadline) {
			// The intent stays (it lapses after the last holder): new leases keep queueing, and the
			// first request after the drain refreshes.
			throw refreshPending((state.lastLeaseEnd - now) / 1000);
		}
		if (performance.now() - lastExtend > LOCK_LEASE_MS / 3) {
			await store.extendLock(row.id, holder, LOCK_LEASE_MS).catch(() => false);
			lastExtend = performance.now();
		}
		await sleep(delay);
		delay = Math.min(delay * 2, 250);
	}
}

/** Extends the lock (and the writer intent, if any) while the refresh runs. */
function keepAlive(
	services: Services,
	store: LeaseStore,
	credentialId: string,
	holder: string,
	intent: string | null,
) {
	let stopped = false;
	let timer: ReturnType<typeof setTimeout> | undefined;
	const tick = () => {
		timer = setTimeout(async () => {
			if (stopped) return;
			const [locked] = await Promise.all([
				store.extendLock(credentialId, holder, LOCK_LEASE_MS).catch(() => false),
				intent ? store.extendWrite(credentialId, intent, WRITER_SLACK_MS).catch(() => false) : true,
			]);
			if (!locked)
				services.logger.warn("refresh lock not extended", { credential_id: credentialId });
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
	obtainedAt: Date,
): Promise<void> {
	const ring = await getKeyRing(services.config);
	const answer: StashedAnswer = {
		...tokens,
		expiresAt: tokens.expiresAt?.toISOString() ?? null,
		obtainedAt: obtainedAt.toISOString(),
	};
	const sealed = await seal(ring, JSON.stringify(answer), stashAad(row.id, row.tokenVersion));
	await store.stash(
		row.id,
		row.tokenVersion,
		JSON.stringify(sealed),
		services.now().getTime(),
		STASH_TTL_MS,
	);
}

/**
 * Writes a stashed provider answer over the token version it was obtained from. Null when there
 * is none for this version (a stash of another version is stale and dropped).
 */
async function applyStash(
	services: Services,
	store: LeaseStore,
	row: OAuthRow,
): Promise<OAuthRow | null> {
	const stash = await store.readStash(row.id);
	if (!stash) return null;
	if (stash.tokenVersion !== row.tokenVersion) {
		// A newer token write landed after it (a reconnect, or the write the stash guarded).
		await store.dropStash(row.id, stash.tokenVersion);
		return null;
	}
	let answer: StashedAnswer;
	try {
		const ring = await getKeyRing(services.config);
		answer = JSON.parse(
			await open(
				ring,
				JSON.parse(stash.sealed),
				stashAad(row.id, row.tokenVersion),
				`refresh stash of ${row.id}`,
			),
		) as StashedAnswer;
	} catch (err) {
		services.logger.warn("refresh stash unreadable", {
			credential_id: row.id,
			error_name: err instanceof Error ? err.name : typeof err,
		});
		await store.dropStash(row.id, stash.tokenVersion);
		return null;
	}
	const tokens: OAuthTokenSet = {
		...answer,
		expiresAt: answer.expiresAt ? new Date(answer.expiresAt) : null,
	};
	const written = await writeTokens(services, row, tokens, new Date(answer.obtainedAt));
	if (!written) {
		const latest = await loadOAuth(services, row.id);
		await commit(services, store, latest);
		return latest;
	}
	services.logger.info("refresh recovered from stash", { credential_id: row.id });
	await commit(services, store, written);
	return written;
}

/**
 * The fenced write: only over the token version the refresh started from, so an edit of the
 * title or metadata meanwhile does not fence it, and any newer token write does. It also lands
 * over `reconnect_required` set from that same version (by someone who presented the
 * refresh token this answer rotated away). Null when fenced off.
 */
async function writeTokens(
	services: Services,
	row: OAuthRow,
	tokens: OAuthTokenSet,
	obtainedAt: Date,
): Promise<OAuthRow | null> {
	const current = await openSecret(services, row);
	const refresh = tokens.refreshToken ?? current.refresh_token;
	return fencedTokenWrite(
		services,
		row,
		{
			access_token: tokens.accessToken,
			token_type: tokens.tokenType || current.token_type || "Bearer",
			...(refresh ? { refresh_token: refresh } : {}),
		},
		{
			accessTokenExpiresAt: tokens.expiresAt,
			tokenIssuedAt: obtainedAt,
			// Providers that restate scopes on refresh say what the token now carries.
			...(tokens.scopes.length ? { scopes: tokens.scopes } : {}),
			status: "active",
			refreshFailures: 0,
			refreshRetryAt: null,
			refreshError: null,
		},
	);
}

/**
 * Seals `secret` over the row and writes it only if the token version is still the one read (and
 * the credential is not revoked): the one fenced token write that a refresh, a stash's write-back
 * and a carried-over refresh token all go through. Null when fenced off.
 */
async function fencedTokenWrite(
	services: Services,
	row: OAuthRow,
	secret: SecretOf["oauth2"],
	also: Partial<typeof credentials.$inferInsert> = {},
): Promise<OAuthRow | null> {
	const sealed = await sealSecret(services, row, secret);
	const [updated] = await services.db
		.update(credentials)
		.set({
			...sealed,
			...also,
			version: sql`${credentials.version} + 1`,
			tokenVersion: row.tokenVersion + 1,
			updatedAt: services.now(),
		})
		.where(
			and(
				eq(credentials.id, row.id),
				eq(credentials.tokenVersion, row.tokenVersion),
				ne(credentials.status, "revoked"),
			),
		)
		.returning();
	return (updated as OAuthRow | undefined) ?? null;
}

/**
 * A definitive refusal: the credential needs the user, and is never retried with this token.
 * The token version stays: a refresher that obtained the rotated tokens from this same version
 * can still write them (the refusal was of the token it rotated away).
 */
async function markReconnect(
	services: Services,
	row: OAuthRow,
	reason: string,
): Promise<LatchkeyError> {
	const marked = await services.db
		.update(credentials)
		.set({
			status: "reconnect_required",
			refreshError: reason,
			version: sql`${credentials.version} + 1`,
			updatedAt: services.now(),
		})
		// Only the change to reconnect_required is the event: a second marking (a lapsed lock, a
		// second refresher) matches no row, so the event and its webhook are recorded once.
		.where(
			and(
				eq(credentials.id, row.id),
				eq(credentials.tokenVersion, row.tokenVersion),
				ne(credentials.status, "reconnect_required"),
			),
		)
		.returning({ id: credentials.id });
	if (marked.length > 0) {
		// Recorded once, by whoever made the change; it also queues the webhook (docs/webhooks.md).
		// After the response, like every request's events, and never throws: a failed write waits
		// in Redis for the cron's write-back. Its own Timing keeps it out of Server-Timing.
		const record = systemRecord(services, {
			action: "credential.reconnect_required",
			outcome: "failure",
			target: { type: "credential", id: row.id },
			userId: row.userId,
			detail: { provider: row.provider, reason },
		});
		await writeAfterResponse(services, [record], null);
	}
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
		.where(and(eq(credentials.id, row.id), eq(credentials.tokenVersion, row.tokenVersion)))
		.returning();
	return (updated as OAuthRow | undefined) ?? row;
}
