import { and, eq, isNull, lt, or } from "drizzle-orm";
import type { SecretOf } from "../credentials/secrets.ts";
import { findVisible, openSecret, visibleTo } from "../credentials/service.ts";
import { randomBase62 } from "../crypto/encoding.ts";
import { readBeside } from "../db/beside.ts";
import type { BatchedCheck } from "../db/client.ts";
import {
	type ApiKeyPlacement,
	type CredentialRow,
	credentials,
	oauthProviders,
} from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import { builtinProvider } from "../oauth/providers.ts";
import type { Services } from "../services.ts";
import { DEFAULT_LEASE_TTL_S, leaseEnd, needsRefresh, tokenLimit, tokenTimesOf } from "./policy.ts";
import {
	ensureFresh,
	type OAuthRow,
	type RefreshHooks,
	refreshPending,
	waitForRefresh,
} from "./refresh.ts";
import { type GrantResult, type LeaseStore, leaseStoreOf } from "./store.ts";

/**
 * Leases: the only way a secret leaves Latchkey. A lease names the credential, ends at a fixed
 * time, and is recorded in Redis so that a refresh can see who holds the current token. See
 * docs/leases.md.
 */

/** How long a lease request may wait for another request's refresh before a 503. */
export const LEASE_WAIT_MS = 25_000;
/** A request that keeps finding its row out of date gives up instead of looping. */
const MAX_ROUNDS = 8;
/** last_used_at is touched at most this often per credential and isolate. */
const TOUCH_INTERVAL_MS = 60_000;

export type LeaseSecret =
	| { type: "oauth2"; access_token: string; token_type: string }
	| { type: "api_key"; api_key: string }
	| { type: "user_password"; username: string | null; password: string }
	| { type: "host_scoped"; host: string | null; headers: Record<string, string> };

export interface Lease {
	lease_id: string;
	credential_id: string;
	expires_at: string;
	token_expires_at: string | null;
	secret: LeaseSecret;
}

export interface LeaseRequest {
	userId: string;
	/** Whom the lease rate limit counts: `key:<id>` (a key and its sessions); default the user. */
	principal?: string;
	credentialId: string;
	ttlSeconds: number;
	/** The caller's fresh credential check, run in the same batch as the credential read. */
	liveCheck?: BatchedCheck | null;
	/** Keeps work alive past the response (the Workers `waitUntil`); without it the work is not awaited. */
	defer?: (work: Promise<unknown>) => void;
	/**
	 * Told what the lease's own read found of the credential's provider, so a caller that needs
	 * it (the proxy's target) makes no read of its own. Never told anything for a refused caller.
	 */
	onRead?: (facts: ProviderFacts) => void;
	hooks?: LeaseHooks;
}

/** The credential's provider as its row and the provider's admin row (if any) say; no secret. */
export interface ProviderFacts {
	type: CredentialRow["type"];
	provider: string;
	/** The admin row's values; null where there is none (the built-in values apply). */
	apiBaseUrl: string | null;
	apiKeyPlacement: ApiKeyPlacement | null;
}

/** Test seams: barriers inside the fast path, besides the refresh's own. */
export interface LeaseHooks extends RefreshHooks {
	/** The fast path's row read (with the fresh check) has answered; its grant may not have. */
	afterFastRead?(): void | Promise<void>;
	/** The fast path is about to send its provisional grant. */
	beforeFastGrant?(): void | Promise<void>;
	/** The fast path's provisional grant has answered (whatever its outcome). */
	afterFastGrant?(): void | Promise<void>;
}

// `lease_<credential id without its prefix>_<random>`: renew and release find the credential's
// keys from the lease id alone, with no lookup.
const LEASE_ID = /^lease_([A-Za-z0-9]{20})_([A-Za-z0-9]{24})$/;
const CREDENTIAL_ID = /^cred_([A-Za-z0-9]{20})$/;

function newLeaseId(credentialId: string): string {
	const m = CREDENTIAL_ID.exec(credentialId);
	if (!m) throw new Error(`unexpected credential id format: ${credentialId}`);
	return `lease_${m[1]}_${randomBase62(24)}`;
}

