import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { createRequire, register } from "node:module";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import openapiTS, { astToString, type OpenAPI3 } from "openapi-typescript";
import { generateDevSecrets } from "./lib/dev-secrets.ts";
import { ROOT } from "./lib/wrangler.ts";

/**
 * Writes src/client/openapi.ts, the types of the typed client (`latchkey/client`), from the
 * OpenAPI document the app serves at /openapi.json: `npm run client:generate`. The document is
 * taken from the app factory in this process (as test/node/openapi.test.ts does), so no server,
 * database or Redis is needed. test/node/client-openapi.test.ts regenerates in memory and fails
 * when the committed file differs; `--check` does the same from the command line (exit 1).
 */
export const GENERATED_PATH = join(ROOT, "src", "client", "openapi.ts");

const HEADER = `/**
 * The types of Latchkey's HTTP API, generated from the OpenAPI document the app serves at
 * /openapi.json by \`npm run client:generate\` (scripts/generate-client.ts, openapi-typescript).
 * Do not edit: test/node/client-openapi.test.ts fails when this file differs from what the
 * generator writes for the current routes.
 */
`;

/** The served OpenAPI document, as GET /openapi.json answers it. */
export async function servedDocument(): Promise<Record<string, unknown>> {
	const env = {
		...(await generateDevSecrets()),
		// Never reached: the document route touches no dependency.
		DATABASE_URL: "postgres://postgres@127.0.0.1:1/none",
		UPSTASH_REDIS_REST_URL: "http://127.0.0.1:1",
		// Only `servers` depends on it, and the generated types do not include `servers`.
		LATCHKEY_PUBLIC_URL: "https://latchkey.example.com",
		// The request log line would otherwise go to stdout.
		LATCHKEY_LOG_LEVEL: "error",
	};
	// The app bundles vendor files as text (wrangler.toml's rules); Node needs telling.
	register(pathToFileURL(join(ROOT, "scripts", "lib", "text-modules.mjs")));
	const { createApp } = await import("../src/app.ts");
	const res = await createApp().request("/openapi.json", {}, env);
	if (res.status !== 200) throw new Error(`GET /openapi.json answered ${res.status}`);
	return (await res.json()) as Record<string, unknown>;
}

/** Formats TypeScript source as `biome check` expects it (the repository's biome.json). */
async function biomeFormat(source: string, path: string): Promise<string> {
	const require = createRequire(import.meta.url);
	const bin = join(require.resolve("@biomejs/biome/package.json"), "..", "bin", "biome");
	const child = spawn(
		process.execPath,
		[bin, "format", `--stdin-file-path=${relative(ROOT, path)}`],
		{ cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] },
	);
	let out = "";
	let err = "";
	child.stdout.on("data", (chunk: Buffer) => {
		out += chunk;
	});
	child.stderr.on("data", (chunk: Buffer) => {
		err += chunk;
	});
	child.stdin.end(source);
	const code = await new Promise<number | null>((resolve, reject) => {
		child.once("error", reject);
		child.once("close", resolve);
	});
	if (code !== 0) throw new Error(`biome format exited ${code}:\n${err}`);
	return out;
}

/** The text src/client/openapi.ts must have for the routes the app serves now. */
export async function generateClientTypes(): Promise<string> {
	const document = await servedDocument();
	const ast = await openapiTS(document as unknown as OpenAPI3, {
		// No network, no files: the document is complete as served.
		silent: true,
	});
	return biomeFormat(HEADER + astToString(ast), GENERATED_PATH);
}

async function main(): Promise<void> {
	const generated = await generateClientTypes();
	const current = await readFile(GENERATED_PATH, "utf8").catch(() => "");
	if (process.argv.includes("--check")) {
		if (current !== generated) {
			console.error(
				`${relative(ROOT, GENERATED_PATH)} is out of date with the served OpenAPI document: run \`npm run client:generate\` and commit it.`,
			);
			process.exit(1);
		}
		console.log(`${relative(ROOT, GENERATED_PATH)} is up to date.`);
		return;
	}
	if (current === generated) {
		console.log(`${relative(ROOT, GENERATED_PATH)} is up to date.`);
		return;
	}
	await writeFile(GENERATED_PATH, generated);
	console.log(`wrote ${relative(ROOT, GENERATED_PATH)}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
	main().catch((err: unknown) => {
		console.error(err);
		process.exit(1);
	});
}
