import type { Config } from "../config.ts";
import { outboundUrlProblem } from "../http/outbound.ts";

/**
 * The rule for URLs the authenticated proxy forwards a caller's request to, with a secret
 * injected (docs/proxy.md): a provider's `api_base_url`, checked when an admin registers it and
 * again before every proxied call, and the target a `host_scoped` credential's host makes.
 *
 * It is the outbound rule of src/http/outbound.ts (https only; never a private, link-local or
 * metadata address, nor `user:pass@`), with one difference: loopback over http is allowed only
 * when LATCHKEY_PROXY_ALLOW_LOOPBACK says so (`npm run dev`, or `npm start` when told), never
 * because LATCHKEY_PUBLIC_URL happens to be http. A proxy target is chosen by users (a
 * `host_scoped` host), so a self-hosted deployment on plain http must not hand them its loopback.
 */

const LOOPBACK_ALLOWED = { LATCHKEY_PUBLIC_URL: "http://localhost" } as const;
const LOOPBACK_REFUSED = { LATCHKEY_PUBLIC_URL: "https://latchkey.invalid" } as const;

type ProxyConfig = Pick<Config, "LATCHKEY_PROXY_ALLOW_LOOPBACK">;

/** Why the proxy will not call `raw`, or null when it may. Hosts are judged as written. */
export function proxyUrlProblem(raw: string, config: ProxyConfig): string | null {
	// outboundUrlProblem allows loopback (over http too) exactly on a "local" deployment, the one
	// whose public URL is http: the proxy's switch picks which of the two rules applies.
	const problem = outboundUrlProblem(
		raw,
		config.LATCHKEY_PROXY_ALLOW_LOOPBACK ? LOOPBACK_ALLOWED : LOOPBACK_REFUSED,
	);
	if (problem)
		return problem.replace("on a local deployment", "with LATCHKEY_PROXY_ALLOW_LOOPBACK");
	return null;
}

/**
 * Why `raw` cannot be a provider's api_base_url, or null. Besides the proxy rule: the root is a
 * scheme, a host and a path prefix, nothing else (a query or fragment would be merged into every
 * caller's URL in ways nobody could predict).
 */
export function apiBaseUrlProblem(raw: string, config: ProxyConfig): string | null {
	const problem = proxyUrlProblem(raw, config);
	if (problem) return problem;
	const url = new URL(raw);
	if (url.search !== "" || url.hash !== "" || raw.includes("?") || raw.includes("#")) {
		return "must not carry a query or a fragment";
	}
	return null;
}
