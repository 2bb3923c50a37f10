import { LatchkeyError } from "./errors.ts";
import { type LeaseHandle, runWithCredential, type WithCredentialOptions } from "./leases.ts";
import {
	DEFAULT_RETRY,
	linkedController,
	parseRetryAfter,
	platformTimers,
	type RetryPolicy,
	raceAbort,
	retryDelay,
	sleep,
	type Timers,
} from "./timing.ts";
import type {
	CallOptions,
	FullResponse,
	HttpMethod,
	Lease,
	LeaseRenewed,
	LeaseSecret,
	PathsFor,
	RequestArgs,
	RequestOptions,
	ResponseOf,
	TokenResponse,
} from "./types.ts";

/** `fetch` as the client calls it: always a string URL. */
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface LatchkeyClientOptions {
	/** Latchkey's origin, e.g. `https://latchkey.example.com` (a path prefix is kept). */
	baseUrl: string;
	/**
	 * A Latchkey API key (`lk_…`, or a legacy `sk-…`). The client exchanges it once for an
	 * access token (`POST /v1/auth/token`) and keeps that fresh with the rotating refresh token;
	 * the key itself is sent again only when the session has ended.
	 */
	apiKey?: string;
	/**
	 * A bearer token used as it is, instead of `apiKey`: the admin token, or a JWT of the
	 * platform's identity provider (which the client cannot refresh).
	 */
	token?: string;
	/** The `fetch` to use; the platform's by default. */
	fetch?: FetchLike;
	/** Retries of 503/429 answers and lost requests; see RetryPolicy for the defaults. */
	retry?: Partial<RetryPolicy>;
	/** Clock and timers (tests, or a runtime with its own); the platform's by default. */
	timers?: Timers;
	/** Random numbers in [0, 1) for the backoff's jitter; Math.random by default. */
	random?: () => number;
	/**
	 * How long one try may take before it is abandoned (and retried where that is safe).
	 * Default 60 s: a lease may wait ~25 s for a refresh inside Latchkey.
	 */
	timeoutMs?: number;
	/**
	 * How long before its expiry an access token is refreshed. Default: a quarter of its
	 * lifetime, at most 60 s.
	 */
	refreshMarginMs?: number;
}

interface Session {
	accessToken: string;
	refreshToken: string;
	/** Local clock, from the answer's arrival and `expires_in`: immune to clock skew. */
	expiresAt: number;
	refreshExpiresAt: number;
	lifetimeMs: number;
}

interface Sent {
	response: Response;
	/** The session whose access token the request carried, if any. */
	session: Session | null;
}

/** Calls that may be sent again when their answer was lost: repeating them changes nothing. */
function repeatable(method: string, path: string): boolean {
	if (method === "get" || method === "put" || method === "delete" || method === "head") return true;
	return path === "/v1/auth/token" || /^\/v1\/leases\/[^/]+\/renew$/.test(path);
}

/**
 * A typed client for Latchkey's HTTP API. Every route of the served OpenAPI document is
 * callable through `request` with its path parameters, query, body and answer typed; the lease
 * lifecycle has methods of its own, and `withCredential` runs a function with a leased secret,
 * renewed while it runs and always released.
 *
 * The client logs nothing. It keeps the API key, the tokens and any secret in private fields,
 * so printing the client shows none of them.
 */
export class LatchkeyClient {
	readonly baseUrl: string;
	readonly #apiKey: string | undefined;
	readonly #staticToken: string | undefined;
	readonly #fetch: FetchLike;
	readonly #retry: RetryPolicy;
	readonly #timers: Timers;
	readonly #random: () => number;
	readonly #timeoutMs: number;
	readonly #refreshMarginMs: number | undefined;
	#session: Session | null = null;
	/** The token exchange or refresh in flight; every caller that needs a token awaits this one. */
	#pendingSession: Promise<Session> | null = null;

	constructor(options: LatchkeyClientOptions) {
		if (!options.baseUrl) throw new TypeError("LatchkeyClient: baseUrl is required");
		if (Boolean(options.apiKey) === Boolean(options.token))
			throw new TypeError("LatchkeyClient: pass exactly one of apiKey and token");
		this.baseUrl = options.baseUrl.replace(/\/+$/, "");
		this.#apiKey = options.apiKey;
		this.#staticToken = options.token;
		const platformFetch: FetchLike = (input, init) => fetch(input, init);
		this.#fetch = options.fetch ?? platformFetch;
		this.#retry = { ...DEFAULT_RETRY, ...options.retry };
		this.#timers = options.timers ?? platformTimers;
		this.#random = options.random ?? Math.random;
		this.#timeoutMs = options.timeoutMs ?? 60_000;
		this.#refreshMarginMs = options.refreshMarginMs;
	}