export function credentialOfLease(leaseId: string): string | null {
	const m = LEASE_ID.exec(leaseId);
	return m ? `cred_${m[1]}` : null;
}

const notFound = () => new LatchkeyError("not_found", "No such credential.");
const leaseNotFound = () => new LatchkeyError("not_found", "No such lease.");
const leaseGone = () =>
	new LatchkeyError(
		"lease_gone",
		"The lease has ended (expired, released, or its credential was deleted).",
	);

const providerUnavailable = (row: CredentialRow) =>
	new LatchkeyError(
		"provider_unavailable",
		`The token of credential ${row.id} has expired and the provider '${row.provider}' could not refresh it.`,
		{ hint: "Retry later; the refresh is retried with backoff." },
	);

interface LeaseRead {
	row: CredentialRow;
	/** Whether the provider's refresh kills the previous access token (writer priority). */
	invalidates: boolean;
}

type ReadRow = {
	row: CredentialRow;
	invalidates: boolean | null;
	apiBaseUrl: string | null;
	apiKeyPlacement: ApiKeyPlacement | null;
};

/**
 * The credential with its provider's refresh behaviour, and the caller's fresh credential check,
 * in one round trip.
 */
async function readForLease(
	services: Services,
	userId: string,
	credentialId: string,
	liveCheck: BatchedCheck | null | undefined,
	onRead?: (facts: ProviderFacts) => void,
): Promise<LeaseRead> {
	const { db } = services;
	const read = db
		.select({
			row: credentials,
			invalidates: oauthProviders.refreshInvalidatesAccessToken,
			apiBaseUrl: oauthProviders.apiBaseUrl,
			apiKeyPlacement: oauthProviders.apiKeyPlacement,
		})
		.from(credentials)
		.leftJoin(oauthProviders, eq(oauthProviders.id, credentials.provider))
		.where(and(eq(credentials.id, credentialId), visibleTo(userId)))
		.limit(1);
	let rows: ReadRow[];
	if (liveCheck) {
		// One statement rather than a batch: a batch is a transaction, four exchanges with
		// Postgres where this is one (src/db/beside.ts).
		const [checked, found] = (await readBeside(db, liveCheck.query, read)) as [unknown, ReadRow[]];
		// Refused callers learn nothing about the credential, not even whether it exists.
		liveCheck.assert(checked);
		rows = found;
	} else {
		rows = await read;
	}
	const found = rows[0];
	if (!found) throw notFound();
	const { row } = found;
	onRead?.({
		type: row.type,
		provider: row.provider,
		apiBaseUrl: found.apiBaseUrl,
		apiKeyPlacement: found.apiKeyPlacement,
	});
	// A built-in provider without an admin row keeps the behaviour it ships with.
	const invalidates =
		row.type === "oauth2" &&
		(found.invalidates ?? builtinProvider(row.provider)?.refreshInvalidatesAccessToken ?? false);
	return { row, invalidates };
}

/** A grant refused by a limit: 429 with when to come back, naming the limit that refused it. */
function limitError(services: Services, grant: GrantResult & { retryInMs: number }, id: string) {
	const retryAfter = Math.max(1, Math.ceil(grant.retryInMs / 1000));
	if (grant.outcome === "full") {
		const max = services.config.LATCHKEY_MAX_LEASES_PER_CREDENTIAL;
		return new LatchkeyError(
			"rate_limited",
			`Credential ${id} already has ${max} live leases, the most it may have at once.`,
			{
				retryAfter,
				hint: `Release leases you no longer use (DELETE /v1/leases/{lease_id}); the limit is LATCHKEY_MAX_LEASES_PER_CREDENTIAL (${max}).`,
			},
		);
	}
	const { LATCHKEY_LEASE_BURST: burst, LATCHKEY_LEASE_RATE_PER_SECOND: rate } = services.config;
	return new LatchkeyError("rate_limited", "Too many lease requests from this principal.", {
		retryAfter,
		hint: `Wait for the seconds in Retry-After; one key may take ${burst} leases at once and ${rate} a second after that (LATCHKEY_LEASE_BURST, LATCHKEY_LEASE_RATE_PER_SECOND).`,
	});
}

