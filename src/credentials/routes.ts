import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { recordAudit } from "../audit/index.ts";
import {
	type AuthEnv,
	authenticate,
	requireScope,
	requireUser,
	userIdOf,
} from "../auth/middleware.ts";
import type { CredentialRow } from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import type { AppEnv } from "../http/context.ts";
import {
	bearerSecurity,
	CredentialIdParam,
	errorResponses,
	json,
	listOf,
} from "../http/openapi.ts";
import { cursorFrom, ListQuery, mapPage, paginate } from "../http/pagination.ts";
import type { Services } from "../services.ts";
import { CredentialSchema, etagOf, ProviderSlug } from "./schemas.ts";
import { HeadersSchema, HOST_PATTERN, secretString } from "./secrets.ts";
import {
	assertWritable,
	type CredentialChange,
	createCredential,
	deleteCredentialRow,
	findVisible,
	listCredentials,
	type NewCredential,
	openSecret,
	preconditionFailed,
	toCredentialJson,
	updateCredential,
} from "./service.ts";

/**
 * What the capabilities built on the vault add to its routes. oauth/, managed/ and leases/ import
 * credentials/, never the reverse, so the vault names here what it needs from them and
 * src/app.ts, which knows every capability, hands the functions in.
 */
export interface CredentialRouteHooks {
	/**
	 * The registered OAuth provider an imported oauth2 token belongs to (its name is the default
	 * title); throws `not_found` when there is none. oauth/.
	 */
	oauthProvider: (services: Services, id: string) => Promise<{ name: string }>;
	/**
	 * Revokes an oauth2 credential's tokens at its provider (RFC 7009) before the row is deleted;
	 * null where the provider has no revocation endpoint. oauth/.
	 */
	revokeUpstream: (
		services: Services,
		provider: string,
		token: { accessToken?: string; refreshToken?: string },
	) => Promise<boolean | null>;
	/**
	 * Beside a listing, provisions the managed credentials the user lacks; true when one appeared
	 * within the wait (the list is then read again), what is left goes to `background`. managed/.
	 */
	provisionManaged: (
		services: Services,
		userId: string,
		background: (work: Promise<unknown>) => void,
	) => Promise<boolean>;
	/** Ends the leases of a deleted credential. leases/. */
	endLeases: (services: Services, credentialId: string) => Promise<void>;
}

const MAX_METADATA_BYTES = 8 * 1024;
const Metadata = z
	.record(z.string().max(128), z.unknown())
	.refine(
		(m) => JSON.stringify(m).length <= MAX_METADATA_BYTES,
		`metadata must serialise to at most ${MAX_METADATA_BYTES} bytes`,
	);
const Title = z.string().trim().min(1).max(200);
const Timestamp = z.iso.datetime({ offset: true });
const Host = z
	.string()
	.trim()
	.toLowerCase()
	.max(253)
	.regex(HOST_PATTERN, "a hostname, optionally prefixed with '*.'");
const Scopes = z.array(z.string().min(1).max(200)).max(100);

const common = { provider: ProviderSlug, title: Title.optional(), metadata: Metadata.optional() };

const CreateBody = z
	.discriminatedUnion("type", [
		z
			.object({
				...common,
				type: z.literal("api_key"),
				api_key: secretString(),
				expires_at: Timestamp.optional(),
			})
			.strict(),
		z
			.object({
				...common,
				type: z.literal("user_password"),
				username: z.string().min(1).max(256),
				password: secretString(),
			})
			.strict(),
		z
			.object({ ...common, type: z.literal("host_scoped"), host: Host, headers: HeadersSchema })
			.strict(),
		z
			.object({
				...common,
				type: z.literal("oauth2"),
				access_token: secretString(),
				refresh_token: secretString().optional(),
				token_type: z.string().min(1).max(40).optional(),
				access_token_expires_at: Timestamp.optional(),
				scopes: Scopes.optional(),
				username: z.string().min(1).max(256).optional(),
			})
			.strict(),
	])
	.openapi("CreateCredential");