	/** The clock and timers the client runs on (leases schedule their renewals on them). */
	get timers(): Timers {
		return this.#timers;
	}

	/**
	 * Calls any route of the API: `request("get", "/v1/credentials/{id}", { params: { id } })`.
	 * Resolves with the answer's JSON body (undefined for 204); a non-2xx answer rejects with a
	 * LatchkeyError.
	 */
	async request<M extends HttpMethod, P extends PathsFor<M>>(
		method: M,
		path: P,
		...args: RequestArgs<P, M>
	): Promise<ResponseOf<P, M>> {
		return (await this.requestFull(method, path, ...args)).data;
	}

	/** `request`, with the answer's status, headers (ETag) and request id beside the body. */
	async requestFull<M extends HttpMethod, P extends PathsFor<M>>(
		method: M,
		path: P,
		...args: RequestArgs<P, M>
	): Promise<FullResponse<ResponseOf<P, M>>> {
		const options = (args[0] ?? {}) as RequestOptions<P, M> & {
			params?: Record<string, string | number>;
			query?: Record<string, unknown>;
			body?: unknown;
		};
		const response = await this.#call(method, path, options);
		return {
			data: (await readBody(response)) as ResponseOf<P, M>,
			status: response.status,
			headers: response.headers,
			requestId: response.headers.get("x-request-id"),
		};
	}

	get<P extends PathsFor<"get">>(path: P, ...args: RequestArgs<P, "get">) {
		return this.request("get", path, ...args);
	}
	post<P extends PathsFor<"post">>(path: P, ...args: RequestArgs<P, "post">) {
		return this.request("post", path, ...args);
	}
	put<P extends PathsFor<"put">>(path: P, ...args: RequestArgs<P, "put">) {
		return this.request("put", path, ...args);
	}
	patch<P extends PathsFor<"patch">>(path: P, ...args: RequestArgs<P, "patch">) {
		return this.request("patch", path, ...args);
	}
	delete<P extends PathsFor<"delete">>(path: P, ...args: RequestArgs<P, "delete">) {
		return this.request("delete", path, ...args);
	}

	/** `POST /v1/credentials/{id}/leases`: the secret, for `ttlSeconds` (1–900, default 60). */
	lease(
		credentialId: string,
		options: { ttlSeconds?: number; signal?: AbortSignal } = {},
	): Promise<Lease> {
		return this.request("post", "/v1/credentials/{id}/leases", {
			params: { id: credentialId },
			body: options.ttlSeconds === undefined ? {} : { ttl_seconds: options.ttlSeconds },
			...(options.signal ? { signal: options.signal } : {}),
		});
	}

	/** `POST /v1/leases/{lease_id}/renew`: 409 `token_expiring` means release and lease again. */
	renewLease(
		leaseId: string,
		options: { ttlSeconds?: number; signal?: AbortSignal } = {},
	): Promise<LeaseRenewed> {
		return this.request("post", "/v1/leases/{lease_id}/renew", {
			params: { lease_id: leaseId },
			body: options.ttlSeconds === undefined ? {} : { ttl_seconds: options.ttlSeconds },
			...(options.signal ? { signal: options.signal } : {}),
		});
	}

	/** `DELETE /v1/leases/{lease_id}`; 410 `lease_gone` when it has already ended. */
	async releaseLease(leaseId: string, options: { signal?: AbortSignal } = {}): Promise<void> {
		await this.request("delete", "/v1/leases/{lease_id}", {
			params: { lease_id: leaseId },
			...(options.signal ? { signal: options.signal } : {}),
		});
	}

	/**
	 * Leases the credential, runs `fn` with its secret, and releases the lease when `fn` settles,
	 * throws, or `options.signal` aborts (then it rejects with the signal's reason at once,
	 * without waiting for `fn`). While `fn` runs the lease is renewed in the background; when
	 * Latchkey refuses a renewal (409 `token_expiring`: the token is about to be refreshed, or the
	 * lease has ended), a fresh lease is taken and `lease.secret` holds its secret for the next
	 * use, so a long run reads `lease.secret` at each use rather than keeping the first one.
	 */
	withCredential<T>(
		credentialId: string,
		fn: (secret: LeaseSecret, lease: LeaseHandle) => T | Promise<T>,
		options: WithCredentialOptions = {},
	): Promise<T> {
		return runWithCredential(this, credentialId, fn, options);
	}

