import { Ratelimit } from "@upstash/ratelimit";
import type { Redis } from "@upstash/redis/cloudflare";

export const FAILURES_PER_MINUTE = 10;

/**
 * Counts failed authentication attempts per source. It is consulted only after a credential
 * has failed, so a valid credential never waits on it or is refused by it.
 */
export async function recordAuthFailure(
	redis: Redis,
	source: string,
): Promise<{ limited: false } | { limited: true; retryAfter: number }> {
	const limiter = new Ratelimit({
		redis,
		limiter: Ratelimit.fixedWindow(FAILURES_PER_MINUTE, "60 s"),
		prefix: "lk:authfail",
		// Without the isolate cache every check reaches Redis, so all isolates agree on the count.
		ephemeralCache: false,
		analytics: false,
	});
	const { success, reset } = await limiter.limit(source);
	if (success) return { limited: false };
	return { limited: true, retryAfter: Math.max(1, Math.ceil((reset - Date.now()) / 1000)) };
}

/** `CF-Connecting-IP` is set by Cloudflare's edge; requests without it share one bucket. */
export function failureSource(header: string | undefined): string {
	return header && header.length <= 64 ? header : "unknown";
}
