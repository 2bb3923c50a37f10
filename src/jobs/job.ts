import type { Services } from "../services.ts";

/**
 * A unit of scheduled work. Jobs are independent: one failing never stops the others, and
 * each reports what it did so cron runs and `POST /v1/admin/maintenance/run` share a summary.
 * Its own module so that jobs can name the type while index.ts lists them.
 */
export interface Job {
	name: string;
	run(services: Services): Promise<Record<string, number>>;
}
