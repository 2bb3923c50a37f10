import type { Services } from "../services.ts";

/** Narrows a run to some users' deletion work (the admin route's `user_id`). */
export interface JobScope {
	userIds?: readonly string[];
}

/**
 * A unit of scheduled work. Jobs are independent: one failing never stops the others, and
 * each reports what it did so cron runs and `POST /v1/admin/maintenance/run` share a summary.
 * Each bounds its own work (time budget, batch sizes: docs/operations.md) so that one run fits
 * the Workers limits. Its own module so that jobs can name the type while index.ts lists them.
 */
export interface Job {
	name: string;
	/** `scope`, when given, is honoured by jobs that work per user; the others ignore it. */
	run(services: Services, scope?: JobScope): Promise<Record<string, number>>;
}
