import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../../src/index.ts";
import { admin, userWithKey } from "./fixtures.ts";
import { BASE, call, expect4xxShape, randomIp, testEnv, throwIfFuzzFailed } from "./helpers.ts";

/**
 * Hostile input, generated from the OpenAPI document: every operation is sent malformed path
 * parameters (NUL, non-ASCII, very long, `..`, stray `%`), malformed query parameters and bodies,
 * with valid admin and user credentials. Nothing may answer 5xx, and every 4xx must have the error
 * shape of API.md. Seeded and bounded (requests and wall time); the seed is printed on failure.
 */

// `npm run fuzz` sets these for a longer run; only VITE_-prefixed variables reach the worker
// runtime the tests run in.
const metaEnv = (import.meta as unknown as { env?: Record<string, string | undefined> }).env ?? {};
const SEED = Number(metaEnv.VITE_FUZZ_SEED ?? "") || 20_261_130;
const MAX_RUNS = Number(metaEnv.VITE_FUZZ_RUNS ?? "") || 400;
const TIME_LIMIT_MS = (Number(metaEnv.VITE_FUZZ_SECONDS ?? "") || 20) * 1000;

interface Operation {
	method: string;
	path: string;
	pathParams: string[];
	queryParams: string[];
	hasBody: boolean;
}

type OpenApiDoc = {
	paths: Record<string, Record<string, OpenApiOperation>>;
	components?: { schemas?: Record<string, SchemaObject> };
};
type OpenApiOperation = {
	parameters?: { name: string; in: string }[];
	requestBody?: { content?: Record<string, { schema?: SchemaObject }> };
};
type SchemaObject = {
	$ref?: string;
	properties?: Record<string, unknown>;
	oneOf?: SchemaObject[];
	anyOf?: SchemaObject[];
	allOf?: SchemaObject[];
};

// Operations that would end the fuzzing user or run the scheduled work for every test file.
const SKIP = new Set(["delete /v1/me", "post /v1/admin/maintenance/run"]);

const HOSTILE = [
	"\u0000",
	"usr_\u0000",
	"a\u0000b",
	"..",
	"%",
	"%00",
	"%zz",
	"%2e%2e",
	"é",
	"ü\u202e",
	"😀",
	"x".repeat(300),
	"A".repeat(5000),
	" ",
	"-1",
	"0",
	"null",
	"../../etc/passwd",
	"<script>",
	"' OR 1=1 --",
];
/** Sent as-is in a path, so the router sees malformed percent-encoding and dot segments. */
const RAW_IN_PATH = new Set(["%", "%zz", "..", "%2e%2e", "%00"]);
const NOT_JSON = "\u0001not json {";

const hostileString = fc.oneof(
	fc.constantFrom(...HOSTILE),
	fc.string({ unit: "binary", maxLength: 40 }),
	fc.string({ unit: "grapheme", maxLength: 20 }),
	fc.stringMatching(/^[A-Za-z0-9_.-]{1,70}$/),
);

const value: fc.Arbitrary<unknown> = fc.oneof(
	hostileString,
	fc.integer(),
	fc.double(),
	fc.boolean(),
	fc.constant(null),
	fc.array(hostileString, { maxLength: 3 }),
	fc.dictionary(fc.string({ maxLength: 6 }), hostileString, { maxKeys: 2 }),
);

function encodePathValue(v: string): string {
	if (RAW_IN_PATH.has(v)) return v;
	try {
		return encodeURIComponent(v);
	} catch {
		return "%EF%BF%BD";
	}
}

function propertyNames(doc: OpenApiDoc, schema: SchemaObject | undefined, seen = 0): string[] {
	if (!schema || seen > 5) return [];
	if (schema.$ref) {
		const name = schema.$ref.split("/").pop() as string;
		return propertyNames(doc, doc.components?.schemas?.[name], seen + 1);
	}
	const nested = [...(schema.oneOf ?? []), ...(schema.anyOf ?? []), ...(schema.allOf ?? [])];
	return [
		...Object.keys(schema.properties ?? {}),
		...nested.flatMap((s) => propertyNames(doc, s, seen + 1)),
	];
}

async function send(method: string, path: string, token: string, body?: string) {
	const headers = new Headers({ authorization: `Bearer ${token}`, "cf-connecting-ip": randomIp() });
	if (body !== undefined) headers.set("content-type", "application/json");
	const request = new Request(`${BASE}${path}`, { method, headers, body });
	const ctx = createExecutionContext();
	const response = await worker.fetch(
		request as Parameters<typeof worker.fetch>[0],
		testEnv as unknown as Parameters<typeof worker.fetch>[1],
		ctx,
	);
	await waitOnExecutionContext(ctx);
	return response;
}

