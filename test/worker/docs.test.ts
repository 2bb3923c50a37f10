import { describe, expect, inject, it } from "vitest";
import { DOCS_ASSETS, SWAGGER_UI_VERSION } from "../../src/docs/routes.ts";
import { call } from "./helpers.ts";

/**
 * /docs is Swagger UI served from this origin: the page names only same-origin files, and those
 * files are swagger-ui-dist's own bytes, bundled into the worker (the browser test,
 * test/node/docs-browser.test.ts, shows the page renders with nothing else).
 */
const vendor = inject("swaggerUi");

async function sha256(bytes: ArrayBuffer): Promise<string> {
	const digest = await crypto.subtle.digest("SHA-256", bytes);
	return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Every origin a CSP directive names; 'self', 'none' and data: are not origins. */
function cspOrigins(csp: string): string[] {
	return csp
		.split(";")
		.flatMap((directive) => directive.trim().split(/\s+/).slice(1))
		.filter((source) => !/^'[^']*'$/.test(source) && source !== "data:");
}

describe("/docs", () => {
	it("is a page whose scripts and stylesheets are all same-origin", async () => {
		const res = await call("/docs");
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
		const html = await res.text();
		const refs = [...html.matchAll(/<(script|link)\b[^>]*\b(?:src|href)="([^"]*)"/g)].map(
			(m) => m[2] ?? "",
		);
		expect(refs.sort()).toEqual(
			[
				`${DOCS_ASSETS}/swagger-ui-bundle.js`,
				`${DOCS_ASSETS}/swagger-ui.css`,
				"/docs/assets/init.js",
			].sort(),
		);
		for (const ref of refs) expect(ref).toMatch(/^\/[^/]/);
		// No inline script: every <script> has a src and an empty body.
		expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>|<script[^>]*>[^<]+<\/script>/);
		expect(html).not.toMatch(/https?:|\/\/[a-z]/i);
	});

	it("has a strict CSP of its own that names no other origin", async () => {
		const res = await call("/docs");
		const csp = res.headers.get("content-security-policy") ?? "";
		expect(csp).toContain("default-src 'none'");
		expect(csp).toContain("script-src 'self'");
		expect(csp).toContain("frame-ancestors 'none'");
		expect(csp).not.toMatch(/unsafe-eval|unsafe-inline|\*/);
		expect(cspOrigins(csp)).toEqual([]);
		expect(res.headers.get("x-content-type-options")).toBe("nosniff");
	});

	it.each([
		["swagger-ui-bundle.js", "text/javascript; charset=utf-8", "bundle"],
		["swagger-ui.css", "text/css; charset=utf-8", "css"],
	] as const)(
		"serves swagger-ui-dist's %s byte for byte, cached for good",
		async (file, type, key) => {
			const res = await call(`${DOCS_ASSETS}/${file}`);
			expect(res.status).toBe(200);
			expect(res.headers.get("content-type")).toBe(type);
			expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
			expect(res.headers.get("x-content-type-options")).toBe("nosniff");
			const bytes = await res.arrayBuffer();
			expect(bytes.byteLength).toBe(vendor[key].bytes);
			expect(await sha256(bytes)).toBe(vendor[key].sha256);
		},
	);

	it("versions the vendor files' URLs by the installed package", async () => {
		expect(SWAGGER_UI_VERSION).toBe(vendor.version);
		expect(DOCS_ASSETS).toBe(`/docs/assets/${vendor.version}`);
		// Another version's URL is not served: an immutable URL never changes its bytes.
		const res = await call("/docs/assets/0.0.0/swagger-ui-bundle.js");
		expect(res.status).toBe(404);
	});

	it("serves its own start-up script, which loads the document from this origin", async () => {
		const res = await call("/docs/assets/init.js");
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
		expect(res.headers.get("cache-control")).toBe("public, max-age=3600");
		expect(res.headers.get("x-content-type-options")).toBe("nosniff");
		const js = await res.text();
		expect(js).toContain("SwaggerUIBundle(");
		expect(js).toContain('url: "/openapi.json"');
		expect(js).toContain("validatorUrl: null");
	});
});
