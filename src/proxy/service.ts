import { and, eq, sql } from "drizzle-orm";
import { openSecret } from "../credentials/service.ts";
import type { BatchedCheck } from "../db/client.ts";
import { credentials } from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import { MAX_LEASE_TTL_S } from "../leases/policy.ts";
import { loadCredential, type OAuthRow } from "../leases/refresh.ts";
import { createLease, type Lease, releaseLease } from "../leases/service.ts";
import type { Services } from "../services.ts";
import {
	declaredLength,
	type PreparedBody,
	payloadTooLarge,
	prepareBody,
	sending,
} from "./body.ts";
import {
	type Injection,
	injectionOf,
	responseHeaders,
	upstreamHeaders,
	withQueryParameter,
} from "./headers.ts";
import {
	type ProviderTarget,
	providerTargetOf,
	type Target,
	targetOf,
	upstreamUrl,
} from "./target.ts";

/**
 * The authenticated proxy (docs/proxy.md): `ANY /v1/proxy/{credential_id}/{path}` forwards the
 * caller's request to the credential's own target with its secret injected, so that an agent
 * calls a third-party API without ever holding the secret.
 *
 * Every call takes a lease (createLease) for its duration: the caller's fresh check, the lease
 * rate bucket and the per-credential cap, and for OAuth2 the refresh engine (single flight,
 * shared leases, writer priority) are the lease's own. The lease ends as soon as the upstream's
 * response headers arrive; the body then streams through without the proxy touching it.
 */

/** The `X-Latchkey-Request-Id` header: Latchkey's request id beside the upstream's own headers. */
export const LATCHKEY_REQUEST_ID = "x-latchkey-request-id";

/**
 * A token younger than this is not refreshed because an upstream refused it: a refresh cannot
 * help a token that was just obtained, and an upstream that answers 401 to every call must not
 * turn each call into a provider refresh. At most one forced refresh per credential per window.
 */
export const FORCED_REFRESH_MIN_AGE_MS = 30_000;

export interface ProxyCall {
	userId: string;
	/** Whom the lease rate counts: `key:<id>` or `user:<id>`, as for leases. */
	principal: string;
	credentialId: string;
	method: string;
	/** The request path after `/v1/proxy/{credential_id}`: `""` or starting with `/`. */
	rest: string;
	/** The request's query, `""` or starting with `?`. */
	search: string;
	headers: Headers;
	body: ReadableStream<Uint8Array> | null;
	/** The caller's fresh check, run with the lease's read (authenticate({ deferLiveCheck })). */
	liveCheck: BatchedCheck | null;
	requestId: string;
	/** Keeps work alive past the response (the Workers `waitUntil`). */
	defer: (work: Promise<unknown>) => void;
}

const notFound = () => new LatchkeyError("not_found", "No such credential.");

const upstreamUnavailable = (host: string, why: string) =>
	new LatchkeyError("upstream_unavailable", `The upstream ${host} ${why}.`);

const upstreamTimeout = (host: string, seconds: number) =>
	new LatchkeyError(
		"upstream_timeout",
		`The upstream ${host} did not answer within ${seconds} s of the request's last byte.`,
	);

const BODILESS_METHODS = new Set(["GET", "HEAD"]);
const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);

/** A forwarded call: the upstream's answer for the caller, and which host gave it. */
export interface ProxyResult {
	response: Response;
	/** The target's host (`api.github.com`, `127.0.0.1:8080`): for the audit log, never a path. */
	host: string;
}

