import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { AuditEventRow } from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import type { AppEnv } from "../http/context.ts";
import { bearerSecurity, errorResponses, json, listOf, OpaqueId } from "../http/openapi.ts";
import { decodeCursor, encodeCursor, ListQuery } from "../http/pagination.ts";
import {
	AUDIT_ACTIONS,
	AUDIT_OUTCOMES,
	AUDIT_TARGET_TYPES,
	type AuditTargetType,
} from "./events.ts";
import { type AuditFilter, exportPage, listAuditEvents } from "./queries.ts";
import { type PrincipalLike, principalOf } from "./record.ts";
import { verifyAudit } from "./verify.ts";

/**
 * What the audit routes need of auth/, which sits above audit/ (it records into it): src/app.ts
 * hands in authenticate() and requireScope("admin").
 */
export interface AuditRouteHooks {
	authenticate: () => MiddlewareHandler;
	requireAdmin: () => MiddlewareHandler;
}

type AuditEnv = {
	Bindings: AppEnv["Bindings"];
	Variables: AppEnv["Variables"] & { principal: PrincipalLike };
};

const Timestamp = z.string().openapi({ format: "date-time" });

const AuditEventSchema = z
	.object({
		id: z.string().openapi({ example: "aud_4f9QbX2mT7aLkP0sVd1e" }),
		at: Timestamp,
		action: z.enum(AUDIT_ACTIONS),
		outcome: z.enum(AUDIT_OUTCOMES).openapi({
			description: "`denied`: refused by a rule (4xx); `failure`: something broke (5xx, a job)",
		}),
		principal: z
			.object({
				method: z.string().openapi({
					description:
						"`admin`, `api_key`, `legacy_key`, `access_token`, `external`, `refresh_token` (the token endpoints) or `system` (the scheduled worker)",
				}),
				user_id: z.string().nullable(),
				key_id: z.string().nullable(),
				session_id: z.string().nullable(),
			})
			.openapi("AuditPrincipal"),
		target: z
			.object({ type: z.enum(AUDIT_TARGET_TYPES), id: z.string() })
			.nullable()
			.openapi("AuditTarget"),
		user_id: z.string().nullable().openapi({
			description: "The user the event is about; null for events only the admin sees",
		}),
		ip: z.string().nullable().openapi({
			description:
				"The caller's address (CF-Connecting-IP); shown to a user only for their own requests",
		}),
		request_id: z.string().nullable(),
		detail: z.record(z.string(), z.unknown()).openapi({
			description: "Small and secret-free: ids, field names, error codes",
		}),
	})
	.openapi("AuditEvent");

const ExportedEventSchema = AuditEventSchema.extend({
	chain: z.string().openapi({ example: "2026-12-05/3" }),
	seq: z.number().int(),
	prev_hash: z.string(),
	hash: z.string(),
}).openapi("AuditExportLine", {
	description:
		"One line of the export: the event, its place in its chain and its hashes, so the chains can be re-verified away from Latchkey (docs/audit.md)",
});

const TARGET = new RegExp(
	`^(${AUDIT_TARGET_TYPES.join("|")})(?::([A-Za-z0-9][A-Za-z0-9_.-]{0,127}))?$`,
);

const FilterQuery = z.object({
	action: z.enum(AUDIT_ACTIONS).optional().openapi({ description: "Only this action" }),
	target: z
		.string()
		.max(200)
		.regex(TARGET, `a target type (${AUDIT_TARGET_TYPES.join(", ")}), optionally ':' and an id`)
		.optional()
		.openapi({
			description:
				"`<type>` or `<type>:<id>`: events about that kind of object, or that one object",
			example: "credential:cred_4f9QbX2mT7aLkP0sVd1e",
		}),
	user_id: OpaqueId.optional().openapi({
		description: "Only events about this user (for a user, their own id, or nothing matches)",
	}),
	since: z.iso
		.datetime({ offset: true })
		.optional()
		.openapi({ description: "From this instant, inclusive" }),
	until: z.iso
		.datetime({ offset: true })
		.optional()
		.openapi({ description: "Before this instant, exclusive" }),
});

const AuditListQuery = ListQuery.extend(FilterQuery.shape);

