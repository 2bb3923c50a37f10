import type { Context, ExecutionContext } from "hono";
import type { AppEnv } from "../http/context.ts";

/**
 * The console is a client of Latchkey's own HTTP API, called in-process: every page reads and
 * writes through the same routes, scopes, tenant checks, audit events and error codes a platform
 * meets, so the console can never allow what the API refuses (a managed credential's delete,
 * another user's object). The composition root hands in the app's fetch.
 */
export type ApiFetch = (
	request: Request,
	env: AppEnv["Bindings"],
	ctx: ExecutionContext,
) => Response | Promise<Response>;

export interface ApiErrorBody {
	error: { code: string; message: string; hint: string; request_id: string };
}

export type ApiResult<T> =
	| { ok: true; status: number; body: T }
	| { ok: false; status: number; error: ApiErrorBody["error"] };

/** Execution context of the page's request; absent only under a bare app.request() in tests. */
function executionOf(c: Context<AppEnv>): ExecutionContext {
	try {
		return c.executionCtx;
	} catch {
		const detached: Pick<ExecutionContext, "waitUntil" | "passThroughOnException"> = {
			waitUntil: () => {},
			passThroughOnException: () => {},
		};
		return detached as unknown as ExecutionContext;
	}
}

export async function callApi<T>(
	c: Context<AppEnv>,
	fetcher: ApiFetch,
	bearer: string | null,
	method: string,
	path: string,
	body?: unknown,
): Promise<ApiResult<T>> {
	const headers = new Headers({ "x-request-id": c.get("requestId") });
	if (bearer) headers.set("authorization", `Bearer ${bearer}`);
	// The API limits failed sign-ins and records the source of audit events by this header.
	const ip = c.req.header("cf-connecting-ip");
	if (ip) headers.set("cf-connecting-ip", ip);
	if (body !== undefined) headers.set("content-type", "application/json");
	const request = new Request(new URL(path, c.req.url), {
		method,
		headers,
		body: body === undefined ? null : JSON.stringify(body),
	});
	const res = await fetcher(request, c.env, executionOf(c));
	const text = await res.text();
	const parsed = text ? (JSON.parse(text) as unknown) : null;
	if (res.ok) return { ok: true, status: res.status, body: parsed as T };
	const error = (parsed as ApiErrorBody | null)?.error ?? {
		code: "internal_error",
		message: "The service answered without an error body.",
		hint: "Try again.",
		request_id: c.get("requestId"),
	};
	return { ok: false, status: res.status, error };
}
