import { z } from "@hono/zod-openapi";

/** Shared OpenAPI schemas: the one error shape and the list envelope of API.md. */
export const ErrorSchema = z
	.object({
		error: z.object({
			code: z.string().openapi({ example: "invalid_request" }),
			message: z.string(),
			hint: z.string().min(1).openapi({ description: "What to do; never empty" }),
			detail: z.unknown().optional(),
			request_id: z.string(),
		}),
	})
	.openapi("Error");

/** A JSON body of this schema: spread into a route's request body or one of its responses. */
export const json = <T extends z.ZodType>(schema: T) => ({
	content: { "application/json": { schema } },
});

export const errorResponses = (...statuses: number[]) =>
	Object.fromEntries(
		statuses.map((s) => [
			s,
			{ description: ERROR_DESCRIPTIONS[s] ?? "Error", ...json(ErrorSchema) },
		]),
	);

const ERROR_DESCRIPTIONS: Record<number, string> = {
	400: "Invalid request (`invalid_request`; `detail` lists the fields)",
	401: "Missing or invalid credentials",
	403: "Forbidden or insufficient scope",
	404: "Not found (also for other users' objects)",
	409: "Conflict",
	410: "Gone",
	412: "Precondition failed (a stale `If-Match`)",
	413: "Body over 64 KiB",
	429: "Rate limited (see Retry-After)",
	500: "Internal error or misconfigured deployment",
	502: "Upstream provider unavailable",
	503: "Dependency unavailable (see Retry-After)",
};

export const listOf = <T extends z.ZodType>(item: T, name: string) =>
	z.object({ data: z.array(item), next_cursor: z.string().nullable() }).openapi(name);

/**
 * The shape of every id a path can name: `usr_…`/`cred_…` (a prefix and base62, see `newId`),
 * 12-character base62 key ids, and provider slugs with dots and dashes. A path parameter that
 * does not match is refused before any query as 404 `not_found` (the app's validation hook turns
 * every path-parameter failure into one), so a NUL byte, a very long or a non-ASCII id never
 * reaches a database.
 */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export const OpaqueId = z.string().regex(ID_PATTERN, "not an id");

/** A path parameter named `name` holding an opaque id. */
export const idParam = <N extends string>(name: N, example = "usr_4f9QbX2mT7aLkP0sVd1e") =>
	z.object({
		[name]: OpaqueId.openapi({ param: { name, in: "path" }, example }),
	} as { [K in N]: typeof OpaqueId });

/** The `{id}` path parameter of a route that addresses one object by its opaque id. */
export const IdParam = idParam("id");
/** The same, with an example of the object's own id shape, so the document reads true. */
export const CredentialIdParam = idParam("id", "cred_4f9QbX2mT7aLkP0sVd1e");
export const KeyIdParam = idParam("id", "4f9QbX2mT7aL");
export const JobIdParam = idParam("id", "job_0cc175b9c0f1b6a831c399e269772661");

export const bearerSecurity = [{ bearer: [] as string[] }];
