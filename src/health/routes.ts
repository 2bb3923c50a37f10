import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import { LatchkeyError } from "../errors.ts";
import type { AppEnv } from "../http/context.ts";
import { errorResponse } from "../http/error-handler.ts";
import { errorResponses, json } from "../http/openapi.ts";

const CHECK_TIMEOUT_MS = 3000;

async function check(name: string, work: () => Promise<unknown>): Promise<"ok" | "unavailable"> {
	let timer: ReturnType<typeof setTimeout> | undefined;
	try {
		await Promise.race([
			work(),
			new Promise((_, reject) => {
				timer = setTimeout(() => reject(new Error(`${name} check timed out`)), CHECK_TIMEOUT_MS);
			}),
		]);
		return "ok";
	} catch {
		return "unavailable";
	} finally {
		if (timer !== undefined) clearTimeout(timer);
	}
}

const liveRoute = createRoute({
	method: "get",
	path: "/health",
	tags: ["Service"],
	summary: "Liveness (no dependency checks)",
	responses: {
		200: {
			description: "The worker is up",
			...json(z.object({ status: z.literal("ok") })),
		},
	},
});

const ReadySchema = z
	.object({
		status: z.enum(["ok", "unavailable"]),
		postgres: z.enum(["ok", "unavailable"]),
		redis: z.enum(["ok", "unavailable"]),
	})
	.openapi("Readiness");

const readyRoute = createRoute({
	method: "get",
	path: "/health/ready",
	tags: ["Service"],
	summary: "Readiness: one Postgres query and one Redis command, for real",
	responses: {
		200: {
			description: "Both dependencies answer",
			...json(ReadySchema),
		},
		...errorResponses(500, 503),
	},
});

export function registerHealthRoutes(app: OpenAPIHono<AppEnv>): void {
	app.openapi(liveRoute, (c) => c.json({ status: "ok" as const }, 200));

	app.openapi(readyRoute, async (c) => {
		const { db, redis } = c.get("services");
		const [postgres, redisState] = await Promise.all([
			check("postgres", () => db.execute(sql`select 1`)),
			check("redis", () => redis.ping()),
		]);
		if (postgres === "ok" && redisState === "ok") {
			return c.json({ status: "ok" as const, postgres, redis: redisState }, 200);
		}
		const failed = [postgres !== "ok" && "postgres", redisState !== "ok" && "redis"].filter(
			Boolean,
		);
		return errorResponse(
			c,
			new LatchkeyError("dependency_unavailable", `Unavailable: ${failed.join(", ")}.`, {
				retryAfter: 5,
				detail: { status: "unavailable", postgres, redis: redisState },
			}),
		) as never;
	});
}
