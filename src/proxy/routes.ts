import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { auditRefusals, recordProxyCall } from "../audit/index.ts";
import {
	type AuthEnv,
	authenticate,
	leasePrincipalOf,
	liveCheckOf,
	requireScope,
	requireUser,
	userIdOf,
} from "../auth/middleware.ts";
import { LatchkeyError } from "../errors.ts";
import type { AppEnv } from "../http/context.ts";
import { bearerSecurity, ErrorSchema, errorResponses, json } from "../http/openapi.ts";
import { LATCHKEY_REQUEST_ID, proxyCall } from "./service.ts";

/**
 * `ANY /v1/proxy/{credential_id}/{path}`: the authenticated proxy (docs/proxy.md). Served by
 * plain Hono routes (any method, a path of any depth); the OpenAPI document describes GET, POST,
 * PUT, PATCH and DELETE of it.
 */

export const PROXY_PREFIX = "/v1/proxy/";

/** Whether a request is a proxied call: its body streams, so the 64 KiB JSON limit is not its. */
export const isProxyPath = (path: string) => path.startsWith(PROXY_PREFIX);

const CREDENTIAL_ID = /^cred_[A-Za-z0-9]{20}$/;

/**
 * Registered before every other middleware of the app, so it runs last on the way out: every
 * answer on the proxy's path, errors included, carries X-Latchkey-Request-Id (a proxied answer
 * keeps the upstream's own X-Request-Id and Server-Timing: requestContext sets them only where
 * absent).
 */
export function proxyResponseHeaders(): MiddlewareHandler<AppEnv> {
	return async function proxyResponseHeaders(c, next) {
		await next();
		const requestId = c.get("requestId");
		if (requestId) c.res.headers.set(LATCHKEY_REQUEST_ID, requestId);
	};
}

const notFound = () => new LatchkeyError("not_found", "No such credential.");

async function handle(c: Context<AuthEnv>): Promise<Response> {
	const credentialId = c.req.param("credential_id") ?? "";
	if (!CREDENTIAL_ID.test(credentialId)) throw notFound();
	const url = new URL(c.req.url);
	const prefix = `${PROXY_PREFIX}${credentialId}`;
	if (!url.pathname.startsWith(prefix)) throw notFound();
	const rest = url.pathname.slice(prefix.length);
	if (rest !== "" && !rest.startsWith("/")) throw notFound();
	const userId = userIdOf(c);
	const { response, host } = await proxyCall(c.get("services"), {
		userId,
		principal: leasePrincipalOf(c),
		credentialId,
		method: c.req.method,
		rest,
		search: url.search,
		headers: c.req.raw.headers,
		body: c.req.raw.body,
		// A proxied call uses the secret: a revoked key or session is refused at once, in the
		// same statement as the lease's read.
		liveCheck: liveCheckOf(c),
		requestId: c.get("requestId"),
		defer: (work) => c.executionCtx.waitUntil(work),
	});
	// Who used which secret, where: the credential, the method, the upstream host and its status,
	// never the path, query, headers or body (docs/audit.md).
	recordProxyCall(c, { credentialId, method: c.req.method, host, status: response.status });
	return response;
}

const DESCRIPTION = `Forwards the request to the credential's own target with its secret injected, so the caller never holds the secret: a \`host_scoped\` credential's \`host\`, or for OAuth2, API-key and password credentials their provider's \`api_base_url\` (with \`{path}\` below it). Never a host the caller names; https only, never a private, link-local, loopback or metadata address (loopback over http only where LATCHKEY_PROXY_ALLOW_LOOPBACK allows it).

Injected: \`Authorization: Bearer\` (OAuth2), the provider's declared header or query parameter (API key; default \`Authorization: Bearer\`), the stored headers (host_scoped), \`Authorization: Basic\` (user_password). The caller's \`Authorization\`, cookies, hop-by-hop and client-address headers are not forwarded.

The answer is the upstream's status, headers and body, streamed, plus \`X-Latchkey-Request-Id\`; the upstream's cookies, hop-by-hop and CORS headers and any header carrying the secret are dropped. Redirects are not followed; one to another host is refused (502 \`upstream_unavailable\`). Bodies stream both ways (request bodies up to LATCHKEY_PROXY_MAX_REQUEST_BYTES, default 100 MiB; the 64 KiB JSON limit does not apply). An upstream 401 to an OAuth2 token makes one forced refresh and one retry (bodies up to 64 KiB). Every method is proxied (HEAD too) except OPTIONS, which is answered as a CORS preflight. Each call counts against the caller's lease rate and the credential's lease cap (429), and a revoked key is refused at once. 504 \`upstream_timeout\` when the upstream says nothing for LATCHKEY_PROXY_TIMEOUT_SECONDS (default 30) after the request's last byte. See docs/proxy.md.`;

const params = z.object({
	credential_id: z.string().openapi({
		param: { name: "credential_id", in: "path" },
		example: "cred_4f9QbX2mT7aLkP0sVd1e",
	}),
	path: z.string().openapi({
		param: { name: "path", in: "path" },
		description:
			"The rest of the path, slashes included, put below the target's root with the query unchanged; it cannot leave the root.",
		example: "repos/octocat/hello-world/issues",
	}),
});

const proxyErrors = {
	...errorResponses(400, 401, 403, 404, 409, 413, 429, 502, 503),
	504: {
		description: "The upstream said nothing in time (`upstream_timeout`)",
		...json(ErrorSchema),
	},
};

export function registerProxyRoutes(app: OpenAPIHono<AppEnv>): void {
	const authed = app as unknown as OpenAPIHono<AuthEnv>;
	const middleware = [
		authenticate({ deferLiveCheck: true }),
		// Refusals of an authenticated caller (scope, not found, a refused target, limits, an
		// upstream that failed), as `proxy.call` with outcome denied or failure.
		auditRefusals((c) => ({
			action: "proxy.call",
			target: { type: "credential", id: c.req.param("credential_id") ?? "" },
		})),
		requireUser(),
		requireScope("credentials:use"),
	] as const;
	authed.all(`${PROXY_PREFIX}:credential_id`, ...middleware, handle);
	authed.all(`${PROXY_PREFIX}:credential_id/*`, ...middleware, handle);

	for (const method of ["get", "post", "put", "patch", "delete"] as const) {
		const withBody = method === "post" || method === "put" || method === "patch";
		app.openAPIRegistry.registerPath({
			method,
			path: "/v1/proxy/{credential_id}/{path}",
			tags: ["Proxy"],
			summary: `${method.toUpperCase()} through the credential's target, with its secret injected`,
			description: DESCRIPTION,
			security: bearerSecurity,
			request: {
				params,
				...(withBody
					? {
							body: {
								required: false,
								description: "Forwarded unchanged, streamed",
								content: { "*/*": { schema: z.string().openapi({ format: "binary" }) } },
							},
						}
					: {}),
			},
			responses: {
				200: {
					description:
						"The upstream's answer, whatever its status: status, headers and body unchanged (see the description), plus X-Latchkey-Request-Id",
					headers: z.object({
						"X-Latchkey-Request-Id": z.string().openapi({ description: "Latchkey's request id" }),
					}),
				},
				...proxyErrors,
			},
		});
	}
}
