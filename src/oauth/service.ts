import * as oauth from "oauth4webapi";
import type { ConnectedAccount, OAuthTokenSet } from "../credentials/secrets.ts";
import { LatchkeyError } from "../errors.ts";
import { outboundFailureOf, outboundFetch } from "../http/outbound.ts";
import type { Services } from "../services.ts";
import { type EffectiveProvider, parseGrantedScopes } from "./providers.ts";
import { isApiKeyOnlyError, resolveProvider } from "./registry.ts";
import {
	checkRedirectTarget,
	createState,
	defaultRedirectUri,
	type OAuthStateRecord,
} from "./state.ts";

/**
 * The authorization-code flow against a provider, built on oauth4webapi. Nothing here knows
 * about HTTP requests to Latchkey itself: routes pass plain values in and map the results.
 * Nor does it know the credential vault's services: the routes hand in how to look up the
 * credential of a scope upgrade and where to keep a connected account. It names only the vault's
 * types for what it hands over (src/credentials/secrets.ts): oauth/ builds on credentials/, never
 * the reverse.
 */

// GitHub's API refuses requests without a User-Agent.
const USER_AGENT = "Latchkey";
const PROVIDER_TIMEOUT_MS = 10_000;
/** Bounds on the OAuth error fields that are logged; nothing else of a refusal's body is. */
const MAX_LOGGED_ERROR = 100;
const MAX_LOGGED_DESCRIPTION = 300;

type Stage = "token" | "refresh" | "revoke" | "userinfo";

const isRecord = (v: unknown): v is Record<string, unknown> =>
	typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Evens out what providers answer before oauth4webapi validates it: some (GitHub, Slack) report
 * token errors with a 200, and an ID token is dropped because Latchkey signs nobody in — it
 * would only be validated against an issuer that many providers do not publish. Any refusal is
 * logged here, through the redacting logger; the body itself never reaches a response.
 */
function providerFetch(services: Services, provider: EffectiveProvider, stage: Stage) {
	return async (
		url: string,
		init: oauth.CustomFetchOptions<string, unknown>,
	): Promise<Response> => {
		const { redirect: _redirect, ...rest } = init as RequestInit;
		// Redirects are refused, answers bounded and the URL checked again (src/http/outbound.ts).
		const response = await outboundFetch(services.config, url, {
			...rest,
			timeoutMs: PROVIDER_TIMEOUT_MS,
		});
		const text = response.text;
		let body: unknown;
		try {
			body = JSON.parse(text);
		} catch {
			body = undefined;
		}
		const keep = new Headers();
		for (const name of ["content-type", "www-authenticate"]) {
			const value = response.headers.get(name);
			if (value !== null) keep.set(name, value);
		}
		// Rebuilt from the text already read; a null-body status (204) must get no body at all.
		const passOn = () =>
			new Response(text === "" ? null : text, { status: response.status, headers: keep });
		// Only the status and the RFC 6749 error fields: a raw body can echo tokens, codes or
		// personal data, and providers put anything in it.
		const logRefusal = (status: number) =>
			services.logger.warn("oauth provider refused", {
				provider: provider.id,
				stage,
				status,
				...oauthErrorFields(body),
			});
		if (!response.ok) {
			logRefusal(response.status);
			return passOn();
		}
		if ((stage !== "token" && stage !== "refresh") || !isRecord(body)) return passOn();
		if (typeof body.access_token !== "string" && typeof body.error === "string") {
			logRefusal(response.status);
			return Response.json(body, { status: 400 });
		}
		delete body.id_token;
		// token_type is required by RFC 6749, yet some providers leave it out; such a token is
		// used as a bearer token by every client.
		if (typeof body.access_token === "string" && body.token_type === undefined) {
			body.token_type = "bearer";
		}
		return Response.json(body, { status: response.status });
	};
}

/**
 * `error` and `error_description` of an OAuth error response (RFC 6749 §5.2), when present as
 * strings; restricted to the printable ASCII the RFC allows in them and cut to a bound.
 */
function oauthErrorFields(body: unknown): { error?: string; error_description?: string } {
	if (!isRecord(body)) return {};
	const clean = (value: unknown, max: number) =>
		typeof value === "string" ? value.replace(/[^\x20-\x7e]/g, "?").slice(0, max) : undefined;
	const fields: { error?: string; error_description?: string } = {};
	const error = clean(body.error, MAX_LOGGED_ERROR);
	const description = clean(body.error_description, MAX_LOGGED_DESCRIPTION);
	if (error !== undefined) fields.error = error;
	if (description !== undefined) fields.error_description = description;
	return fields;
}

