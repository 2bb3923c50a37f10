import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { recordAudit } from "../audit/index.ts";
import type { ApiKeyRow } from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import type { AppEnv } from "../http/context.ts";
import { NO_STORE } from "../http/headers.ts";
import {
	bearerSecurity,
	errorResponses,
	idParam,
	json,
	KeyIdParam,
	listOf,
} from "../http/openapi.ts";
import { cursorFrom, ListQuery, mapPage, paginate } from "../http/pagination.ts";
import { getChangeableUser } from "../user-records.ts";
import {
	assertLegacyNotSunset,
	createApiKey,
	importLegacyKey,
	listApiKeys,
	resolveScopes,
	revokeApiKey,
	rollApiKey,
	verifyPresentedKey,
} from "./api-keys.ts";
import { publicJwks } from "./jwt.ts";
import {
	type AuthEnv,
	authenticate,
	countFailure,
	legacyKeyHeaders,
	requireScope,
	requireUser,
	userIdOf,
} from "./middleware.ts";
import type { Principal } from "./principal.ts";
import { SCOPES } from "./scopes.ts";
import {
	inactiveUserGrantError,
	refreshSession,
	revokeByRefreshToken,
	startSession,
} from "./sessions.ts";

const ScopeEnum = z.enum(SCOPES);
const iso = (d: Date | null) => (d ? d.toISOString() : null);

const ApiKeySchema = z
	.object({
		id: z.string(),
		name: z.string(),
		scopes: z.array(ScopeEnum),
		kind: z.enum(["standard", "legacy"]),
		created_at: z.string(),
		expires_at: z.string().nullable(),
		last_used_at: z.string().nullable(),
	})
	.openapi("ApiKey");

const NewApiKeySchema = ApiKeySchema.extend({
	key: z.string().openapi({ description: "The key itself. Shown in this response only." }),
}).openapi("NewApiKey");

function toKeyJson(row: ApiKeyRow) {
	return {
		id: row.id,
		name: row.name,
		scopes: row.scopes.filter((s): s is z.infer<typeof ScopeEnum> =>
			(SCOPES as readonly string[]).includes(s),
		),
		kind: row.kind,
		created_at: row.createdAt.toISOString(),
		expires_at: iso(row.expiresAt),
		last_used_at: iso(row.lastUsedAt),
	};
}

const CreateKeyBody = z
	.object({
		name: z.string().trim().min(1).max(200),
		scopes: z
			.array(ScopeEnum)
			.max(SCOPES.length * 2)
			.optional()
			.openapi({
				description:
					"Scopes of the new key, each one the creator holds (`admin` never); default: every scope of the creator but `admin`. An unknown name is 400 `invalid_request`.",
			}),
		expires_at: z.iso.datetime({ offset: true }).optional(),
	})
	.strict()
	.openapi("CreateApiKey");

const TokenBody = z
	.discriminatedUnion("grant_type", [
		z.object({ grant_type: z.literal("api_key"), api_key: z.string().min(1).max(512) }).strict(),
		z
			.object({ grant_type: z.literal("refresh_token"), refresh_token: z.string().min(1).max(512) })
			.strict(),
	])
	.openapi("TokenRequest");

const TokenResponse = z
	.object({
		access_token: z.string(),
		token_type: z.literal("Bearer"),
		expires_in: z.number().int(),
		refresh_token: z.string(),
		refresh_expires_in: z.number().int(),
		scope: z.string(),
	})
	.openapi("TokenResponse");

const UserIdParam = idParam("user_id");

function parseExpiry(value: string | undefined, now: Date): Date | null {
	if (value === undefined) return null;
	const at = new Date(value);
	if (at <= now) {
		throw new LatchkeyError("invalid_request", "expires_at must be in the future.", {
			detail: [{ field: "expires_at", location: "json", message: "must be in the future" }],
		});
	}
	return at;
}

async function issueKey(
	c: Context<AuthEnv>,
	creator: Principal,
	userId: string,
	body: z.infer<typeof CreateKeyBody>,
) {
	const { db, now } = c.get("services");
	const scopes = resolveScopes(creator, body.scopes);
	const created = await createApiKey(db, {
		userId,
		name: body.name,
		scopes,
		expiresAt: parseExpiry(body.expires_at, now()),
	});
	recordAudit(c, {
		action: "api_key.created",
		target: { type: "api_key", id: created.row.id },
		userId,
		detail: { scopes: created.row.scopes, expires_at: created.row.expiresAt?.toISOString() },
	});
	return c.json({ ...toKeyJson(created.row), key: created.key }, 201, NO_STORE);
}