describe("hostile input from the OpenAPI document", () => {
	let ops: Operation[] = [];
	let bodyFields: string[] = [];
	let queryNames: string[] = [];
	let tokens: string[] = [];

	beforeAll(async () => {
		const doc = (await (await call("/openapi.json")).json()) as OpenApiDoc;
		const fields = new Set<string>();
		const queries = new Set<string>(["limit", "cursor"]);
		for (const [path, methods] of Object.entries(doc.paths)) {
			for (const [method, op] of Object.entries(methods)) {
				if (SKIP.has(`${method} ${path}`)) continue;
				// The API's contract only: the console's pages answer a person in HTML, and meet their
				// hostile input in test/worker/console.test.ts.
				if (path.startsWith("/console")) continue;
				const params = op.parameters ?? [];
				const query = params.filter((p) => p.in === "query").map((p) => p.name);
				for (const q of query) queries.add(q);
				const schema = op.requestBody?.content?.["application/json"]?.schema;
				for (const f of propertyNames(doc, schema)) fields.add(f);
				ops.push({
					method: method.toUpperCase(),
					path,
					pathParams: params.filter((p) => p.in === "path").map((p) => p.name),
					queryParams: query,
					hasBody: op.requestBody !== undefined,
				});
			}
		}
		ops = ops.sort((a, b) => `${a.path} ${a.method}`.localeCompare(`${b.path} ${b.method}`));
		bodyFields = [...fields].sort();
		queryNames = [...queries].sort();
		tokens = [admin(), (await userWithKey()).key];
	});

	it(
		`answers no 5xx and the error shape on every 4xx (seed ${SEED}, ≤ ${MAX_RUNS} requests, ≤ ${TIME_LIMIT_MS / 1000} s)`,
		async () => {
			expect(ops.length).toBeGreaterThan(20);
			const withPathParams = ops.flatMap((op, i) => (op.pathParams.length ? [i] : []));
			expect(withPathParams.length).toBeGreaterThan(5);

			const body = fc.option(
				fc.oneof(
					fc.dictionary(fc.constantFrom(...bodyFields), value, { maxKeys: 6 }),
					fc.jsonValue({ maxDepth: 2 }),
					fc.constant(NOT_JSON),
				),
				{ nil: undefined },
			);
			const query = fc.array(
				fc.tuple(
					fc.oneof(fc.constantFrom(...queryNames), fc.string({ maxLength: 5 })),
					hostileString,
				),
				{ maxLength: 3 },
			);
			const input = fc.tuple(
				fc.nat(ops.length - 1),
				hostileString,
				query,
				body,
				fc.nat(tokens.length - 1),
			);
			// Every operation with a path parameter meets the worst path values first, with each
			// credential; random cases fill the rest of the budget.
			const examples: [[number, string, [string, string][], unknown, number]][] = [];
			for (const i of withPathParams) {
				for (const v of ["\u0000", "x".repeat(300), "é", "%", ".."]) {
					for (const t of tokens.keys()) examples.push([[i, v, [], undefined, t]]);
				}
			}
			expect(examples.length).toBeLessThan(MAX_RUNS);
			let sent = 0;
			const started = Date.now();

			const result = await fc.check(
				fc.asyncProperty(input, async ([opIndex, pathValue, queryPairs, payload, tokenIndex]) => {
					const op = ops[opIndex] as Operation;
					let path = op.path;
					for (const name of op.pathParams) {
						path = path.replace(`{${name}}`, encodePathValue(pathValue));
					}
					const search = new URLSearchParams();
					for (const [k, v] of queryPairs) {
						try {
							search.append(k, v);
						} catch {
							/* a lone surrogate: skip */
						}
					}
					const qs = search.toString();
					const canHaveBody = op.method !== "GET" && op.method !== "HEAD";
					const text =
						!canHaveBody || payload === undefined
							? undefined
							: payload === NOT_JSON
								? NOT_JSON
								: JSON.stringify(payload);
					sent += 1;
					const res = await send(
						op.method,
						qs ? `${path}?${qs}` : path,
						tokens[tokenIndex] as string,
						text,
					);
					const what = `${op.method} ${path}${qs ? `?${qs}` : ""} body=${text?.slice(0, 200)} → ${res.status}`;
					if (res.status >= 500) throw new Error(`5xx: ${what} ${await res.text()}`);
					if (res.status >= 400) {
						await expect4xxShape(res, what);
					} else {
						await res.body?.cancel();
					}
				}),
				{
					seed: SEED,
					numRuns: MAX_RUNS,
					examples,
					interruptAfterTimeLimit: TIME_LIMIT_MS,
					markInterruptAsFailure: false,
					endOnFailure: true,
				},
			);
			throwIfFuzzFailed(result, SEED, sent);
			expect(sent).toBeLessThanOrEqual(MAX_RUNS + 1);
			expect(Date.now() - started).toBeLessThan(TIME_LIMIT_MS + 10_000);
		},
		TIME_LIMIT_MS + 40_000,
	);

	it("a malformed path id is 404 not_found on every kind of route, never a query", async () => {
		const { key } = await userWithKey();
		for (const bad of ["%00", "a%00b", "%C3%A9", "x".repeat(65), "%F0%9F%98%80"]) {
			for (const [method, path, token] of [
				["DELETE", `/v1/api-keys/${bad}`, key],
				["POST", `/v1/api-keys/${bad}/roll`, key],
				["GET", `/v1/credentials/${bad}`, key],
				["GET", `/v1/admin/users/${bad}`, admin()],
				["POST", `/v1/admin/users/${bad}/api-keys`, admin()],
				["POST", `/v1/oauth/${bad}/authorize`, key],
				["POST", `/v1/oauth/connections/${bad}`, key],
				["POST", `/v1/credentials/${bad}/leases`, key],
				["POST", `/v1/leases/${bad}/renew`, key],
				["DELETE", `/v1/leases/${bad}`, key],
			] as const) {
				const res = await send(method, path, token, method === "POST" ? "{}" : undefined);
				const body = (await res.json()) as { error: { code: string } };
				expect([method, path, res.status, body.error.code]).toEqual([
					method,
					path,
					404,
					"not_found",
				]);
			}
		}
	});

	it("a NUL character in a body string is 400 invalid_request, not a 500 from Postgres", async () => {
		const { key } = await userWithKey();
		const res = await send("POST", "/v1/api-keys", key, JSON.stringify({ name: "a\u0000b" }));
		const body = (await res.json()) as { error: { code: string; hint: string } };
		expect([res.status, body.error.code]).toEqual([400, "invalid_request"]);
		expect(body.error.hint.length).toBeGreaterThan(0);
	});
});