function requestOptions(
	services: Services,
	provider: EffectiveProvider,
	stage: Stage,
	endpoint: string,
) {
	return {
		headers: { "user-agent": USER_AGENT },
		signal: () => AbortSignal.timeout(PROVIDER_TIMEOUT_MS),
		[oauth.customFetch]: providerFetch(services, provider, stage),
		// http endpoints exist only where an admin registered them (a local provider, tests).
		[oauth.allowInsecureRequests]: new URL(endpoint).protocol === "http:",
	};
}

function authorizationServer(provider: EffectiveProvider): oauth.AuthorizationServer {
	return {
		// Without a declared issuer the value is never compared: `iss` is then ignored.
		issuer: provider.issuer ?? new URL(provider.tokenUrl).origin,
		authorization_endpoint: provider.authorizeUrl,
		token_endpoint: provider.tokenUrl,
		...(provider.revokeUrl ? { revocation_endpoint: provider.revokeUrl } : {}),
		...(provider.userinfoUrl ? { userinfo_endpoint: provider.userinfoUrl } : {}),
		authorization_response_iss_parameter_supported: provider.issuer !== null,
	};
}

async function clientOf(
	provider: EffectiveProvider,
): Promise<{ client: oauth.Client; auth: oauth.ClientAuth } | null> {
	if (!provider.client) return null;
	const secret = await provider.client.secret();
	if (!secret) return null;
	return {
		client: { client_id: provider.client.clientId },
		auth:
			provider.clientAuth === "basic"
				? oauth.ClientSecretBasic(secret)
				: oauth.ClientSecretPost(secret),
	};
}

const notConfigured = (provider: EffectiveProvider) =>
	new LatchkeyError(
		"invalid_request",
		`The OAuth provider '${provider.id}' has no client configured.`,
		{
			hint: `An admin must set its client with PUT /v1/admin/providers/${provider.id} or OAUTH_*_CLIENT_ID/_SECRET.`,
			detail: [{ field: "provider", location: "path", message: "not configured" }],
		},
	);

// Slack reports token types of its own; they are bearer tokens all the same.
const recognizedTokenTypes: oauth.RecognizedTokenTypes = { bot: () => {}, user: () => {} };

const OAUTH_ERROR_CODE = /^[a-z0-9_.-]{1,64}$/i;
const CODE_REJECTED = new Set([
	"invalid_grant",
	"bad_verification_code",
	"invalid_code",
	"code_already_used",
	"bad_redirect_uri",
	"redirect_uri_mismatch",
]);
const CLIENT_REJECTED = new Set([
	"invalid_client",
	"unauthorized_client",
	"incorrect_client_credentials",
	"invalid_client_id",
	"invalid_client_secret",
]);

/** A provider's error code, fit to repeat: a short token, never free text from the provider. */
export function safeErrorCode(value: unknown, fallback = "server_error"): string {
	return typeof value === "string" && OAUTH_ERROR_CODE.test(value) ? value : fallback;
}

function providerUnavailable(provider: EffectiveProvider, cause: unknown, message?: string) {
	return new LatchkeyError(
		"provider_unavailable",
		message ?? `The OAuth provider '${provider.id}' did not answer as expected.`,
		{ hint: "Retry later.", cause },
	);
}

/** Maps a token-endpoint failure to the error the caller can act on. */
function tokenFailure(provider: EffectiveProvider, err: unknown, stage: Stage): LatchkeyError {
	if (err instanceof LatchkeyError) return err;
	if (err instanceof oauth.ResponseBodyError) {
		const code = safeErrorCode(err.error);
		if (CODE_REJECTED.has(code)) {
			return stage === "refresh"
				? new LatchkeyError(
						"reconnect_required",
						`The OAuth provider '${provider.id}' rejected the refresh token.`,
						{ hint: "Connect the account again with POST /v1/oauth/{provider}/authorize." },
					)
				: new LatchkeyError(
						"invalid_request",
						"The provider rejected the authorization code: it expired, was already used, or was issued for another redirect_uri.",
						{
							hint: "Start again with POST /v1/oauth/{provider}/authorize.",
							detail: { provider_error: code },
						},
					);
		}
		if (CLIENT_REJECTED.has(code) || err.status >= 500) {
			return providerUnavailable(
				provider,
				err,
				err.status >= 500
					? undefined
					: `The OAuth provider '${provider.id}' rejected Latchkey's client credentials.`,
			);
		}
		if (stage === "refresh") return providerUnavailable(provider, err);
		return new LatchkeyError(
			"invalid_request",
			`The provider refused the token request (${code}).`,
			{
				hint: "Start again with POST /v1/oauth/{provider}/authorize.",
				detail: { provider_error: code },
			},
		);
	}
	if (err instanceof oauth.WWWAuthenticateChallengeError) {
		return providerUnavailable(
			provider,
			err,
			`The OAuth provider '${provider.id}' rejected Latchkey's client credentials.`,
		);
	}
	return providerUnavailable(provider, err);
}

