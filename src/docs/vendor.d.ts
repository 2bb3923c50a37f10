// Swagger UI's two files are imported as text: wrangler.toml's [[rules]] (type "Text") make them
// text modules of the worker bundle, and vitest-pool-workers reads the same rules. routes.ts
// references this file, so every tsconfig that reaches routes.ts sees these declarations.
declare module "swagger-ui-dist/swagger-ui-bundle.js" {
	const source: string;
	export default source;
}
declare module "swagger-ui-dist/swagger-ui.css" {
	const source: string;
	export default source;
}