export function registerAuthRoutes(app: OpenAPIHono<AppEnv>): void {
	const authed = app as unknown as OpenAPIHono<AuthEnv>;

	authed.openapi(
		createRoute({
			method: "post",
			path: "/v1/auth/token",
			tags: ["Auth"],
			summary: "Exchange an API key, or rotate a refresh token, for an access token",
			request: { body: { ...json(TokenBody), required: true } },
			responses: {
				200: {
					description:
						"A token pair. Exchanging a legacy (sk-…) key adds `Deprecation: @<unix seconds of its import>` and, when LEGACY_KEYS_SUNSET is set, `Sunset: <HTTP-date>`.",
					headers: z.object({
						Deprecation: z.string().optional().openapi({ example: "@1735689600" }),
						Sunset: z.string().optional().openapi({ example: "Wed, 01 Jul 2026 00:00:00 GMT" }),
					}),
					...json(TokenResponse),
				},
				...errorResponses(400, 401, 403, 429),
			},
		}),
		async (c) => {
			const services = c.get("services");
			const body = c.req.valid("json");
			const now = services.now();
			try {
				if (body.grant_type === "refresh_token") {
					const pair = await refreshSession(
						services.txDb,
						services.config,
						body.refresh_token,
						now,
						(session) =>
							recordAudit(c, {
								action: "session.refresh_token_reused",
								outcome: "denied",
								target: { type: "session", id: session.id },
								actor: {
									method: "refresh_token",
									userId: session.userId,
									keyId: null,
									sessionId: session.id,
								},
								detail: { revoked: true },
							}),
					);
					return c.json(pair, 200, NO_STORE);
				}
				const check = await verifyPresentedKey(services.db, body.api_key, now, true);
				if (!check?.ok) {
					if (check?.reason === "inactive_user") throw inactiveUserGrantError(check.userStatus);
					throw new LatchkeyError("invalid_grant", "Invalid API key.");
				}
				if (check.key.kind === "legacy") assertLegacyNotSunset(services.config, now);
				const pair = await startSession(
					services.db,
					services.config,
					{ userId: check.key.userId, apiKeyId: check.key.id, scopes: check.key.scopes },
					now,
				);
				const deprecation =
					check.key.kind === "legacy" ? legacyKeyHeaders(services.config, check.key.createdAt) : {};
				return c.json(pair, 200, { ...NO_STORE, ...deprecation });
			} catch (err) {
				if (err instanceof LatchkeyError && err.status === 401) {
					await countFailure(services, c.req.header("cf-connecting-ip"));
				}
				throw err;
			}
		},
	);

	authed.openapi(
		createRoute({
			method: "post",
			path: "/v1/auth/revoke",
			tags: ["Auth"],
			summary: "Revoke the session of a refresh token (no bearer needed)",
			request: {
				body: {
					...json(z.object({ refresh_token: z.string().min(1).max(512) }).strict()),
					required: true,
				},
			},
			responses: {
				200: {
					description: "Revoked (also when the token was unknown, per RFC 7009)",
					...json(z.object({ revoked: z.boolean() })),
				},
				...errorResponses(400),
			},
		}),
		async (c) => {
			const { db, now } = c.get("services");
			const ended = await revokeByRefreshToken(db, c.req.valid("json").refresh_token, now());
			if (ended) {
				recordAudit(c, {
					action: "session.revoked",
					target: { type: "session", id: ended.sessionId },
					actor: {
						method: "refresh_token",
						userId: ended.userId,
						keyId: null,
						sessionId: ended.sessionId,
					},
				});
			}
			return c.json({ revoked: true }, 200);
		},
	);

	authed.openapi(
		createRoute({
			method: "get",
			path: "/.well-known/jwks.json",
			tags: ["Auth"],
			summary: "Public keys of every accepted access-token signing key",
			responses: {
				200: {
					description: "JWK set",
					...json(z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).openapi("JWKS")),
				},
			},
		}),
		async (c) =>
			c.json(await publicJwks(c.get("services").config), 200, {
				"Cache-Control": "public, max-age=300",
			}),
	);

	authed.openapi(
		createRoute({
			method: "get",
			path: "/v1/whoami",
			tags: ["Auth"],
			summary: "The authenticated principal (no I/O beyond authentication)",
			security: bearerSecurity,
			middleware: [authenticate()] as const,
			responses: {
				200: {
					description: "The caller",
					...json(
						z
							.object({
								user_id: z.string().nullable(),
								method: z.string(),
								scopes: z.array(z.string()),
								session_id: z.string().nullable(),
							})
							.openapi("Principal"),
					),
				},
				...errorResponses(401, 403, 429),
			},
		}),
		(c) => {
			const p = c.get("principal");
			return c.json(
				{ user_id: p.userId, method: p.method, scopes: p.scopes, session_id: p.sessionId ?? null },
				200,
			);
		},
	);

	const keysWrite: MiddlewareHandler<AuthEnv>[] = [
		authenticate(),
		requireUser(),
		requireScope("keys:write"),
	];

	authed.openapi(
		createRoute({
			method: "post",
			path: "/v1/api-keys",
			tags: ["API keys"],
			summary: "Create an API key for yourself",
			security: bearerSecurity,
			middleware: keysWrite,
			request: { body: { ...json(CreateKeyBody), required: true } },
			responses: {
				201: { description: "The new key (shown once)", ...json(NewApiKeySchema) },
				...errorResponses(400, 401, 403),
			},
		}),
		async (c) => {
			const principal = c.get("principal");
			return issueKey(c, principal, userIdOf(c), c.req.valid("json"));
		},
	);

	authed.openapi(
		createRoute({
			method: "get",
			path: "/v1/api-keys",
			tags: ["API keys"],
			summary: "List your active API keys (never the keys themselves)",
			security: bearerSecurity,
			middleware: keysWrite,
			request: { query: ListQuery },
			responses: {
				200: { description: "Keys", ...json(listOf(ApiKeySchema, "ApiKeyList")) },
				...errorResponses(400, 401, 403),
			},
		}),
		async (c) => {
			const query = c.req.valid("query");
			const rows = await listApiKeys(c.get("services").db, userIdOf(c), {
				limit: query.limit,
				after: cursorFrom(query),
			});
			return c.json(mapPage(paginate(rows, query.limit), toKeyJson), 200);
		},
	);

	authed.openapi(
		createRoute({
			method: "delete",
			path: "/v1/api-keys/{id}",
			tags: ["API keys"],
			summary: "Revoke an API key and every session obtained from it, effective at once",
			security: bearerSecurity,
			middleware: keysWrite,
			request: { params: KeyIdParam },
			responses: { 204: { description: "Revoked" }, ...errorResponses(401, 403, 404) },
		}),
		async (c) => {
			const { db, now } = c.get("services");
			const { id } = c.req.valid("param");
			await revokeApiKey(db, userIdOf(c), id, now());
			recordAudit(c, { action: "api_key.revoked", target: { type: "api_key", id } });
			return c.body(null, 204);
		},
	);

	authed.openapi(
		createRoute({
			method: "post",
			path: "/v1/api-keys/{id}/roll",
			tags: ["API keys"],
			summary: "Replace a key; the old one keeps working for grace_seconds",
			security: bearerSecurity,
			middleware: keysWrite,
			request: {
				params: KeyIdParam,
				body: {
					...json(
						z.object({ grace_seconds: z.number().int().min(0).max(86_400).optional() }).strict(),
					),
					required: false,
				},
			},
			responses: {
				201: { description: "The new key (shown once)", ...json(NewApiKeySchema) },
				...errorResponses(400, 401, 403, 404),
			},
		}),
		async (c) => {
			const { txDb, now } = c.get("services");
			const grace = c.req.valid("json")?.grace_seconds ?? 0;
			const { id } = c.req.valid("param");
			const created = await rollApiKey(txDb, c.get("principal"), id, grace, now());
			recordAudit(c, {
				action: "api_key.rolled",
				target: { type: "api_key", id: created.row.id },
				detail: { rolled_from: id, grace_seconds: grace },
			});
			return c.json({ ...toKeyJson(created.row), key: created.key }, 201, NO_STORE);
		},
	);

	const admin: MiddlewareHandler<AuthEnv>[] = [authenticate(), requireScope("admin")];

	authed.openapi(
		createRoute({
			method: "post",
			path: "/v1/admin/users/{user_id}/api-keys",
			tags: ["Admin"],
			summary: "Issue an API key for a user",
			security: bearerSecurity,
			middleware: admin,
			request: { params: UserIdParam, body: { ...json(CreateKeyBody), required: true } },
			responses: {
				201: { description: "The new key (shown once)", ...json(NewApiKeySchema) },
				...errorResponses(400, 401, 403, 404, 409),
			},
		}),
		async (c) => {
			const { user_id } = c.req.valid("param");
			await getChangeableUser(c.get("services").db, user_id);
			return issueKey(c, c.get("principal"), user_id, c.req.valid("json"));
		},
	);

	authed.openapi(
		createRoute({
			method: "post",
			path: "/v1/admin/users/{user_id}/api-keys/import",
			tags: ["Admin"],
			summary: "Import a legacy (sk-…) key for a user; stored hashed",
			security: bearerSecurity,
			middleware: admin,
			request: {
				params: UserIdParam,
				body: {
					...json(
						z
							.object({ key: z.string().min(1).max(256), name: z.string().trim().min(1).max(200) })
							.strict(),
					),
					required: true,
				},
			},
			responses: {
				201: { description: "Imported", ...json(ApiKeySchema) },
				...errorResponses(400, 401, 403, 404, 409),
			},
		}),
		async (c) => {
			const { user_id } = c.req.valid("param");
			await getChangeableUser(c.get("services").db, user_id);
			const body = c.req.valid("json");
			const row = await importLegacyKey(c.get("services").db, {
				userId: user_id,
				name: body.name,
				key: body.key,
			});
			recordAudit(c, {
				action: "api_key.imported",
				target: { type: "api_key", id: row.id },
				userId: user_id,
				detail: { kind: "legacy", scopes: row.scopes },
			});
			return c.json(toKeyJson(row), 201);
		},
	);
}
