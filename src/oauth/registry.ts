import { eq } from "drizzle-orm";
import { getKeyRing, open, providerAad, seal } from "../crypto/envelope.ts";
import { type OAuthProviderRow, oauthProviders } from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import type { Services } from "../services.ts";
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
	clientId: string;
	clientSecret: string;
}

/** Fields an admin may set for a built-in id besides its client; the rest is the code's. */
const BUILTIN_OVERRIDABLE = new Set<keyof ProviderInput>([
	"name",
	"defaultScopes",
	"clientId",
	"clientSecret",
]);

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
	clientId: "client_id",
	clientSecret: "client_secret",
};

type Problem = { field: string; message: string };

/**
 * Registers or replaces a provider. For a built-in id only the client (and the display name and
 * default scopes) are stored: endpoints stay the code's, so a typo cannot point a well-known
 * provider somewhere else, and a fix to the built-in description reaches every deployment.
 */
export async function putProvider(
	services: Services,
	id: string,
	input: ProviderInput,
): Promise<EffectiveProvider> {
	const builtin = builtinProvider(id);
	const problems: Problem[] = [];
	if (builtin) {
		for (const key of Object.keys(input) as (keyof ProviderInput)[]) {
			if (input[key] !== undefined && !BUILTIN_OVERRIDABLE.has(key)) {
				problems.push({
					field: FIELD_NAMES[key],
					message: `'${id}' is built in: only client_id, client_secret, name and default_scopes can be set`,
				});
			}
		}
	} else {
		for (const key of ["name", "authorizeUrl", "tokenUrl"] as const) {
			if (input[key] === undefined) problems.push({ field: FIELD_NAMES[key], message: "required" });
		}
	}
	if (problems.length) {
		throw new LatchkeyError("invalid_request", "The provider definition is invalid.", {
			detail: problems.map((p) => ({ ...p, location: "json" })),
		});
	}

	const ring = await getKeyRing(services.config);
	const sealed = await seal(ring, input.clientSecret, providerAad(id));
	const now = services.now();
	const values: typeof oauthProviders.$inferInsert = builtin
		? {
				id,
				builtin: true,
				name: input.name ?? builtin.name,
				authorizeUrl: null,
				tokenUrl: null,
				revokeUrl: null,
				userinfoUrl: null,
				issuer: null,
				// Empty means "the built-in defaults", so they follow code updates.
				defaultScopes: input.defaultScopes ?? [],
				scopeSeparator: builtin.scopeSeparator,
				pkce: builtin.pkce,
				clientAuth: builtin.clientAuth,
				authorizeParams: {},
				refreshInvalidatesAccessToken: builtin.refreshInvalidatesAccessToken,
				refreshTokenRotates: builtin.refreshTokenRotates,
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