function secretView(row: CredentialRow, secret: SecretOf[keyof SecretOf]): LeaseSecret {
	switch (row.type) {
		case "oauth2": {
			const s = secret as SecretOf["oauth2"];
			return { type: "oauth2", access_token: s.access_token, token_type: s.token_type || "Bearer" };
		}
		case "api_key":
			return { type: "api_key", api_key: (secret as SecretOf["api_key"]).api_key };
		case "user_password":
			return {
				type: "user_password",
				username: row.username,
				password: (secret as SecretOf["user_password"]).password,
			};
		case "host_scoped":
			return {
				type: "host_scoped",
				host: row.host,
				headers: (secret as SecretOf["host_scoped"]).headers,
			};
	}
}

function assertLeasable(row: CredentialRow, now: Date): void {
	if (row.status === "reconnect_required") {
		throw new LatchkeyError(
			"reconnect_required",
			`Credential ${row.id} must be reconnected: the provider rejected its refresh token.`,
			{
				hint: `Reconnect with POST /v1/oauth/${row.provider}/authorize and credential_id ${row.id}.`,
			},
		);
	}
	if (row.status === "revoked") {
		throw new LatchkeyError("conflict", `Credential ${row.id} has been revoked.`, {
			hint: "Connect or store the credential again.",
		});
	}
	if (row.type !== "oauth2" && row.accessTokenExpiresAt && row.accessTokenExpiresAt <= now) {
		throw new LatchkeyError(
			"conflict",
			`The secret of credential ${row.id} expired at ${row.accessTokenExpiresAt.toISOString()}.`,
			{ hint: "Store the new secret with PATCH /v1/credentials/{id}." },
		);
	}
}

const lastTouched = new Map<string, number>();

/** Coarse last_used_at: at most once a minute per credential and isolate, off the response path. */
function touch(services: Services, row: CredentialRow, defer?: (work: Promise<unknown>) => void) {
	const now = services.now();
	const last = lastTouched.get(row.id) ?? row.lastUsedAt?.getTime() ?? 0;
	if (now.getTime() - last < TOUCH_INTERVAL_MS) return;
	if (lastTouched.size > 10_000) lastTouched.clear();
	lastTouched.set(row.id, now.getTime());
	const stale = new Date(now.getTime() - TOUCH_INTERVAL_MS);
	const work = services.db
		.update(credentials)
		.set({ lastUsedAt: now })
		.where(
			and(
				eq(credentials.id, row.id),
				or(isNull(credentials.lastUsedAt), lt(credentials.lastUsedAt, stale)),
			),
		)
		.then(
			() => {},
			(err: unknown) =>
				services.logger.warn("last_used_at not updated", {
					credential_id: row.id,
					error_name: err instanceof Error ? err.name : typeof err,
				}),
		);
	if (defer) defer(work);
}

/**
 * What an isolate last leased of a credential to a user: the token facts a grant is planned from
 * (never a secret). With it, the grant is sent beside the row read instead of after it; the read
 * then confirms the plan or the grant is retracted (docs/leases.md, "The fast path").
 */
type PlanFields = Pick<
	CredentialRow,
	"type" | "status" | "tokenVersion" | "accessTokenExpiresAt" | "tokenIssuedAt" | "updatedAt"
>;
interface LeaseHint extends PlanFields {
	invalidates: boolean;
	at: number;
}

/** A hint is a guess, checked by every read; these bound only the isolate's memory and staleness. */
export const LEASE_HINTS = { maxEntries: 10_000, maxAgeMs: 5 * 60_000 } as const;
const hints = new Map<string, LeaseHint>();
const hintKey = (userId: string, credentialId: string) => `${userId}\n${credentialId}`;

function rememberHint(userId: string, row: CredentialRow, invalidates: boolean, now: Date) {
	const key = hintKey(userId, row.id);
	hints.delete(key);
	if (hints.size >= LEASE_HINTS.maxEntries) {
		const oldest = hints.keys().next().value;
		if (oldest !== undefined) hints.delete(oldest);
	}
	hints.set(key, {
		type: row.type,
		status: row.status,
		tokenVersion: row.tokenVersion,
		accessTokenExpiresAt: row.accessTokenExpiresAt,
		tokenIssuedAt: row.tokenIssuedAt,
		updatedAt: row.updatedAt,
		invalidates,
		at: now.getTime(),
	});
}