function canonicalTokenType(type: string): string {
	const lower = type.toLowerCase();
	if (lower === "bearer") return "Bearer";
	if (lower === "dpop") return "DPoP";
	return type;
}

function toTokenSet(
	services: Services,
	provider: EffectiveProvider,
	response: oauth.TokenEndpointResponse,
	fallbackScopes: string[],
): OAuthTokenSet {
	const granted =
		typeof response.scope === "string" && response.scope.trim()
			? parseGrantedScopes(response.scope, provider.scopeSeparator)
			: fallbackScopes;
	const expiresIn = response.expires_in;
	return {
		accessToken: response.access_token,
		...(response.refresh_token ? { refreshToken: response.refresh_token } : {}),
		tokenType: canonicalTokenType(response.token_type),
		expiresAt:
			typeof expiresIn === "number" && expiresIn > 0
				? new Date(services.now().getTime() + expiresIn * 1000)
				: null,
		scopes: granted,
	};
}

const USERNAME_CLAIMS = ["preferred_username", "login", "email", "sub"] as const;

/**
 * The account's name from the provider's userinfo endpoint. It is metadata: when the endpoint
 * fails the connection still succeeds, without a username.
 */
async function fetchUsername(
	services: Services,
	provider: EffectiveProvider,
	accessToken: string,
): Promise<string | null> {
	if (!provider.userinfoUrl) return null;
	try {
		const response = await oauth.protectedResourceRequest(
			accessToken,
			"GET",
			new URL(provider.userinfoUrl),
			new Headers({ accept: "application/json" }),
			null,
			requestOptions(services, provider, "userinfo", provider.userinfoUrl),
		);
		if (!response.ok) return null;
		const body: unknown = await response.json();
		if (!isRecord(body)) return null;
		for (const claim of USERNAME_CLAIMS) {
			const value = body[claim];
			if (typeof value === "string" && value.trim()) return value.trim().slice(0, 256);
			if (claim === "sub" && typeof value === "number") return String(value);
		}
		return null;
	} catch (err) {
		services.logger.warn("oauth userinfo failed", {
			provider: provider.id,
			error_name: err instanceof Error ? err.name : typeof err,
		});
		return null;
	}
}

export interface AuthorizationRequest {
	userId: string;
	providerId: string;
	/** Replace the provider's default scopes. */
	scopes?: string[];
	/** Scope upgrade of this credential: its scopes are kept and added to. */
	credentialId?: string;
	redirectUri?: string;
	returnTo?: string;
}

/** What a scope upgrade needs to know of the credential it starts from. */
export interface UpgradedCredential {
	type: string;
	provider: string;
	system: boolean;
	managed: boolean;
	scopes: string[];
}

export interface StartedAuthorization {
	authorizationUrl: string;
	state: string;
	expiresAt: Date;
}

/**
 * Builds the URL the user is sent to, and remembers the request under its state. `findCredential`
 * looks up the user's credential named by `credentialId` (not_found when it is not theirs).
 */