const Day = z.iso.date().openapi({ example: "2026-12-05" });
const VerifyBody = z
	.strictObject({
		since: Day.optional().openapi({ description: "First day (UTC) to check; default the oldest" }),
		until: Day.optional().openapi({ description: "Last day (UTC) to check, inclusive" }),
	})
	.openapi("AuditVerifyRequest");

const BreakSchema = z
	.object({
		chain: z.string().openapi({ example: "2026-12-05/3" }),
		seq: z.number().int(),
		event_id: z.string().nullable(),
		reason: z.enum([
			"hash_mismatch",
			"prev_hash_mismatch",
			"rows_missing",
			"tail_missing",
			"head_mismatch",
			"head_missing",
		]),
		message: z.string(),
	})
	.openapi("AuditChainBreak");

const VerifySchema = z
	.object({
		ok: z.boolean(),
		from: Day.nullable(),
		to: Day.nullable(),
		retention_cutoff: Day.nullable().openapi({
			description: "Days before this one leave the retention whole and are not checked",
		}),
		chains: z.number().int(),
		events: z.number().int(),
		break: BreakSchema.nullable().openapi({ description: "The first break, in chain order" }),
	})
	.openapi("AuditVerification");

const invalid = (field: string, message: string) =>
	new LatchkeyError("invalid_request", `Invalid ${field}: ${message}.`, {
		detail: [{ field, location: "query", message }],
	});

function filterOf(query: z.output<typeof FilterQuery>): AuditFilter {
	const since = query.since === undefined ? undefined : new Date(query.since);
	const until = query.until === undefined ? undefined : new Date(query.until);
	if (since && until && since > until) throw invalid("until", "must not be before since");
	const match = query.target === undefined ? null : TARGET.exec(query.target);
	return {
		action: query.action,
		targetType: (match?.[1] as AuditTargetType | undefined) ?? undefined,
		targetId: match?.[2] ?? undefined,
		userId: query.user_id,
		since,
		until,
	};
}

function parseDetail(text: string): Record<string, unknown> {
	try {
		const value = JSON.parse(text);
		return typeof value === "object" && value !== null ? value : {};
	} catch {
		return {};
	}
}

/** The wire form; `viewer` null is the admin. A user sees the address only of their own requests. */
function toEventJson(row: AuditEventRow, viewer: string | null) {
	return {
		id: row.id,
		at: row.at.toISOString(),
		action: row.action as (typeof AUDIT_ACTIONS)[number],
		outcome: row.outcome as (typeof AUDIT_OUTCOMES)[number],
		principal: {
			method: row.authMethod,
			user_id: row.actorUserId,
			key_id: row.actorKeyId,
			session_id: row.actorSessionId,
		},
		target:
			row.targetType === null || row.targetId === null
				? null
				: { type: row.targetType as AuditTargetType, id: row.targetId },
		user_id: row.userId,
		ip: viewer === null || row.actorUserId === viewer ? row.ip : null,
		request_id: row.requestId,
		detail: parseDetail(row.detail),
	};
}

function toExportJson(row: AuditEventRow) {
	return {
		...toEventJson(row, null),
		chain: row.chain,
		seq: row.seq,
		prev_hash: row.prevHash,
		hash: row.hash,
	};
}

/** Rows per statement of the export. */
export const EXPORT_PAGE = 500;

