import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

const require = createRequire(import.meta.url);

/** An installed swagger-ui-dist file's size and hash, for test/worker/docs.test.ts to compare. */
function vendorFile(name: string): { bytes: number; sha256: string } {
	const bytes = readFileSync(require.resolve(`swagger-ui-dist/${name}`));
	return { bytes: bytes.byteLength, sha256: createHash("sha256").update(bytes).digest("hex") };
}

export default defineConfig({
	test: {
		// At the root, so it runs in plain Node rather than inside the workers project's module
		// graph; projects inherit what it provides.
		globalSetup: ["./test/setup/global.ts"],
		// A test's request logs are printed only when it fails: a green run ends with its summary,
		// not megabytes of log lines.
		silent: "passed-only",
		projects: [
			{
				plugins: [
					cloudflareTest(({ inject }) => ({
						main: "./src/index.ts",
						wrangler: { configPath: "./wrangler.toml" },
						miniflare: { bindings: inject("bindings") },
					})),
				],
				test: {
					name: "worker",
					provide: {
						swaggerUi: {
							version: require("swagger-ui-dist/package.json").version,
							bundle: vendorFile("swagger-ui-bundle.js"),
							css: vendorFile("swagger-ui.css"),
						},
					},
					include: ["test/worker/**/*.test.ts"],
					testTimeout: 20_000,
					hookTimeout: 30_000,
				},
			},
			{
				test: {
					name: "node",
					environment: "node",
					include: ["test/node/**/*.test.ts"],
					testTimeout: 20_000,
				},
			},
		],
	},
});