export async function startAuthorization(
	services: Services,
	request: AuthorizationRequest,
	findCredential: (id: string) => Promise<UpgradedCredential>,
): Promise<StartedAuthorization> {
	const provider = await resolveProvider(services, request.providerId);
	if (!provider.configured || !provider.client) throw notConfigured(provider);
	const { config } = services;
	const redirectUri = checkRedirectTarget(
		config,
		request.redirectUri ?? defaultRedirectUri(config),
		"redirect_uri",
	);
	const returnTo =
		request.returnTo === undefined
			? null
			: checkRedirectTarget(config, request.returnTo, "return_to");

	let scopes = request.scopes ?? provider.defaultScopes;
	if (request.credentialId !== undefined) {
		const existing = await findCredential(request.credentialId);
		if (
			existing.type !== "oauth2" ||
			existing.provider !== provider.id ||
			existing.system ||
			existing.managed
		) {
			throw new LatchkeyError("not_found", "No such credential.", {
				hint: "credential_id must name one of your own OAuth2 credentials of this provider.",
			});
		}
		scopes = [...new Set([...existing.scopes, ...scopes])];
	}

	const codeVerifier = provider.pkce ? oauth.generateRandomCodeVerifier() : null;
	const { state, expiresAt } = await createState(services, {
		user_id: request.userId,
		provider: provider.id,
		scopes,
		redirect_uri: redirectUri,
		return_to: returnTo,
		credential_id: request.credentialId ?? null,
		code_verifier: codeVerifier,
	});

	const url = new URL(provider.authorizeUrl);
	// Provider extras first, so that they can never override the protocol parameters below.
	for (const [name, value] of Object.entries(provider.authorizeParams)) {
		url.searchParams.set(name, value);
	}
	url.searchParams.set("client_id", provider.client.clientId);
	url.searchParams.set("redirect_uri", redirectUri);
	url.searchParams.set("response_type", "code");
	if (scopes.length) url.searchParams.set("scope", scopes.join(provider.scopeSeparator));
	else url.searchParams.delete("scope");
	url.searchParams.set("state", state);
	if (codeVerifier) {
		url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(codeVerifier));
		url.searchParams.set("code_challenge_method", "S256");
	}
	return { authorizationUrl: url.href, state, expiresAt };
}

export type CallbackOutcome<T> =
	/** `kept`: what `keep` made of the account (a stored credential, or a parked connection). */
	| { ok: true; kept: T }
	/** `error` is what a browser is redirected with: the provider's code, or Latchkey's. */
	| { ok: false; error: string; failure: LatchkeyError };

const failed = (failure: LatchkeyError, error: string = failure.code) => ({
	ok: false as const,
	error,
	failure,
});

/**
 * Completes an authorization whose state was consumed: checks the authorization response,
 * exchanges the code and hands the account to `keep` (which stores it, or parks it until the
 * user who started claims it: see connect.ts). Failures the user or provider caused come back as
 * an outcome (the state is spent either way, so the caller decides how to report them); failures
 * of Latchkey's own storage are thrown.
 */
export async function finishAuthorization<T>(
	services: Services,
	state: string,
	record: OAuthStateRecord,
	callbackParams: URLSearchParams,
	keep: (account: ConnectedAccount) => Promise<T>,
): Promise<CallbackOutcome<T>> {
	let provider: EffectiveProvider;
	try {
		provider = await resolveProvider(services, record.provider);
	} catch (err) {
		if (err instanceof LatchkeyError) return failed(err);
		throw err;
	}
	const as = authorizationServer(provider);
	const credentials = await clientOf(provider);
	if (!credentials) return failed(notConfigured(provider));
	const { client, auth } = credentials;

	const params = new URLSearchParams(callbackParams);
	// RFC 9207: compared when the provider declares its issuer, meaningless otherwise.
	if (!provider.issuer) params.delete("iss");
	let validated: URLSearchParams;
	try {
		validated = oauth.validateAuthResponse(as, client, params, state);
	} catch (err) {
		if (err instanceof oauth.AuthorizationResponseError) {
			const code = safeErrorCode(err.error);
			return failed(
				new LatchkeyError("invalid_request", `The provider refused the authorization (${code}).`, {
					hint:
						code === "access_denied"
							? "The user declined; nothing was stored."
							: "Start again with POST /v1/oauth/{provider}/authorize.",
					detail: { provider_error: code },
				}),
				code,
			);
		}
		return failed(
			new LatchkeyError("invalid_request", "The authorization response is invalid.", {
				hint: provider.issuer
					? "It must come from the provider's issuer and carry one code and the state."
					: "It must carry one code and the state.",
			}),
		);
	}

	let tokens: OAuthTokenSet;
	try {
		const response = await oauth.authorizationCodeGrantRequest(
			as,
			client,
			auth,
			validated,
			record.redirect_uri,
			record.code_verifier ?? oauth.nopkce,
			requestOptions(services, provider, "token", provider.tokenUrl),
		);
		const result = await oauth.processAuthorizationCodeResponse(as, client, response, {
			recognizedTokenTypes,
		});
		tokens = toTokenSet(services, provider, result, record.scopes);
	} catch (err) {
		return failed(tokenFailure(provider, err, "token"));
	}

	const username = await fetchUsername(services, provider, tokens.accessToken);
	try {
		const kept = await keep({
			userId: record.user_id,
			provider: provider.id,
			username,
			tokens,
			...(record.credential_id ? { credentialId: record.credential_id } : {}),
			title: username ? `${provider.name} (${username})` : provider.name,
		});
		return { ok: true, kept };
	} catch (err) {
		// Nothing was kept, so nothing may stay live upstream: give the fresh tokens back.
		await revokeUpstream(services, provider.id, {
			accessToken: tokens.accessToken,
			refreshToken: tokens.refreshToken,
		}).catch(() => null);
		if (err instanceof LatchkeyError && err.status < 500) return failed(err);
		throw err;
	}
}

