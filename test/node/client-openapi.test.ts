import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { describe, expect, it } from "vitest";
import { GENERATED_PATH, generateClientTypes } from "../../scripts/generate-client.ts";
import { ROOT } from "../../scripts/lib/wrangler.ts";

/**
 * The typed client's types (src/client/openapi.ts) are generated from the OpenAPI document the
 * app serves. This regenerates them in memory and fails when the committed file differs: a route
 * added, removed or changed without `npm run client:generate`.
 */
describe("latchkey/client types", () => {
	it("match the served OpenAPI document", async () => {
		const generated = await generateClientTypes();
		const committed = readFileSync(GENERATED_PATH, "utf8");
		if (committed === generated) return;
		const a = committed.split("\n");
		const b = generated.split("\n");
		let line = 0;
		while (line < Math.max(a.length, b.length) && a[line] === b[line]) line++;
		const excerpt = (lines: string[]) =>
			lines
				.slice(Math.max(0, line - 3), line + 4)
				.map((l, i) => `  ${Math.max(0, line - 3) + i + 1}: ${l}`)
				.join("\n");
		expect.fail(
			`${relative(ROOT, GENERATED_PATH)} is out of date with the served OpenAPI document ` +
				`(first difference at line ${line + 1}). Run \`npm run client:generate\` and commit the result.\n` +
				`committed:\n${excerpt(a)}\ngenerated now:\n${excerpt(b)}`,
		);
	}, 30_000);
});
