/** How long after a fault ends full service must be back (the soak's recovery bound). */
export const RECOVERY_MS = 5_000;

export type FaultName =
	| "redis-down"
	| "pg-cut"
	| "audit-writes-fail"
	| "oauth-500-then-invalid_grant"
	| "oauth-slow"
	| "agentmail-timeout";

/**
 * Which faults are active, and which ended less than RECOVERY_MS ago (their grace: an answer
 * shaped by the fault, e.g. a 503, is still allowed then, and recovery is measured from the end).
 */
export class Faults {
	private readonly active = new Set<FaultName>();
	private readonly endedAt = new Map<FaultName, number>();
	readonly log: { fault: FaultName; event: "start" | "end"; at: number }[] = [];

	constructor(private readonly now: () => number) {}

	start(fault: FaultName): void {
		this.active.add(fault);
		this.log.push({ fault, event: "start", at: this.now() });
	}

	end(fault: FaultName): void {
		this.active.delete(fault);
		this.endedAt.set(fault, this.now());
		this.log.push({ fault, event: "end", at: this.now() });
	}

	/** Active, or ended within the recovery grace. */
	affects(fault: FaultName): boolean {
		if (this.active.has(fault)) return true;
		const ended = this.endedAt.get(fault);
		return ended !== undefined && this.now() - ended < RECOVERY_MS;
	}

	any(): boolean {
		return (
			this.active.size > 0 ||
			[...this.endedAt.values()].some((ended) => this.now() - ended < RECOVERY_MS)
		);
	}

	isActive(fault: FaultName): boolean {
		return this.active.has(fault);
	}

	describe(): string {
		const names: string[] = [...this.active];
		for (const [fault, ended] of this.endedAt)
			if (!this.active.has(fault) && this.now() - ended < RECOVERY_MS)
				names.push(`${fault} (ended ${((this.now() - ended) / 1000).toFixed(1)} s ago)`);
		return names.length ? names.join(", ") : "none";
	}
}