/**
 * A new access token from a refresh token. `reconnect_required` when the provider rejects the
 * refresh token; `provider_unavailable` on anything transient. `scopes` is empty when the
 * provider does not restate them, in which case the stored ones still hold.
 */
export async function refreshAccessToken(
	services: Services,
	providerId: string,
	refreshToken: string,
): Promise<OAuthTokenSet> {
	const provider = await resolveProvider(services, providerId);
	const credentials = await clientOf(provider);
	if (!credentials) {
		throw providerUnavailable(
			provider,
			undefined,
			`The OAuth provider '${provider.id}' has no client configured any more.`,
		);
	}
	const as = authorizationServer(provider);
	try {
		const response = await oauth.refreshTokenGrantRequest(
			as,
			credentials.client,
			credentials.auth,
			refreshToken,
			requestOptions(services, provider, "refresh", provider.tokenUrl),
		);
		const result = await oauth.processRefreshTokenResponse(as, credentials.client, response, {
			recognizedTokenTypes,
		});
		return toTokenSet(services, provider, result, []);
	} catch (err) {
		throw tokenFailure(provider, err, "refresh");
	}
}

/**
 * RFC 7009 revocation of a credential's tokens at the provider: the refresh token first (which
 * normally ends the whole grant), then the access token. Null when the provider has no
 * revocation endpoint (or is gone); false when any revocation failed. Never throws for what
 * the provider does.
 */
export async function revokeUpstream(
	services: Services,
	providerId: string,
	token: { accessToken?: string; refreshToken?: string },
	/** Told why, when a revocation was not accepted: unreachable, refused, or an error status. */
	onFailure?: (reason: string) => void,
): Promise<boolean | null> {
	let provider: EffectiveProvider;
	try {
		provider = await resolveProvider(services, providerId);
	} catch (err) {
		// No OAuth provider (any more) means no revocation endpoint.
		if (err instanceof LatchkeyError && err.code === "not_found") return null;
		if (isApiKeyOnlyError(err)) return null;
		throw err;
	}
	const revokeUrl = provider.revokeUrl;
	if (!revokeUrl) return null;
	const credentials = await clientOf(provider).catch(() => null);
	if (!credentials) {
		onFailure?.(`Latchkey has no client of '${provider.id}' to revoke with`);
		return false;
	}
	const as = authorizationServer(provider);
	const attempts: [string, "refresh_token" | "access_token"][] = [];
	if (token.refreshToken) attempts.push([token.refreshToken, "refresh_token"]);
	if (token.accessToken) attempts.push([token.accessToken, "access_token"]);
	if (!attempts.length) return true;
	let allRevoked = true;
	for (const [value, hint] of attempts) {
		try {
			const response = await oauth.revocationRequest(
				as,
				credentials.client,
				credentials.auth,
				value,
				{
					...requestOptions(services, provider, "revoke", revokeUrl),
					additionalParameters: { token_type_hint: hint },
				},
			);
			// RFC 7009 says 200, but any 2xx means the provider accepted it.
			if (!response.ok) {
				onFailure?.(`'${provider.id}' answered ${response.status}, an error status`);
				allRevoked = false;
			}
		} catch (err) {
			const name = err instanceof Error ? err.name : typeof err;
			onFailure?.(
				outboundFailureOf(err) === "refused" ||
					(err instanceof LatchkeyError && err.code === "invalid_request")
					? `Latchkey refused the call to '${provider.id}' (${(err as Error).message})`
					: `'${provider.id}' was unreachable (${name})`,
			);
			services.logger.warn("oauth revocation failed", {
				provider: provider.id,
				error_name: err instanceof Error ? err.name : typeof err,
			});
			allRevoked = false;
		}
	}
	return allRevoked;
}
