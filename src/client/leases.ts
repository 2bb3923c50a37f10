import type { LatchkeyClient } from "./client.ts";
import { LatchkeyError } from "./errors.ts";
import { abortReason, raceAbort } from "./timing.ts";
import type { Lease, LeaseSecret } from "./types.ts";

export interface WithCredentialOptions {
	/** The lease's TTL, 1–900 s (default 60); each renewal asks for it again. */
	ttlSeconds?: number;
	/**
	 * Aborting it ends the run: the lease is released, `lease.signal` aborts, and
	 * `withCredential` rejects with the signal's reason without waiting for `fn`.
	 */
	signal?: AbortSignal;
	/** What happens to the lease, for logs and metrics; events carry ids and times, never a secret. */
	onEvent?: (event: LeaseEvent) => void;
}

export type LeaseEvent =
	| { type: "leased"; leaseId: string; expiresAt: string }
	| { type: "renewed"; leaseId: string; expiresAt: string }
	/** A renewal was refused (`reason`: 409 `token_expiring`, 410 `lease_gone`…); a fresh lease replaced it. */
	| {
			type: "replaced";
			leaseId: string;
			previousLeaseId: string;
			expiresAt: string;
			reason: string;
	  }
	/** Renewing or replacing failed; `willRetry` false means `fn` keeps the secret it has until the end. */
	| { type: "renewal_failed"; leaseId: string; error: unknown; willRetry: boolean }
	| { type: "released"; leaseId: string }
	/** The release did not get through: the lease runs out at its end. */
	| { type: "release_failed"; leaseId: string; error: unknown };

/**
 * The lease `fn` holds. `secret` is the current lease's secret: after a renewal was refused and a
 * fresh lease taken, it is the fresh one's. Printing or serialising the handle shows its id and
 * end, never the secret.
 */
export class LeaseHandle {
	readonly #state: { lease: Lease };
	/** Aborts when the lease ends for `fn`: the caller aborted, or `withCredential` has finished. */
	readonly signal: AbortSignal;

	constructor(state: { lease: Lease }, signal: AbortSignal) {
		this.#state = state;
		this.signal = signal;
	}

