/// <reference path="./vendor.d.ts" />
import type { OpenAPIHono } from "@hono/zod-openapi";
import { version as SWAGGER_UI_VERSION } from "swagger-ui-dist/package.json";
import swaggerUiCss from "swagger-ui-dist/swagger-ui.css";
import swaggerUiBundle from "swagger-ui-dist/swagger-ui-bundle.js";
import type { AppEnv } from "../http/context.ts";

/**
 * The API reference at /docs: Swagger UI from the swagger-ui-dist package, bundled into the
 * worker as text modules and served from this origin, so the page loads nothing from anywhere
 * else and works with no internet. These routes are not part of the API: they are plain routes,
 * kept out of the OpenAPI document.
 */
export const DOCS_ASSETS = `/docs/assets/${SWAGGER_UI_VERSION}`;
export { SWAGGER_UI_VERSION };

/** Our own start-up script: the page carries no inline script, so its CSP needs no exception. */
const INIT_JS = `"use strict";
window.ui = SwaggerUIBundle({
	url: "/openapi.json",
	dom_id: "#swagger-ui",
	deepLinking: true,
	// Swagger UI would otherwise show a badge fetched from validator.swagger.io.
	validatorUrl: null,
});
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Latchkey API</title>
<link rel="stylesheet" href="${DOCS_ASSETS}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="${DOCS_ASSETS}/swagger-ui-bundle.js"></script>
<script src="/docs/assets/init.js"></script>
</body>
</html>
`;

/**
 * This origin only, and only what Swagger UI uses (test/node/docs-browser.test.ts loads the page
 * in Chromium, opens an operation and calls it, and sees no violation):
 * - no 'unsafe-inline' for styles: Swagger UI sets element styles through the DOM (React's style
 *   property), which style-src does not govern, and inserts no <style> element;
 * - no 'unsafe-eval': the bundle runs without it (an eval would be reported as a violation);
 * - img-src data:, for the icons its stylesheet draws as data: SVG and PNG images;
 * - connect-src 'self', for /openapi.json and "Try it out" (the document's server is this origin);
 * - no font-src: the stylesheet has no @font-face, so default-src 'none' refuses fonts.
 */
export const DOCS_CSP = [
	"default-src 'none'",
	"script-src 'self'",
	"style-src 'self'",
	"img-src 'self' data:",
	"connect-src 'self'",
	"frame-ancestors 'none'",
	"base-uri 'none'",
	"form-action 'none'",
].join("; ");

/** The versioned vendor files never change under their URL; init.js changes with a deploy. */
const IMMUTABLE = "public, max-age=31536000, immutable";
const SHORT = "public, max-age=3600";

function asset(body: string, contentType: string, cacheControl: string) {
	return () =>
		new Response(body, {
			headers: {
				"Content-Type": contentType,
				"Cache-Control": cacheControl,
				"X-Content-Type-Options": "nosniff",
			},
		});
}

export function registerDocsRoutes(app: OpenAPIHono<AppEnv>): void {
	// The page sets its own CSP; securityHeaders() keeps it and adds the rest.
	app.get(
		"/docs",
		() =>
			new Response(PAGE, {
				headers: {
					"Content-Type": "text/html; charset=utf-8",
					"Content-Security-Policy": DOCS_CSP,
					"Cache-Control": "no-cache",
				},
			}),
	);
	app.get(
		`${DOCS_ASSETS}/swagger-ui-bundle.js`,
		asset(swaggerUiBundle, "text/javascript; charset=utf-8", IMMUTABLE),
	);
	app.get(
		`${DOCS_ASSETS}/swagger-ui.css`,
		asset(swaggerUiCss, "text/css; charset=utf-8", IMMUTABLE),
	);
	app.get("/docs/assets/init.js", asset(INIT_JS, "text/javascript; charset=utf-8", SHORT));
}
