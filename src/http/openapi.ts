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
	413: "Body over 64 KiB",
	429: "Rate limited (see Retry-After)",
	500: "Internal error or misconfigured deployment",
	502: "Upstream provider unavailable",
	503: "Dependency unavailable (see Retry-After)",
};

export const listOf = <T extends z.ZodType>(item: T, name: string) =>
	z.object({ data: z.array(item), next_cursor: z.string().nullable() }).openapi(name);

/** The `{id}` path parameter of a route that addresses one object by its opaque id. */
export const IdParam = z.object({
	id: z
		.string()
		.min(1)
		.max(64)
		.openapi({ param: { name: "id", in: "path" } }),
});

export const bearerSecurity = [{ bearer: [] as string[] }];
