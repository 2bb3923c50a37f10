import { z } from "zod";
import type { CredentialType } from "../db/schema.ts";

/**
 * What lives inside the ciphertext, per type. Everything else about a credential (provider,
 * username, host, scopes, expiry) is metadata and stored in the clear.
 */
export type SecretOf = {
	oauth2: { access_token: string; refresh_token?: string; token_type: string };
	api_key: { api_key: string };
	user_password: { password: string };
	host_scoped: { headers: Record<string, string> };
};

export type AnySecret = SecretOf[CredentialType];

/**
 * OAuth tokens as a provider granted them, normalised: what an oauth2 credential's secret and
 * its token metadata are made of. The vault's type, so that oauth/ (connect, refresh) and
 * leases/ hand tokens down to credentials/ without credentials/ knowing either.
 */
export interface OAuthTokenSet {
	accessToken: string;
	refreshToken?: string;
	tokenType: string;
	expiresAt: Date | null;
	scopes: string[];
}

/** A connected provider account, for the vault to keep as an oauth2 credential. */
export interface ConnectedAccount {
	userId: string;
	provider: string;
	username: string | null;
	tokens: OAuthTokenSet;
	/** The credential a scope upgrade started from. */
	credentialId?: string;
	title?: string;
}

/** A hostname, or `*.` + hostname; `*.example.com` also matches `example.com`. */
export const HOST_PATTERN =
	/^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(:\d{1,5})?$/;

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;

/** Header values may not carry CR/LF (header injection) or other control characters; tab is fine. */
function isHeaderValue(value: string): boolean {
	if (value.length > 8192) return false;
	for (let i = 0; i < value.length; i++) {
		const c = value.charCodeAt(i);
		if ((c < 0x20 && c !== 0x09) || c === 0x7f) return false;
	}
	return true;
}

export const secretString = (max = 8192) => z.string().min(1).max(max);

export const HeadersSchema = z
	.record(
		z.string().regex(HEADER_NAME, "invalid header name"),
		z
			.string()
			.refine(isHeaderValue, "invalid header value (control characters or over 8192 chars)"),
	)
	.refine(
		(h) => Object.keys(h).length >= 1 && Object.keys(h).length <= 32,
		"between 1 and 32 headers",
	);

export function hostMatches(pattern: string, host: string): boolean {
	const p = pattern.toLowerCase();
	const h = host.toLowerCase();
	if (!p.startsWith("*.")) return p === h;
	const base = p.slice(2);
	return h === base || h.endsWith(`.${base}`);
}