	get id(): string {
		return this.#state.lease.lease_id;
	}
	get credentialId(): string {
		return this.#state.lease.credential_id;
	}
	get expiresAt(): Date {
		return new Date(this.#state.lease.expires_at);
	}
	get tokenExpiresAt(): Date | null {
		const at = this.#state.lease.token_expires_at;
		return at === null ? null : new Date(at);
	}
	get secret(): LeaseSecret {
		return this.#state.lease.secret;
	}

	toJSON(): Record<string, string> {
		return {
			lease_id: this.id,
			credential_id: this.credentialId,
			expires_at: this.#state.lease.expires_at,
		};
	}

	[Symbol.for("nodejs.util.inspect.custom")](): string {
		return `LeaseHandle ${JSON.stringify(this.toJSON())}`;
	}
}

/** Renewal refusals that a fresh lease answers: the token is expiring, or the lease has ended. */
const REPLACE_ON = new Set([404, 409, 410]);
/** Failures of a fresh lease worth another try later (the old lease is kept meanwhile). */
const TRANSIENT = new Set([0, 429, 502, 503]);

export async function runWithCredential<T>(
	client: LatchkeyClient,
	credentialId: string,
	fn: (secret: LeaseSecret, lease: LeaseHandle) => T | Promise<T>,
	options: WithCredentialOptions,
): Promise<T> {
	const ttlSeconds = options.ttlSeconds ?? 60;
	const ttlMs = ttlSeconds * 1000;
	const timers = client.timers;
	const { signal } = options;
	const emit = (event: LeaseEvent) => {
		try {
			options.onEvent?.(event);
		} catch {
			// A listener's failure is not the run's.
		}
	};

	signal?.throwIfAborted();
	// Aborted while this request is out, a lease Latchkey granted runs out by its TTL.
	const first = await client.lease(credentialId, { ttlSeconds, ...(signal ? { signal } : {}) });
	const state = { lease: first };
	/** Leases granted and not yet released; every one is released at the end. */
	const held = new Set([first.lease_id]);
	const ended = new AbortController();
	const handle = new LeaseHandle(state, ended.signal);
	const onAbort = () => ended.abort(abortReason(signal as AbortSignal));
	signal?.addEventListener("abort", onAbort, { once: true });
	emit({ type: "leased", leaseId: first.lease_id, expiresAt: first.expires_at });

	let stopped = false;
	let timer: unknown;
	let inflight: Promise<void> | null = null;
	/** Aborts a renewal in flight when the run ends (a renewal creates nothing to clean up). */
	const renewals = new AbortController();

	const schedule = (ms: number) => {
		if (stopped) return;
		timer = timers.setTimeout(() => {
			timer = undefined;
			inflight = tick().finally(() => {
				inflight = null;
			});
		}, ms);
	};
	/** Half the lease's time left (measured from now, never more than the TTL), at least a bit. */
	const nextRenewal = () => {
		const left = Math.min(ttlMs, Date.parse(state.lease.expires_at) - timers.now());
		return Math.max(Math.min(1_000, ttlMs / 4), left / 2);
	};
	const retryLater = () => Math.min(5_000, Math.max(250, ttlMs / 4));

	const release = async (leaseId: string) => {
		try {
			await client.releaseLease(leaseId);
			emit({ type: "released", leaseId });
		} catch (err) {
			// Already ended (expired, or the credential was deleted): nothing is held.
			if (err instanceof LatchkeyError && (err.status === 410 || err.status === 404))
				emit({ type: "released", leaseId });
			else {
				emit({ type: "release_failed", leaseId, error: err });
				return;
			}
		}
		held.delete(leaseId);
	};

	const replace = async (reason: string) => {
		const previous = state.lease;
		let fresh: Lease;
		try {
			fresh = await client.lease(credentialId, { ttlSeconds });
		} catch (err) {
			if (stopped) return;
			const willRetry = !(err instanceof LatchkeyError) || TRANSIENT.has(err.status);
			emit({ type: "renewal_failed", leaseId: previous.lease_id, error: err, willRetry });
			// Otherwise (reconnect_required, the credential deleted or no longer ours) `fn` keeps
			// the secret it has: failing it is the caller's call, not the client's.
			if (willRetry) schedule(retryLater());
			return;
		}
		held.add(fresh.lease_id);
		if (stopped) return; // released with the others at the end
		state.lease = fresh;
		emit({
			type: "replaced",
			leaseId: fresh.lease_id,
			previousLeaseId: previous.lease_id,
			expiresAt: fresh.expires_at,
			reason,
		});
		schedule(nextRenewal());
		await release(previous.lease_id);
	};

	const tick = async () => {
		if (stopped) return;
		const current = state.lease;
		try {
			const renewed = await client.renewLease(current.lease_id, {
				ttlSeconds,
				signal: renewals.signal,
			});
			if (stopped) return;
			state.lease = { ...current, expires_at: renewed.expires_at };
			emit({ type: "renewed", leaseId: current.lease_id, expiresAt: renewed.expires_at });
			schedule(nextRenewal());
		} catch (err) {
			if (stopped) return;
			if (err instanceof LatchkeyError && REPLACE_ON.has(err.status)) {
				await replace(err.code);
				return;
			}
			const alive = Date.parse(current.expires_at) > timers.now();
			const willRetry = !(err instanceof LatchkeyError) || TRANSIENT.has(err.status);
			if (willRetry && !alive) {
				await replace(err instanceof LatchkeyError ? err.code : "renewal_failed");
				return;
			}
			emit({ type: "renewal_failed", leaseId: current.lease_id, error: err, willRetry });
			if (willRetry) schedule(retryLater());
		}
	};

	try {
		signal?.throwIfAborted();
		schedule(nextRenewal());
		const run = (async () => fn(first.secret, handle))();
		return await raceAbort(run, signal);
	} finally {
		stopped = true;
		signal?.removeEventListener("abort", onAbort);
		if (timer !== undefined) timers.clearTimeout(timer);
		renewals.abort();
		// A fresh lease being taken is waited for, so that it is released too.
		await (inflight as Promise<void> | null)?.catch(() => {});
		await Promise.all([...held].map(release));
		if (!ended.signal.aborted)
			ended.abort(new DOMException("The lease has been released.", "AbortError"));
	}
}