export function registerAuditRoutes(app: OpenAPIHono<AppEnv>, hooks: AuditRouteHooks): void {
	const audited = app as unknown as OpenAPIHono<AuditEnv>;

	audited.openapi(
		createRoute({
			method: "get",
			path: "/v1/audit",
			tags: ["Audit"],
			summary: "Audit events: a user's own, or (the admin token) everyone's; newest first",
			description:
				"A user sees the events about themselves and their objects (their leases, credentials, keys and sessions, and what the admin did to their account); the admin token sees every event. Filters combine: `action`, `target` (`<type>` or `<type>:<id>`), `user_id`, and the time range `since` (inclusive) … `until` (exclusive). An event about another user's object is simply absent. Events are written just after the response that caused them, so one may appear a moment after it.",
			security: bearerSecurity,
			middleware: [hooks.authenticate()],
			request: { query: AuditListQuery },
			responses: {
				200: {
					description: "A page of events",
					...json(listOf(AuditEventSchema, "AuditEventList")),
				},
				...errorResponses(400, 401, 403),
			},
		}),
		async (c) => {
			const query = c.req.valid("query");
			const principal = principalOf(c) as PrincipalLike;
			const viewer = principal.method === "admin" ? null : principal.userId;
			const filter = filterOf(query);
			if (viewer !== null) {
				// Another user's id matches nothing, rather than saying anything about that user.
				if (filter.userId !== undefined && filter.userId !== viewer) {
					return c.json({ data: [], next_cursor: null }, 200);
				}
				filter.userId = viewer;
			}
			const before = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
			const rows = await listAuditEvents(c.get("services").db, filter, {
				limit: query.limit,
				before: before && { at: before.createdAt, id: before.id },
			});
			const page = rows.slice(0, query.limit);
			const last = page[page.length - 1];
			return c.json(
				{
					data: page.map((row) => toEventJson(row, viewer)),
					next_cursor:
						rows.length > query.limit && last
							? encodeCursor({ createdAt: last.at, id: last.id })
							: null,
				},
				200,
			);
		},
	);

	audited.openapi(
		createRoute({
			method: "get",
			path: "/v1/admin/audit/export",
			tags: ["Audit"],
			summary: "Every audit event as NDJSON, oldest first, streamed",
			description:
				"One JSON object per line: the event as GET /v1/audit shows it to the admin, plus its chain, seq, prev_hash and hash, so the chains can be re-verified elsewhere (docs/audit.md). Same filters as GET /v1/audit. Read page by page while it streams: an export of any size holds one page in memory.",
			security: bearerSecurity,
			middleware: [hooks.authenticate(), hooks.requireAdmin()],
			request: { query: FilterQuery },
			responses: {
				200: {
					description: "NDJSON, one event per line",
					content: { "application/x-ndjson": { schema: ExportedEventSchema } },
				},
				...errorResponses(400, 401, 403),
			},
		}),
		async (c) => {
			const filter = filterOf(c.req.valid("query"));
			const { db, logger } = c.get("services");
			const encoder = new TextEncoder();
			let after: { at: Date; id: string } | undefined;
			let done = false;
			const stream = new ReadableStream<Uint8Array>({
				async pull(controller) {
					if (done) return;
					try {
						const rows = await exportPage(db, filter, { limit: EXPORT_PAGE, after });
						const last = rows[rows.length - 1];
						if (rows.length > 0) {
							const text = rows.map((row) => `${JSON.stringify(toExportJson(row))}\n`).join("");
							controller.enqueue(encoder.encode(text));
						}
						if (!last || rows.length < EXPORT_PAGE) {
							done = true;
							controller.close();
						} else {
							after = { at: last.at, id: last.id };
						}
					} catch (err) {
						// The status has gone: the client sees a truncated stream, the log says why.
						done = true;
						logger.error("audit export failed mid-stream", {
							error_message: err instanceof Error ? err.message : String(err),
						});
						controller.error(err);
					}
				},
			});
			return c.body(stream, 200, {
				"Content-Type": "application/x-ndjson; charset=utf-8",
				"Cache-Control": "no-store",
			}) as never;
		},
	);

	audited.openapi(
		createRoute({
			method: "post",
			path: "/v1/admin/audit/verify",
			tags: ["Audit"],
			summary: "Check the audit hash chains (all, or those of a day range)",
			description:
				"Recomputes every row's hash from its columns and the previous row's, checks that seqs run from 1 without gaps and that each chain ends at its head; 200 with `ok: false` and the first break (chain, seq, event, reason) when one does not hold. Days that have left the retention (LATCHKEY_AUDIT_RETENTION_DAYS) are deleted whole by the scheduled worker and not checked. What this does and does not prove: docs/audit.md.",
			security: bearerSecurity,
			middleware: [hooks.authenticate(), hooks.requireAdmin()],
			request: { body: { ...json(VerifyBody), required: false } },
			responses: {
				200: { description: "The verdict", ...json(VerifySchema) },
				...errorResponses(400, 401, 403, 503),
			},
		}),
		async (c) => {
			const body = c.req.valid("json") ?? {};
			if (body.since && body.until && body.since > body.until) {
				throw new LatchkeyError("invalid_request", "Invalid until: must not be before since.", {
					detail: [{ field: "until", location: "json", message: "must not be before since" }],
				});
			}
			return c.json(await verifyAudit(c.get("services"), body), 200);
		},
	);
}
