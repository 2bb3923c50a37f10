/**
 * When a lease needs a refresh first, and how long it may run: pure functions of the token's
 * times and the clock, so the rules are tested without a provider.
 */

export const DEFAULT_LEASE_TTL_S = 60;
export const MAX_LEASE_TTL_S = 900;
const MAX_MARGIN_MS = 5 * 60 * 1000;

export interface TokenTimes {
	/** When the access token stops working; null when the provider said nothing. */
	expiresAt: Date | null;
	/** When it was obtained; null for imported tokens (then their row's last update). */
	issuedAt: Date | null;
}

/** A credential row's token times. */
export const tokenTimesOf = (row: {
	accessTokenExpiresAt: Date | null;
	tokenIssuedAt: Date | null;
}): TokenTimes => ({ expiresAt: row.accessTokenExpiresAt, issuedAt: row.tokenIssuedAt });

/** The lifetime a fresh token of this credential has, as far as can be told. */
export function tokenLifetimeMs(times: TokenTimes, fallbackIssuedAt: Date): number | null {
	if (!times.expiresAt) return null;
	const issued = times.issuedAt ?? fallbackIssuedAt;
	return Math.max(times.expiresAt.getTime() - issued.getTime(), 0);
}

/** API.md: min(5 minutes, a quarter of the token's lifetime). */
export function refreshMarginMs(lifetimeMs: number): number {
	return Math.min(MAX_MARGIN_MS, Math.floor(lifetimeMs / 4));
}

/**
 * How much validity a token must have left to be leased for `ttlMs` without a refresh: the
 * lease's length plus the margin, except that a token whose whole lifetime is shorter than that
 * is never asked for more than a fresh one has (its lifetime less the margin); such a token is
 * leased with `expires_at` cut to its expiry rather than refreshed on every lease.
 */
export function requiredValidityMs(ttlMs: number, lifetimeMs: number): number {
	const margin = refreshMarginMs(lifetimeMs);
	return Math.min(ttlMs + margin, lifetimeMs - margin);
}

/**
 * Whether a lease of `ttlMs` must refresh the token first. For a provider whose refresh kills
 * the previous access token (`invalidates`), only the token's own margin counts: such a refresh
 * makes every new lease wait, and a TTL one caller chose must never make another caller wait.
 * Its leases end where the margin begins instead (tokenLimit).
 */
export function needsRefresh(
	times: TokenTimes,
	fallbackIssuedAt: Date,
	now: Date,
	ttlMs: number,
	invalidates = false,
): boolean {
	const lifetime = tokenLifetimeMs(times, fallbackIssuedAt);
	if (lifetime === null || !times.expiresAt) return false;
	const left = times.expiresAt.getTime() - now.getTime();
	if (invalidates) return left < refreshMarginMs(lifetime);
	return left < requiredValidityMs(ttlMs, lifetime);
}

/**
 * The latest end a lease (or renewal) of this token may have: the token's expiry; for a provider
 * whose refresh invalidates the token, the start of its refresh margin, so that when the margin
 * comes no lease holds it and the refresh waits for nobody. Once inside the margin (a refresh
 * failed or backs off and the old token is leased anyway) it is the expiry again.
 */
export function tokenLimit(
	times: TokenTimes,
	fallbackIssuedAt: Date,
	now: Date,
	invalidates: boolean,
): Date | null {
	if (!times.expiresAt) return null;
	const lifetime = tokenLifetimeMs(times, fallbackIssuedAt);
	if (!invalidates || lifetime === null) return times.expiresAt;
	const marginStart = times.expiresAt.getTime() - refreshMarginMs(lifetime);
	return marginStart > now.getTime() ? new Date(marginStart) : times.expiresAt;
}

/** The lease's end: its TTL, cut to the token's limit when that comes first. */
export function leaseEnd(now: Date, ttlMs: number, limit: Date | null): Date {
	const end = now.getTime() + ttlMs;
	if (limit && limit.getTime() < end) return limit;
	return new Date(end);
}

/** Backoff after the n-th transient refresh failure in a row: 5 s doubling, capped, jittered. */
export function refreshBackoffMs(failures: number, random: () => number = Math.random): number {
	const base = Math.min(5_000 * 2 ** Math.max(failures - 1, 0), 10 * 60 * 1000);
	// ±20 %: many credentials failing together (a provider outage) must not retry in step.
	return Math.round(base * (0.8 + 0.4 * random()));
}
