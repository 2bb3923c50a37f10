import { and, eq } from "drizzle-orm";
import { getKeyRing, open, providerAad, seal } from "../crypto/envelope.ts";
import {
	type ApiKeyPlacement,
	credentials,
	type OAuthProviderRow,
	oauthProviders,
} from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import { outboundUrlProblem } from "../http/outbound.ts";
import type { Services } from "../services.ts";
import { apiBaseUrlProblem } from "./api-target.ts";
import {
	type ApiKeyProvider,
	apiKeyProviderOf,
	BUILTIN_PROVIDERS,
	builtinProvider,
	type ClientAuthMethod,
	type EffectiveProvider,
	effectiveProvider,
	isApiKeyOnlyRow,
	type OpenSecret,
	sealedSecretOf,
} from "./providers.ts";

/** The provider table is small (built-ins plus a few custom ids), so it is read whole. */

function secretOpener(services: Services): OpenSecret {
	return async (row) =>
		open(
			await getKeyRing(services.config),
			sealedSecretOf(row),
			providerAad(row.id),
			`OAuth provider ${row.id}`,
		);
}

const unknownProvider = (id: string) =>
	new LatchkeyError("not_found", `No OAuth provider '${id}'.`, {
		hint: "GET /v1/providers lists the providers; an admin registers others with PUT /v1/admin/providers/{id}.",
	});

/** The detail by which every OAuth use of an API-key-only provider is refused (400). */
export const API_KEY_ONLY_MESSAGE = "an API-key-only provider, with no OAuth endpoints or client";

/** The refusals made below, known by identity rather than by their text. */
const apiKeyOnlyErrors = new WeakSet<LatchkeyError>();

function apiKeyOnly(id: string): LatchkeyError {
	const err = new LatchkeyError(
		"invalid_request",
		`The provider '${id}' is API-key only: it has no OAuth.`,
		{
			hint: `Store its key as an api_key credential (POST /v1/credentials, "provider": "${id}") and call its API through /v1/proxy/{credential_id}/…; only providers whose auth_types include oauth2 can be connected.`,
			detail: [{ field: "provider", location: "path", message: API_KEY_ONLY_MESSAGE }],
		},
	);
	apiKeyOnlyErrors.add(err);
	return err;
}

/** Whether `err` is the refusal of an OAuth use of an API-key-only provider. */
export function isApiKeyOnlyError(err: unknown): boolean {
	return err instanceof LatchkeyError && apiKeyOnlyErrors.has(err);
}

/**
 * The effective OAuth configuration of one provider; `not_found` for an id that names none, 400
 * `invalid_request` for an API-key-only provider (it cannot be connected, refreshed or revoked).
 */
export async function resolveProvider(services: Services, id: string): Promise<EffectiveProvider> {
	const [row] = await services.db
		.select()
		.from(oauthProviders)
		.where(eq(oauthProviders.id, id))
		.limit(1);
	if (row && isApiKeyOnlyRow(row)) throw apiKeyOnly(id);
	const provider = effectiveProvider(id, row, services.config, secretOpener(services));
	if (!provider) throw unknownProvider(id);
	return provider;
}

/** Every provider, OAuth (built-in and custom) and API-key-only, each ordered by id. */
export async function listProviderCatalog(
	services: Services,
): Promise<{ oauth: EffectiveProvider[]; apiKey: ApiKeyProvider[] }> {
	const rows = await services.db.select().from(oauthProviders);
	const apiKey = rows
		.filter(isApiKeyOnlyRow)
		.map(apiKeyProviderOf)
		.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
	const byId = new Map(rows.filter((r) => !isApiKeyOnlyRow(r)).map((r) => [r.id, r]));
	const ids = new Set([...BUILTIN_PROVIDERS.map((p) => p.id), ...byId.keys()]);
	const opener = secretOpener(services);
	const oauth = [...ids]
		.sort()
		.map((id) => effectiveProvider(id, byId.get(id), services.config, opener))
		.filter((p): p is EffectiveProvider => p !== null);
	return { oauth, apiKey };
}

/** Every OAuth provider, built-in and custom, ordered by id. */
export async function listProviders(services: Services): Promise<EffectiveProvider[]> {
	return (await listProviderCatalog(services)).oauth;
}

export interface ProviderInput {
	name?: string;
	authorizeUrl?: string;
	tokenUrl?: string;
	revokeUrl?: string | null;
	userinfoUrl?: string | null;
	issuer?: string | null;
	defaultScopes?: string[];
	scopeSeparator?: string;
	pkce?: boolean;
	clientAuth?: ClientAuthMethod;
	authorizeParams?: Record<string, string>;
	refreshInvalidatesAccessToken?: boolean;
	refreshTokenRotates?: boolean;
	/** Where the authenticated proxy sends this provider's credentials (docs/proxy.md). */
	apiBaseUrl?: string | null;
	apiKeyPlacement?: ApiKeyPlacement | null;
	clientId?: string;
	clientSecret?: string;
}

