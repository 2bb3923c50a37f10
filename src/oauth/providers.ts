import { type Config, oauthEnvName } from "../config.ts";
import type { ApiKeyPlacement, OAuthProviderRow } from "../db/schema.ts";

/**
 * OAuth2 providers as data. A provider's effective configuration is its built-in description
 * (or an admin-registered one, for custom ids) plus a client: from an `oauth_providers` row set
 * through the admin API, else from `OAUTH_<ID>_CLIENT_ID` / `_CLIENT_SECRET`.
 */

export type ClientAuthMethod = "basic" | "post";

export interface ProviderDescription {
	id: string;
	name: string;
	authorizeUrl: string;
	tokenUrl: string;
	/** RFC 7009 endpoint; null when the provider has none (or only a proprietary one). */
	revokeUrl: string | null;
	/** Answers JSON naming the account (`preferred_username`, `login`, `email` or `sub`). */
	userinfoUrl: string | null;
	/** When set, authorization responses must carry this RFC 9207 `iss`. */
	issuer: string | null;
	defaultScopes: string[];
	scopeSeparator: string;
	pkce: boolean;
	clientAuth: ClientAuthMethod;
	/** Added to every authorization request; never overrides the protocol parameters. */
	authorizeParams: Record<string, string>;
	/** A refresh kills the access token it replaces, so a leased token must not be refreshed away. */
	refreshInvalidatesAccessToken: boolean;
	/** A refresh returns a new refresh token and the old one stops working. */
	refreshTokenRotates: boolean;
	/**
	 * The API root the authenticated proxy sends this provider's OAuth2 and API-key credentials
	 * to (docs/proxy.md); null when there is no single one (Salesforce: per instance).
	 */
	apiBaseUrl: string | null;
	/** How an API key of this provider rides a proxied request. */
	apiKeyPlacement: ApiKeyPlacement;
}

/** What an API key gets when its provider declares nothing else. */
export const DEFAULT_API_KEY_PLACEMENT: ApiKeyPlacement = {
	in: "header",
	name: "Authorization",
	prefix: "Bearer ",
};

/**
 * From the providers' public documentation. Where a behaviour is not documented clearly the
 * value is the safe one: PKCE only where documented (some servers refuse unknown parameters),
 * no revocation endpoint unless it speaks RFC 7009, and refreshes assumed to rotate and to
 * invalidate the previous access token, which only costs a little concurrency.
 */