/** Proxies one call; the upstream's answer comes back streamed, or a LatchkeyError is thrown. */
export async function proxyCall(services: Services, call: ProxyCall): Promise<ProxyResult> {
	const { config } = services;
	const max = config.LATCHKEY_PROXY_MAX_REQUEST_BYTES;
	const body = BODILESS_METHODS.has(call.method) ? null : call.body;
	const length = body ? declaredLength(call.headers) : null;
	// Refused before a lease is spent on it.
	if (length !== null && length > max) throw payloadTooLarge(max);

	const release = (lease: Lease) =>
		releaseLease(services, { userId: call.userId, leaseId: lease.lease_id }).catch(
			// 410: the lease ran out during a long upload; nothing to undo.
			() => {},
		);
	const ttlSeconds = Math.min(MAX_LEASE_TTL_S, config.LATCHKEY_PROXY_TIMEOUT_SECONDS + 5);
	// The provider's target comes from the lease's own read of the row (one Postgres request
	// per call): the lease runs the caller's fresh check first, so a refused caller learns nothing.
	let described: ProviderTarget | null = null;
	const leaseFor = (liveCheck: BatchedCheck | null) =>
		createLease(services, {
			userId: call.userId,
			principal: call.principal,
			credentialId: call.credentialId,
			ttlSeconds,
			liveCheck,
			defer: call.defer,
			onRead: (facts) => {
				described = providerTargetOf(facts);
			},
		});

	let lease = await leaseFor(call.liveCheck);
	let target: Target;
	let url: URL;
	let prepared: PreparedBody;
	let meta: ProviderTarget;
	try {
		// A lease is granted only after its read: never null here.
		if (!described) throw notFound();
		meta = described;
		target = targetOf(call.credentialId, lease.secret, meta, config);
		url = upstreamUrl(target, call.rest, call.search);
		prepared = await prepareBody(body, length, lease.secret.type === "oauth2", max);
	} catch (err) {
		call.defer(release(lease));
		throw err;
	}

	let injection = injectionOf(lease.secret, meta.apiKeyPlacement);
	let res: Response;
	try {
		res = await send(services, call, target, withSecret(url, injection), injection, prepared);
	} catch (err) {
		call.defer(release(lease));
		throw err;
	}

	// An upstream 401 of an OAuth2 token: one forced refresh and one retry, never more. A body
	// that was streamed cannot be sent again: the 401 is passed on, the token refreshed for the
	// caller's own retry.
	if (res.status === 401 && lease.secret.type === "oauth2") {
		const used = lease.secret.access_token;
		await release(lease);
		let retry: boolean;
		try {
			retry = await refreshAfterUnauthorized(services, call.credentialId, used);
		} catch (err) {
			await res.body?.cancel();
			throw err;
		}
		if (retry && prepared.kind !== "stream") {
			await res.body?.cancel();
			// The caller's fresh check has passed; the retry's lease reads the refreshed row.
			lease = await leaseFor(null);
			injection = injectionOf(lease.secret, meta.apiKeyPlacement);
			services.logger.info("proxy: the upstream refused the token; refreshed, retrying once", {
				credential_id: call.credentialId,
				upstream_host: target.host,
			});
			try {
				res = await send(services, call, target, withSecret(url, injection), injection, prepared);
			} catch (err) {
				call.defer(release(lease));
				throw err;
			}
		} else {
			return { response: relay(res, injection, target, url, call.requestId), host: target.host };
		}
	}
	call.defer(release(lease));
	return { response: relay(res, injection, target, url, call.requestId), host: target.host };
}

/** The upstream URL with an API key in its query, when the provider takes it there. */
function withSecret(url: URL, injection: Injection): URL {
	if (!injection.query) return url;
	const out = new URL(url);
	out.search = withQueryParameter(url.search, injection.query.name, injection.query.value);
	return out;
}

/**
 * Sends the request. The time-out counts from the later of the call's start and the last byte
 * of the request body that moved: a slow upload is not cut, an upstream that says nothing is.
 */
