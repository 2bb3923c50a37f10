import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { html } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import { recordAudit } from "../audit/index.ts";
import {
	type AuthEnv,
	authenticate,
	requireScope,
	requireUser,
	userIdOf,
} from "../auth/middleware.ts";
import { CredentialSchema, etagOf, ProviderSlug } from "../credentials/schemas.ts";
import type { ConnectedAccount } from "../credentials/secrets.ts";
import { findVisible, saveOAuthCredential, toCredentialJson } from "../credentials/service.ts";
import { LatchkeyError } from "../errors.ts";
import type { AppEnv } from "../http/context.ts";
import { HOP_BY_HOP_HEADERS, NO_STORE } from "../http/headers.ts";
import { bearerSecurity, ErrorSchema, errorResponses, json, listOf } from "../http/openapi.ts";
import { decodeIdCursor, encodeIdCursor, ListQuery } from "../http/pagination.ts";
import type { Services } from "../services.ts";
import {
	CONNECT_ID_PATTERN,
	CONNECT_TTL_SECONDS,
	finishConnection,
	parkConnection,
} from "./connect.ts";
import type { ApiKeyProvider, EffectiveProvider } from "./providers.ts";
import { listProviderCatalog, putProvider } from "./registry.ts";
import { finishAuthorization, startAuthorization } from "./service.ts";
import { consumeState, STATE_TTL_SECONDS } from "./state.ts";

const ProviderId = ProviderSlug.openapi({ param: { name: "id", in: "path" }, example: "github" });

// RFC 6749 §3.3 scope-token: printable ASCII without space, '"' or '\'.
const Scope = z
	.string()
	.min(1)
	.max(256)
	.regex(
		/^[\x21\x23-\x5B\x5D-\x7E]+$/,
		"a scope token: printable ASCII without spaces, quotes or backslashes",
	);
const Scopes = z.array(Scope).max(100);
const HttpUrl = z
	.url({ protocol: /^https?$/ })
	.max(2048)
	.openapi({ description: "An absolute http(s) URL" });

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
/**
 * Headers an API key cannot ride: one hop's or the runtime's own (the proxy drops or overwrites
 * them; the same list as the proxy's) and cookies (never forwarded).
 */
const RESERVED_HEADERS = new Set([...HOP_BY_HOP_HEADERS, "cookie"]);

const ApiKeyPlacementSchema = z
	.discriminatedUnion("in", [
		z.strictObject({
			in: z.literal("header"),
			name: z
				.string()
				.regex(HEADER_NAME, "an HTTP header name")
				.refine((n) => !RESERVED_HEADERS.has(n.toLowerCase()), "a header the proxy sets itself"),
			prefix: z
				.string()
				.max(64)
				.regex(/^[\x20-\x7E]*$/, "printable ASCII")
				.default("")
				.openapi({ description: "Sent before the key, e.g. `Bearer ` (mind the space)" }),
		}),
		z.strictObject({
			in: z.literal("query"),
			name: z.string().regex(/^[A-Za-z0-9._~-]{1,128}$/, "a URL-safe query parameter name"),
		}),
	])
	.openapi("ApiKeyPlacement", {
		description:
			'How the authenticated proxy sends an API key of this provider: in a header (with an optional prefix) or as a query parameter. Default `{"in":"header","name":"Authorization","prefix":"Bearer "}`.',
	});

const ProviderSummarySchema = z
	.object({
		id: z.string().openapi({ example: "github" }),
		name: z.string().openapi({ example: "GitHub" }),
		auth_types: z.array(z.enum(["oauth2", "api_key"])),
		default_scopes: z.array(z.string()),
		configured: z.boolean().openapi({
			description:
				"Ready to use: for an OAuth2 provider, a client is set so users can connect it; always true for an API-key-only or managed provider (its auth_types lack `oauth2`: it is never connected through OAuth)",
		}),
		managed: z
			.boolean()
			.openapi({ description: "The platform provisions this provider's credentials itself" }),
	})
	.openapi("Provider");

