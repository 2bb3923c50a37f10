/**
 * Time, waiting and retry arithmetic of the client. Everything that waits goes through
 * `Timers`, so tests (and callers with a clock of their own) can drive it.
 */

/** The clock and timers the client uses; the default is the platform's. */
export interface Timers {
	/** Milliseconds since the epoch. */
	now(): number;
	setTimeout(callback: () => void, ms: number): unknown;
	clearTimeout(handle: unknown): void;
}

export const platformTimers: Timers = {
	now: () => Date.now(),
	setTimeout: (callback, ms) => setTimeout(callback, ms),
	clearTimeout: (handle) => clearTimeout(handle as Parameters<typeof clearTimeout>[0]),
};

/** How the client retries 503 and 429 answers (and lost requests where that is safe). */
export interface RetryPolicy {
	/** Tries in all, the first included; 1 turns retries off. Default 4. */
	maxAttempts: number;
	/** Backoff before the second try; it doubles for each further one. Default 200 ms. */
	baseDelayMs: number;
	/** The backoff's ceiling. Default 5 s. */
	maxDelayMs: number;
	/**
	 * A `Retry-After` longer than this is not waited for: the error is thrown at once, with its
	 * `retryAfterSeconds`, for the caller to decide. Default 30 s.
	 */
	maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
	maxAttempts: 4,
	baseDelayMs: 200,
	maxDelayMs: 5_000,
	maxRetryAfterMs: 30_000,
};

/**
 * The wait before try `attempt + 1` (attempt 0 is the first try): exponential backoff with
 * "equal jitter" (half fixed, half random, so retries of many clients spread out), never shorter
 * than the server's `Retry-After`, which gets up to 20 % jitter on top.
 */
export function retryDelay(
	attempt: number,
	retryAfterMs: number | null,
	policy: RetryPolicy,
	random: () => number,
): number {
	const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
	const backoff = ceiling / 2 + (random() * ceiling) / 2;
	if (retryAfterMs === null) return Math.round(backoff);
	return Math.round(Math.max(backoff, retryAfterMs * (1 + 0.2 * random())));
}

/** `Retry-After` as milliseconds from `now`: delta-seconds or an HTTP-date; null if absent or bad. */
export function parseRetryAfter(value: string | null, now: number): number | null {
	if (value === null) return null;
	const trimmed = value.trim();
	if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
	const at = Date.parse(trimmed);
	if (Number.isNaN(at)) return null;
	return Math.max(0, at - now);
}

/** The reason an aborted signal carries, as an Error (AbortError when it gave none). */
export function abortReason(signal: AbortSignal): unknown {
	return signal.reason ?? new DOMException("The operation was aborted.", "AbortError");
}

/** Resolves after `ms` on `timers`; rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, timers: Timers, signal?: AbortSignal): Promise<void> {
	return new Promise((resolve, reject) => {
		if (signal?.aborted) {
			reject(abortReason(signal));
			return;
		}
		const onAbort = () => {
			timers.clearTimeout(handle);
			reject(abortReason(signal as AbortSignal));
		};
		const handle = timers.setTimeout(() => {
			signal?.removeEventListener("abort", onAbort);
			resolve();
		}, ms);
		signal?.addEventListener("abort", onAbort, { once: true });
	});
}

/**
 * `promise`, or the signal's reason as soon as it aborts. The promise itself goes on (a shared
 * token refresh serves other callers); its rejection is then not reported as unhandled.
 */
export function raceAbort<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
	if (!signal) return promise;
	if (signal.aborted) {
		promise.catch(() => {});
		return Promise.reject(abortReason(signal));
	}
	return new Promise<T>((resolve, reject) => {
		const onAbort = () => {
			promise.catch(() => {});
			reject(abortReason(signal));
		};
		signal.addEventListener("abort", onAbort, { once: true });
		promise.then(
			(value) => {
				signal.removeEventListener("abort", onAbort);
				resolve(value);
			},
			(err: unknown) => {
				signal.removeEventListener("abort", onAbort);
				reject(err);
			},
		);
	});
}

/**
 * A controller that aborts when `parent` does or after `timeoutMs` (with a TimeoutError), on
 * `timers`; `dispose` detaches it from both.
 */
export function linkedController(
	parent: AbortSignal | undefined,
	timeoutMs: number,
	timers: Timers,
): { signal: AbortSignal; timedOut: () => boolean; dispose: () => void } {
	const controller = new AbortController();
	let timedOut = false;
	const onAbort = () => controller.abort(parent ? abortReason(parent) : undefined);
	if (parent?.aborted) onAbort();
	else parent?.addEventListener("abort", onAbort, { once: true });
	const handle =
		timeoutMs > 0 && Number.isFinite(timeoutMs)
			? timers.setTimeout(() => {
					timedOut = true;
					controller.abort(new DOMException("The request timed out.", "TimeoutError"));
				}, timeoutMs)
			: undefined;
	return {
		signal: controller.signal,
		timedOut: () => timedOut,
		dispose: () => {
			parent?.removeEventListener("abort", onAbort);
			if (handle !== undefined) timers.clearTimeout(handle);
		},
	};
}
