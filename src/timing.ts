import { AsyncLocalStorage } from "node:async_hooks";

/**
 * Accumulates time spent waiting on each dependency during one request, reported in the
 * `Server-Timing` header so a slow response can be attributed without tracing.
 */
export class Timing {
	private readonly totals = new Map<string, { ms: number; count: number }>();

	async measure<T>(name: string, work: () => Promise<T>): Promise<T> {
		const start = performance.now();
		try {
			return await work();
		} finally {
			const entry = this.totals.get(name) ?? { ms: 0, count: 0 };
			entry.ms += performance.now() - start;
			entry.count += 1;
			this.totals.set(name, entry);
		}
	}

	header(totalMs?: number): string {
		const parts = [...this.totals].map(
			([name, { ms, count }]) =>
				`${name};dur=${ms.toFixed(1)};desc="${count} call${count === 1 ? "" : "s"}"`,
		);
		if (totalMs !== undefined) parts.push(`total;dur=${totalMs.toFixed(1)}`);
		return parts.join(", ");
	}
}

/**
 * The running request's Timing. Clients that are built once per isolate (the Redis and
 * Postgres HTTP clients, whose construction costs more CPU than a lease's own logic) cannot
 * hold a request's Timing, so they find it here.
 */
export const requestTiming = new AsyncLocalStorage<Timing>();

/** `work`, timed under `name` in the running request's Timing when there is one. */
export function measureInRequest<T>(name: string, work: () => Promise<T>): Promise<T> {
	const timing = requestTiming.getStore();
	return timing ? timing.measure(name, work) : work();
}
