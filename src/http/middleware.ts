import type { MiddlewareHandler } from "hono";
import { loadConfig } from "../config.ts";
import { concat } from "../crypto/encoding.ts";
import { LatchkeyError } from "../errors.ts";
import { createLogger } from "../log.ts";
import { createServices } from "../services.ts";
import { requestTiming, Timing } from "../timing.ts";
import type { AppEnv } from "./context.ts";

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * First in the chain: everything after it (including the error handler) can rely on a request
 * id, a logger and a timing accumulator being present.
 */
export function requestContext(): MiddlewareHandler<AppEnv> {
	return async function requestContext(c, next) {
		const started = performance.now();
		const offered = c.req.header("x-request-id");
		const requestId =
			offered && SANE_REQUEST_ID.test(offered) ? offered : `req_${crypto.randomUUID()}`;
		const timing = new Timing();
		c.set("requestId", requestId);
		c.set("timing", timing);
		c.set("logger", createLogger("info", { request_id: requestId }));
		await requestTiming.run(timing, next);
		// An answer that brings its own (the authenticated proxy relaying an upstream's) keeps
		// them; the proxy carries Latchkey's id in X-Latchkey-Request-Id.
		const h = c.res.headers;
		if (!h.has("X-Request-Id")) c.header("X-Request-Id", requestId);
		if (!h.has("Server-Timing"))
			c.header("Server-Timing", timing.header(performance.now() - started));
		c.get("logger").info("request", {
			method: c.req.method,
			path: c.req.path,
			status: c.res.status,
			duration_ms: Math.round(performance.now() - started),
		});
	};
}

/** Validates the bindings (once per isolate) and builds this request's services. */
export function services(options: { now?: () => Date } = {}): MiddlewareHandler<AppEnv> {
	return async function services(c, next) {
		const config = loadConfig(c.env);
		const logger = createLogger(config.LATCHKEY_LOG_LEVEL, { request_id: c.get("requestId") });
		c.set("logger", logger);
		const built = createServices(config, logger, c.get("timing"), options.now, (work) => {
			try {
				c.executionCtx.waitUntil(work);
				return true;
			} catch {
				// No execution context (app.request() in a test): the caller awaits the work.
				return false;
			}
		});
		c.set("services", built.services);
		try {
			await next();
		} finally {
			const closing = built.dispose();
			try {
				c.executionCtx.waitUntil(closing);
			} catch {
				// No execution context (direct app.request() in tests): close inline.
				await closing;
			}
		}
	};
}

/**
 * Headers for a JSON API that is never framed or sniffed. Routes that serve HTML (the docs page,
 * the OAuth callback page) set their own Content-Security-Policy, which is kept.
 */
export function securityHeaders(): MiddlewareHandler<AppEnv> {
	return async function securityHeaders(c, next) {
		await next();
		const h = c.res.headers;
		const setDefault = (name: string, value: string) => {
			if (!h.has(name)) h.set(name, value);
		};
		setDefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
		setDefault("X-Content-Type-Options", "nosniff");
		setDefault("X-Frame-Options", "DENY");
		setDefault("Referrer-Policy", "no-referrer");
		setDefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains");
		setDefault("Cross-Origin-Resource-Policy", "same-origin");
	};
}

export const MAX_BODY_BYTES = 64 * 1024;

/**
 * Rejects bodies over the limit before any handler sees them, whether or not Content-Length is
 * honest. Bodies are small by contract, so a streamed one is simply buffered while counting.
 */
export function bodyLimit(maxBytes = MAX_BODY_BYTES): MiddlewareHandler<AppEnv> {
	const tooLarge = () =>
		new LatchkeyError("payload_too_large", `Request body exceeds ${maxBytes} bytes.`);
	return async function bodyLimit(c, next) {
		const body = c.req.raw.body;
		if (!body) return next();
		const declared = c.req.header("content-length");
		if (declared !== undefined && Number(declared) > maxBytes) throw tooLarge();
		// JSON must be UTF-8 (RFC 8259 §8.1): a body that is not would otherwise be decoded with
		// U+FFFD in place of its bad bytes and stored so. Bounded above, so buffering is cheap.
		const json = /json/i.test(c.req.header("content-type") ?? "");
		if (declared !== undefined && !json) return next();
		const reader = body.getReader();
		const chunks: Uint8Array[] = [];
		let seen = 0;
		for (;;) {
			const { done, value } = await reader.read();
			if (done) break;
			seen += value.byteLength;
			if (seen > maxBytes) {
				await reader.cancel();
				throw tooLarge();
			}
			chunks.push(value);
		}
		const buffered = concat(...chunks);
		if (json) {
			try {
				new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(buffered);
			} catch {
				throw new LatchkeyError("invalid_request", "The request body is not valid UTF-8.", {
					hint: "Send the JSON body encoded as UTF-8.",
				});
			}
		}
		c.req.raw = new Request(c.req.raw, { body: buffered });
		await next();
	};
}
