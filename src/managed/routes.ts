import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { recordAudit } from "../audit/index.ts";
import { type AuthEnv, authenticate, requireScope } from "../auth/middleware.ts";
import { ProviderSlug } from "../credentials/schemas.ts";
import type { ManagedProviderConfigRow } from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import type { AppEnv } from "../http/context.ts";
import { bearerSecurity, errorResponses, json, listOf } from "../http/openapi.ts";
import { decodeIdCursor, encodeIdCursor, ListQuery } from "../http/pagination.ts";
import type { Services } from "../services.ts";
import {
	deleteProvisionerConfig,
	findProvisionerConfig,
	listProvisionerConfigs,
	putProvisionerConfig,
} from "./generic.ts";
import { RESERVED_MANAGED_IDS } from "./registry.ts";
import { refreshProvisionerMirror } from "./service.ts";

const adminOnly: MiddlewareHandler<AuthEnv>[] = [authenticate(), requireScope("admin")];

const ManagedProviderId = z.object({
	id: ProviderSlug.openapi({ param: { name: "id", in: "path" }, example: "acme-mail" }),
});

const HttpUrl = z
	.url({ protocol: /^https?$/ })
	.max(2048)
	.openapi({ description: "An absolute http(s) URL" });

const SIGNATURE_DOC =
	'Latchkey signs every request to the provisioner: `Latchkey-Signature: t=<unix seconds>,v2=<hex HMAC-SHA256(hmac_secret, "<t>\\n<METHOD>\\n<path and query>\\n<Idempotency-Key>\\n<raw body>")>` and `Idempotency-Key: <client_id>` (the same for every retry for one user). POST provision_url `{event:"provision",provider,client_id,user:{id,email},resources}` → 200/201 `{api_key, resources?: {name: id}, title?}`; DELETE deprovision_url `{event:"deprovision",provider,client_id,user:{id},resources}` → 2xx deleted, 404 already gone, 409 not this client_id\'s. URLs must be https on a public host (no private, link-local or metadata addresses; loopback http only on a local deployment): 400 invalid_request names the field otherwise. Details: docs/managed.md.';

const PutBody = z
	.strictObject({
		name: z.string().trim().min(1).max(200),
		provision_url: HttpUrl,
		deprovision_url: HttpUrl,
		enabled: z.boolean().default(true).openapi({
			description:
				"Disabled: no new provisioning; what it provisioned stays, and can still be deprovisioned",
		}),
		hmac_secret: z.string().min(32).max(512).optional().openapi({
			description:
				"The HMAC-SHA256 key the provisioner verifies requests with. Required for a new provisioner; left out, the stored one is kept. Stored encrypted and never returned.",
		}),
	})
	.openapi("ManagedProviderPut");

const ConfigSchema = z
	.object({
		id: z.string(),
		name: z.string(),
		provision_url: z.string(),
		deprovision_url: z.string(),
		enabled: z.boolean(),
		created_at: z.string(),
		updated_at: z.string(),
	})
	.openapi("ManagedProvider", { description: "Never contains the HMAC secret." });

function toJson(row: ManagedProviderConfigRow): z.infer<typeof ConfigSchema> {
	return {
		id: row.id,
		name: row.name,
		provision_url: row.provisionUrl,
		deprovision_url: row.deprovisionUrl,
		enabled: row.enabled,
		created_at: row.createdAt.toISOString(),
		updated_at: row.updatedAt.toISOString(),
	};
}

/** The admin write is already stored; a stale mirror expires within minutes by itself. */
async function refreshMirror(services: Services): Promise<void> {
	await refreshProvisionerMirror(services).catch((err: unknown) => {
		services.logger.warn("managed provisioner mirror refresh failed", {
			error_code: err instanceof LatchkeyError ? err.code : "error",
		});
	});
}

const notFound = (id: string) => new LatchkeyError("not_found", `No managed provider '${id}'.`);

