import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

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
