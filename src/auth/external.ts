import { createRemoteJWKSet, decodeJwt, type JWTPayload, jwtVerify } from "jose";
import type { Config } from "../config.ts";
import { LatchkeyError } from "../errors.ts";
import { CLOCK_TOLERANCE_S } from "./jwt.ts";

/**
 * Only verification of an external identity provider's tokens lives here. Mapping a verified
 * token to a user, which creates and links user records, is ./external-users.ts; the middleware
 * calls one after the other.
 */

/** Asymmetric only: an HS* token could be forged by anyone holding the public JWKS. */
const EXTERNAL_ALGORITHMS = ["RS256", "ES256", "EdDSA", "Ed25519"];

// createRemoteJWKSet caches keys and refetches on an unknown kid, so one instance per URL.
const jwksByUrl = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

export function isExternalToken(config: Config, token: string): boolean {
	if (!config.EXTERNAL_JWT_ISSUER) return false;
	try {
		return decodeJwt(token).iss === config.EXTERNAL_JWT_ISSUER;
	} catch {
		return false;
	}
}

function jwks(url: string) {
	let set = jwksByUrl.get(url);
	if (!set) {
		set = createRemoteJWKSet(new URL(url), { cacheMaxAge: 10 * 60_000, cooldownDuration: 30_000 });
		jwksByUrl.set(url, set);
	}
	return set;
}

const unauthorized = (message: string) => new LatchkeyError("unauthorized", message);

/**
 * The longest an external identity token is accepted: it must carry `exp`; `exp` may lie at most
 * this far ahead of now, and `exp - iat` may not exceed it; a token whose `iat` is older than
 * this is refused even when its `exp` says otherwise. A token without `exp` would be valid
 * forever, so it is refused (401).
 */
export const MAX_EXTERNAL_TOKEN_AGE_S = 24 * 60 * 60;

function checkLifetime(payload: JWTPayload, now: Date): void {
	const t = Math.floor(now.getTime() / 1000);
	const { exp, iat } = payload;
	if (typeof exp !== "number") throw unauthorized("The identity token has no exp claim.");
	if (exp - t > MAX_EXTERNAL_TOKEN_AGE_S + CLOCK_TOLERANCE_S) {
		throw unauthorized("The identity token's exp lies more than 24 hours ahead.");
	}
	if (iat !== undefined) {
		if (typeof iat !== "number") throw unauthorized("The identity token's iat is not a number.");
		if (t - iat > MAX_EXTERNAL_TOKEN_AGE_S + CLOCK_TOLERANCE_S) {
			throw unauthorized("The identity token was issued more than 24 hours ago.");
		}
		if (exp - iat > MAX_EXTERNAL_TOKEN_AGE_S) {
			throw unauthorized("The identity token's lifetime (exp - iat) exceeds 24 hours.");
		}
	}
}

export async function verifyExternalToken(
	config: Config,
	token: string,
	now: Date,
): Promise<JWTPayload> {
	const {
		EXTERNAL_JWT_JWKS_URL: url,
		EXTERNAL_JWT_ISSUER: issuer,
		EXTERNAL_JWT_AUDIENCE: audience,
	} = config;
	if (!url || !issuer || !audience)
		throw unauthorized("External identity tokens are not accepted.");
	let payload: JWTPayload;
	try {
		({ payload } = await jwtVerify(token, jwks(url), {
			issuer,
			audience,
			algorithms: EXTERNAL_ALGORITHMS,
			clockTolerance: CLOCK_TOLERANCE_S,
			currentDate: now,
		}));
	} catch (err) {
		if (
			(err as { code?: string }).code === "ERR_JWKS_TIMEOUT" ||
			(err as Error).name === "JWKSTimeout"
		) {
			throw new LatchkeyError(
				"dependency_unavailable",
				"The identity provider's keys could not be fetched.",
				{
					retryAfter: 5,
				},
			);
		}
		throw unauthorized("The identity token is invalid or expired.");
	}
	checkLifetime(payload, now);
	return payload;
}