export const BUILTIN_PROVIDERS: readonly ProviderDescription[] = [
	{
		id: "atlassian",
		name: "Atlassian",
		authorizeUrl: "https://auth.atlassian.com/authorize",
		tokenUrl: "https://auth.atlassian.com/oauth/token",
		revokeUrl: null,
		userinfoUrl: "https://api.atlassian.com/me",
		issuer: null,
		defaultScopes: ["read:me", "offline_access"],
		scopeSeparator: " ",
		pkce: false,
		clientAuth: "post",
		authorizeParams: { audience: "api.atlassian.com", prompt: "consent" },
		refreshInvalidatesAccessToken: false,
		refreshTokenRotates: true,
		apiBaseUrl: "https://api.atlassian.com",
		apiKeyPlacement: DEFAULT_API_KEY_PLACEMENT,
	},
	{
		id: "discord",
		name: "Discord",
		authorizeUrl: "https://discord.com/oauth2/authorize",
		tokenUrl: "https://discord.com/api/oauth2/token",
		revokeUrl: "https://discord.com/api/oauth2/token/revoke",
		userinfoUrl: "https://discord.com/api/users/@me",
		issuer: null,
		defaultScopes: ["identify", "email"],
		scopeSeparator: " ",
		pkce: false,
		clientAuth: "basic",
		authorizeParams: { prompt: "consent" },
		refreshInvalidatesAccessToken: true,
		refreshTokenRotates: true,
		// Bot tokens; a user's OAuth token is sent as Bearer like every OAuth2 token.
		apiBaseUrl: "https://discord.com/api",
		apiKeyPlacement: { in: "header", name: "Authorization", prefix: "Bot " },
	},
	{
		id: "github",
		name: "GitHub",
		authorizeUrl: "https://github.com/login/oauth/authorize",
		tokenUrl: "https://github.com/login/oauth/access_token",
		// GitHub revokes through DELETE /applications/{client_id}/grant, not RFC 7009.
		revokeUrl: null,
		userinfoUrl: "https://api.github.com/user",
		issuer: null,
		defaultScopes: ["read:user", "user:email"],
		scopeSeparator: " ",
		pkce: true,
		clientAuth: "post",
		authorizeParams: {},
		// Only GitHub App user tokens expire; their refresh tokens are single-use.
		refreshInvalidatesAccessToken: true,
		refreshTokenRotates: true,
		apiBaseUrl: "https://api.github.com",
		apiKeyPlacement: DEFAULT_API_KEY_PLACEMENT,
	},
	{
		id: "google",
		name: "Google",
		authorizeUrl: "https://accounts.google.com/o/oauth2/v2/auth",
		tokenUrl: "https://oauth2.googleapis.com/token",
		revokeUrl: "https://oauth2.googleapis.com/revoke",
		userinfoUrl: "https://openidconnect.googleapis.com/v1/userinfo",
		issuer: null,
		defaultScopes: ["openid", "email"],
		scopeSeparator: " ",
		pkce: true,
		clientAuth: "post",
		// Without offline access and a forced consent Google sends a refresh token only once per
		// user and client; include_granted_scopes keeps earlier grants on a scope upgrade.
		authorizeParams: { access_type: "offline", prompt: "consent", include_granted_scopes: "true" },
		refreshInvalidatesAccessToken: false,
		refreshTokenRotates: false,
		apiBaseUrl: "https://www.googleapis.com",
		apiKeyPlacement: { in: "header", name: "X-Goog-Api-Key", prefix: "" },
	},
	{
		id: "hubspot",
		name: "HubSpot",
		authorizeUrl: "https://app.hubspot.com/oauth/authorize",
		tokenUrl: "https://api.hubapi.com/oauth/v1/token",
		revokeUrl: null,
		userinfoUrl: null,
		issuer: null,
		defaultScopes: ["oauth"],
		scopeSeparator: " ",
		pkce: false,
		clientAuth: "post",
		authorizeParams: {},
		refreshInvalidatesAccessToken: false,
		refreshTokenRotates: false,
		apiBaseUrl: "https://api.hubapi.com",
		apiKeyPlacement: DEFAULT_API_KEY_PLACEMENT,
	},
	{
		id: "linear",
		name: "Linear",
		authorizeUrl: "https://linear.app/oauth/authorize",
		tokenUrl: "https://api.linear.app/oauth/token",
		revokeUrl: null,
		userinfoUrl: null,
		issuer: null,
		defaultScopes: ["read"],
		scopeSeparator: ",",
		pkce: true,
		clientAuth: "post",
		authorizeParams: { prompt: "consent" },
		refreshInvalidatesAccessToken: true,
		refreshTokenRotates: true,
		// Personal API keys go bare in Authorization; OAuth tokens as Bearer.
		apiBaseUrl: "https://api.linear.app",
		apiKeyPlacement: { in: "header", name: "Authorization", prefix: "" },
	},
	{
		id: "microsoft",
		name: "Microsoft",
		// The multi-tenant endpoints; a single-tenant app registers its own id with tenant URLs.
		authorizeUrl: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
		tokenUrl: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
		revokeUrl: null,
		userinfoUrl: "https://graph.microsoft.com/oidc/userinfo",
		issuer: null,
		defaultScopes: ["openid", "email", "offline_access", "User.Read"],
		scopeSeparator: " ",
		pkce: true,
		clientAuth: "post",
		authorizeParams: {},
		refreshInvalidatesAccessToken: false,
		refreshTokenRotates: true,
		apiBaseUrl: "https://graph.microsoft.com",
		apiKeyPlacement: DEFAULT_API_KEY_PLACEMENT,
	},
	{
		id: "notion",
		name: "Notion",
		authorizeUrl: "https://api.notion.com/v1/oauth/authorize",
		tokenUrl: "https://api.notion.com/v1/oauth/token",
		revokeUrl: null,
		// Notion's /v1/users/me needs a Notion-Version header and describes the bot, not the user.
		userinfoUrl: null,
		issuer: null,
		defaultScopes: [],
		scopeSeparator: " ",
		pkce: false,
		clientAuth: "basic",
		authorizeParams: { owner: "user" },
		refreshInvalidatesAccessToken: true,
		refreshTokenRotates: true,
		apiBaseUrl: "https://api.notion.com",
		apiKeyPlacement: DEFAULT_API_KEY_PLACEMENT,
	},
	{
		id: "salesforce",
		name: "Salesforce",
		authorizeUrl: "https://login.salesforce.com/services/oauth2/authorize",
		tokenUrl: "https://login.salesforce.com/services/oauth2/token",
		revokeUrl: "https://login.salesforce.com/services/oauth2/revoke",
		userinfoUrl: "https://login.salesforce.com/services/oauth2/userinfo",
		issuer: null,
		defaultScopes: ["api", "refresh_token"],
		scopeSeparator: " ",
		pkce: true,
		clientAuth: "post",
		authorizeParams: { prompt: "consent" },
		refreshInvalidatesAccessToken: false,
		// Rotation is an org-level setting, so it has to be assumed.
		refreshTokenRotates: true,
		// Every org has its own instance URL (the token answer's instance_url).
		apiBaseUrl: null,
		apiKeyPlacement: DEFAULT_API_KEY_PLACEMENT,
	},
	{
		id: "slack",
		name: "Slack",
		authorizeUrl: "https://slack.com/oauth/v2/authorize",
		tokenUrl: "https://slack.com/api/oauth.v2.access",
		// auth.revoke takes the token as a bearer credential, not RFC 7009.
		revokeUrl: null,
		userinfoUrl: null,
		issuer: null,
		defaultScopes: ["chat:write"],
		scopeSeparator: ",",
		pkce: false,
		clientAuth: "post",
		authorizeParams: {},
		// Only apps with token rotation enabled get refresh tokens at all.
		refreshInvalidatesAccessToken: true,
		refreshTokenRotates: true,
		apiBaseUrl: "https://slack.com/api",
		apiKeyPlacement: DEFAULT_API_KEY_PLACEMENT,
	},
];

