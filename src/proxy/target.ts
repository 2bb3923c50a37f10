import type { Config } from "../config.ts";
import type { ApiKeyPlacement, CredentialType } from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import type { LeaseSecret, ProviderFacts } from "../leases/service.ts";
import { apiBaseUrlProblem, proxyUrlProblem } from "../oauth/api-target.ts";
import { builtinProvider, DEFAULT_API_KEY_PLACEMENT } from "../oauth/providers.ts";

/**
 * Where a proxied call goes: always the credential's own target, never a host the caller names
 * (docs/proxy.md). A `host_scoped` credential's host; for OAuth2, API-key and password
 * credentials, their provider's `api_base_url`. Judged by the proxy's URL rule before every
 * call, whatever was accepted when it was stored.
 */

export interface ProviderTarget {
	type: CredentialType;
	provider: string;
	apiBaseUrl: string | null;
	apiKeyPlacement: ApiKeyPlacement;
}

/**
 * The credential's provider target from what the lease's own read found (`LeaseRequest.onRead`):
 * the lease's secret does not say which provider it belongs to. An admin row overrides the
 * built-in values; what it leaves null keeps them.
 */
export function providerTargetOf(facts: ProviderFacts): ProviderTarget {
	const builtin = builtinProvider(facts.provider);
	return {
		type: facts.type,
		provider: facts.provider,
		apiBaseUrl: facts.apiBaseUrl ?? builtin?.apiBaseUrl ?? null,
		apiKeyPlacement: facts.apiKeyPlacement ?? builtin?.apiKeyPlacement ?? DEFAULT_API_KEY_PLACEMENT,
	};
}

/** A target: the URL prefix every proxied path is put under. */
export interface Target {
	/** `https://api.example.com` (no trailing slash). */
	origin: string;
	/** The root's path without its trailing slash: `""` or `/v1`. */
	basePath: string;
	/** For error messages and logs: the host, never a path or query. */
	host: string;
}

const refused = (credentialId: string, reason: string, hint?: string) =>
	new LatchkeyError(
		"proxy_target_refused",
		`The proxy does not call the target of credential ${credentialId}: ${reason}.`,
		{ detail: { reason }, ...(hint ? { hint } : {}) },
	);

type TargetConfig = Pick<Config, "LATCHKEY_PROXY_ALLOW_LOOPBACK">;

function hostTarget(credentialId: string, host: string | null, config: TargetConfig): Target {
	if (!host) throw refused(credentialId, "it has no host");
	if (host.startsWith("*.")) {
		throw refused(
			credentialId,
			`its host ${host} is a wildcard, which names no single host`,
			"Store a host_scoped credential for the exact host the proxy should call.",
		);
	}
	// Loopback is reached over http, and only where the deployment allows it; anything else over
	// https, under the same rule.
	const local = `http://${host}`;
	const root =
		config.LATCHKEY_PROXY_ALLOW_LOOPBACK && proxyUrlProblem(local, config) === null
			? local
			: `https://${host}`;
	const problem = proxyUrlProblem(root, config);
	if (problem) throw refused(credentialId, `its host ${problem}`);
	const url = new URL(root);
	return { origin: url.origin, basePath: "", host: url.host };
}

function providerTarget(credentialId: string, meta: ProviderTarget, config: TargetConfig): Target {
	if (!meta.apiBaseUrl) {
		throw refused(
			credentialId,
			`its provider '${meta.provider}' has no api_base_url`,
			`An admin sets one with PUT /v1/admin/providers/${meta.provider} (api_base_url).`,
		);
	}
	const problem = apiBaseUrlProblem(meta.apiBaseUrl, config);
	if (problem) throw refused(credentialId, `the api_base_url of '${meta.provider}' ${problem}`);
	const url = new URL(meta.apiBaseUrl);
	return { origin: url.origin, basePath: url.pathname.replace(/\/+$/, ""), host: url.host };
}

/** The target of the leased secret (of the credential `meta` describes). */
export function targetOf(
	credentialId: string,
	secret: LeaseSecret,
	meta: ProviderTarget,
	config: TargetConfig,
): Target {
	return secret.type === "host_scoped"
		? hostTarget(credentialId, secret.host, config)
		: providerTarget(credentialId, meta, config);
}

/**
 * The upstream URL of a proxied path (`rest`: the request's path after the credential id, `""`
 * or starting with `/`, as the URL parser normalised it) and query. The path stays below the
 * target's root: a result that would leave it (or the origin) is refused.
 */
export function upstreamUrl(target: Target, rest: string, search: string): URL {
	const path = `${target.basePath}${rest || "/"}`;
	const url = new URL(`${target.origin}${path}${search}`);
	const inside =
		url.origin === target.origin &&
		(url.pathname === target.basePath || url.pathname.startsWith(`${target.basePath}/`));
	if (!inside) {
		throw new LatchkeyError(
			"invalid_request",
			"The proxied path leaves the credential's API root.",
			{
				detail: [{ field: "path", location: "path", message: "must stay below the API root" }],
			},
		);
	}
	return url;
}