	/**
	 * An authenticated request whose answer comes back as it is, whatever its status: for
	 * routes whose body is not Latchkey's JSON (the authenticated proxy). Not retried.
	 */
	async raw(
		method: string,
		path: string,
		init: {
			query?: Record<string, string>;
			headers?: Record<string, string>;
			body?: BodyInit | null;
			signal?: AbortSignal;
		} = {},
	): Promise<Response> {
		const headers = new Headers(init.headers);
		headers.set("authorization", `Bearer ${await this.#bearer(init.signal)}`);
		const query = init.query ? `?${new URLSearchParams(init.query)}` : "";
		return this.#fetch(`${this.baseUrl}${path}${query}`, {
			method: method.toUpperCase(),
			headers,
			...(init.body === undefined ? {} : { body: init.body }),
			...(init.signal ? { signal: init.signal } : {}),
		});
	}

	/**
	 * Ends the session the API key was exchanged for (`POST /v1/auth/revoke`): an agent run that
	 * is done leaves no live refresh token behind. The next call starts a new session.
	 */
	async signOut(): Promise<void> {
		const session = this.#session ?? (await this.#pendingSession?.catch(() => null)) ?? null;
		this.#session = null;
		if (!session) return;
		await this.#send("post", "/v1/auth/revoke", {
			body: { refresh_token: session.refreshToken },
			auth: false,
		});
	}

	// ---- token handling ----

	/** The bearer for the next request: the static token, or a fresh access token. */
	async #bearer(signal?: AbortSignal): Promise<string> {
		if (this.#staticToken) return this.#staticToken;
		return (await this.#freshSession(signal)).accessToken;
	}

	async #freshSession(signal?: AbortSignal): Promise<Session> {
		const current = this.#session;
		if (current && this.#timers.now() < current.expiresAt - this.#marginOf(current)) return current;
		// One exchange or refresh at a time, shared by every caller that needs it.
		if (!this.#pendingSession) {
			const started = this.#renewSession(current).finally(() => {
				this.#pendingSession = null;
			});
			this.#pendingSession = started;
		}
		return raceAbort(this.#pendingSession, signal);
	}

	#marginOf(session: Session): number {
		return this.#refreshMarginMs ?? Math.min(60_000, session.lifetimeMs / 4);
	}

	async #renewSession(stale: Session | null): Promise<Session> {
		if (stale && this.#timers.now() < stale.refreshExpiresAt - 5_000) {
			try {
				return this.#adopt(
					await this.#tokenGrant({
						grant_type: "refresh_token",
						refresh_token: stale.refreshToken,
					}),
				);
			} catch (err) {
				// The session ended (revoked, reused, past 30 days): start a new one with the key.
				// Anything else (Latchkey unreachable) leaves the access token in use while it is
				// still valid; the next call tries the refresh again.
				if (!(err instanceof LatchkeyError && err.status === 401)) {
					if (this.#timers.now() < stale.expiresAt - 5_000) return stale;
					throw err;
				}
			}
		}
		return this.#adopt(
			await this.#tokenGrant({ grant_type: "api_key", api_key: this.#apiKey as string }),
		);
	}

	async #tokenGrant(
		body:
			| { grant_type: "api_key"; api_key: string }
			| { grant_type: "refresh_token"; refresh_token: string },
	): Promise<{ token: TokenResponse; receivedAt: number }> {
		const { response } = await this.#send("post", "/v1/auth/token", { body, auth: false });
		const token = parseAnswer(response, await response.text()) as TokenResponse;
		return { token, receivedAt: this.#timers.now() };
	}

	#adopt({ token, receivedAt }: { token: TokenResponse; receivedAt: number }): Session {
		const session: Session = {
			accessToken: token.access_token,
			refreshToken: token.refresh_token,
			expiresAt: receivedAt + token.expires_in * 1000,
			refreshExpiresAt: receivedAt + token.refresh_expires_in * 1000,
			lifetimeMs: token.expires_in * 1000,
		};
		this.#session = session;
		return session;
	}

	// ---- sending ----

	async #call(
		method: HttpMethod,
		path: string,
		options: CallOptions & {
			params?: Record<string, string | number>;
			query?: Record<string, unknown>;
			body?: unknown;
		},
	): Promise<Response> {
		// A 401 on an access token the client obtained means its session ended (revoked, the
		// user's keys rolled): once, a new session is started and the call sent again.
		const first = await this.#send(method, path, { ...options, auth: true });
		if (first.response.ok) return first.response;
		if (first.response.status !== 401 || !first.session) throw await this.#errorOf(first.response);
		await first.response.body?.cancel();
		if (this.#session === first.session) this.#session = null;
		const second = await this.#send(method, path, { ...options, auth: true });
		if (second.response.ok) return second.response;
		throw await this.#errorOf(second.response);
	}

	#retryAfterOf(response: Response): number | null {
		return parseRetryAfter(response.headers.get("retry-after"), this.#timers.now());
	}

	#errorOf(response: Response): Promise<LatchkeyError> {
		return LatchkeyError.fromResponse(response, this.#retryAfterOf(response));
	}

	/**
	 * Sends one call, retrying 503 and 429 (after their Retry-After, with backoff and jitter)
	 * and lost answers of calls that are safe to repeat. Resolves with the last answer, whatever
	 * its status.
	 */
	async #send(
		method: string,
		template: string,
		options: CallOptions & {
			params?: Record<string, string | number>;
			query?: Record<string, unknown>;
			body?: unknown;
			auth: boolean;
		},
	): Promise<Sent> {
		const url = this.baseUrl + expandPath(template, options.params) + queryString(options.query);
		const { signal } = options;
		const safeToRepeat = repeatable(method, template);
		for (let attempt = 0; ; attempt++) {
			signal?.throwIfAborted();
			const last = attempt + 1 >= this.#retry.maxAttempts;
			const headers: Record<string, string> = { accept: "application/json", ...options.headers };
			let session: Session | null = null;
			if (options.auth) {
				if (this.#staticToken) headers.authorization = `Bearer ${this.#staticToken}`;
				else {
					session = await this.#freshSession(signal);
					headers.authorization = `Bearer ${session.accessToken}`;
				}
			}
			if (options.body !== undefined) headers["content-type"] = "application/json";
			if (options.ifMatch !== undefined) headers["if-match"] = `"${options.ifMatch}"`;
			if (options.requestId) headers["x-request-id"] = options.requestId;
			const link = linkedController(signal, this.#timeoutMs, this.#timers);
			let response: Response;
			try {
				response = await this.#fetch(url, {
					method: method.toUpperCase(),
					headers,
					...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
					signal: link.signal,
				});
			} catch (err) {
				if (signal?.aborted) throw signal.reason ?? err;
				const lost = new LatchkeyError(
					link.timedOut()
						? {
								status: 0,
								code: "timeout",
								message: `No answer from Latchkey within ${this.#timeoutMs} ms.`,
								hint: "Latchkey or the network is slow; try again, or raise the client's timeoutMs.",
							}
						: {
								status: 0,
								code: "network_error",
								message: "The request did not reach Latchkey, or its answer was lost.",
								hint: "Check the client's baseUrl and the network; the call can be retried.",
							},
					{ cause: err },
				);
				if (last || !safeToRepeat) throw lost;
				await sleep(retryDelay(attempt, null, this.#retry, this.#random), this.#timers, signal);
				continue;
			} finally {
				link.dispose();
			}
			if ((response.status === 503 || response.status === 429) && !last) {
				const retryAfterMs = this.#retryAfterOf(response);
				if (retryAfterMs === null || retryAfterMs <= this.#retry.maxRetryAfterMs) {
					await response.body?.cancel();
					await sleep(
						retryDelay(attempt, retryAfterMs, this.#retry, this.#random),
						this.#timers,
						signal,
					);
					continue;
				}
			}
			// Calls without a bearer (the token endpoint) have no 401 to recover from.
			if (!options.auth && !response.ok) throw await this.#errorOf(response);
			return { response, session };
		}
	}
}

/** The body of a successful answer: JSON when it says so, undefined when empty, else text. */
async function readBody(response: Response): Promise<unknown> {
	if (response.status === 204 || response.status === 205) return undefined;
	const text = await response.text();
	if (text === "") return undefined;
	const type = response.headers.get("content-type") ?? "";
	return /\bjson\b/i.test(type) ? parseAnswer(response, text) : text;
}

/**
 * JSON.parse's SyntaxError quotes the text around the fault, which in a truncated lease or
 * token answer is part of the secret: the error says what failed and carries none of it.
 */
function parseAnswer(response: Response, text: string): unknown {
	try {
		return JSON.parse(text);
	} catch {
		throw new LatchkeyError({
			status: response.status,
			code: "invalid_response",
			message: "Latchkey's answer was not the JSON it announced (truncated or altered).",
			hint: "The call can be retried; if it keeps happening, check what sits between the client and Latchkey.",
			requestId: response.headers.get("x-request-id"),
		});
	}
}

/** `/v1/credentials/{id}` with its parameters filled in, each segment escaped. */
function expandPath(template: string, params?: Record<string, string | number>): string {
	return template.replace(/\{([^}]+)\}/g, (_, name: string) => {
		const value = params?.[name];
		if (value === undefined || value === "")
			throw new TypeError(`LatchkeyClient: path parameter "${name}" is missing for ${template}`);
		// A parameter may span segments (the proxy's path): keep its slashes.
		return String(value).split("/").map(encodeURIComponent).join("/");
	});
}

function queryString(query?: Record<string, unknown>): string {
	if (!query) return "";
	const search = new URLSearchParams();
	for (const [key, value] of Object.entries(query)) {
		if (value === undefined || value === null) continue;
		for (const item of Array.isArray(value) ? value : [value]) search.append(key, String(item));
	}
	const text = search.toString();
	return text ? `?${text}` : "";
}