const OAuthProviderConfigSchema = ProviderSummarySchema.extend({
	kind: z.literal("oauth2").openapi({ description: "An OAuth2 provider: users connect it" }),
	builtin: z.boolean().openapi({ description: "Endpoints are Latchkey's; only the client is set" }),
	authorize_url: z.string(),
	token_url: z.string(),
	revoke_url: z.string().nullable(),
	userinfo_url: z.string().nullable(),
	issuer: z.string().nullable(),
	scope_separator: z.string(),
	pkce: z.boolean(),
	client_auth: z.enum(["basic", "post"]),
	authorize_params: z.record(z.string(), z.string()),
	refresh_invalidates_access_token: z.boolean(),
	refresh_token_rotates: z.boolean(),
	api_base_url: z.string().nullable().openapi({
		description:
			"Where the authenticated proxy (`/v1/proxy/{credential_id}/{path}`) sends this provider's OAuth2 and API-key credentials; null: not proxied",
	}),
	api_key_placement: ApiKeyPlacementSchema,
	client_id: z.string().nullable(),
	client_source: z.enum(["admin", "env"]).nullable(),
	updated_at: z.string().nullable(),
}).openapi("OAuthProviderConfig", { description: "Never contains the client secret." });

const ApiKeyProviderConfigSchema = ProviderSummarySchema.extend({
	kind: z.literal("api_key").openapi({
		description:
			"An API-key-only provider: users store its keys as api_key credentials and call its API through the proxy; it has no OAuth endpoints or client and is never connected",
	}),
	builtin: z.literal(false),
	api_base_url: z.string().openapi({
		description:
			"Where the authenticated proxy (`/v1/proxy/{credential_id}/{path}`) sends this provider's API-key credentials",
	}),
	api_key_placement: ApiKeyPlacementSchema,
	updated_at: z.string(),
}).openapi("ApiKeyProviderConfig");

const ProviderConfigSchema = z
	.discriminatedUnion("kind", [OAuthProviderConfigSchema, ApiKeyProviderConfigSchema])
	.openapi("ProviderConfig", {
		description:
			"A registered provider: an OAuth2 provider (`kind: oauth2`) or an API-key-only one (`kind: api_key`). Never contains the client secret.",
	});

const ProviderPutSchema = z
	.strictObject({
		name: z.string().trim().min(1).max(200).optional(),
		authorize_url: HttpUrl.optional(),
		token_url: HttpUrl.optional(),
		revoke_url: HttpUrl.nullable().optional(),
		userinfo_url: HttpUrl.nullable().optional(),
		issuer: z.string().min(1).max(2048).nullable().optional().openapi({
			description: "RFC 9207 issuer; when set, authorization responses must carry it as `iss`",
		}),
		default_scopes: Scopes.optional(),
		scope_separator: z.string().min(1).max(4).optional().openapi({ example: " " }),
		pkce: z.boolean().optional(),
		client_auth: z.enum(["basic", "post"]).optional(),
		authorize_params: z
			.record(z.string().min(1).max(128), z.string().max(1024))
			.refine((p) => Object.keys(p).length <= 20, "at most 20 parameters")
			.optional(),
		client_id: z.string().trim().min(1).max(512).optional(),
		client_secret: z
			.string()
			.min(1)
			.max(4096)
			.optional()
			.openapi({ description: "Write-only; stored sealed" }),
		refresh_invalidates_access_token: z.boolean().optional(),
		refresh_token_rotates: z.boolean().optional(),
		api_base_url: z
			.url({ protocol: /^https?$/ })
			.max(2048)
			.nullable()
			.optional()
			.openapi({
				description:
					"The API root the authenticated proxy forwards this provider's OAuth2 and API-key credentials to: https, a public host, a path prefix at most (no query). Proxied paths stay below it.",
				example: "https://api.github.com",
			}),
		api_key_placement: ApiKeyPlacementSchema.nullable().optional(),
	})
	.openapi("ProviderPut", {
		description:
			"A custom id is one of two kinds. An OAuth2 provider: name, authorize_url, token_url, client_id and client_secret are required. An API-key-only provider (for the authenticated proxy): name and api_base_url, optionally api_key_placement, and none of the OAuth fields (authorize_url, token_url, revoke_url, userinfo_url, issuer, default_scopes, scope_separator, pkce, client_auth, authorize_params, refresh_invalidates_access_token, refresh_token_rotates, client_id, client_secret); a body with some OAuth fields but not all the required ones is a 400. A built-in id is always OAuth2 and takes the OAuth body with only client_id and client_secret required: every field sent overrides the built-in value (how GitHub Enterprise or a self-hosted GitLab is reached); a field left out, or null, keeps the built-in value.",
	});