const BUILTIN_BY_ID = new Map(BUILTIN_PROVIDERS.map((p) => [p.id, p]));

export function builtinProvider(id: string): ProviderDescription | undefined {
	return BUILTIN_BY_ID.get(id);
}

export interface ProviderClient {
	clientId: string;
	/** Where the client was set: the admin API wins over the deployment's environment. */
	source: "admin" | "env";
	/** Null when only the id is set; decrypted on demand, since listing never needs it. */
	secret: () => Promise<string | null>;
	hasSecret: boolean;
}

export interface EffectiveProvider extends ProviderDescription {
	kind: "oauth2";
	builtin: boolean;
	client: ProviderClient | null;
	/** Both client auth methods need a secret, so a client id alone is not enough. */
	configured: boolean;
	updatedAt: Date | null;
}

/**
 * A custom provider registered with an API target only (`PUT /v1/admin/providers/{id}` without
 * any OAuth field): the proxy forwards its API-key credentials to `apiBaseUrl`. It has no OAuth
 * endpoints and no client, so it is never connected, refreshed or revoked through OAuth, and an
 * OAuth2 credential cannot name it.
 */
export interface ApiKeyProvider {
	kind: "api_key";
	id: string;
	name: string;
	apiBaseUrl: string;
	apiKeyPlacement: ApiKeyPlacement;
	updatedAt: Date;
}

/** Whether a row is an API-key-only provider (the table's check keeps the two kinds apart). */
export function isApiKeyOnlyRow(row: OAuthProviderRow): boolean {
	return !row.builtin && row.clientId === null;
}

export function apiKeyProviderOf(row: OAuthProviderRow): ApiKeyProvider {
	return {
		kind: "api_key",
		id: row.id,
		name: row.name,
		// Not null on such a row (the table's check).
		apiBaseUrl: row.apiBaseUrl ?? "",
		apiKeyPlacement: row.apiKeyPlacement ?? DEFAULT_API_KEY_PLACEMENT,
		updatedAt: row.updatedAt,
	};
}

/** The sealed client secret of an OAuth row (never null there: the table's check). */
export function sealedSecretOf(row: OAuthProviderRow): {
	ciphertext: string;
	dataKey: string;
	keyId: string;
} {
	if (row.ciphertext === null || row.dataKey === null || row.keyId === null) {
		throw new Error(`OAuth provider ${row.id} has no sealed client secret`);
	}
	return { ciphertext: row.ciphertext, dataKey: row.dataKey, keyId: row.keyId };
}

export type OpenSecret = (row: OAuthProviderRow) => Promise<string>;

