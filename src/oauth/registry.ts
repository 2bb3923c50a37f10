import { eq } from "drizzle-orm";
import { getKeyRing, open, providerAad, seal } from "../crypto/envelope.ts";
import { type ApiKeyPlacement, type OAuthProviderRow, oauthProviders } from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import { outboundUrlProblem } from "../http/outbound.ts";
import type { Services } from "../services.ts";
import { apiBaseUrlProblem } from "./api-target.ts";
import {
	BUILTIN_PROVIDERS,
	builtinProvider,
	type ClientAuthMethod,
	type EffectiveProvider,
	effectiveProvider,
	type OpenSecret,
} from "./providers.ts";

/** The provider table is small (built-ins plus a few custom ids), so it is read whole. */

function secretOpener(services: Services): OpenSecret {
	return async (row) =>
		open(await getKeyRing(services.config), row, providerAad(row.id), `OAuth provider ${row.id}`);
}

const unknownProvider = (id: string) =>
	new LatchkeyError("not_found", `No OAuth provider '${id}'.`, {
		hint: "GET /v1/providers lists the providers; an admin registers others with PUT /v1/admin/providers/{id}.",
	});

/** The effective configuration of one provider; `not_found` for an id that names none. */
export async function resolveProvider(services: Services, id: string): Promise<EffectiveProvider> {
	const [row] = await services.db
		.select()
		.from(oauthProviders)
		.where(eq(oauthProviders.id, id))
		.limit(1);
	const provider = effectiveProvider(id, row, services.config, secretOpener(services));
	if (!provider) throw unknownProvider(id);
	return provider;
}

/** Every provider, built-in and custom, ordered by id. */
export async function listProviders(services: Services): Promise<EffectiveProvider[]> {
	const rows = await services.db.select().from(oauthProviders);
	const byId = new Map(rows.map((r) => [r.id, r]));
	const ids = new Set([...BUILTIN_PROVIDERS.map((p) => p.id), ...byId.keys()]);
	const opener = secretOpener(services);
	return [...ids]
		.sort()
		.map((id) => effectiveProvider(id, byId.get(id), services.config, opener))
		.filter((p): p is EffectiveProvider => p !== null);
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
	clientId: string;
	clientSecret: string;
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

/**
 * Registers or replaces a provider. A custom id needs its endpoints. A built-in id takes the same
 * full body: what is sent overrides the built-in description (how GitHub Enterprise or a
 * self-hosted GitLab is reached), and what is left out (or null) keeps the built-in value, so a
 * body of only client_id and client_secret sets the client and nothing else.
 */
export async function putProvider(
	services: Services,
	id: string,
	input: ProviderInput,
): Promise<EffectiveProvider> {
	const builtin = builtinProvider(id);
	const problems: Problem[] = [];
	if (!builtin) {
		for (const key of ["name", "authorizeUrl", "tokenUrl"] as const) {
			if (input[key] === undefined) problems.push({ field: FIELD_NAMES[key], message: "required" });
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

	const ring = await getKeyRing(services.config);
	const sealed = await seal(ring, input.clientSecret, providerAad(id));
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
				clientId: input.clientId,
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
				clientId: input.clientId,
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