export function registerManagedRoutes(app: OpenAPIHono<AppEnv>): void {
	const authed = app as unknown as OpenAPIHono<AuthEnv>;

	authed.openapi(
		createRoute({
			method: "get",
			path: "/v1/admin/managed-providers",
			tags: ["Admin", "Managed"],
			summary: "The generic HTTP provisioners (admin-configured managed providers)",
			security: bearerSecurity,
			middleware: adminOnly,
			request: { query: ListQuery },
			responses: {
				200: {
					description: "Every configured provisioner, enabled or not, by id; never a secret",
					...json(listOf(ConfigSchema, "ManagedProviderList")),
				},
				...errorResponses(400, 401, 403),
			},
		}),
		async (c) => {
			const { limit, cursor } = c.req.valid("query");
			const after = cursor === undefined ? undefined : decodeIdCursor(cursor);
			// The table is small (a few provisioners per deployment), so it is read whole.
			// Sorted here, in code-point order, so the cursor comparison below agrees with it
			// whatever the database's collation.
			const rows = (await listProvisionerConfigs(c.get("services"))).sort((a, b) =>
				a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
			);
			const rest = after === undefined ? rows : rows.filter((r) => r.id > after);
			const page = rest.slice(0, limit);
			const last = page[page.length - 1];
			return c.json(
				{
					data: page.map(toJson),
					next_cursor: rest.length > limit && last ? encodeIdCursor(last.id) : null,
				},
				200,
			);
		},
	);

	authed.openapi(
		createRoute({
			method: "put",
			path: "/v1/admin/managed-providers/{id}",
			tags: ["Admin", "Managed"],
			summary: "Register or replace a generic HTTP provisioner of managed credentials",
			description: `Every active user gets one managed api_key credential with provider = {id}, provisioned on their next credential listing. ${SIGNATURE_DOC}`,
			security: bearerSecurity,
			middleware: adminOnly,
			request: { params: ManagedProviderId, body: { ...json(PutBody), required: true } },
			responses: {
				200: { description: "Replaced", ...json(ConfigSchema) },
				201: { description: "Registered", ...json(ConfigSchema) },
				...errorResponses(400, 401, 403, 409),
			},
		}),
		async (c) => {
			const services = c.get("services");
			const { id } = c.req.valid("param");
			const body = c.req.valid("json");
			const { row, created } = await putProvisionerConfig(
				services,
				id,
				{
					name: body.name,
					provisionUrl: body.provision_url,
					deprovisionUrl: body.deprovision_url,
					enabled: body.enabled,
					hmacSecret: body.hmac_secret,
				},
				RESERVED_MANAGED_IDS,
			);
			await refreshMirror(services);
			recordAudit(c, {
				action: "provider.updated",
				target: { type: "provider", id },
				userId: null,
				detail: { kind: "managed", created, enabled: row.enabled },
			});
			return created ? c.json(toJson(row), 201) : c.json(toJson(row), 200);
		},
	);

	authed.openapi(
		createRoute({
			method: "get",
			path: "/v1/admin/managed-providers/{id}",
			tags: ["Admin", "Managed"],
			summary: "A generic HTTP provisioner (without its secret)",
			security: bearerSecurity,
			middleware: adminOnly,
			request: { params: ManagedProviderId },
			responses: {
				200: { description: "The provisioner", ...json(ConfigSchema) },
				...errorResponses(401, 403, 404),
			},
		}),
		async (c) => {
			const { id } = c.req.valid("param");
			const row = await findProvisionerConfig(c.get("services"), id);
			if (!row) throw notFound(id);
			return c.json(toJson(row), 200);
		},
	);

	authed.openapi(
		createRoute({
			method: "delete",
			path: "/v1/admin/managed-providers/{id}",
			tags: ["Admin", "Managed"],
			summary: "Delete a generic HTTP provisioner that has nothing provisioned any more",
			description:
				"409 `conflict` while any user still has its credential or resources it recorded: deprovisioning needs its URL and secret. Disable it (PUT with enabled: false) to stop new provisioning.",
			security: bearerSecurity,
			middleware: adminOnly,
			request: { params: ManagedProviderId },
			responses: {
				204: { description: "Deleted" },
				...errorResponses(401, 403, 404, 409),
			},
		}),
		async (c) => {
			const services = c.get("services");
			const { id } = c.req.valid("param");
			await deleteProvisionerConfig(services, id);
			await refreshMirror(services);
			recordAudit(c, {
				action: "provider.deleted",
				target: { type: "provider", id },
				userId: null,
				detail: { kind: "managed" },
			});
			return c.body(null, 204);
		},
	);
}