const AuthorizeSchema = z
	.strictObject({
		scopes: Scopes.optional().openapi({ description: "Replace the provider's default scopes" }),
		credential_id: z.string().min(1).max(64).optional().openapi({
			description: "Scope upgrade of this credential: its scopes are kept and added to",
		}),
		redirect_uri: z.string().max(2048).optional().openapi({
			description:
				"Where the provider sends the user; default `{LATCHKEY_PUBLIC_URL}/v1/oauth/callback`. Its origin must be allowed.",
		}),
		return_to: z.string().max(2048).optional().openapi({
			description:
				"Where GET /v1/oauth/callback redirects afterwards with a one-time `connect_id=` (finish with POST /v1/oauth/connections/{connect_id}) or `error=`. Its origin must be allowed.",
		}),
	})
	.openapi("AuthorizeRequest");

const AuthorizationSchema = z
	.object({
		authorization_url: z.string(),
		state: z.string().openapi({ description: "Single use; carried back by the provider" }),
		expires_at: z.string().openapi({ format: "date-time" }),
	})
	.openapi("Authorization");

const CallbackQuery = z.object({
	code: z.string().max(4096).optional(),
	state: z.string().max(4096).optional(),
	iss: z.string().max(2048).optional(),
	error: z.string().max(256).optional(),
	error_description: z.string().max(2048).optional(),
});

const CallbackBody = z
	.strictObject({
		code: z.string().min(1).max(4096),
		state: z.string().min(1).max(4096),
		iss: z.string().min(1).max(2048).optional().openapi({
			description: "The `iss` of the authorization response, when the provider sent one",
		}),
	})
	.openapi("OAuthCallback");

// The credential object of API.md, as the credentials routes describe it.
function toSummary(p: EffectiveProvider | ApiKeyProvider) {
	if (p.kind === "api_key") {
		return {
			id: p.id,
			name: p.name,
			auth_types: ["api_key" as const],
			default_scopes: [] as string[],
			configured: true,
			managed: false,
		};
	}
	return {
		id: p.id,
		name: p.name,
		auth_types: ["oauth2" as const],
		default_scopes: p.defaultScopes,
		configured: p.configured,
		managed: false,
	};
}

function toConfigJson(p: EffectiveProvider | ApiKeyProvider): z.infer<typeof ProviderConfigSchema> {
	if (p.kind === "api_key") {
		return {
			...toSummary(p),
			kind: "api_key",
			builtin: false,
			api_base_url: p.apiBaseUrl,
			api_key_placement: p.apiKeyPlacement,
			updated_at: p.updatedAt.toISOString(),
		};
	}
	return {
		...toSummary(p),
		kind: "oauth2",
		builtin: p.builtin,
		authorize_url: p.authorizeUrl,
		token_url: p.tokenUrl,
		revoke_url: p.revokeUrl,
		userinfo_url: p.userinfoUrl,
		issuer: p.issuer,
		scope_separator: p.scopeSeparator,
		pkce: p.pkce,
		client_auth: p.clientAuth,
		authorize_params: p.authorizeParams,
		refresh_invalidates_access_token: p.refreshInvalidatesAccessToken,
		refresh_token_rotates: p.refreshTokenRotates,
		api_base_url: p.apiBaseUrl,
		api_key_placement: p.apiKeyPlacement,
		client_id: p.client?.clientId ?? null,
		client_source: p.client?.source ?? null,
		updated_at: p.updatedAt?.toISOString() ?? null,
	};
}

/** A page the browser lands on when the connection was started without a return_to. */
function resultPage(
	c: Context<AppEnv>,
	status: 200 | 400 | 502,
	title: string,
	body: string | HtmlEscapedString | Promise<HtmlEscapedString>,
) {
	c.header(
		"Content-Security-Policy",
		"default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
	);
	c.header("Cache-Control", "no-store");
	return c.html(
		html`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}</style></head>
<body><h1>${title}</h1>${typeof body === "string" ? html`<p>${body}</p>` : body}</body>
</html>
`,
		status,
	);
}

function withParams(target: string, params: Record<string, string>): string {
	const url = new URL(target);
	for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
	return url.href;
}

