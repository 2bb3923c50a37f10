import type { ApiKeyPlacement } from "../db/schema.ts";
import { HOP_BY_HOP_HEADERS } from "../http/headers.ts";
import type { LeaseSecret } from "../leases/service.ts";

/**
 * What the authenticated proxy does to headers (docs/proxy.md): the caller's credentials,
 * cookies, hop-by-hop and client-address headers never reach the upstream; the credential's
 * secret is injected per type; and on the way back no header that carries the secret, and no
 * cookie, reaches the caller.
 */

/** The caller's own credentials and cookies, and who the caller is (its address). */
const CALLER_ONLY = new Set([
	"authorization",
	"proxy-authorization",
	"cookie",
	"cookie2",
	"forwarded",
	"x-real-ip",
	"true-client-ip",
]);

/** The names a `Connection` header lists are hop-by-hop too. */
function connectionListed(headers: Headers): Set<string> {
	return new Set(
		(headers.get("connection") ?? "")
			.split(",")
			.map((name) => name.trim().toLowerCase())
			.filter(Boolean),
	);
}

const isClientAddress = (name: string) => name.startsWith("cf-") || name.startsWith("x-forwarded-");

/** The caller's headers as they may go upstream: without credentials, cookies and hop-by-hop. */
export function forwardableHeaders(incoming: Headers): Headers {
	const listed = connectionListed(incoming);
	const out = new Headers();
	incoming.forEach((value, name) => {
		if (HOP_BY_HOP_HEADERS.has(name) || CALLER_ONLY.has(name) || listed.has(name)) return;
		if (isClientAddress(name)) return;
		out.append(name, value);
	});
	return out;
}

/** An API key's text in the header or query parameter its provider declared. */
export interface Injection {
	headers: Record<string, string>;
	/** A query parameter the key rides in (replacing any the caller sent of that name). */
	query: { name: string; value: string } | null;
	/**
	 * Strings that must never come back to the caller in a response header: the secret in the
	 * forms it was sent in.
	 */
	secrets: string[];
}

/** Shorter values are too likely to occur by chance in an ordinary header to be scrubbed by. */
const MIN_SCRUBBED_LENGTH = 8;
/**
 * Stored headers whose values describe the request rather than authenticate it. Every other
 * stored header is treated as the secret it usually is, whatever its name (`X-Honeycomb-Team`
 * carries a key and says nothing of it); scrubbing by these values would drop ordinary answers.
 */
const NOT_SECRET_NAME = /^(accept(-[a-z]+)?|content-[a-z]+|user-agent|cache-control)$/i;

function base64Utf8(text: string): string {
	let binary = "";
	for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
	return btoa(binary);
}

/** The secret forms to scrub for: the value itself, and its credential after a scheme word. */
function secretForms(value: string): string[] {
	const forms = [value];
	const space = value.indexOf(" ");
	if (space > 0) forms.push(value.slice(space + 1).trim());
	return forms;
}

/** How the secret of a lease rides the upstream request. */
export function injectionOf(secret: LeaseSecret, placement: ApiKeyPlacement): Injection {
	let injection: Injection;
	switch (secret.type) {
		case "oauth2":
			injection = {
				headers: { authorization: `Bearer ${secret.access_token}` },
				query: null,
				secrets: [secret.access_token],
			};
			break;
		case "api_key":
			injection =
				placement.in === "query"
					? {
							headers: {},
							query: { name: placement.name, value: secret.api_key },
							secrets: [secret.api_key, encodeURIComponent(secret.api_key)],
						}
					: {
							headers: { [placement.name]: `${placement.prefix}${secret.api_key}` },
							query: null,
							secrets: [secret.api_key],
						};
			break;
		case "user_password": {
			const basic = base64Utf8(`${secret.username ?? ""}:${secret.password}`);
			injection = {
				headers: { authorization: `Basic ${basic}` },
				query: null,
				secrets: [basic, secret.password],
			};
			break;
		}
		case "host_scoped":
			injection = {
				headers: { ...secret.headers },
				query: null,
				secrets: Object.entries(secret.headers).flatMap(([name, value]) =>
					NOT_SECRET_NAME.test(name) ? [] : secretForms(value),
				),
			};
			break;
	}
	injection.secrets = [...new Set(injection.secrets)].filter(
		(s) => s.length >= MIN_SCRUBBED_LENGTH,
	);
	return injection;
}

/**
 * The upstream request's headers: the caller's forwardable ones, then the secret over them. A
 * stored header that names the connection itself (`Host`, `Content-Length`, `Connection`, …) is
 * the runtime's to set and is not sent.
 */
export function upstreamHeaders(incoming: Headers, injection: Injection): Headers {
	const headers = forwardableHeaders(incoming);
	for (const [name, value] of Object.entries(injection.headers)) {
		if (!HOP_BY_HOP_HEADERS.has(name.toLowerCase())) headers.set(name, value);
	}
	return headers;
}

/** `search` (`?a=1&b=2` or empty) without parameter `name`, then `name=value`, else unchanged. */
export function withQueryParameter(search: string, name: string, value: string): string {
	const kept = search
		.replace(/^\?/, "")
		.split("&")
		.filter((pair) => {
			if (pair === "") return false;
			const raw = pair.split("=")[0] ?? "";
			let key: string;
			try {
				key = decodeURIComponent(raw.replace(/\+/g, " "));
			} catch {
				key = raw;
			}
			return key !== name;
		});
	kept.push(`${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
	return `?${kept.join("&")}`;
}

/** Headers of the upstream's answer that never reach the caller, whatever their value. */
const DROPPED_RESPONSE = new Set([
	// One hop's headers; the answer's own length and host stay as the runtime sets them.
	...[...HOP_BY_HOP_HEADERS].filter((h) => h !== "host" && h !== "content-length"),
	// Cookies of the upstream would be set on Latchkey's origin, where its console lives.
	"set-cookie",
	"set-cookie2",
	// Latchkey's own CORS policy is the one that applies to its origin.
	"access-control-allow-origin",
	"access-control-allow-credentials",
	"access-control-allow-methods",
	"access-control-allow-headers",
	"access-control-expose-headers",
	"access-control-max-age",
]);

/**
 * The upstream's answer headers as the caller gets them: unchanged, except hop-by-hop headers,
 * cookies, CORS headers, and any header whose value contains the injected secret (an upstream that echoes
 * the request's Authorization, or a redirect carrying an API key in its query).
 */
export function responseHeaders(upstream: Headers, secrets: readonly string[]): Headers {
	const listed = connectionListed(upstream);
	const out = new Headers();
	upstream.forEach((value, name) => {
		if (DROPPED_RESPONSE.has(name) || listed.has(name)) return;
		if (secrets.some((secret) => value.includes(secret))) return;
		out.append(name, value);
	});
	return out;
}
