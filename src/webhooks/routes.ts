import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { WebhookDeliveryRow, WebhookRow } from "../db/schema.ts";
import type { AppEnv } from "../http/context.ts";
import {
	bearerSecurity,
	errorResponses,
	idParam,
	json,
	listOf,
	OpaqueId,
} from "../http/openapi.ts";
import { cursorFrom, ListQuery, mapPage, paginate } from "../http/pagination.ts";
import { WEBHOOK_EVENTS } from "./events.ts";
import {
	deleteWebhook,
	getWebhook,
	listDeliveries,
	listWebhooks,
	putWebhook,
	redeliver,
} from "./service.ts";

/** webhooks/ sits below auth/ (whose audit events it delivers): authentication comes from app.ts. */
export interface WebhookRouteHooks {
	authenticate: () => MiddlewareHandler;
	requireAdmin: () => MiddlewareHandler;
}

const DELIVERY_STATUSES = ["pending", "delivered", "failed"] as const;

const WebhookIdParam = idParam("id", "platform-events");
const DeliveryParams = z.object({
	id: OpaqueId.openapi({ param: { name: "id", in: "path" }, example: "platform-events" }),
	delivery_id: OpaqueId.openapi({
		param: { name: "delivery_id", in: "path" },
		example: "whd_0cc175b9c0f1b6a831c399e269772661",
	}),
});

const WebhookBody = z
	.strictObject({
		url: z.string().min(1).max(2048).openapi({
			description:
				"Where deliveries are POSTed: an https URL on a public host (docs/security.md, 'Outbound calls')",
			example: "https://platform.example.com/hooks/latchkey",
		}),
		events: z
			.array(z.enum(WEBHOOK_EVENTS))
			.min(1)
			.max(WEBHOOK_EVENTS.length * 4)
			.openapi({
				description: "The event types to deliver (docs/webhooks.md)",
			}),
		secret: z.string().min(1).max(200).optional().openapi({
			description:
				"A Standard Webhooks secret (`whsec_` + base64 of 24–64 bytes). Omitted on creation: one is generated and returned once; omitted on a replacement: the current secret stays",
		}),
	})
	.openapi("WebhookInput");

const WebhookSchema = z
	.object({
		id: z.string().openapi({ example: "platform-events" }),
		url: z.string(),
		events: z.array(z.enum(WEBHOOK_EVENTS)),
		created_at: z.string().openapi({ format: "date-time" }),
		updated_at: z.string().openapi({ format: "date-time" }),
	})
	.openapi("Webhook");

const WebhookWithSecretSchema = WebhookSchema.extend({
	secret: z.string().optional().openapi({
		description:
			"The generated signing secret (`whsec_…`), present only in the answer that created it",
	}),
}).openapi("WebhookWithSecret");

const DeliverySchema = z
	.object({
		id: z.string().openapi({
			description: "Also the `webhook-id` header of every attempt",
			example: "whd_0cc175b9c0f1b6a831c399e269772661",
		}),
		webhook_id: z.string(),
		event_type: z.enum(WEBHOOK_EVENTS),
		status: z.enum(DELIVERY_STATUSES).openapi({
			description: "`failed`: every attempt failed (the dead letter); redeliver to try again",
		}),
		attempts: z.number().int(),
		max_attempts: z.number().int(),
		next_attempt_at: z.string().openapi({ format: "date-time" }),
		last_status: z.number().int().nullable().openapi({
			description: "The receiver's HTTP status on the last attempt; null when it gave none",
		}),
		last_error: z.string().nullable(),
		delivered_at: z.string().nullable().openapi({ format: "date-time" }),
		payload: z.string().openapi({ description: "The exact body sent and signed (JSON)" }),
		created_at: z.string().openapi({ format: "date-time" }),
		updated_at: z.string().openapi({ format: "date-time" }),
	})
	.openapi("WebhookDelivery");

const toWebhookJson = (row: WebhookRow) => ({
	id: row.id,
	url: row.url,
	events: row.events as (typeof WEBHOOK_EVENTS)[number][],
	created_at: row.createdAt.toISOString(),
	updated_at: row.updatedAt.toISOString(),
});

const toDeliveryJson = (row: WebhookDeliveryRow) => ({
	id: row.id,
	webhook_id: row.webhookId,
	event_type: row.eventType as (typeof WEBHOOK_EVENTS)[number],
	status: row.status,
	attempts: row.attempts,
	max_attempts: row.maxAttempts,
	next_attempt_at: row.nextAttemptAt.toISOString(),
	last_status: row.lastStatus,
	last_error: row.lastError,
	delivered_at: row.deliveredAt?.toISOString() ?? null,
	payload: row.payload,
	created_at: row.createdAt.toISOString(),
	updated_at: row.updatedAt.toISOString(),
});

