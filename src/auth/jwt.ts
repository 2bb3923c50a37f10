import {
	type CryptoKey,
	createLocalJWKSet,
	importJWK,
	type JWK,
	type JWTPayload,
	jwtVerify,
	SignJWT,
} from "jose";
import type { Config } from "../config.ts";
import { newId } from "../crypto/encoding.ts";
import { LatchkeyError } from "../errors.ts";

export const ACCESS_TOKEN_TTL_S = 15 * 60;
export const CLOCK_TOLERANCE_S = 30;
export const AUDIENCE = "latchkey";
/** Pinned: a token naming any other algorithm (`none`, HS256 with the public key…) is refused. */
export const ACCEPTED_ALGORITHMS = ["EdDSA", "Ed25519", "ES256"];

const PRIVATE_JWK_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "k"];

export interface AccessClaims extends JWTPayload {
	sub: string;
	scope: string;
	sid: string;
	jti: string;
}

/**
 * How long verifiers may cache the JWKS (the route's `Cache-Control: max-age`). A new signing
 * key must be published at least this long before it signs (its `nbf`), or clients holding the
 * cached set would refuse its tokens.
 */
export const JWKS_CACHE_TTL_S = 300;

interface SigningKey {
	kid: string;
	alg: string;
	key: CryptoKey;
	/** Unix seconds from which the key signs (the JWK's custom `nbf`); 0 when it has none. */
	notBefore: number;
}

interface KeyMaterial {
	/** Private keys in configuration order; the first whose `notBefore` has passed signs. */
	signing: SigningKey[];
	publicJwks: { keys: JWK[] };
	verify: ReturnType<typeof createLocalJWKSet>;
	issuer: string;
}

function algorithmOf(jwk: JWK): string {
	if (jwk.alg === "Ed25519" || jwk.alg === "EdDSA") return "EdDSA";
	if (jwk.alg) return jwk.alg;
	return jwk.kty === "OKP" ? "EdDSA" : "ES256";
}

export function toPublicJwk(jwk: JWK): JWK {
	const pub: Record<string, unknown> = { ...jwk, alg: algorithmOf(jwk), use: "sig" };
	for (const member of PRIVATE_JWK_MEMBERS) delete pub[member];
	delete pub.key_ops;
	delete pub.nbf;
	return pub as JWK;
}

export function issuerOf(config: Config): string {
	return config.LATCHKEY_PUBLIC_URL.replace(/\/+$/, "");
}

// Keyed by the validated config object, which lives as long as the isolate's env.
const material = new WeakMap<Config, Promise<KeyMaterial>>();

/**
 * Every key of LATCHKEY_JWT_SIGNING_KEYS is published and verifies at once; the first private key
 * whose `nbf` (unix seconds, optional) has passed signs. Rotation: prepend the new private key
 * with `nbf` at least JWKS_CACHE_TTL_S after the deploy, keeping the old private key; once past
 * `nbf` the new one signs; drop the old one's `d` (or the key) one access-token lifetime later.
 * See docs/security.md, "Signing-key rotation".
 */
function keyMaterial(config: Config): Promise<KeyMaterial> {
	let m = material.get(config);
	if (!m) {
		m = (async () => {
			const keys = config.LATCHKEY_JWT_SIGNING_KEYS.keys as (JWK & { kid: string })[];
			const signing: SigningKey[] = [];
			for (const jwk of keys) {
				if (!jwk.d) continue;
				const alg = algorithmOf(jwk);
				const { nbf, ...rest } = jwk as JWK & { kid: string; nbf?: number };
				const key = (await importJWK({ ...rest, alg }, alg)) as CryptoKey;
				signing.push({ kid: jwk.kid, alg, key, notBefore: nbf ?? 0 });
			}
			const publicJwks = { keys: keys.map(toPublicJwk) };
			return {
				signing,
				publicJwks,
				verify: createLocalJWKSet(publicJwks),
				issuer: issuerOf(config),
			};
		})();
		material.set(config, m);
		// A bad key must not poison the isolate: drop the failed promise so the next call retries.
		m.catch(() => material.delete(config));
	}
	return m;
}

export async function publicJwks(config: Config): Promise<{ keys: JWK[] }> {
	return (await keyMaterial(config)).publicJwks;
}

export async function signAccessToken(
	config: Config,
	claims: { sub: string; scope: string; sid: string },
	now: Date,
	expiresAt: Date,
): Promise<{ token: string; jti: string }> {
	const { signing: keys, issuer } = await keyMaterial(config);
	const nowS = Math.floor(now.getTime() / 1000);
	const signing = keys.find((k) => k.notBefore <= nowS);
	if (!signing) {
		throw new LatchkeyError(
			"misconfigured",
			"Latchkey is misconfigured: LATCHKEY_JWT_SIGNING_KEYS has no private key whose nbf has passed.",
		);
	}
	const jti = newId("jti");
	const token = await new SignJWT({ scope: claims.scope, sid: claims.sid })
		.setProtectedHeader({ alg: signing.alg, kid: signing.kid, typ: "at+jwt" })
		.setIssuer(issuer)
		.setAudience(AUDIENCE)
		.setSubject(claims.sub)
		.setJti(jti)
		.setIssuedAt(Math.floor(now.getTime() / 1000))
		.setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
		.sign(signing.key);
	return { token, jti };
}

/** Verifies a Latchkey access token; throws (jose errors) on anything wrong. */
export async function verifyAccessToken(
	config: Config,
	token: string,
	now: Date,
): Promise<AccessClaims> {
	const { verify, issuer } = await keyMaterial(config);
	const { payload } = await jwtVerify(token, verify, {
		issuer,
		audience: AUDIENCE,
		algorithms: ACCEPTED_ALGORITHMS,
		typ: "at+jwt",
		clockTolerance: CLOCK_TOLERANCE_S,
		currentDate: now,
		requiredClaims: ["sub", "sid", "jti", "exp", "iat"],
	});
	if (typeof payload.sid !== "string" || typeof payload.scope !== "string") {
		throw new Error("access token lacks sid or scope");
	}
	// jose checks exp and nbf, not iat: a token "issued" later than now was not issued by us now.
	if (typeof payload.iat === "number" && payload.iat > now.getTime() / 1000 + CLOCK_TOLERANCE_S) {
		throw new Error("access token issued in the future");
	}
	return payload as AccessClaims;
}
