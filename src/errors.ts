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
	lease_gone: 410,
	payload_too_large: 413,
	unsupported_media_type: 415,
	rate_limited: 429,
	internal_error: 500,
	misconfigured: 500,
	decryption_failed: 500,
	provider_unavailable: 502,
	dependency_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

const DEFAULT_HINTS: Partial<Record<ErrorCode, string>> = {
	invalid_request: "Fix the fields listed in detail and retry.",
	unauthorized: "Send a valid credential as 'Authorization: Bearer <token>'.",
	insufficient_scope: "Use a key or token that carries the required scope.",
	not_found: "Check the id; objects of other users are never visible.",
	payload_too_large: "Send a request body of at most 64 KiB.",
	rate_limited: "Wait for the number of seconds in Retry-After.",
	dependency_unavailable: "Retry after the number of seconds in Retry-After.",
	misconfigured: "The operator must set the variable named in the message.",
	internal_error: "Retry later; report the request_id if it persists.",
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
	readonly hint: string | undefined;
	readonly detail: unknown;
	readonly retryAfter: number | undefined;
	readonly headers: Record<string, string> | undefined;

	constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
		super(message, options.cause === undefined ? undefined : { cause: options.cause });
		this.name = "LatchkeyError";
		this.code = code;
		this.hint = options.hint ?? DEFAULT_HINTS[code];
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
		hint?: string;
		detail?: unknown;
		request_id: string;
	};
}

export function errorBody(err: LatchkeyError, requestId: string): ErrorBody {
	return {
		error: {
			code: err.code,
			message: err.message,
			...(err.hint === undefined ? {} : { hint: err.hint }),
			...(err.detail === undefined ? {} : { detail: err.detail }),
			request_id: requestId,
		},
	};
}