// The OAuth flow does not know the vault: here the routes decide that a connected account
// becomes a credential.
const keepAsCredential = (services: Services) => (account: ConnectedAccount) =>
	saveOAuthCredential(services, account);

/** A connect's credential: a new one, or one reconnected in place (a scope upgrade, new tokens). */
function recordConnected(c: Context, id: string, provider: string, created: boolean) {
	recordAudit(c, {
		action: created ? "credential.created" : "credential.updated",
		target: { type: "credential", id },
		detail: { provider, type: "oauth2", via: "oauth_connect", secret_changed: true },
	});
}

const anyPrincipal: MiddlewareHandler<AuthEnv>[] = [authenticate()];
const adminOnly: MiddlewareHandler<AuthEnv>[] = [authenticate(), requireScope("admin")];
const userWrite: MiddlewareHandler<AuthEnv>[] = [
	authenticate(),
	requireUser(),
	requireScope("credentials:write"),
];

const providersRoute = createRoute({
	method: "get",
	path: "/v1/providers",
	tags: ["OAuth"],
	summary: "Providers users can connect",
	security: bearerSecurity,
	middleware: anyPrincipal,
	request: { query: ListQuery },
	responses: {
		200: { description: "Providers", ...json(listOf(ProviderSummarySchema, "ProviderList")) },
		...errorResponses(400, 401, 429),
	},
});

const putProviderRoute = createRoute({
	method: "put",
	path: "/v1/admin/providers/{id}",
	tags: ["Admin", "OAuth"],
	summary:
		"Register or replace an OAuth2 or API-key-only provider, or set a built-in provider's client",
	security: bearerSecurity,
	middleware: adminOnly,
	request: {
		params: z.object({ id: ProviderId }),
		body: { ...json(ProviderPutSchema), required: true },
	},
	responses: {
		200: { description: "The provider (without its client secret)", ...json(ProviderConfigSchema) },
		...errorResponses(400, 401, 403, 409),
	},
});

const authorizeRoute = createRoute({
	method: "post",
	path: "/v1/oauth/{provider}/authorize",
	tags: ["OAuth"],
	summary: "Start connecting an account: get the URL to send the user to",
	security: bearerSecurity,
	middleware: userWrite,
	request: {
		params: z.object({
			provider: ProviderId.openapi({ param: { name: "provider", in: "path" } }),
		}),
		body: { ...json(AuthorizeSchema), required: false },
	},
	responses: {
		200: {
			description: `The authorization URL and its state (single use, ${STATE_TTL_SECONDS / 60} minutes)`,
			...json(AuthorizationSchema),
		},
		...errorResponses(400, 401, 403, 404),
	},
});

const callbackGetRoute = createRoute({
	method: "get",
	path: "/v1/oauth/callback",
	tags: ["OAuth"],
	summary: "Where the provider sends the user back (no authentication: the state names the user)",
	description: `Exchanges the code and **parks** the provider's answer (sealed, single use, ${CONNECT_TTL_SECONDS / 60} minutes): nothing is stored on the account yet, since whoever logged in at the provider may not be the user who started. Then redirects to the request's return_to with a one-time \`connect_id=\`, which the user who started finishes with POST /v1/oauth/connections/{connect_id}, or with \`error=\` (e.g. \`access_denied\`: nothing was parked). Without a return_to, answers a short HTML page giving the connect_id and that POST. An unknown, expired or replayed state is a 400 \`invalid_state\` in JSON.`,
	request: { query: CallbackQuery },
	responses: {
		302: {
			description: "To return_to with `connect_id=` or `error=`",
			headers: z.object({ Location: z.string() }),
		},
		200: {
			description:
				"Parked (no return_to): a page giving the connect_id and how to finish. Not yet connected.",
			content: { "text/html": { schema: z.string() } },
		},
		400: {
			description: "`invalid_state` (JSON), or a refused authorization (HTML, no return_to)",
			content: {
				"application/json": { schema: ErrorSchema },
				"text/html": { schema: z.string() },
			},
		},
		502: {
			description: "The provider failed (HTML, no return_to)",
			content: { "text/html": { schema: z.string() } },
		},
	},
});

const callbackPostRoute = createRoute({
	method: "post",
	path: "/v1/oauth/callback",
	tags: ["OAuth"],
	summary: "Complete a connection whose redirect reached the platform's own front end",
	security: bearerSecurity,
	middleware: userWrite,
	request: { body: { ...json(CallbackBody), required: true } },
	responses: {
		201: { description: "The stored credential", ...json(CredentialSchema) },
		...errorResponses(400, 401, 403, 404, 502),
	},
});

