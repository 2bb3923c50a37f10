/**
 * One error type for the whole service. Domain code throws `LatchkeyError` with a code; the code
 * fixes the status, and only the HTTP layer (src/http/error-handler.ts) turns an error into a
 * response, so this module sits below every other and domain modules never import from http/.
 */
export const ERROR_STATUS = {
	invalid_request: 400,
	invalid_state: 400,
	unauthorized: 401,
	invalid_grant: 401,
	refresh_token_reused: 401,
	legacy_key_expired: 401,
	forbidden: 403,
	insufficient_scope: 403,
	credential_read_only: 403,
	user_suspended: 403,
	not_found: 404,
	method_not_allowed: 405,
	conflict: 409,
	email_conflict: 409,
	version_conflict: 409,
	reconnect_required: 409,
	token_expiring: 409,
	proxy_target_refused: 409,
	lease_gone: 410,
	precondition_failed: 412,
	payload_too_large: 413,
	unsupported_media_type: 415,
	rate_limited: 429,
	internal_error: 500,
	misconfigured: 500,
	decryption_failed: 500,
	provider_unavailable: 502,
	upstream_unavailable: 502,
	dependency_unavailable: 503,
	refresh_pending: 503,
	upstream_timeout: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/**
 * What to do about each code, for errors thrown without a hint of their own. A `Record` over
 * every code, so a new code cannot be added without one: API.md promises a non-empty hint on
 * every error.
 */
export const DEFAULT_HINTS: Record<ErrorCode, string> = {
	invalid_request: "Fix the fields listed in detail and retry.",
	invalid_state:
		"Start again with POST /v1/oauth/{provider}/authorize; a state works once, for 10 minutes.",
	unauthorized: "Send a valid credential as 'Authorization: Bearer <token>'.",
	invalid_grant: "Check the API key or refresh token; exchange a valid API key for a new session.",
	refresh_token_reused:
		"The session was revoked for safety; exchange an API key for a new session.",
	legacy_key_expired: "Create an lk_ key with POST /v1/api-keys and use it instead.",
	forbidden: "This principal may not do this; use a credential that may.",
	insufficient_scope: "Use a key or token that carries the required scope.",
	credential_read_only:
		"Managed and system credentials are read-only; create a credential of your own to change it.",
	user_suspended: "The account is suspended; ask an administrator to reactivate it.",
	not_found: "Check the id; objects of other users are never visible.",
	method_not_allowed: "Use one of the methods the OpenAPI document lists for this path.",
	conflict: "The object's current state does not allow this; read it again and retry.",
	email_conflict:
		"Use another e-mail address, or sign in with the identity already linked to this one.",
	version_conflict: "The object changed meanwhile; read it again and retry with its new version.",
	reconnect_required:
		"Reconnect the account with POST /v1/oauth/{provider}/authorize (credential_id set).",
	token_expiring: "Release the lease and take a new one.",
	proxy_target_refused:
		"The credential's target (its host, or its provider's api_base_url) is not one the proxy calls; see docs/proxy.md.",
	lease_gone: "The lease has ended; take a new one with POST /v1/credentials/{id}/leases.",
	precondition_failed: "Read the object again and retry with its current ETag in If-Match.",
	payload_too_large: "Send a request body of at most 64 KiB.",
	unsupported_media_type: "Send the body as JSON with 'Content-Type: application/json'.",
	rate_limited: "Wait for the number of seconds in Retry-After.",
	internal_error: "Retry later; report the request_id if it persists.",
	misconfigured: "The operator must set the variable named in the message.",
	decryption_failed:
		"The stored secret cannot be decrypted; report the request_id to the operator, or replace the credential.",
	provider_unavailable: "The provider failed; retry later.",
	upstream_unavailable:
		"The upstream API could not be reached or answered in a way the proxy does not pass on; retry later.",
	dependency_unavailable: "Retry after the number of seconds in Retry-After.",
	refresh_pending:
		"Leases of the current token must end before it is refreshed; retry after Retry-After seconds.",
	upstream_timeout:
		"The upstream API did not answer in time (LATCHKEY_PROXY_TIMEOUT_SECONDS); retry, or check the upstream.",
};

export interface ErrorOptions {
	hint?: string;
	detail?: unknown;
	/** Seconds, for 429 and 503. */
	retryAfter?: number;
	/** Extra response headers (e.g. WWW-Authenticate parameters). */
	headers?: Record<string, string>;
	cause?: unknown;
}

export class LatchkeyError extends Error {
	readonly code: ErrorCode;
	readonly hint: string;
	readonly detail: unknown;
	readonly retryAfter: number | undefined;
	readonly headers: Record<string, string> | undefined;

	constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
		super(message, options.cause === undefined ? undefined : { cause: options.cause });
		this.name = "LatchkeyError";
		this.code = code;
		this.hint = options.hint || DEFAULT_HINTS[code];
		this.detail = options.detail;
		this.retryAfter = options.retryAfter;
		this.headers = options.headers;
	}

	get status(): (typeof ERROR_STATUS)[ErrorCode] {
		return ERROR_STATUS[this.code];
	}
}

export interface ErrorBody {
	error: {
		code: string;
		message: string;
		hint: string;
		detail?: unknown;
		request_id: string;
	};
}

export function errorBody(err: LatchkeyError, requestId: string): ErrorBody {
	return {
		error: {
			code: err.code,
			message: err.message,
			hint: err.hint || DEFAULT_HINTS[err.code],
			...(err.detail === undefined ? {} : { detail: err.detail }),
			request_id: requestId,
		},
	};
}
