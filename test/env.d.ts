import type { JWK } from "jose";

declare global {
	namespace Cloudflare {
		interface Env extends Record<string, string> {}
	}
}

declare module "vitest" {
	export interface ProvidedContext {
		bindings: Record<string, string>;
		infra: { databaseUrl: string; postgres: "real" | "embedded"; redis: "real" | "embedded" };
		idp: { jwksUrl: string; issuer: string; privateJwks: JWK[] };
		/** The test OAuth authorization server (oidc-provider); see test/setup/oauth-server.ts. */
		oauth: {
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
		};
	}
}
