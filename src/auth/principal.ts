import type { Scope } from "./scopes.ts";

/** How the caller proved who it is. */
export type AuthMethod = "admin" | "api_key" | "legacy_key" | "access_token" | "external";

/**
 * The authenticated caller of a request. `userId` is null only for the admin token, which acts
 * for no user.
 */
export interface Principal {
	method: AuthMethod;
	userId: string | null;
	scopes: Scope[];
	/** The API key used, or the key a session was obtained from. */
	keyId?: string;
	/** Session id (`sid`) of an access token. */
	sessionId?: string;
}

export function hasScope(principal: Principal, scope: Scope): boolean {
	return principal.method === "admin" || principal.scopes.includes(scope);
}