export function registerWebhookRoutes(app: OpenAPIHono<AppEnv>, hooks: WebhookRouteHooks): void {
	const admin = () => [hooks.authenticate(), hooks.requireAdmin()];

	app.openapi(
		createRoute({
			method: "put",
			path: "/v1/admin/webhooks/{id}",
			tags: ["Webhooks"],
			summary: "Register or replace a webhook",
			description:
				"Deliveries of the chosen events are POSTed to `url`, signed per the Standard Webhooks spec (docs/webhooks.md). The URL must be one Latchkey will call (https, a public host). Without `secret`, a new webhook gets a generated one, returned once in `secret`.",
			security: bearerSecurity,
			middleware: admin(),
			request: { params: WebhookIdParam, body: { ...json(WebhookBody), required: true } },
			responses: {
				200: { description: "Replaced", ...json(WebhookWithSecretSchema) },
				201: { description: "Created", ...json(WebhookWithSecretSchema) },
				...errorResponses(400, 401, 403, 413),
			},
		}),
		async (c) => {
			const { id } = c.req.valid("param");
			const { row, created, generatedSecret } = await putWebhook(
				c.get("services"),
				id,
				c.req.valid("json"),
			);
			const body = {
				...toWebhookJson(row),
				...(generatedSecret === null ? {} : { secret: generatedSecret }),
			};
			if (generatedSecret !== null) c.header("Cache-Control", "no-store");
			return created ? c.json(body, 201) : c.json(body, 200);
		},
	);

	app.openapi(
		createRoute({
			method: "get",
			path: "/v1/admin/webhooks",
			tags: ["Webhooks"],
			summary: "List webhooks, oldest first",
			security: bearerSecurity,
			middleware: admin(),
			request: { query: ListQuery },
			responses: {
				200: { description: "A page of webhooks", ...json(listOf(WebhookSchema, "WebhookList")) },
				...errorResponses(400, 401, 403),
			},
		}),
		async (c) => {
			const query = c.req.valid("query");
			const rows = await listWebhooks(c.get("services"), query.limit, cursorFrom(query));
			return c.json(mapPage(paginate(rows, query.limit), toWebhookJson), 200);
		},
	);

	app.openapi(
		createRoute({
			method: "get",
			path: "/v1/admin/webhooks/{id}",
			tags: ["Webhooks"],
			summary: "Get a webhook (never its secret)",
			security: bearerSecurity,
			middleware: admin(),
			request: { params: WebhookIdParam },
			responses: {
				200: { description: "The webhook", ...json(WebhookSchema) },
				...errorResponses(401, 403, 404),
			},
		}),
		async (c) => {
			const row = await getWebhook(c.get("services"), c.req.valid("param").id);
			return c.json(toWebhookJson(row), 200);
		},
	);

	app.openapi(
		createRoute({
			method: "delete",
			path: "/v1/admin/webhooks/{id}",
			tags: ["Webhooks"],
			summary: "Delete a webhook and its deliveries",
			description: "Deliveries not yet sent are dropped with it.",
			security: bearerSecurity,
			middleware: admin(),
			request: { params: WebhookIdParam },
			responses: {
				204: { description: "Deleted" },
				...errorResponses(401, 403, 404),
			},
		}),
		async (c) => {
			await deleteWebhook(c.get("services"), c.req.valid("param").id);
			return c.body(null, 204);
		},
	);

	app.openapi(
		createRoute({
			method: "get",
			path: "/v1/admin/webhooks/{id}/deliveries",
			tags: ["Webhooks"],
			summary: "A webhook's deliveries, oldest first",
			description:
				"Each event × webhook is one delivery: `pending` (due at `next_attempt_at`), `delivered`, or `failed` once its attempts ran out (the dead letter).",
			security: bearerSecurity,
			middleware: admin(),
			request: {
				params: WebhookIdParam,
				query: ListQuery.extend({
					status: z
						.enum(DELIVERY_STATUSES)
						.optional()
						.openapi({ description: "Only deliveries with this status" }),
				}),
			},
			responses: {
				200: {
					description: "A page of deliveries",
					...json(listOf(DeliverySchema, "WebhookDeliveryList")),
				},
				...errorResponses(400, 401, 403, 404),
			},
		}),
		async (c) => {
			const query = c.req.valid("query");
			const rows = await listDeliveries(
				c.get("services"),
				c.req.valid("param").id,
				query.limit,
				cursorFrom(query),
				query.status,
			);
			return c.json(mapPage(paginate(rows, query.limit), toDeliveryJson), 200);
		},
	);

	app.openapi(
		createRoute({
			method: "post",
			path: "/v1/admin/webhooks/{id}/deliveries/{delivery_id}/redeliver",
			tags: ["Webhooks"],
			summary: "Send a delivery again",
			description:
				"The delivery becomes `pending`, due now, with its attempts reset; the scheduled worker sends it (same `webhook-id`, same body, a new timestamp and signature). 409 `conflict` while a run is sending it.",
			security: bearerSecurity,
			middleware: admin(),
			request: { params: DeliveryParams },
			responses: {
				200: { description: "The delivery, queued again", ...json(DeliverySchema) },
				...errorResponses(401, 403, 404, 409),
			},
		}),
		async (c) => {
			const { id, delivery_id } = c.req.valid("param");
			const row = await redeliver(c.get("services"), id, delivery_id);
			return c.json(toDeliveryJson(row), 200);
		},
	);
}
