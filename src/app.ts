import { OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { auditTrail, registerAuditRoutes } from "./audit/index.ts";
import { authenticate, requireScope } from "./auth/middleware.ts";
import { registerAuthRoutes } from "./auth/routes.ts";
import { type Config, loadConfig } from "./config.ts";
import { registerConsoleRoutes } from "./console/routes.tsx";
import { registerCredentialRoutes } from "./credentials/routes.ts";
import { registerDocsRoutes } from "./docs/routes.ts";
import { LatchkeyError } from "./errors.ts";
import { registerHealthRoutes } from "./health/routes.ts";
import type { AppEnv } from "./http/context.ts";
import { onError, onNotFound } from "./http/error-handler.ts";
import { bodyLimit, requestContext, securityHeaders, services } from "./http/middleware.ts";
import { registerJobRoutes } from "./jobs/routes.ts";
import { registerLeaseRoutes } from "./leases/routes.ts";
import { endCredentialLeases } from "./leases/service.ts";
import { managedProviders } from "./managed/registry.ts";
import { registerManagedRoutes } from "./managed/routes.ts";
import { ensureManagedCredentials } from "./managed/service.ts";
import { resolveProvider } from "./oauth/registry.ts";
import { registerOAuthRoutes } from "./oauth/routes.ts";
import { revokeUpstream } from "./oauth/service.ts";
import { isProxyPath, proxyResponseHeaders, registerProxyRoutes } from "./proxy/routes.ts";
import { registerUserRoutes } from "./users/routes.ts";
import { registerWebhookRoutes } from "./webhooks/routes.ts";

export interface AppOptions {
	/** Injectable clock, so expiry rules can be tested without waiting. */
	now?: () => Date;
}

export const API_VERSION = "1.0.0";

// CORS needs the validated origin list, so its handler is built once per config (per isolate).
const corsHandlers = new WeakMap<Config, MiddlewareHandler>();

function corsFor(config: Config): MiddlewareHandler {
	let handler = corsHandlers.get(config);
	if (!handler) {
		const allowed = new Set(config.LATCHKEY_ALLOWED_ORIGINS);
		handler = cors({
			origin: (origin) => (allowed.has(origin) ? origin : null),
			allowHeaders: ["Authorization", "Content-Type", "X-Request-Id"],
			allowMethods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
			exposeHeaders: [
				"X-Request-Id",
				"X-Latchkey-Request-Id",
				"Retry-After",
				"Server-Timing",
				"Deprecation",
				"Sunset",
			],
			maxAge: 600,
		});
		corsHandlers.set(config, handler);
	}
	return handler;
}

/**
 * Every request goes through this one app; capabilities register their routes on it. This is the
 * composition root: the only module that knows every capability (beside src/index.ts, which
 * serves it), so no capability and nothing in http/ has to import another one to be wired in.
 */
export function createApp(options: AppOptions = {}): OpenAPIHono<AppEnv> {
	const app = new OpenAPIHono<AppEnv>({
		defaultHook: (result) => {
			if (!result.success && result.target === "param") {
				// A path names an object; one whose id cannot exist is simply not there.
				throw new LatchkeyError("not_found", "No such object.");
			}
			if (!result.success) {
				throw new LatchkeyError("invalid_request", "The request is invalid.", {
					detail: result.error.issues.flatMap((issue) => {
						const at = issue.path.join(".");
						// Strict objects report unknown fields in one issue; list each as its own field.
						const keys = issue.code === "unrecognized_keys" ? issue.keys : [null];
						return keys.map((key) => ({
							field: [at, key].filter(Boolean).join(".") || result.target,
							location: result.target,
							message: key ? "unknown field" : issue.message,
						}));
					}),
				});
			}
		},
	});

	app.onError(onError);
	app.notFound(onNotFound);

	// Outermost on the proxy's path: a proxied answer keeps the upstream's own request id.
	app.use("/v1/proxy/*", proxyResponseHeaders());
	app.use("*", requestContext());
	app.use("*", securityHeaders());
	app.use("*", (c, next) => corsFor(loadConfig(c.env))(c, next));
	app.use("*", services({ now: options.now }));
	// Routes record audit events; this writes them after the response (docs/audit.md).
	app.use("*", auditTrail());
	// Proxied bodies stream through under the proxy's own cap (docs/proxy.md), never buffered.
	const limitBody = bodyLimit();
	app.use("*", (c, next) => (isProxyPath(c.req.path) ? next() : limitBody(c, next)));

	registerHealthRoutes(app);
	registerAuthRoutes(app);
	registerUserRoutes(app);
	registerCredentialRoutes(app, {
		oauthProvider: resolveProvider,
		revokeUpstream,
		provisionManaged: ensureManagedCredentials,
		endLeases: endCredentialLeases,
	});
	registerLeaseRoutes(app);
	registerOAuthRoutes(app, { managedProviders });
	registerJobRoutes(app);
	registerManagedRoutes(app);
	registerProxyRoutes(app);
	// audit/ sits below auth/ (which records into it): its routes get authentication from here.
	registerAuditRoutes(app, {
		authenticate: () => authenticate(),
		requireAdmin: () => requireScope("admin"),
	});

	registerWebhookRoutes(app, {
		authenticate: () => authenticate(),
		requireAdmin: () => requireScope("admin"),
	});

	// The console calls the API in-process, through this same app (src/console/api.ts).
	registerConsoleRoutes(app, { api: (request, env, ctx) => app.fetch(request, env, ctx) });

	app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
		type: "http",
		scheme: "bearer",
		description:
			"Admin token, Latchkey API key (lk_…), legacy key (sk-…), access JWT, or a JWT of the configured external identity provider (EXTERNAL_JWT_*). An external token must be signed with RS256, ES256 or EdDSA and carry `exp`; it is refused (401) when `exp` lies more than 24 hours ahead, when its `iat` is more than 24 hours old, or when `exp - iat` exceeds 24 hours.",
	});
	app.doc31("/openapi.json", (c) => ({
		openapi: "3.1.0",
		info: {
			title: "Latchkey",
			version: API_VERSION,
			description: "Credentials vault and broker for AI-agent platforms.",
		},
		servers: [{ url: loadConfig(c.env).LATCHKEY_PUBLIC_URL }],
	}));
	registerDocsRoutes(app);

	return app;
}