function clientFromRow(row: OAuthProviderRow, openSecret: OpenSecret): ProviderClient {
	let opened: Promise<string> | undefined;
	return {
		clientId: row.clientId ?? "",
		source: "admin",
		hasSecret: true,
		secret: () => {
			opened ??= openSecret(row);
			return opened;
		},
	};
}

function clientFromEnv(config: Config, id: string): ProviderClient | null {
	const env = config.OAUTH_CLIENTS[oauthEnvName(id)];
	if (!env?.clientId) return null;
	const secret = env.clientSecret ?? null;
	return {
		clientId: env.clientId,
		source: "env",
		hasSecret: secret !== null,
		secret: async () => secret,
	};
}

function descriptionFromRow(row: OAuthProviderRow): ProviderDescription | null {
	if (!row.authorizeUrl || !row.tokenUrl) return null;
	return {
		id: row.id,
		name: row.name,
		authorizeUrl: row.authorizeUrl,
		tokenUrl: row.tokenUrl,
		revokeUrl: row.revokeUrl,
		userinfoUrl: row.userinfoUrl,
		issuer: row.issuer,
		defaultScopes: row.defaultScopes,
		scopeSeparator: row.scopeSeparator,
		pkce: row.pkce,
		clientAuth: row.clientAuth,
		authorizeParams: row.authorizeParams,
		refreshInvalidatesAccessToken: row.refreshInvalidatesAccessToken,
		refreshTokenRotates: row.refreshTokenRotates,
		apiBaseUrl: row.apiBaseUrl,
		apiKeyPlacement: row.apiKeyPlacement ?? DEFAULT_API_KEY_PLACEMENT,
	};
}

/**
 * Merges what is known about one id. A row marked `builtin` carries the client and the admin's
 * overrides of the built-in description (a null endpoint, or an empty list or map, keeps the
 * built-in value); any other row describes a custom provider completely. Null when the id names
 * nothing.
 */
export function effectiveProvider(
	id: string,
	row: OAuthProviderRow | undefined,
	config: Config,
	openSecret: OpenSecret,
): EffectiveProvider | null {
	const builtin = builtinProvider(id);
	let description: ProviderDescription | null;
	if (row && !row.builtin) {
		description = descriptionFromRow(row);
	} else if (builtin) {
		description = row
			? {
					...builtin,
					name: row.name,
					authorizeUrl: row.authorizeUrl ?? builtin.authorizeUrl,
					tokenUrl: row.tokenUrl ?? builtin.tokenUrl,
					revokeUrl: row.revokeUrl ?? builtin.revokeUrl,
					userinfoUrl: row.userinfoUrl ?? builtin.userinfoUrl,
					issuer: row.issuer ?? builtin.issuer,
					defaultScopes: row.defaultScopes.length ? row.defaultScopes : builtin.defaultScopes,
					scopeSeparator: row.scopeSeparator,
					pkce: row.pkce,
					clientAuth: row.clientAuth,
					authorizeParams: Object.keys(row.authorizeParams).length
						? row.authorizeParams
						: builtin.authorizeParams,
					refreshInvalidatesAccessToken: row.refreshInvalidatesAccessToken,
					refreshTokenRotates: row.refreshTokenRotates,
					apiBaseUrl: row.apiBaseUrl ?? builtin.apiBaseUrl,
					apiKeyPlacement: row.apiKeyPlacement ?? builtin.apiKeyPlacement,
				}
			: builtin;
	} else {
		description = null;
	}
	if (!description) return null;
	const client = row ? clientFromRow(row, openSecret) : clientFromEnv(config, id);
	return {
		...description,
		kind: "oauth2",
		builtin: Boolean(builtin) && !(row && !row.builtin),
		client,
		configured: client?.hasSecret === true,
		updatedAt: row?.updatedAt ?? null,
	};
}

const SCOPE_SPLIT = /[\s,]+/;

/**
 * Scopes a provider reports as granted. Whitespace is the standard separator, but some
 * providers (GitHub, Slack) answer with commas whatever they were asked with; no real-world
 * scope contains a comma, so both separate.
 */
export function parseGrantedScopes(text: string, separator: string): string[] {
	const custom = separator.trim();
	const parts = text.split(SCOPE_SPLIT).flatMap((s) => (custom ? s.split(custom) : [s]));
	return [...new Set(parts.filter(Boolean))];
}