/** Forgets every hint of this isolate (tests). */
export function forgetLeaseHints(): void {
	hints.clear();
}

interface GrantPlan {
	tokenVersion: number;
	end: number;
	limit: number | null;
}

/**
 * The grant a lease of these token facts gets at `now`, or null when the serial path must
 * decide: the credential is not leasable as it stands, or its token needs a refresh first.
 */
function planOf(
	fields: PlanFields,
	invalidates: boolean,
	now: Date,
	ttlMs: number,
): GrantPlan | null {
	if (fields.status !== "active") return null;
	const times = tokenTimesOf(fields);
	if (times.expiresAt && times.expiresAt <= now) return null;
	if (fields.type === "oauth2" && needsRefresh(times, fields.updatedAt, now, ttlMs, invalidates)) {
		return null;
	}
	const limit = tokenLimit(times, fields.updatedAt, now, invalidates);
	return {
		tokenVersion: fields.tokenVersion,
		end: leaseEnd(now, ttlMs, limit).getTime(),
		limit: limit?.getTime() ?? null,
	};
}

const samePlan = (a: GrantPlan, b: GrantPlan) =>
	a.tokenVersion === b.tokenVersion && a.end === b.end && a.limit === b.limit;

function leaseOf(
	row: CredentialRow,
	leaseId: string,
	end: Date,
	secret: SecretOf[keyof SecretOf],
): Lease {
	return {
		lease_id: leaseId,
		credential_id: row.id,
		expires_at: end.toISOString(),
		token_expires_at: row.accessTokenExpiresAt?.toISOString() ?? null,
		secret: secretView(row, secret),
	};
}

const rateOf = (services: Services) => ({
	burst: services.config.LATCHKEY_LEASE_BURST,
	perSecond: services.config.LATCHKEY_LEASE_RATE_PER_SECOND,
});

/** Whom the lease rate counts: the key (shared by its sessions), else the user. */
const principalOf = (request: LeaseRequest) => request.principal ?? `user:${request.userId}`;

/** The one grant script call, fast or serial: the lease recorded as `plan` says. */
function grantPlanned(
	services: Services,
	store: LeaseStore,
	request: LeaseRequest,
	leaseId: string,
	now: Date,
	plan: GrantPlan,
): Promise<GrantResult> {
	return store.grant({
		credentialId: request.credentialId,
		leaseId,
		userId: request.userId,
		principal: principalOf(request),
		now: now.getTime(),
		leaseEnd: plan.end,
		tokenLimit: plan.limit,
		tokenVersion: plan.tokenVersion,
		rate: rateOf(services),
		maxLeases: services.config.LATCHKEY_MAX_LEASES_PER_CREDENTIAL,
	});
}

/** Where the serial path resumes after a fast path that did not lease. */
type FastOutcome =
	| { lease: Lease }
	| { read: LeaseRead; resume: "plan" | "wait_for_refresh" | "read_again" };

/**
 * The common path at one round trip of latency: with a hint, the provisional grant goes to
 * Redis while Postgres runs the caller's fresh check and reads the row. Nothing leaves before
 * both have answered: a refused caller, a missing credential or a failed read retracts the grant
 * and answers as the serial path would; a row that disagrees with the plan (newer token, a
 * refresh due, another status) retracts it and hands the row to the serial path.
 */
