/**
 * `latchkey/client`: the typed client agent runtimes call Latchkey with. Only `fetch`,
 * `AbortSignal` and timers: it runs in Node 20+, Workers and browsers.
 *
 *     const latchkey = new LatchkeyClient({ baseUrl, apiKey });
 *     const answer = await latchkey.withCredential(credentialId, (secret) =>
 *       fetch(url, { headers: secretHeaders(secret) }),
 *     );
 */
export { type FetchLike, LatchkeyClient, type LatchkeyClientOptions } from "./client.ts";
export { isLatchkeyError, LatchkeyError } from "./errors.ts";
export { type LeaseEvent, LeaseHandle, type WithCredentialOptions } from "./leases.ts";
export type { components, paths } from "./openapi.ts";
export { secretHeaders } from "./secret.ts";
export {
	DEFAULT_RETRY,
	parseRetryAfter,
	platformTimers,
	type RetryPolicy,
	retryDelay,
	type Timers,
} from "./timing.ts";
export type {
	ApiError,
	CallOptions,
	Credential,
	FullResponse,
	HttpMethod,
	Lease,
	LeaseRenewed,
	LeaseSecret,
	PathsFor,
	RequestOptions,
	ResponseOf,
	Schemas,
	TokenResponse,
} from "./types.ts";
