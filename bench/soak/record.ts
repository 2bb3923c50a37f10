/**
 * What the soak saw: every request (operation, phase, status, latency) and every violation of
 * an invariant, with the fault that was active and a request id to find its log lines by.
 */

export type Phase = "before" | "during" | "after";

export interface Sample {
	op: string;
	phase: Phase;
	status: number;
	ms: number;
}

export interface Violation {
	invariant: string;
	op: string;
	faults: string;
	expected: string;
	actual: string;
	requestId?: string;
	excerpt?: string;
}

export class Recorder {
	readonly samples: Sample[] = [];
	readonly violations: Violation[] = [];
	/** Invariant → how many times it was checked. */
	readonly checked = new Map<string, number>();
	/** Phase → wall seconds spent in it (set by the schedule). */
	readonly phaseSeconds: Record<Phase, number> = { before: 0, during: 0, after: 0 };

	check(invariant: string, n = 1): void {
		this.checked.set(invariant, (this.checked.get(invariant) ?? 0) + n);
	}

	fail(v: Violation): void {
		this.check(v.invariant, 0);
		this.violations.push(v);
	}

	/** ok → counted as checked; otherwise recorded as a violation. */
	expect(ok: boolean, v: Violation): boolean {
		this.check(v.invariant);
		if (!ok) this.violations.push(v);
		return ok;
	}
}

function percentile(sorted: number[], p: number): number {
	if (sorted.length === 0) return Number.NaN;
	const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
	return sorted[i] as number;
}

/** One row per operation: req/s, p50 and p99 in each phase, and non-2xx answers. */
export function perfTable(rec: Recorder): Record<string, string | number>[] {
	const ops = [...new Set(rec.samples.map((s) => s.op))].sort();
	return ops.map((op) => {
		const row: Record<string, string | number> = { op };
		for (const phase of ["before", "during", "after"] as const) {
			const mine = rec.samples.filter((s) => s.op === op && s.phase === phase);
			const ms = mine.map((s) => s.ms).sort((a, b) => a - b);
			const secs = rec.phaseSeconds[phase];
			const short = phase === "before" ? "bef" : phase === "during" ? "dur" : "aft";
			row[`${short} n`] = mine.length;
			row[`${short} req/s`] = secs > 0 ? (mine.length / secs).toFixed(1) : "—";
			row[`${short} p50`] = ms.length ? percentile(ms, 50).toFixed(0) : "—";
			row[`${short} p99`] = ms.length ? percentile(ms, 99).toFixed(0) : "—";
		}
		const statuses = new Map<number, number>();
		for (const s of rec.samples)
			if (s.op === op && (s.status < 200 || s.status >= 300))
				statuses.set(s.status, (statuses.get(s.status) ?? 0) + 1);
		row["non-2xx"] =
			[...statuses]
				.sort((a, b) => a[0] - b[0])
				.map(([status, n]) => `${status === 0 ? "none" : status}×${n}`)
				.join(" ") || "—";
		return row;
	});
}

/** One row per invariant: how often it was checked and how often it broke. */
export function invariantTable(
	rec: Recorder,
	invariants: readonly string[],
): { invariant: string; checks: number; violations: number; result: string }[] {
	return invariants.map((invariant) => {
		const checks = rec.checked.get(invariant) ?? 0;
		const violations = rec.violations.filter((v) => v.invariant === invariant).length;
		return {
			invariant,
			checks,
			violations,
			result: violations > 0 ? "FAIL" : checks === 0 ? "not exercised" : "ok",
		};
	});
}
