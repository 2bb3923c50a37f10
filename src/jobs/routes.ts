import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { authenticate, requireScope } from "../auth/middleware.ts";
import type { AppEnv } from "../http/context.ts";
import {
	bearerSecurity,
	errorResponses,
	JobIdParam,
	json,
	listOf,
	OpaqueId,
} from "../http/openapi.ts";
import { cursorFrom, ListQuery, mapPage, paginate } from "../http/pagination.ts";
import { redactString } from "../log.ts";
import { getJob, listJobs, retryJob } from "./admin.ts";
import { JOB_KINDS, JOB_STATUSES, toJobJson } from "./deletion.ts";
import { type MaintenanceSummary, runJobs, jobs as scheduledJobs } from "./index.ts";

const JobSchema = z
	.object({
		id: z.string().openapi({ example: "job_0cc175b9c0f1b6a831c399e269772661" }),
		user_id: z.string().openapi({ example: "usr_4f9QbX2mT7aLkP0sVd1e" }),
		kind: z.enum(JOB_KINDS).openapi({
			description:
				"`deprovision_managed`: delete what a managed provider created for the user (after checking it is theirs); `revoke_oauth`: revoke an OAuth credential's tokens at its provider",
		}),
		status: z.enum(JOB_STATUSES),
		attempts: z.number().int().openapi({ description: "Attempts made so far" }),
		next_attempt_at: z.string().openapi({
			format: "date-time",
			description:
				"When a pending job is next tried (after a failure: exponential backoff with jitter)",
		}),
		last_error: z.string().nullable().openapi({
			description:
				"Why the last attempt failed (or, for a done job, a note such as 'no revocation endpoint'); never a secret",
		}),
		created_at: z.string().openapi({ format: "date-time" }),
		updated_at: z.string().openapi({ format: "date-time" }),
	})
	.openapi("Job");

const JobResultSchema = z
	.object({
		name: z.string().openapi({ example: "account-deletion" }),
		ok: z.boolean(),
		duration_ms: z.number().int(),
		result: z.record(z.string(), z.number()).optional().openapi({
			description: "The job's counters (see docs/operations.md)",
		}),
		error: z.string().optional(),
	})
	.openapi("MaintenanceJobResult");

const SummarySchema = z
	.object({
		started_at: z.string().openapi({ format: "date-time" }),
		duration_ms: z.number().int(),
		jobs: z.array(JobResultSchema),
	})
	.openapi("MaintenanceSummary");

const MaintenanceRequest = z
	.strictObject({
		user_id: OpaqueId.optional().openapi({
			description:
				"Run the account deletion (its jobs and purge) and the proactive refresh of this user only; the other scheduled work runs as usual",
		}),
	})
	.openapi("MaintenanceRequest");

const JobListQuery = ListQuery.extend({
	status: z.enum(JOB_STATUSES).optional().openapi({ description: "Only jobs with this status" }),
	user_id: OpaqueId.optional().openapi({ description: "Only this user's jobs" }),
});

const adminAuth = () => [authenticate(), requireScope("admin")] as const;

const runRoute = createRoute({
	method: "post",
	path: "/v1/admin/maintenance/run",
	tags: ["Admin"],
	summary: "Run the scheduled work now",
	description:
		"Runs what the cron runs every minute (account deletion, session sweep, proactive OAuth refresh, data-key re-wrap), each within its bounds, and answers what each did. Safe to run while the cron runs: deletion jobs are claimed, never run twice at once.",
	middleware: [...adminAuth()],
	security: bearerSecurity,
	request: { body: { ...json(MaintenanceRequest), required: false } },
	responses: {
		200: { description: "What each job did", ...json(SummarySchema) },
		...errorResponses(400, 401, 403, 413),
	},
});

const listRoute = createRoute({
	method: "get",
	path: "/v1/admin/jobs",
	tags: ["Admin"],
	summary: "List account-deletion jobs, oldest first",
	middleware: [...adminAuth()],
	security: bearerSecurity,
	request: { query: JobListQuery },
	responses: {
		200: { description: "A page of jobs", ...json(listOf(JobSchema, "JobList")) },
		...errorResponses(400, 401, 403),
	},
});

const getRoute = createRoute({
	method: "get",
	path: "/v1/admin/jobs/{id}",
	tags: ["Admin"],
	summary: "Get an account-deletion job",
	middleware: [...adminAuth()],
	security: bearerSecurity,
	request: { params: JobIdParam },
	responses: {
		200: { description: "The job", ...json(JobSchema) },
		...errorResponses(401, 403, 404),
	},
});

const retryRoute = createRoute({
	method: "post",
	path: "/v1/admin/jobs/{id}/retry",
	tags: ["Admin"],
	summary: "Retry a failed job",
	description:
		"Makes a failed job pending again, due at once, with a fresh set of attempts (LATCHKEY_JOB_MAX_ATTEMPTS); the next run (cron, or POST /v1/admin/maintenance/run) takes it. Only a failed job: any other status is 409 conflict.",
	middleware: [...adminAuth()],
	security: bearerSecurity,
	request: { params: JobIdParam },
	responses: {
		200: { description: "The job, pending again", ...json(JobSchema) },
		...errorResponses(401, 403, 404, 409),
	},
});

/** A summary with its job errors redacted as the logger would redact them. */
export function redactSummary(summary: MaintenanceSummary): MaintenanceSummary {
	return {
		...summary,
		jobs: summary.jobs.map((j) =>
			j.error === undefined ? j : { ...j, error: redactString(j.error).slice(0, 500) },
		),
	};
}

export function registerJobRoutes(app: OpenAPIHono<AppEnv>): void {
	app.openapi(runRoute, async (c) => {
		const services = c.get("services");
		const body = c.req.valid("json") as z.infer<typeof MaintenanceRequest> | undefined;
		const userId = body?.user_id;
		const summary = await runJobs(
			services,
			scheduledJobs,
			userId === undefined ? undefined : { userIds: [userId] },
		);
		// The logs redact job errors on the way out; so does the response, which may reach a
		// dashboard or a ticket just the same.
		return c.json(redactSummary(summary), 200);
	});

	app.openapi(listRoute, async (c) => {
		const { db } = c.get("services");
		const query = c.req.valid("query");
		const rows = await listJobs(db, {
			limit: query.limit,
			after: cursorFrom(query),
			status: query.status,
			userId: query.user_id,
		});
		return c.json(mapPage(paginate(rows, query.limit), toJobJson), 200);
	});

	app.openapi(getRoute, async (c) => {
		const { db } = c.get("services");
		return c.json(toJobJson(await getJob(db, c.req.valid("param").id)), 200);
	});

	app.openapi(retryRoute, async (c) => {
		const { db, config, now } = c.get("services");
		const row = await retryJob(
			db,
			c.req.valid("param").id,
			config.LATCHKEY_JOB_MAX_ATTEMPTS,
			now(),
		);
		return c.json(toJobJson(row), 200);
	});
}