async function send(
	services: Services,
	call: ProxyCall,
	target: Target,
	url: URL,
	injection: Injection,
	prepared: PreparedBody,
): Promise<Response> {
	const { config } = services;
	const timeoutMs = config.LATCHKEY_PROXY_TIMEOUT_SECONDS * 1000;
	const controller = new AbortController();
	let last = performance.now();
	let timedOut = false;
	let timer: ReturnType<typeof setTimeout> | undefined;
	const check = () => {
		const idle = performance.now() - last;
		if (idle >= timeoutMs) {
			timedOut = true;
			controller.abort();
			return;
		}
		timer = setTimeout(check, timeoutMs - idle);
	};
	timer = setTimeout(check, timeoutMs);
	const outgoing = sending(
		prepared,
		config.LATCHKEY_PROXY_MAX_REQUEST_BYTES,
		() => {
			last = performance.now();
		},
		() => controller.abort(),
	);
	try {
		return await fetch(url, {
			method: call.method,
			headers: upstreamHeaders(call.headers, injection),
			body: outgoing.body,
			redirect: "manual",
			signal: controller.signal,
		});
	} catch {
		if (outgoing.tooLarge()) throw payloadTooLarge(config.LATCHKEY_PROXY_MAX_REQUEST_BYTES);
		if (timedOut) throw upstreamTimeout(target.host, config.LATCHKEY_PROXY_TIMEOUT_SECONDS);
		throw upstreamUnavailable(target.host, "could not be reached (the connection failed)");
	} finally {
		clearTimeout(timer);
	}
}

/**
 * The upstream's answer for the caller: status, headers and body unchanged (the body streamed,
 * not read), less hop-by-hop headers, cookies and any header carrying the secret, plus
 * X-Latchkey-Request-Id. A redirect to another host is refused; one within the target's origin
 * is passed on, not followed.
 */
function relay(
	res: Response,
	injection: Injection,
	target: Target,
	url: URL,
	requestId: string,
): Response {
	if (res.status >= 300 && res.status < 400) {
		const location = res.headers.get("location");
		let to: URL | null = null;
		try {
			to = location === null ? null : new URL(location, url);
		} catch {
			to = null;
		}
		if (location !== null && to?.origin !== target.origin) {
			void res.body?.cancel();
			throw upstreamUnavailable(
				target.host,
				`answered a redirect (${res.status}) to another host, which the proxy neither follows nor passes on`,
			);
		}
	}
	if (res.status === 101) {
		void res.body?.cancel();
		throw upstreamUnavailable(
			target.host,
			"asked to switch protocols, which the proxy does not do",
		);
	}
	const headers = responseHeaders(res.headers, injection.secrets);
	headers.set(LATCHKEY_REQUEST_ID, requestId);
	return new Response(NULL_BODY_STATUS.has(res.status) ? null : res.body, {
		status: res.status,
		statusText: res.statusText,
		headers,
	});
}

/**
 * After an upstream 401 of token `used`: whether to retry with a new lease. Yes when the stored
 * token has changed since (someone refreshed it), or after marking the token dead so that the
 * next lease refreshes it through the refresh engine (single flight, fencing, writer priority).
 * No when the credential cannot be refreshed or its token is too young to blame.
 */
async function refreshAfterUnauthorized(
	services: Services,
	credentialId: string,
	used: string,
): Promise<boolean> {
	const row = await loadCredential(services, credentialId);
	if (row?.type !== "oauth2" || row.status !== "active") return false;
	const stored = await openSecret(services, row as OAuthRow);
	if (stored.access_token !== used) return true;
	if (!stored.refresh_token) return false;
	const now = services.now();
	const issued = row.tokenIssuedAt ?? row.updatedAt;
	if (now.getTime() - issued.getTime() < FORCED_REFRESH_MIN_AGE_MS) return false;
	await markTokenDead(services, row as OAuthRow, now);
	return true;
}

/**
 * Records that the upstream refused the access token: it expires now. Fenced on the token
 * version read (a refresh or any token write since then wins) and on the credential being
 * active; the next lease then finds it expired and refreshes it, once, whoever asks.
 */
async function markTokenDead(services: Services, row: OAuthRow, now: Date): Promise<void> {
	await services.db
		.update(credentials)
		.set({
			accessTokenExpiresAt: new Date(now.getTime() - 1000),
			version: sql`${credentials.version} + 1`,
			updatedAt: now,
		})
		.where(
			and(
				eq(credentials.id, row.id),
				eq(credentials.tokenVersion, row.tokenVersion),
				eq(credentials.status, "active"),
			),
		);
}
