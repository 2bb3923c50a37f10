// A Node module hook for scripts that load the app factory outside the Workers bundler
// (`npm run client:generate`): the files wrangler.toml's Text rule bundles as strings are loaded
// here as modules whose default export is their text, as the bundle gives them.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const TEXT = /\/swagger-ui-dist\/(swagger-ui\.css|swagger-ui-bundle\.js)$/;

export async function load(url, context, nextLoad) {
	if (!TEXT.test(url)) return nextLoad(url, context);
	const text = await readFile(fileURLToPath(url), "utf8");
	return {
		format: "module",
		source: `export default ${JSON.stringify(text)};`,
		shortCircuit: true,
	};
}