type CreateBodyT = z.infer<typeof CreateBody>;

const PatchBody = z
	.object({
		type: z.enum(["oauth2", "api_key", "user_password", "host_scoped"]).optional(),
		title: Title.optional(),
		metadata: Metadata.optional(),
		api_key: secretString().optional(),
		expires_at: Timestamp.nullable().optional(),
		username: z.string().min(1).max(256).optional(),
		password: secretString().optional(),
		host: Host.optional(),
		headers: HeadersSchema.optional(),
		access_token: secretString().optional(),
		refresh_token: secretString().optional(),
		access_token_expires_at: Timestamp.nullable().optional(),
		scopes: Scopes.optional(),
	})
	.strict()
	.openapi("UpdateCredential", {
		description: "Only the title, metadata and the secret fields of the credential's own type.",
	});

type PatchBodyT = z.infer<typeof PatchBody>;

const ETAG_HEADER = {
	ETag: {
		description: "The credential's `version`, quoted: send it back in `If-Match`.",
		schema: { type: "string" as const, example: '"3"' },
	},
};

const IfMatchHeaders = z.object({
	"if-match": z.string().optional().openapi({
		description:
			'The credential\'s ETag (`"<version>"`), or several comma-separated, or `*`. A stale value → 412 `precondition_failed` and nothing changes; without it the last writer wins.',
		example: '"3"',
	}),
});

/**
 * RFC 9110 If-Match with strong comparison: null when absent or `*` (any existing credential),
 * otherwise the versions it names. A weak or malformed tag names nothing, so it never matches.
 */
function ifMatchVersions(header: string | undefined): number[] | null {
	if (header === undefined || header.trim() === "*") return null;
	const versions: number[] = [];
	for (const tag of header.split(",")) {
		const match = /^"(\d{1,10})"$/.exec(tag.trim());
		if (match) versions.push(Number(match[1]));
	}
	return versions;
}

function credentialResponse<S extends 200 | 201>(c: Context, row: CredentialRow, status: S) {
	c.header("ETag", etagOf(row));
	return c.json(toCredentialJson(row), status);
}

const FIELDS_OF_TYPE: Record<CredentialRow["type"], (keyof PatchBodyT)[]> = {
	api_key: ["api_key", "expires_at"],
	user_password: ["username", "password"],
	host_scoped: ["host", "headers"],
	oauth2: ["access_token", "refresh_token", "access_token_expires_at", "scopes"],
};

/** The patch fields that replace a secret (for the audit detail: names only). */
const SECRET_FIELDS = new Set(["api_key", "password", "headers", "access_token", "refresh_token"]);

const invalid = (field: string, message: string) =>
	new LatchkeyError("invalid_request", `Invalid ${field}: ${message}.`, {
		detail: [{ field, location: "json", message }],
	});

/** Translates a validated create body into the domain's input. */
async function toNewCredential(
	c: Context<AuthEnv>,
	hooks: CredentialRouteHooks,
	body: CreateBodyT,
	userId: string | null,
): Promise<NewCredential> {
	const base = { userId, provider: body.provider, metadata: body.metadata ?? {} };
	switch (body.type) {
		case "api_key":
			return {
				...base,
				type: "api_key",
				title: body.title ?? body.provider,
				secret: { api_key: body.api_key },
				accessTokenExpiresAt: body.expires_at ? new Date(body.expires_at) : null,
			};
		case "user_password":
			return {
				...base,
				type: "user_password",
				title: body.title ?? `${body.provider} (${body.username})`,
				username: body.username,
				secret: { password: body.password },
			};
		case "host_scoped":
			return {
				...base,
				type: "host_scoped",
				title: body.title ?? body.host,
				host: body.host,
				secret: { headers: body.headers },
			};
		case "oauth2": {
			// An imported OAuth2 token must belong to a provider Latchkey can refresh it with.
			const provider = await hooks
				.oauthProvider(c.get("services"), body.provider)
				.catch((err: unknown) => {
					if (err instanceof LatchkeyError && err.code === "not_found")
						throw invalid("provider", "not a registered OAuth2 provider");
					// An API-key-only provider (400 from the registry): no OAuth to refresh with.
					if (err instanceof LatchkeyError && err.code === "invalid_request")
						throw invalid("provider", "an API-key-only provider, not an OAuth2 one");
					throw err;
				});
			return {
				...base,
				type: "oauth2",
				title: body.title ?? provider.name,
				scopes: body.scopes ?? [],
				username: body.username ?? null,
				accessTokenExpiresAt: body.access_token_expires_at
					? new Date(body.access_token_expires_at)
					: null,
				secret: {
					access_token: body.access_token,
					token_type: body.token_type ?? "Bearer",
					...(body.refresh_token ? { refresh_token: body.refresh_token } : {}),
				},
			};
		}
	}
}