const ConnectId = z
	.string()
	.regex(CONNECT_ID_PATTERN, "not a connect_id")
	.openapi({
		param: { name: "connect_id", in: "path" },
		description: "The one-time id GET /v1/oauth/callback gave the browser",
		example: "4f9QbX2mT7aLkP0sVd1eR8nY3cW6hJ5u",
	});

const finalizeRoute = createRoute({
	method: "post",
	path: "/v1/oauth/connections/{connect_id}",
	tags: ["OAuth"],
	summary: "Finish a browser connection: store the account parked by GET /v1/oauth/callback",
	description: `Only with a token of the user who started the connection (POST /v1/oauth/{provider}/authorize), so that a provider login made in somebody else's browser never lands on that user's account. Stores the account like the callback used to: a scope upgrade (credential_id) or a reconnect of the same provider account with a superset of scopes updates that credential in place. Single use. An unknown, expired (${CONNECT_TTL_SECONDS / 60} minutes after the callback) or already used connect_id is 404 \`not_found\`, and so is another user's, which stays usable by its owner. When the account cannot be stored, its tokens are revoked at the provider.`,
	security: bearerSecurity,
	middleware: userWrite,
	request: { params: z.object({ connect_id: ConnectId }) },
	responses: {
		201: { description: "The stored credential", ...json(CredentialSchema) },
		...errorResponses(401, 403, 404, 409, 503),
	},
});

/**
 * What a capability above oauth/ adds to its routes. managed/ imports oauth/ (a provisioner may
 * not take an OAuth provider's id), never the reverse, so src/app.ts hands GET /v1/providers the
 * managed providers it lists beside the OAuth ones.
 */
export interface OAuthRouteHooks {
	/** The managed providers this deployment provisions now (id and display name). managed/. */
	managedProviders: (services: Services) => Promise<readonly { id: string; name: string }[]>;
}

