/** What the test global setup hands to tests about the stand-in OAuth authorization server. */
export interface OAuthServerDetails {
	issuer: string;
	clientId: string;
	clientSecret: string;
	/** The client_secret_post client, which may omit PKCE. */
	postClientId: string;
	postClientSecret: string;
	redirectUris: string[];
	authorizeUrl: string;
	tokenUrl: string;
	revokeUrl: string;
	introspectionUrl: string;
	userinfoUrl: string;
	/** POST `{authorization_url, username, decision?: "approve" | "deny"}` → `{redirect}`. */
	driveUrl: string;
	/** GET `?account=<username>` → counts of `access_token.saved`, `refresh_token.destroyed`, … */
	tokensUrl: string;
	/** POST `{refresh_token}` → `{attempts}`: token-endpoint requests that presented it. */
	refreshAttemptsUrl: string;
}
