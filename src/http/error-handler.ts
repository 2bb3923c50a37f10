import { DrizzleQueryError } from "drizzle-orm";
import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { isTransportFailure, postgresErrorOf } from "../db/errors.ts";
import { type ErrorCode, errorBody, LatchkeyError } from "../errors.ts";
import { createLogger, redactString } from "../log.ts";
import type { AppEnv } from "./context.ts";

const CODE_FOR_STATUS: Record<number, ErrorCode> = {
	400: "invalid_request",
	401: "unauthorized",
	403: "forbidden",
	404: "not_found",
	405: "method_not_allowed",
	409: "conflict",
	413: "payload_too_large",
	429: "rate_limited",
	503: "dependency_unavailable",
};

/** character_not_in_repertoire (NUL in text) and untranslatable_character (\u0000 in jsonb). */
const UNSTORABLE_TEXT = new Set(["22021", "22P05"]);

/** A dead Postgres or Redis (or the path to it), as opposed to a statement that was wrong. */
export function isDependencyFailure(err: unknown): boolean {
	if (err instanceof LatchkeyError) return err.code === "dependency_unavailable";
	return isTransportFailure(err);
}

/** Normalises anything thrown into the one error type; unknown errors become opaque 500s. */
export function toLatchkeyError(err: unknown): LatchkeyError {
	if (err instanceof LatchkeyError) return err;
	if (err instanceof HTTPException) {
		if (err.cause instanceof LatchkeyError) return err.cause;
		// API.md lists every bad input as 400; a body that is not JSON is one.
		if (err.status === 415) {
			return new LatchkeyError(
				"invalid_request",
				"The request body must be JSON (Content-Type: application/json).",
				{
					detail: [
						{ field: "content-type", location: "header", message: "must be application/json" },
					],
				},
			);
		}
		if (err.status === 400) {
			// Hono's validator refuses a body that is not JSON at all: there are no fields to list.
			return new LatchkeyError("invalid_request", err.message || "The request body is invalid.", {
				hint: "Send a well-formed JSON body; its fields are in the OpenAPI document (GET /openapi.json).",
				detail: [{ field: "body", location: "json", message: err.message || "not valid JSON" }],
			});
		}
		const code = CODE_FOR_STATUS[err.status] ?? "internal_error";
		const message =
			code === "internal_error" ? "Internal error." : err.message || "Request refused.";
		return new LatchkeyError(code, message);
	}
	// A value Postgres cannot store as text (a NUL byte, a lone \u0000 in JSON) came from the
	// request: a bad input, not a failure of the service.
	const pg = postgresErrorOf(err);
	if (pg && UNSTORABLE_TEXT.has(pg.code)) {
		return new LatchkeyError(
			"invalid_request",
			"The request contains a character that cannot be stored.",
			{
				hint: "Remove NUL (\\u0000) characters from the request's strings.",
				detail: [{ field: "request", location: "json", message: "contains a NUL character" }],
			},
		);
	}
	if (isDependencyFailure(err)) {
		return new LatchkeyError("dependency_unavailable", "A storage dependency is unavailable.", {
			retryAfter: 5,
		});
	}
	return new LatchkeyError("internal_error", "Internal error.");
}

export function errorResponse(c: Context<AppEnv>, err: LatchkeyError): Response {
	const requestId = c.get("requestId") ?? `req_${crypto.randomUUID()}`;
	const headers: Record<string, string> = { "X-Request-Id": requestId, ...err.headers };
	if (err.status === 401 && !headers["WWW-Authenticate"]) headers["WWW-Authenticate"] = "Bearer";
	if (err.retryAfter !== undefined) headers["Retry-After"] = String(err.retryAfter);
	return c.json(errorBody(err, requestId), err.status, headers);
}

/** A stack to log; a DrizzleQueryError's starts with its message, parameters included. */
function stackOf(err: unknown): string | undefined {
	const e = err instanceof DrizzleQueryError ? err.cause : err;
	return e instanceof Error && e.stack ? redactString(e.stack) : undefined;
}

export const onError: ErrorHandler<AppEnv> = (err, c) => {
	const mapped = toLatchkeyError(err);
	const logger = c.get("logger") ?? createLogger();
	if (mapped.status >= 500) {
		// Only a bug needs a stack; a dead dependency or a misconfiguration says enough by its code.
		const unexpected = mapped.code === "internal_error";
		// drizzle's wrapper quotes the statement's parameters in its message; Postgres's own code
		// and message say what went wrong without them.
		const pg = postgresErrorOf(err);
		logger.error("request failed", {
			error_code: mapped.code,
			error_name: err instanceof Error ? err.name : typeof err,
			...(pg
				? { pg_code: pg.code, error_message: redactString(pg.message) }
				: {
						error_message:
							err instanceof Error && !(err instanceof DrizzleQueryError)
								? redactString(err.message)
								: undefined,
					}),
			// Expected failures (misconfiguration, a dead dependency) need no stack.
			stack: unexpected ? stackOf(err) : undefined,
		});
	}
	return errorResponse(c, mapped);
};

export const onNotFound: NotFoundHandler<AppEnv> = (c) =>
	errorResponse(
		c,
		new LatchkeyError("not_found", `No route for ${c.req.method} ${c.req.path}.`, {
			hint: "Check the method and path against the OpenAPI document (GET /openapi.json).",
		}),
	);