/** Checks a patch against the credential's type and turns it into a change. */
function toChange(row: CredentialRow, body: PatchBodyT): CredentialChange {
	if (body.type !== undefined && body.type !== row.type) {
		throw invalid("type", `a credential's type cannot change (it is ${row.type})`);
	}
	const allowed = new Set<keyof PatchBodyT>([
		"type",
		"title",
		"metadata",
		...FIELDS_OF_TYPE[row.type],
	]);
	const foreign = (Object.keys(body) as (keyof PatchBodyT)[]).filter(
		(k) => body[k] !== undefined && !allowed.has(k),
	);
	if (foreign.length > 0) {
		throw new LatchkeyError(
			"invalid_request",
			`Fields not valid for a ${row.type} credential: ${foreign.join(", ")}.`,
			{
				detail: foreign.map((field) => ({
					field,
					location: "json",
					message: `not a field of ${row.type}`,
				})),
			},
		);
	}
	const change: CredentialChange = { title: body.title, metadata: body.metadata };
	switch (row.type) {
		case "api_key":
			if (body.api_key) change.secret = { api_key: body.api_key };
			if (body.expires_at !== undefined)
				change.accessTokenExpiresAt = body.expires_at ? new Date(body.expires_at) : null;
			break;
		case "user_password":
			if (body.username) change.username = body.username;
			if (body.password) change.secret = { password: body.password };
			break;
		case "host_scoped":
			if (body.host) change.host = body.host;
			if (body.headers) change.secret = { headers: body.headers };
			break;
		case "oauth2": {
			if (body.scopes) {
				const dropped = row.scopes.filter((s) => !body.scopes?.includes(s));
				if (dropped.length > 0)
					throw invalid("scopes", `OAuth2 scopes may only grow; missing ${dropped.join(", ")}`);
				change.scopes = [...new Set(body.scopes)];
			}
			if (body.access_token || body.refresh_token) {
				change.secret = {
					...(body.access_token ? { access_token: body.access_token } : {}),
					...(body.refresh_token ? { refresh_token: body.refresh_token } : {}),
				};
				// A new token replaces whatever the provider or an earlier failure decided.
				change.status = "active";
			}
			if (body.access_token_expires_at !== undefined) {
				change.accessTokenExpiresAt = body.access_token_expires_at
					? new Date(body.access_token_expires_at)
					: null;
			}
			break;
		}
	}
	return change;
}

