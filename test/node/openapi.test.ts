import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
import { generateDevSecrets } from "../../scripts/lib/dev-secrets.ts";
import { createApp } from "../../src/app.ts";

/** The served OpenAPI document, checked against the OpenAPI 3.1 JSON schema by an independent validator. */
describe("OpenAPI document", () => {
	it("is a valid OpenAPI 3.1 document covering every registered route", async () => {
		const env = {
			...(await generateDevSecrets()),
			DATABASE_URL: "postgres://postgres@127.0.0.1:1/none",
			UPSTASH_REDIS_REST_URL: "http://127.0.0.1:1",
			LATCHKEY_PUBLIC_URL: "https://latchkey.example.com",
		};
		const app = createApp();
		const res = await app.request("/openapi.json", {}, env);
		expect(res.status).toBe(200);
		const doc = (await res.json()) as {
			openapi: string;
			paths: Record<string, Record<string, unknown>>;
		};
		const result = await new Validator().validate(
			doc as unknown as Parameters<Validator["validate"]>[0],
		);
		expect(result.errors ?? []).toEqual([]);
		expect(result.valid).toBe(true);
		expect(doc.openapi).toBe("3.1.0");

		// Every route the app serves (other than the document, and the docs page and its files) is
		// documented.
		const served = app.routes
			.filter(
				(r) => r.method !== "ALL" && r.path !== "/openapi.json" && !/^\/docs(\/|$)/.test(r.path),
			)
			.map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:([A-Za-z_]+)/g, "{$1}")}`);
		const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
			Object.keys(ops).map((m) => `${m} ${path}`),
		);
		for (const route of new Set(served)) expect(documented).toContain(route);

		// Path examples have the shape of the object each path names.
		const exampleOf = (path: string, method: string) =>
			(
				(
					doc.paths[path]?.[method] as {
						parameters?: { in: string; schema?: { example?: string } }[];
					}
				)?.parameters ?? []
			).find((p) => p.in === "path")?.schema?.example ?? "";
		expect(exampleOf("/v1/credentials/{id}", "get")).toMatch(/^cred_/);
		expect(exampleOf("/v1/credentials/{id}/leases", "post")).toMatch(/^cred_/);
		expect(exampleOf("/v1/leases/{lease_id}/renew", "post")).toMatch(/^lease_/);
		expect(exampleOf("/v1/admin/jobs/{id}", "get")).toMatch(/^job_/);
		expect(exampleOf("/v1/admin/users/{id}", "get")).toMatch(/^usr_/);
		expect(exampleOf("/v1/api-keys/{id}", "delete")).toMatch(/^[0-9A-Za-z]{12}$/);

		// docs/api.md, the contract in prose, names exactly the operations the document has.
		const prose = readFileSync(new URL("../../docs/api.md", import.meta.url), "utf8");
		const named = [...prose.matchAll(/`(GET|POST|PUT|PATCH|DELETE) (\/[^`\s?]*)[^`]*`/g)].map(
			(m) => `${(m[1] as string).toLowerCase()} ${m[2]}`,
		);
		const inDocument = documented.filter((op) => !/ \/(openapi\.json|docs)$/.test(op));
		expect([...new Set(named)].filter((op) => !/ \/(openapi\.json|docs)$/.test(op)).sort()).toEqual(
			[...new Set(inDocument)].sort(),
		);
	});
});
