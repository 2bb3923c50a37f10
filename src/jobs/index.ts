import type { Services } from "../services.ts";
import type { Job } from "./job.ts";
import { rewrapJob } from "./rewrap.ts";

export interface JobResult {
	name: string;
	ok: boolean;
	duration_ms: number;
	result?: Record<string, number>;
	error?: string;
}

export interface MaintenanceSummary {
	started_at: string;
	duration_ms: number;
	jobs: JobResult[];
}

/** Later capabilities (deprovisioning, key re-wrap, lease cleanup) add themselves here. */
export const jobs: Job[] = [rewrapJob];

export async function runJobs(services: Services, list: Job[] = jobs): Promise<MaintenanceSummary> {
	const startedAt = services.now();
	const t0 = performance.now();
	const results: JobResult[] = [];
	for (const job of list) {
		const j0 = performance.now();
		try {
			const result = await job.run(services);
			results.push({
				name: job.name,
				ok: true,
				duration_ms: Math.round(performance.now() - j0),
				result,
			});
		} catch (err) {
			// Names only: job errors can carry upstream bodies, and the logger redacts the rest.
			const message = err instanceof Error ? err.message : String(err);
			results.push({
				name: job.name,
				ok: false,
				duration_ms: Math.round(performance.now() - j0),
				error: message,
			});
		}
	}
	const summary: MaintenanceSummary = {
		started_at: startedAt.toISOString(),
		duration_ms: Math.round(performance.now() - t0),
		jobs: results,
	};
	services.logger.info("maintenance run", { ...summary });
	return summary;
}