/** The contract's names for the fields, so problems point at what the caller sent. */
const FIELD_NAMES: Record<keyof ProviderInput, string> = {
	name: "name",
	authorizeUrl: "authorize_url",
	tokenUrl: "token_url",
	revokeUrl: "revoke_url",
	userinfoUrl: "userinfo_url",
	issuer: "issuer",
	defaultScopes: "default_scopes",
	scopeSeparator: "scope_separator",
	pkce: "pkce",
	clientAuth: "client_auth",
	authorizeParams: "authorize_params",
	refreshInvalidatesAccessToken: "refresh_invalidates_access_token",
	refreshTokenRotates: "refresh_token_rotates",
	apiBaseUrl: "api_base_url",
	apiKeyPlacement: "api_key_placement",
	clientId: "client_id",
	clientSecret: "client_secret",
};

type Problem = { field: string; message: string };

/** The fields that only an OAuth2 provider has: a custom id takes all it needs of them, or none. */
const OAUTH_FIELDS = [
	"authorizeUrl",
	"tokenUrl",
	"revokeUrl",
	"userinfoUrl",
	"issuer",
	"defaultScopes",
	"scopeSeparator",
	"pkce",
	"clientAuth",
	"authorizeParams",
	"refreshInvalidatesAccessToken",
	"refreshTokenRotates",
	"clientId",
	"clientSecret",
] as const satisfies readonly (keyof ProviderInput)[];

/** What an OAuth2 provider cannot do without. */
const OAUTH_REQUIRED = ["authorizeUrl", "tokenUrl", "clientId", "clientSecret"] as const;

/**
 * Registers or replaces a provider. A custom id is either an OAuth2 provider, with its endpoints
 * and client, or, when the body carries no OAuth field at all, an API-key-only provider: a name
 * and an api_base_url (and api_key_placement), for the proxy. Half of an OAuth2 provider is a 400.
 * A built-in id takes the OAuth body with only the client required: what is sent overrides the
 * built-in description (how GitHub Enterprise or a self-hosted GitLab is reached), and what is
 * left out (or null) keeps the built-in value, so a body of only client_id and client_secret sets
 * the client and nothing else.
 */