async function fastLease(
	services: Services,
	store: LeaseStore,
	request: LeaseRequest,
	ttlMs: number,
): Promise<FastOutcome | null> {
	if (!services.config.LATCHKEY_LEASE_FAST_PATH) return null;
	const key = hintKey(request.userId, request.credentialId);
	const hint = hints.get(key);
	if (!hint) return null;
	const now = services.now();
	if (now.getTime() - hint.at > LEASE_HINTS.maxAgeMs) {
		hints.delete(key);
		return null;
	}
	const plan = planOf(hint, hint.invalidates, now, ttlMs);
	if (!plan) return null;
	const leaseId = newLeaseId(request.credentialId);
	const hooks = request.hooks;
	const [read, grant] = await Promise.allSettled([
		readForLease(
			services,
			request.userId,
			request.credentialId,
			request.liveCheck,
			request.onRead,
		).then(async (r) => {
			await hooks?.afterFastRead?.();
			return r;
		}),
		(async () => {
			await hooks?.beforeFastGrant?.();
			const result = await grantPlanned(services, store, request, leaseId, now, plan);
			await hooks?.afterFastGrant?.();
			return result;
		})(),
	]);
	const granted = grant.status === "fulfilled" && grant.value.outcome === "ok";
	const retract = () =>
		store.retract({
			credentialId: request.credentialId,
			leaseId,
			userId: request.userId,
			principal: principalOf(request),
			rate: rateOf(services),
		});
	if (read.status === "rejected") {
		// Refused, not found, or Postgres failed: the request leaves nothing recorded. The
		// refusal is the answer even if Redis also failed.
		hints.delete(key);
		if (granted) await retract().catch(() => {});
		throw read.reason;
	}
	if (grant.status === "rejected") throw grant.reason;
	const { row, invalidates } = read.value;
	const confirmed = planOf(row, invalidates, now, ttlMs);
	if (!confirmed || !samePlan(confirmed, plan)) {
		hints.delete(key);
		// Awaited: a refresh the serial path starts waits for the holders of the token, and
		// this request's own provisional lease must not be one of them.
		if (granted) await retract();
		return { read: read.value, resume: "plan" };
	}
	switch (grant.value.outcome) {
		case "ok": {
			let secret: SecretOf[keyof SecretOf];
			try {
				secret = await openSecret(services, row);
			} catch (err) {
				await store
					.release({ credentialId: row.id, leaseId, userId: request.userId, now: now.getTime() })
					.catch(() => {});
				throw err;
			}
			rememberHint(request.userId, row, invalidates, now);
			touch(services, row, request.defer);
			return { lease: leaseOf(row, leaseId, new Date(plan.end), secret) };
		}
		case "full":
		case "limited":
			throw limitError(services, grant.value, row.id);
		case "queued":
			return { read: read.value, resume: "wait_for_refresh" };
		case "stale":
			// Redis has seen a newer token than the row read: the read came before that write.
			hints.delete(key);
			return { read: read.value, resume: "read_again" };
	}
}

/**
 * POST /v1/credentials/{id}/leases. Reads the row (with the caller's fresh check), refreshes an
 * OAuth token first when it would not outlast the lease plus the margin, and records the lease
 * in one Redis script. While a refresh of a provider that invalidates old tokens waits for held
 * leases, new leases queue behind it (writer priority).
 */
