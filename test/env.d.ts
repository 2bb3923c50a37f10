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
	}
}