export function registerOAuthRoutes(app: OpenAPIHono<AppEnv>, hooks: OAuthRouteHooks): void {
	const authed = app as unknown as OpenAPIHono<AuthEnv>;

	authed.openapi(providersRoute, async (c) => {
		const { limit, cursor } = c.req.valid("query");
		const after = cursor === undefined ? undefined : decodeIdCursor(cursor);
		const services = c.get("services");
		// Managed providers are listed beside the OAuth ones: users do not connect them, the
		// platform provisions their credentials (an api_key each).
		const [{ oauth, apiKey }, managed] = await Promise.all([
			listProviderCatalog(services),
			hooks.managedProviders(services),
		]);
		// API-key-only providers too (auth_types ["api_key"]): users store keys for them, never
		// connect them.
		const all: z.infer<typeof ProviderSummarySchema>[] = [
			...oauth.map(toSummary),
			...apiKey.map(toSummary),
			...managed.map((p) => ({
				id: p.id,
				name: p.name,
				auth_types: ["api_key" as const],
				default_scopes: [] as string[],
				configured: true,
				managed: true,
			})),
		].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
		const rest = after === undefined ? all : all.filter((p) => p.id > after);
		const page = rest.slice(0, limit);
		const last = page[page.length - 1];
		return c.json(
			{
				data: page,
				next_cursor: rest.length > limit && last ? encodeIdCursor(last.id) : null,
			},
			200,
		);
	});

	authed.openapi(putProviderRoute, async (c) => {
		const { id } = c.req.valid("param");
		const body = c.req.valid("json");
		const provider = await putProvider(c.get("services"), id, {
			name: body.name,
			authorizeUrl: body.authorize_url,
			tokenUrl: body.token_url,
			revokeUrl: body.revoke_url,
			userinfoUrl: body.userinfo_url,
			issuer: body.issuer,
			defaultScopes: body.default_scopes,
			scopeSeparator: body.scope_separator,
			pkce: body.pkce,
			clientAuth: body.client_auth,
			authorizeParams: body.authorize_params,
			refreshInvalidatesAccessToken: body.refresh_invalidates_access_token,
			refreshTokenRotates: body.refresh_token_rotates,
			apiBaseUrl: body.api_base_url,
			apiKeyPlacement: body.api_key_placement,
			clientId: body.client_id,
			clientSecret: body.client_secret,
		});
		recordAudit(c, {
			action: "provider.updated",
			target: { type: "provider", id },
			userId: null,
			// Names of the fields sent, never their values (one is the client secret).
			detail: {
				kind: provider.kind === "api_key" ? "api_key" : "oauth",
				fields: Object.keys(body).sort(),
			},
		});
		return c.json(toConfigJson(provider), 200);
	});

	authed.openapi(authorizeRoute, async (c) => {
		const services = c.get("services");
		const userId = userIdOf(c);
		const body = c.req.valid("json") ?? {};
		const started = await startAuthorization(
			services,
			{
				userId,
				providerId: c.req.valid("param").provider,
				scopes: body.scopes,
				credentialId: body.credential_id,
				redirectUri: body.redirect_uri,
				returnTo: body.return_to,
			},
			(id) => findVisible(services, userId, id),
		);
		return c.json(
			{
				authorization_url: started.authorizationUrl,
				state: started.state,
				expires_at: started.expiresAt.toISOString(),
			},
			200,
			NO_STORE,
		);
	});

	app.openapi(callbackGetRoute, async (c) => {
		const services = c.get("services");
		const { state } = c.req.valid("query");
		if (!state) {
			throw new LatchkeyError("invalid_state", "The callback carries no OAuth state.", {
				hint: "Start again with POST /v1/oauth/{provider}/authorize.",
			});
		}
		const record = await consumeState(services, state);
		// This request carries no credential: it comes from whichever browser logged in at the
		// provider. So the account is parked for the user who started, not stored.
		const outcome = await finishAuthorization(
			services,
			state,
			record,
			new URL(c.req.url).searchParams,
			(account) => parkConnection(services, account),
		);
		c.header("Cache-Control", "no-store");
		if (record.return_to) {
			const target = outcome.ok
				? withParams(record.return_to, { connect_id: outcome.kept.connectId })
				: withParams(record.return_to, { error: outcome.error });
			return c.redirect(target, 302);
		}
		if (outcome.ok) {
			const { connectId } = outcome.kept;
			return resultPage(
				c,
				200,
				"One more step",
				html`<p>The provider has answered. Nothing is stored yet: to finish, the application that started this connection sends, within ${CONNECT_TTL_SECONDS / 60} minutes and with the token of the Latchkey user who started it:</p>
<pre><code>POST /v1/oauth/connections/${connectId}</code></pre>
<p>If you did not start this yourself, close this window and give this code to no one.</p>`,
			);
		}
		return resultPage(
			c,
			outcome.failure.status === 502 ? 502 : 400,
			"Connection failed",
			outcome.failure.message,
		);
	});

	authed.openapi(callbackPostRoute, async (c) => {
		const services = c.get("services");
		const userId = userIdOf(c);
		const { code, state, iss } = c.req.valid("json");
		const record = await consumeState(services, state, { userId });
		// Bound already: consumeState refused a state that is not this caller's.
		const outcome = await finishAuthorization(
			services,
			state,
			record,
			new URLSearchParams({ code, state, ...(iss === undefined ? {} : { iss }) }),
			keepAsCredential(services),
		);
		if (!outcome.ok) throw outcome.failure;
		const row = await findVisible(services, userId, outcome.kept.id);
		recordConnected(c, row.id, row.provider, outcome.kept.created);
		// Like every response holding one credential, it carries the ETag of that version.
		return c.json(toCredentialJson(row), 201, { ...NO_STORE, ETag: etagOf(row) });
	});

	// The authenticated half of a browser connect. When the console exists, a console session of
	// the same user in the completing browser may finalize directly (API.md): the GET callback
	// would then check that session's cookie against the state's user and call finishConnection
	// itself, sparing the extra POST; without such a session it stays as it is here.
	authed.openapi(finalizeRoute, async (c) => {
		const services = c.get("services");
		const userId = userIdOf(c);
		const saved = await finishConnection(
			services,
			c.req.valid("param").connect_id,
			userId,
			keepAsCredential(services),
		);
		const row = await findVisible(services, userId, saved.id);
		recordConnected(c, row.id, row.provider, saved.created);
		return c.json(toCredentialJson(row), 201, { ...NO_STORE, ETag: etagOf(row) });
	});
}
