import type { CredentialRow } from "../db/schema.ts";
import type { Services } from "../services.ts";

/**
 * A managed provider provisions one credential per user with the platform's own account
 * (AgentMail first). Providers know nothing of HTTP requests to Latchkey or of the vault: the
 * provisioning service (src/managed/service.ts) records intent, stores the credential and runs
 * them under a per-(user, provider) lock; the deletion jobs call `deprovision`.
 */
export interface ManagedUser {
	id: string;
	email: string;
}

/** What a provisioning created: the secret to store and the external resources behind it. */
export interface Provisioned {
	/** The credential's title, e.g. "AgentMail". */
	title: string;
	/** Stored sealed as the `api_key` secret of a `managed: true` credential. */
	apiKey: string;
	/** Public, non-secret ids (kept in the credential's metadata and the provisioning intent). */
	resources: Record<string, string>;
}

export interface ProvisionContext {
	/** Idempotency key derived from the user id: the same on every retry for this user. */
	clientId: string;
	/** What an earlier, interrupted attempt recorded as created (empty on a first attempt). */
	resources: Record<string, string>;
	/** Records a resource the moment it exists, so a crash right after cannot orphan it. */
	record(resources: Record<string, string>): Promise<void>;
}

export type DeprovisionOutcome =
	/** Deleted, or already gone. */
	| { status: "deleted" }
	/** The resource exists but is not this user's: left alone, and reported. */
	| { status: "ownership_mismatch"; detail: string }
	/**
	 * Some of it deleted, the step's call budget spent: the job goes on in the next run. Only
	 * answered after at least one deletion, so a job that keeps answering it keeps progressing.
	 */
	| { status: "partial"; detail: string };

/**
 * Provider calls one deprovisioning step may make. A Worker invocation may make a bounded
 * number of subrequests, and the deletion run shares them among many jobs, so a user with
 * hundreds of resources is deleted in several steps (runs) rather than in one that overruns.
 */
export class CallBudget {
	used = 0;
	constructor(readonly limit: number) {}
	get left(): number {
		return Math.max(0, this.limit - this.used);
	}
	/** Counts one call; false when the budget is spent and the call must not be made. */
	take(): boolean {
		if (this.used >= this.limit) return false;
		this.used += 1;
		return true;
	}
}

/** The default step budget, for callers that do not share a run's subrequests. */
export const DEPROVISION_STEP_CALLS = 40;

export interface ManagedProvider {
	/** The credential's `provider` slug, e.g. "agentmail". */
	readonly id: string;
	readonly name: string;
	/**
	 * The idempotency key of this user's provisioning: derived from the user id only, so every
	 * retry (and a deprovision with nothing recorded) names the same external resources.
	 */
	clientIdFor(userId: string): string;
	/** Whether this deployment has the provider's configuration. */
	available(services: Services): boolean | Promise<boolean>;
	/**
	 * Creates (or, on a retry, finds and reuses) the user's external resources and returns a
	 * fresh secret. Called only under the per-(user, provider) lock while the user has no
	 * credential of this provider, so anything of this client id that holds a secret not stored
	 * is an orphan of a crashed attempt and may be deleted. Every resource id goes through
	 * `ctx.record` the moment it exists.
	 */
	provision(services: Services, user: ManagedUser, ctx: ProvisionContext): Promise<Provisioned>;
	/**
	 * Removes what `provision` created for this user. Must verify the resource still belongs to
	 * this user before deleting it. Transient failures throw (the job retries with backoff);
	 * a permanent one throws a ManagedProviderError with `permanent: true`. Makes at most
	 * `budget.limit` provider calls, answering `partial` when there is more to delete.
	 */
	deprovision(
		services: Services,
		user: { id: string },
		resources: Record<string, string>,
		credential: CredentialRow | null,
		budget?: CallBudget,
	): Promise<DeprovisionOutcome>;
}

/** A provider failure; `permanent` failures are not retried. Messages never carry secrets. */
export class ManagedProviderError extends Error {
	constructor(
		message: string,
		readonly permanent = false,
		readonly status?: number,
	) {
		super(message);
		this.name = "ManagedProviderError";
	}
}
