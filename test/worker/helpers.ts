import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { createDb } from "../../src/db/client.ts";
import { createApp } from "../../src/http/app.ts";
import worker from "../../src/index.ts";

export const BASE = "http://latchkey.test";

export const randomIp = () =>
	`10.${Math.floor(Math.random() * 256)}.${Math.floor(Math.random() * 256)}.${Math.floor(Math.random() * 254) + 1}`;

type Known =
	| "DATABASE_URL"
	| "LATCHKEY_ADMIN_TOKEN"
	| "LATCHKEY_DB_HTTP_ENDPOINT"
	| "LATCHKEY_DB_WS_PROXY"
	| "LATCHKEY_HMAC_SECRET"
	| "LATCHKEY_JWT_SIGNING_KEYS"
	| "LATCHKEY_PUBLIC_URL"
	| "UPSTASH_REDIS_REST_TOKEN"
	| "UPSTASH_REDIS_REST_URL";
export const testEnv = env as unknown as Record<string, string> & Record<Known, string>;

/** A database handle on the worker's own paths (HTTP, and the pool for transactions). */
export function testDb() {
	return createDb(testEnv.DATABASE_URL, {
		httpEndpoint: testEnv.LATCHKEY_DB_HTTP_ENDPOINT,
		wsProxy: testEnv.LATCHKEY_DB_WS_PROXY,
	});
}

export type CallInit = RequestInit & { json?: unknown; token?: string; ip?: string };
type Fetcher = (
	req: Request,
	env: Record<string, unknown>,
	ctx: ExecutionContext,
) => Response | Promise<Response>;

/** Sends a request through the worker's real fetch handler, optionally with altered bindings. */
export function call(
	path: string,
	init: CallInit = {},
	envOverride?: Record<string, string | undefined>,
): Promise<Response> {
	return callWith(worker.fetch as unknown as Fetcher, path, init, envOverride);
}

/**
 * An app from the same factory with a clock the test moves, for expiry rules that would
 * otherwise need waiting.
 */
export function clockedApp(start = new Date()) {
	let current = start;
	const app = createApp({ now: () => current });
	return {
		now: () => current,
		advance(seconds: number) {
			current = new Date(current.getTime() + seconds * 1000);
		},
		call: (path: string, init: CallInit = {}, envOverride?: Record<string, string | undefined>) =>
			callWith(app.fetch as unknown as Fetcher, path, init, envOverride),
	};
}

async function callWith(
	fetcher: Fetcher,
	path: string,
	init: CallInit,
	envOverride?: Record<string, string | undefined>,
): Promise<Response> {
	const headers = new Headers(init.headers);
	let body = init.body;
	if (init.json !== undefined) {
		headers.set("content-type", "application/json");
		body = JSON.stringify(init.json);
	}
	if (init.token) headers.set("authorization", `Bearer ${init.token}`);
	// A fresh source per request unless the test names one, so negative tests do not spend
	// each other's failure budget.
	headers.set("cf-connecting-ip", init.ip ?? randomIp());
	const request = new Request(`${BASE}${path}`, { ...init, headers, body });
	const ctx = createExecutionContext();
	const response = await fetcher(
		request,
		envOverride ? { ...testEnv, ...envOverride } : testEnv,
		ctx,
	);
	await waitOnExecutionContext(ctx);
	return response;
}

export interface ErrorJson {
	error: { code: string; message: string; hint?: string; detail?: unknown; request_id: string };
}

export async function expectError(
	response: Response,
	status: number,
	code: string,
): Promise<ErrorJson> {
	const body = (await response.json()) as ErrorJson;
	if (response.status !== status || body.error?.code !== code) {
		throw new Error(`expected ${status} ${code}, got ${response.status} ${JSON.stringify(body)}`);
	}
	if (body.error.request_id !== response.headers.get("x-request-id")) {
		throw new Error("error.request_id must equal the X-Request-Id header");
	}
	return body;
}
