import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { browserAvailable, launchChromium, screenshotPath } from "../browser/chromium.ts";
import { startTestWorker } from "../client/worker.ts";

/**
 * /docs in a real browser against the real worker (bundled as `wrangler deploy` bundles it, on
 * workerd): the page must render the API with every request it makes going to the worker's own
 * origin, and without tripping its own Content-Security-Policy. Any other request is aborted
 * and recorded, so the page is tested as it would work with no internet.
 */
describe.skipIf(!browserAvailable())("/docs in a browser", () => {
	let worker: { url: string; stop(): Promise<void> };
	let browser: Browser;

	beforeAll(async () => {
		[worker, browser] = await Promise.all([startTestWorker(inject("bindings")), launchChromium()]);
	}, 120_000);

	afterAll(async () => {
		await browser?.close();
		await worker?.stop();
	});

	it("renders the API from this origin alone, with no CSP violation", async () => {
		const origin = new URL(worker.url).origin;
		const page = await browser.newPage();
		const foreign: string[] = [];
		const ownRequests: string[] = [];
		const cspErrors: string[] = [];
		const pageErrors: string[] = [];
		await page.route("**/*", (route) => {
			const url = route.request().url();
			// data: URLs never reach the network; everything else must be the worker's.
			if (url.startsWith("data:")) return route.continue();
			if (new URL(url).origin !== origin) {
				foreign.push(url);
				return route.abort("blockedbyclient");
			}
			ownRequests.push(new URL(url).pathname);
			return route.continue();
		});
		page.on("console", (message) => {
			if (message.type() === "error" && /Content Security Policy/i.test(message.text())) {
				cspErrors.push(message.text());
			}
		});
		page.on("pageerror", (error) => pageErrors.push(String(error)));
		// The page's own report of each violation, including those the console does not show.
		await page.addInitScript(() => {
			const seen: string[] = [];
			(window as unknown as { __cspViolations: string[] }).__cspViolations = seen;
			document.addEventListener("securitypolicyviolation", (event) => {
				seen.push(`${event.effectiveDirective} ${event.blockedURI}`);
			});
		});

		const res = await page.goto(`${worker.url}/docs`);
		expect(res?.status()).toBe(200);
		// An operation of the API, rendered from /openapi.json. When it never appears, the requests
		// and violations below say why (a blocked CDN script leaves the page blank).
		const rendered = await page
			.locator(".opblock-summary-path", { hasText: "/v1/credentials" })
			.first()
			.waitFor({ timeout: 15_000 })
			.then(
				() => null,
				(err: unknown) => err,
			);
		expect(foreign, "requests to another origin").toEqual([]);
		expect(cspErrors, "CSP errors in the console").toEqual([]);
		if (rendered) throw rendered;
		// Open an operation (its examples are syntax-highlighted with inline style properties) and
		// call it from the page: "Try it out" fetches the document's server, this origin.
		const health = page.locator("#operations-Service-get_health");
		await health.locator(".opblock-summary").click();
		await health.locator(".highlight-code").first().waitFor();
		await health.getByRole("button", { name: "Try it out" }).click();
		await health.getByRole("button", { name: "Execute" }).click();
		await health
			.locator(".live-responses-table .response-col_status", { hasText: "200" })
			.waitFor();
		await page.screenshot({ path: screenshotPath("docs"), fullPage: false });
		const violations = await page.evaluate(
			() => (window as unknown as { __cspViolations: string[] }).__cspViolations,
		);
		await page.close();

		expect(foreign, "requests to another origin").toEqual([]);
		expect(cspErrors, "CSP errors in the console").toEqual([]);
		expect(violations, "securitypolicyviolation events").toEqual([]);
		expect(pageErrors, "uncaught errors").toEqual([]);
		expect(ownRequests).toEqual(expect.arrayContaining(["/docs", "/openapi.json", "/health"]));
	}, 60_000);
});
