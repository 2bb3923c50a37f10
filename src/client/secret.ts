import type { LeaseSecret } from "./types.ts";

/**
 * The request headers that present a leased secret to the API it belongs to, by its type:
 * `Authorization: <token_type> <access_token>` for OAuth2, `Authorization: Bearer <api_key>` for
 * an API key (pass `apiKeyHeader` for APIs that want another header, e.g. `x-api-key`), HTTP
 * Basic for a username and password, and the stored headers of a host-scoped credential.
 */
export function secretHeaders(
	secret: LeaseSecret,
	options: { apiKeyHeader?: string } = {},
): Record<string, string> {
	switch (secret.type) {
		case "oauth2": {
			const scheme = secret.token_type.toLowerCase() === "bearer" ? "Bearer" : secret.token_type;
			return { authorization: `${scheme} ${secret.access_token}` };
		}
		case "api_key":
			return options.apiKeyHeader
				? { [options.apiKeyHeader.toLowerCase()]: secret.api_key }
				: { authorization: `Bearer ${secret.api_key}` };
		case "user_password": {
			const bytes = new TextEncoder().encode(`${secret.username ?? ""}:${secret.password}`);
			let binary = "";
			for (const byte of bytes) binary += String.fromCharCode(byte);
			return { authorization: `Basic ${btoa(binary)}` };
		}
		case "host_scoped":
			return { ...secret.headers };
	}
}
