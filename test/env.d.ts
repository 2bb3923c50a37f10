import type { JWK } from "jose";
import type { OAuthServerDetails } from "./setup/types.ts";

declare global {
	namespace Cloudflare {
		interface Env extends Record<string, string> {}
	}
}

declare module "vitest" {
	export interface ProvidedContext {
		bindings: Record<string, string>;
		infra: {
			databaseUrl: string;
			/** The Postgres server's maintenance database (real or embedded), for createDatabase. */
			adminUrl: string;
			postgres: "real" | "embedded";
			redis: "real" | "embedded";
		};
		idp: { jwksUrl: string; issuer: string; privateJwks: JWK[] };
		/** The test OAuth authorization server (oidc-provider); see test/setup/oauth-server.ts. */
		oauth: OAuthServerDetails;
		/** A loopback port that accepts a connection and drops it once the request starts. */
		dropperPort: number;
		/** The AgentMail fake's root (AGENTMAIL_BASE_URL); controls: test/setup/managed-control.ts. */
		agentmail: { url: string };
		/** The generic provisioner fake's root; controls: test/setup/managed-control.ts. */
		provisioner: { url: string };
		/** The proxy tests' third-party API (test/setup/upstream.ts): `${url}/t/<tenant>/…`. */
		upstream: { url: string };
		/** swagger-ui-dist's version and files as installed (vitest.config.ts; test/worker/docs.test.ts). */
		swaggerUi: {
			version: string;
			bundle: { bytes: number; sha256: string };
			css: { bytes: number; sha256: string };
		};
	}
}