export async function putProvider(
	services: Services,
	id: string,
	input: ProviderInput,
): Promise<EffectiveProvider | ApiKeyProvider> {
	const builtin = builtinProvider(id);
	const problems: Problem[] = [];
	const oauthSent = OAUTH_FIELDS.filter((key) => input[key] !== undefined && input[key] !== null);
	const apiKeyOnly = !builtin && oauthSent.length === 0;
	if (apiKeyOnly) {
		if (input.name === undefined) problems.push({ field: "name", message: "required" });
		if (!input.apiBaseUrl) {
			problems.push({
				field: FIELD_NAMES.apiBaseUrl,
				message:
					"required for an API-key-only provider (one sent without OAuth fields); an OAuth2 provider needs authorize_url, token_url, client_id and client_secret",
			});
		}
	} else {
		const required = builtin ? (["clientId", "clientSecret"] as const) : OAUTH_REQUIRED;
		if (!builtin && input.name === undefined) problems.push({ field: "name", message: "required" });
		for (const key of required) {
			if (input[key] === undefined) {
				problems.push({
					field: FIELD_NAMES[key],
					message: builtin
						? "required"
						: `required with ${oauthSent.map((k) => FIELD_NAMES[k]).join(", ")}: an OAuth2 provider takes authorize_url, token_url, client_id and client_secret together (an API-key-only provider takes none of the OAuth fields)`,
				});
			}
		}
	}
	if (problems.length) {
		throw new LatchkeyError("invalid_request", "The provider definition is invalid.", {
			detail: problems.map((p) => ({ ...p, location: "json" })),
		});
	}
	// The browser follows authorize_url, Latchkey calls the others: all must be safe to reach.
	for (const key of ["authorizeUrl", "tokenUrl", "revokeUrl", "userinfoUrl"] as const) {
		const problem = input[key] ? outboundUrlProblem(input[key], services.config) : null;
		if (problem) problems.push({ field: FIELD_NAMES[key], message: problem });
	}
	// The proxy sends users' secrets there: its own rule (https, public; loopback only when the
	// deployment allows the proxy loopback), checked again before every proxied call.
	const apiBaseProblem = input.apiBaseUrl
		? apiBaseUrlProblem(input.apiBaseUrl, services.config)
		: null;
	if (apiBaseProblem) problems.push({ field: FIELD_NAMES.apiBaseUrl, message: apiBaseProblem });
	if (problems.length) {
		throw new LatchkeyError(
			"invalid_request",
			"The provider's URLs are not ones Latchkey will call.",
			{
				hint: "Use https URLs on public hosts (docs/security.md, 'Outbound calls').",
				detail: problems.map((p) => ({ ...p, location: "json" })),
			},
		);
	}

	if (apiKeyOnly) return putApiKeyProvider(services, id, input);
	const ring = await getKeyRing(services.config);
	const sealed = await seal(ring, input.clientSecret as string, providerAad(id));
	const now = services.now();
	const values: typeof oauthProviders.$inferInsert = builtin
		? {
				id,
				builtin: true,
				name: input.name ?? builtin.name,
				// Null (and empty, for lists and maps) means "the built-in value", so what was not
				// overridden follows code updates.
				authorizeUrl: input.authorizeUrl ?? null,
				tokenUrl: input.tokenUrl ?? null,
				revokeUrl: input.revokeUrl ?? null,
				userinfoUrl: input.userinfoUrl ?? null,
				issuer: input.issuer ?? null,
				defaultScopes: input.defaultScopes ?? [],
				scopeSeparator: input.scopeSeparator ?? builtin.scopeSeparator,
				pkce: input.pkce ?? builtin.pkce,
				clientAuth: input.clientAuth ?? builtin.clientAuth,
				authorizeParams: input.authorizeParams ?? {},
				refreshInvalidatesAccessToken:
					input.refreshInvalidatesAccessToken ?? builtin.refreshInvalidatesAccessToken,
				refreshTokenRotates: input.refreshTokenRotates ?? builtin.refreshTokenRotates,
				apiBaseUrl: input.apiBaseUrl ?? null,
				apiKeyPlacement: input.apiKeyPlacement ?? null,
				clientId: input.clientId as string,
				...sealed,
				createdAt: now,
				updatedAt: now,
			}
		: {
				id,
				builtin: false,
				name: input.name as string,
				authorizeUrl: input.authorizeUrl as string,
				tokenUrl: input.tokenUrl as string,
				revokeUrl: input.revokeUrl ?? null,
				userinfoUrl: input.userinfoUrl ?? null,
				issuer: input.issuer ?? null,
				defaultScopes: input.defaultScopes ?? [],
				scopeSeparator: input.scopeSeparator ?? " ",
				pkce: input.pkce ?? true,
				clientAuth: input.clientAuth ?? "basic",
				authorizeParams: input.authorizeParams ?? {},
				refreshInvalidatesAccessToken: input.refreshInvalidatesAccessToken ?? false,
				refreshTokenRotates: input.refreshTokenRotates ?? false,
				apiBaseUrl: input.apiBaseUrl ?? null,
				apiKeyPlacement: input.apiKeyPlacement ?? null,
				clientId: input.clientId as string,
				...sealed,
				createdAt: now,
				updatedAt: now,
			};
	const { id: _id, createdAt: _createdAt, ...update } = values;
	const [row] = await services.db
		.insert(oauthProviders)
		.values(values)
		.onConflictDoUpdate({ target: oauthProviders.id, set: update })
		.returning();
	const provider = effectiveProvider(
		id,
		row as OAuthProviderRow,
		services.config,
		secretOpener(services),
	);
	if (!provider) throw new Error("putProvider: stored row does not describe a provider");
	return provider;
}

/**
 * An API-key-only provider: no endpoints, no client, nothing sealed (the table's check holds it to
 * that). Replacing an OAuth2 provider this way is refused while OAuth2 credentials name it: they
 * could no longer be refreshed or revoked.
 */
async function putApiKeyProvider(
	services: Services,
	id: string,
	input: ProviderInput,
): Promise<ApiKeyProvider> {
	const [oauthCredential] = await services.db
		.select({ id: credentials.id })
		.from(credentials)
		.where(and(eq(credentials.provider, id), eq(credentials.type, "oauth2")))
		.limit(1);
	if (oauthCredential) {
		throw new LatchkeyError(
			"conflict",
			`OAuth2 credentials of '${id}' exist: it cannot become an API-key-only provider.`,
			{
				hint: "Keep its OAuth fields (send them with api_base_url), or register the API-key provider under another id.",
			},
		);
	}
	const now = services.now();
	// Every OAuth column back to its empty value, so a replaced OAuth2 provider leaves nothing.
	const values: typeof oauthProviders.$inferInsert = {
		id,
		builtin: false,
		name: input.name as string,
		authorizeUrl: null,
		tokenUrl: null,
		revokeUrl: null,
		userinfoUrl: null,
		issuer: null,
		defaultScopes: [],
		scopeSeparator: " ",
		pkce: true,
		clientAuth: "basic",
		authorizeParams: {},
		refreshInvalidatesAccessToken: false,
		refreshTokenRotates: false,
		apiBaseUrl: input.apiBaseUrl as string,
		apiKeyPlacement: input.apiKeyPlacement ?? null,
		clientId: null,
		ciphertext: null,
		dataKey: null,
		keyId: null,
		createdAt: now,
		updatedAt: now,
	};
	const { id: _id, createdAt: _createdAt, ...update } = values;
	const [row] = await services.db
		.insert(oauthProviders)
		.values(values)
		.onConflictDoUpdate({ target: oauthProviders.id, set: update })
		.returning();
	return apiKeyProviderOf(row as OAuthProviderRow);
}