export async function createLease(services: Services, request: LeaseRequest): Promise<Lease> {
	const store = leaseStoreOf(services);
	const ttlMs = request.ttlSeconds * 1000;
	const deadline = performance.now() + LEASE_WAIT_MS;
	const fast = await fastLease(services, store, request, ttlMs);
	if (fast && "lease" in fast) return fast.lease;
	const read =
		fast?.read ??
		(await readForLease(
			services,
			request.userId,
			request.credentialId,
			request.liveCheck,
			request.onRead,
		));
	const { invalidates } = read;
	let { row } = read;
	if (fast?.resume === "wait_for_refresh") {
		request.hooks?.waitingForRefresh?.("writer");
		await waitForRefresh(store, row.id, deadline);
	}
	if (fast && fast.resume !== "plan") row = await findVisible(services, request.userId, row.id);
	let triedRefresh = false;
	for (let round = 0; round < MAX_ROUNDS; round++) {
		let now = services.now();
		assertLeasable(row, now);
		if (row.type === "oauth2") {
			const times = tokenTimesOf(row);
			if (!triedRefresh && needsRefresh(times, row.updatedAt, now, ttlMs, invalidates)) {
				triedRefresh = true;
				const outcome = await ensureFresh(services, row as OAuthRow, {
					ttlMs,
					invalidates,
					deadline,
					waitForHolders: true,
					hooks: request.hooks,
				});
				row = outcome.row;
				now = services.now();
				assertLeasable(row, now);
			}
			// Refreshing failed or backs off: a token that still works is leased until it ends.
			if (row.accessTokenExpiresAt && row.accessTokenExpiresAt <= now) {
				throw providerUnavailable(row);
			}
		}
		const limit = tokenLimit(tokenTimesOf(row), row.updatedAt, now, invalidates);
		const end = leaseEnd(now, ttlMs, limit);
		const leaseId = newLeaseId(row.id);
		// Decryption overlaps the Redis round trip; a grant refused below wastes only CPU.
		const [opened, grant] = await Promise.all([
			openSecret(services, row).then(
				(secret) => ({ ok: true as const, secret }),
				(error: unknown) => ({ ok: false as const, error }),
			),
			grantPlanned(services, store, request, leaseId, now, {
				tokenVersion: row.tokenVersion,
				end: end.getTime(),
				limit: limit?.getTime() ?? null,
			}),
		]);
		if (!opened.ok) {
			// No secret to hand out: the lease just recorded must not hold anything up.
			if (grant.outcome === "ok") {
				await store
					.release({ credentialId: row.id, leaseId, userId: request.userId, now: now.getTime() })
					.catch(() => {});
			}
			throw opened.error;
		}
		const { secret } = opened;
		if (grant.outcome === "ok") {
			rememberHint(request.userId, row, invalidates, now);
			touch(services, row, request.defer);
			return leaseOf(row, leaseId, end, secret);
		}
		if (grant.outcome === "full" || grant.outcome === "limited") {
			throw limitError(services, grant, row.id);
		}
		if (grant.outcome === "queued") {
			// A refresh waits for the holders of this token; new leases wait for its result.
			request.hooks?.waitingForRefresh?.("writer");
			await waitForRefresh(store, row.id, deadline);
			triedRefresh = false;
		}
		// Queued or stale: whatever was read is older than the tokens now stored.
		row = await findVisible(services, request.userId, row.id);
	}
	throw refreshPending(1);
}

/**
 * Extends a lease to now + `ttlSeconds`. Without an explicit TTL (the default, 60 s) a renewal
 * never ends the lease sooner than it already ends.
 */
export async function renewLease(
	services: Services,
	input: { userId: string; leaseId: string; ttlSeconds?: number },
): Promise<{ expires_at: string }> {
	const credentialId = credentialOfLease(input.leaseId);
	if (!credentialId) throw leaseNotFound();
	const now = services.now().getTime();
	const end = now + (input.ttlSeconds ?? DEFAULT_LEASE_TTL_S) * 1000;
	const result = await leaseStoreOf(services).renew({
		credentialId,
		leaseId: input.leaseId,
		userId: input.userId,
		now,
		leaseEnd: end,
		explicit: input.ttlSeconds !== undefined,
	});
	switch (result.outcome) {
		case "ok":
			return { expires_at: new Date(result.leaseEnd).toISOString() };
		case "unknown":
			throw leaseNotFound();
		case "gone":
			throw leaseGone();
		case "expiring":
			throw new LatchkeyError(
				"token_expiring",
				result.tokenLimit !== null && result.tokenLimit < end
					? `The leased token can be leased until ${new Date(result.tokenLimit).toISOString()}, before the renewal would end.`
					: "The leased token is about to be refreshed; the lease cannot be extended.",
			);
	}
}

export async function releaseLease(
	services: Services,
	input: { userId: string; leaseId: string },
): Promise<void> {
	const credentialId = credentialOfLease(input.leaseId);
	if (!credentialId) throw leaseNotFound();
	const outcome = await leaseStoreOf(services).release({
		credentialId,
		leaseId: input.leaseId,
		userId: input.userId,
		now: services.now().getTime(),
	});
	if (outcome === "unknown") throw leaseNotFound();
	if (outcome === "gone") throw leaseGone();
}

/** A deleted credential's leases end at once (renew and release then answer 410). */
export async function endCredentialLeases(services: Services, credentialId: string): Promise<void> {
	await leaseStoreOf(services).endAll(credentialId);
}