export function registerCredentialRoutes(
	app: OpenAPIHono<AppEnv>,
	hooks: CredentialRouteHooks,
): void {
	const authed = app as unknown as OpenAPIHono<AuthEnv>;
	const needs = (scope: "credentials:read" | "credentials:write"): MiddlewareHandler<AuthEnv>[] => [
		authenticate(),
		requireUser(),
		requireScope(scope),
	];

	authed.openapi(
		createRoute({
			method: "post",
			path: "/v1/credentials",
			tags: ["Credentials"],
			summary: "Store a credential (secret fields by type); the response carries metadata only",
			security: bearerSecurity,
			middleware: needs("credentials:write"),
			request: { body: { ...json(CreateBody), required: true } },
			responses: {
				201: { description: "Stored", headers: ETAG_HEADER, ...json(CredentialSchema) },
				...errorResponses(400, 401, 403, 413),
			},
		}),
		async (c) => {
			const input = await toNewCredential(c, hooks, c.req.valid("json"), userIdOf(c));
			const row = await createCredential(c.get("services"), input);
			recordAudit(c, {
				action: "credential.created",
				target: { type: "credential", id: row.id },
				detail: { provider: row.provider, type: row.type },
			});
			return credentialResponse(c, row, 201);
		},
	);

	authed.openapi(
		createRoute({
			method: "get",
			path: "/v1/credentials",
			tags: ["Credentials"],
			summary: "List your own, managed and system credentials",
			description:
				"Also provisions the managed credentials the user lacks (one per available managed provider), waiting at most 2 s for them; a provisioning failure never fails the listing, and what is not done by then finishes in the background.",
			security: bearerSecurity,
			middleware: needs("credentials:read"),
			request: { query: ListQuery.extend({ provider: ProviderSlug.optional() }) },
			responses: {
				200: { description: "Credentials", ...json(listOf(CredentialSchema, "CredentialList")) },
				...errorResponses(400, 401, 403),
			},
		}),
		async (c) => {
			const query = c.req.valid("query");
			const services = c.get("services");
			const userId = userIdOf(c);
			const list = () =>
				listCredentials(services, userId, {
					limit: query.limit,
					after: cursorFrom(query),
					provider: query.provider,
				});
			// Side by side, so the marker check costs no time on the common path; a managed
			// credential provisioned within the wait means reading the list again.
			const [appeared, rows] = await Promise.all([
				hooks.provisionManaged(services, userId, (work) => c.executionCtx.waitUntil(work)),
				list(),
			]);
			const page = appeared ? await list() : rows;
			return c.json(mapPage(paginate(page, query.limit), toCredentialJson), 200);
		},
	);

	authed.openapi(
		createRoute({
			method: "get",
			path: "/v1/credentials/{id}",
			tags: ["Credentials"],
			summary: "A credential's metadata",
			security: bearerSecurity,
			middleware: needs("credentials:read"),
			request: { params: CredentialIdParam },
			responses: {
				200: { description: "The credential", headers: ETAG_HEADER, ...json(CredentialSchema) },
				...errorResponses(401, 403, 404),
			},
		}),
		async (c) =>
			credentialResponse(
				c,
				await findVisible(c.get("services"), userIdOf(c), c.req.valid("param").id),
				200,
			),
	);

	authed.openapi(
		createRoute({
			method: "patch",
			path: "/v1/credentials/{id}",
			tags: ["Credentials"],
			summary: "Change title, metadata or the secret fields of the credential's type",
			security: bearerSecurity,
			middleware: needs("credentials:write"),
			request: {
				params: CredentialIdParam,
				headers: IfMatchHeaders,
				body: { ...json(PatchBody), required: true },
			},
			responses: {
				200: { description: "Updated", headers: ETAG_HEADER, ...json(CredentialSchema) },
				...errorResponses(400, 401, 403, 404, 409, 412),
			},
		}),
		async (c) => {
			const services = c.get("services");
			const body = c.req.valid("json");
			const id = c.req.valid("param").id;
			const versions = ifMatchVersions(c.req.valid("header")["if-match"]);
			const row = await updateCredential(
				services,
				() => findVisible(services, userIdOf(c), id),
				(current) => {
					assertWritable(current);
					return toChange(current, body);
				},
				versions === null ? {} : { matches: (v) => versions.includes(v) },
			);
			// Names of the fields sent, never their values.
			const fields = Object.keys(body).filter((k) => body[k as keyof typeof body] !== undefined);
			recordAudit(c, {
				action: "credential.updated",
				target: { type: "credential", id: row.id },
				detail: {
					fields: fields.sort(),
					secret_changed: fields.some((f) => SECRET_FIELDS.has(f)),
					version: row.version,
				},
			});
			return credentialResponse(c, row, 200);
		},
	);

	authed.openapi(
		createRoute({
			method: "delete",
			path: "/v1/credentials/{id}",
			tags: ["Credentials"],
			summary: "Delete a credential, revoking an OAuth2 token upstream (RFC 7009) where possible",
			security: bearerSecurity,
			middleware: needs("credentials:write"),
			request: { params: CredentialIdParam, headers: IfMatchHeaders },
			responses: {
				200: {
					description:
						"`revoked`: the upstream revocation result, null where the provider has no revocation endpoint",
					...json(
						z
							.object({ deleted: z.literal(true), revoked: z.boolean().nullable() })
							.openapi("CredentialDeleted"),
					),
				},
				...errorResponses(401, 403, 404, 412),
			},
		}),
		async (c) => {
			const services = c.get("services");
			const row = await findVisible(services, userIdOf(c), c.req.valid("param").id);
			assertWritable(row);
			const versions = ifMatchVersions(c.req.valid("header")["if-match"]);
			// Checked before anything is revoked upstream, and again by the delete itself.
			if (versions !== null && !versions.includes(row.version)) {
				throw preconditionFailed(row.id, row.version);
			}
			let revoked: boolean | null = null;
			if (row.type === "oauth2") {
				try {
					const secret = await openSecret(services, row as CredentialRow & { type: "oauth2" });
					revoked = await hooks.revokeUpstream(services, row.provider, {
						accessToken: secret.access_token,
						refreshToken: secret.refresh_token,
					});
				} catch (err) {
					// Deletion must not depend on the provider or on a readable row.
					services.logger.warn("upstream revocation failed", {
						credential_id: row.id,
						error_code: err instanceof LatchkeyError ? err.code : "error",
					});
					revoked = false;
				}
			}
			const expectedVersion = versions === null ? undefined : row.version;
			if (!(await deleteCredentialRow(services, userIdOf(c), row.id, expectedVersion))) {
				// Changed since it was read: still there means a stale If-Match, else it is gone.
				const now = await findVisible(services, userIdOf(c), row.id);
				throw preconditionFailed(now.id, now.version);
			}
			try {
				await hooks.endLeases(services, row.id);
			} catch (err) {
				// The row is gone; its leases then run out by their TTL (at most 15 minutes).
				services.logger.warn("leases of a deleted credential not ended", {
					credential_id: row.id,
					error_code: err instanceof LatchkeyError ? err.code : "error",
				});
			}
			recordAudit(c, {
				action: "credential.deleted",
				target: { type: "credential", id: row.id },
				detail: { provider: row.provider, type: row.type, revoked },
			});
			return c.json({ deleted: true as const, revoked }, 200);
		},
	);

	authed.openapi(
		createRoute({
			method: "post",
			path: "/v1/admin/system-credentials",
			tags: ["Admin"],
			summary: "Configure a system credential, shown read-only to every user",
			security: bearerSecurity,
			middleware: [authenticate(), requireScope("admin")],
			request: { body: { ...json(CreateBody), required: true } },
			responses: {
				201: { description: "Stored", headers: ETAG_HEADER, ...json(CredentialSchema) },
				...errorResponses(400, 401, 403),
			},
		}),
		async (c) => {
			const input = await toNewCredential(c, hooks, c.req.valid("json"), null);
			const row = await createCredential(c.get("services"), { ...input, system: true });
			recordAudit(c, {
				action: "credential.created",
				target: { type: "credential", id: row.id },
				userId: null,
				detail: { provider: row.provider, type: row.type, system: true },
			});
			return credentialResponse(c, row, 201);
		},
	);
}
