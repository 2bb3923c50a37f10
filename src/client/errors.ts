/**
 * Every failure the client reports, in the shape of Latchkey's error body (API.md):
 * `{"error": {"code", "message", "hint", "detail"?, "request_id"}}`. A failure without a
 * Latchkey answer (the network, a time-out, a body that is not Latchkey's) is one too, with
 * `status` 0 or the HTTP status and a code of the client's own (`network_error`, `timeout`,
 * `http_<status>`). No error carries a secret: Latchkey's never do, and the client puts none in.
 */
export class LatchkeyError extends Error {
	override readonly name = "LatchkeyError";
	/** The HTTP status; 0 when no response arrived. */
	readonly status: number;
	/** Latchkey's snake_case code (`not_found`, `insufficient_scope`, `token_expiring`, …). */
	readonly code: string;
	/** What to do about it; never empty. */
	readonly hint: string;
	/** `X-Request-Id` of the answer (the body's `request_id`), to quote in a support request. */
	readonly requestId: string | null;
	/** `detail` of the body, e.g. the offending fields of a 400 `invalid_request`. */
	readonly detail: unknown;
	/** Seconds the answer's `Retry-After` asked for (429, 503), else null. */
	readonly retryAfterSeconds: number | null;

	constructor(
		init: {
			status: number;
			code: string;
			message: string;
			hint: string;
			requestId?: string | null;
			detail?: unknown;
			retryAfterSeconds?: number | null;
		},
		options?: { cause?: unknown },
	) {
		super(init.message, options?.cause === undefined ? undefined : { cause: options.cause });
		this.status = init.status;
		this.code = init.code;
		this.hint = init.hint;
		this.requestId = init.requestId ?? null;
		this.detail = init.detail;
		this.retryAfterSeconds = init.retryAfterSeconds ?? null;
	}

	/** The error an answer of Latchkey's describes; consumes the body. */
	static async fromResponse(res: Response, retryAfterMs: number | null): Promise<LatchkeyError> {
		const headerId = res.headers.get("x-request-id");
		const retryAfterSeconds = retryAfterMs === null ? null : Math.ceil(retryAfterMs / 1000);
		let body: unknown;
		try {
			body = await res.json();
		} catch {
			body = undefined;
		}
		const error = (body as { error?: Record<string, unknown> } | undefined)?.error;
		if (error && typeof error.code === "string" && typeof error.message === "string") {
			return new LatchkeyError({
				status: res.status,
				code: error.code,
				message: error.message,
				hint:
					typeof error.hint === "string" && error.hint ? error.hint : "See Latchkey's API docs.",
				requestId: typeof error.request_id === "string" ? error.request_id : headerId,
				detail: error.detail,
				retryAfterSeconds,
			});
		}
		// Not Latchkey's error shape (a proxy or load balancer in between answered): its body is
		// not repeated, since it may hold anything.
		return new LatchkeyError({
			status: res.status,
			code: `http_${res.status}`,
			message: `The server answered ${res.status}${res.statusText ? ` ${res.statusText}` : ""} without a Latchkey error body.`,
			hint: "Check that the client's baseUrl points at Latchkey, and whatever proxy sits in between.",
			requestId: headerId,
			retryAfterSeconds,
		});
	}

	/** Without the stack: what a log line of it should hold. */
	toJSON(): Record<string, unknown> {
		return {
			name: this.name,
			status: this.status,
			code: this.code,
			message: this.message,
			hint: this.hint,
			request_id: this.requestId,
			...(this.detail === undefined ? {} : { detail: this.detail }),
			...(this.retryAfterSeconds === null ? {} : { retry_after_seconds: this.retryAfterSeconds }),
		};
	}
}

/** Whether `err` is a LatchkeyError with this status (and code, when given). */
export function isLatchkeyError(
	err: unknown,
	status?: number,
	code?: string,
): err is LatchkeyError {
	return (
		err instanceof LatchkeyError &&
		(status === undefined || err.status === status) &&
		(code === undefined || err.code === code)
	);
}
