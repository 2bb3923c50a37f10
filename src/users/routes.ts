import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { accepts } from "hono/accepts";
import { recordAudit } from "../audit/index.ts";
import {
	type AuthEnv,
	authenticate,
	requireScope,
	requireUser,
	userIdOf,
} from "../auth/middleware.ts";
import { LatchkeyError } from "../errors.ts";
import type { AppEnv } from "../http/context.ts";
import { bearerSecurity, errorResponses, IdParam, json, listOf } from "../http/openapi.ts";
import { cursorFrom, ListQuery, mapPage, paginate } from "../http/pagination.ts";
import { getUser, MAX_EMAIL_LENGTH, MAX_NAME_LENGTH, normaliseEmail } from "../user-records.ts";
import {
	adminUpdateUser,
	canonicalTimeZone,
	createUser,
	listUsers,
	requestDeletion,
	SETTABLE_STATUSES,
	toUserJson,
	USER_STATUSES,
	unsubscribeEmail,
	updateProfile,
} from "./service.ts";
import { unsubscribeKeys, verifyUnsubscribeToken } from "./unsubscribe.ts";

const UserSchema = z
	.object({
		id: z.string().openapi({ example: "usr_4f9QbX2mT7aLkP0sVd1e" }),
		email: z.string().openapi({ format: "email", example: "ada@example.com" }),
		name: z.string().nullable().openapi({ example: "Ada Lovelace" }),
		timezone: z.string().openapi({ description: "IANA time zone name", example: "Europe/London" }),
		status: z.enum(USER_STATUSES),
		email_verified: z.boolean(),
		notifications: z.record(z.string(), z.boolean()).openapi({
			description: "Notification channels and whether each is on",
			example: { email: true },
		}),
		created_at: z.string().openapi({ format: "date-time" }),
	})
	.openapi("User");

const NameField = z
	.string()
	.trim()
	.min(1)
	.max(MAX_NAME_LENGTH)
	.nullable()
	.openapi({ description: "Display name; null clears it", example: "Ada Lovelace" });

const ProfileUpdateSchema = z
	.strictObject({
		name: NameField.optional(),
		timezone: z
			.string()
			.max(64)
			.refine(
				(zone) => canonicalTimeZone(zone) !== null,
				"must be an IANA time zone name such as Europe/Paris",
			)
			.optional()
			.openapi({ description: "IANA time zone name", example: "Europe/Paris" }),
		notifications: z.strictObject({ email: z.boolean().optional() }).optional().openapi({
			description: "Merged into the current preferences: channels left out keep their setting",
		}),
	})
	.openapi("ProfileUpdate");

const UserCreateSchema = z
	.strictObject({
		email: z
			.string()
			.max(MAX_EMAIL_LENGTH + 16)
			.refine((email) => normaliseEmail(email) !== null, "must be an e-mail address")
			.openapi({
				format: "email",
				description: "Stored lower-cased; unique case-insensitively",
				example: "ada@example.com",
			}),
		name: NameField.optional(),
	})
	.openapi("UserCreate");

const AdminUserUpdateSchema = z
	.strictObject({
		status: z.enum(SETTABLE_STATUSES).optional().openapi({
			description: "A suspended user's keys and tokens are refused with 403 user_suspended",
		}),
		name: NameField.optional(),
	})
	.openapi("AdminUserUpdate");

const DeletionSchema = z.object({ status: z.literal("deleting") }).openapi("DeletionAccepted");

const UserIdParams = IdParam;

const UserListQuery = ListQuery.extend({
	status: z.enum(USER_STATUSES).optional().openapi({ description: "Only users with this status" }),
});

const jsonBody = <T extends z.ZodType>(schema: T, required: boolean) => ({
	body: { ...json(schema), required },
});

// Tuples, not arrays: createRoute derives the handler's env (the principal) from each element.
type AuthChain = [MiddlewareHandler<AuthEnv>, MiddlewareHandler<AuthEnv>];
const meAuth = (): AuthChain => [authenticate(), requireUser()];
const adminAuth = (): AuthChain => [authenticate(), requireScope("admin")];

const getMeRoute = createRoute({
	method: "get",
	path: "/v1/me",
	tags: ["Users"],
	summary: "The authenticated user",
	middleware: meAuth(),
	security: bearerSecurity,
	responses: {
		200: { description: "The user", ...json(UserSchema) },
		...errorResponses(401, 403, 404),
	},
});

const patchMeRoute = createRoute({
	method: "patch",
	path: "/v1/me",
	tags: ["Users"],
	summary: "Update the authenticated user's profile",
	description: "Only the fields sent change; an empty object changes nothing.",
	middleware: meAuth(),
	security: bearerSecurity,
	request: jsonBody(ProfileUpdateSchema, false),
	responses: {
		200: { description: "The updated user", ...json(UserSchema) },
		...errorResponses(400, 401, 403, 404, 413),
	},
});

const deleteMeRoute = createRoute({
	method: "delete",
	path: "/v1/me",
	tags: ["Users"],
	summary: "Delete the authenticated user's account",
	description:
		"Every key and session stops working at once; managed credentials are deprovisioned and the data purged by the scheduled worker.",
	middleware: meAuth(),
	security: bearerSecurity,
	responses: {
		202: { description: "Deletion under way", ...json(DeletionSchema) },
		...errorResponses(401, 403, 404),
	},
});

const createUserRoute = createRoute({
	method: "post",
	path: "/v1/admin/users",
	tags: ["Admin"],
	summary: "Create a user",
	middleware: adminAuth(),
	security: bearerSecurity,
	request: jsonBody(UserCreateSchema, true),
	responses: {
		201: { description: "The new user", ...json(UserSchema) },
		...errorResponses(400, 401, 403, 409, 413),
	},
});

const listUsersRoute = createRoute({
	method: "get",
	path: "/v1/admin/users",
	tags: ["Admin"],
	summary: "List users, oldest first",
	middleware: adminAuth(),
	security: bearerSecurity,
	request: { query: UserListQuery },
	responses: {
		200: { description: "A page of users", ...json(listOf(UserSchema, "UserList")) },
		...errorResponses(400, 401, 403),
	},
});

const getUserRoute = createRoute({
	method: "get",
	path: "/v1/admin/users/{id}",
	tags: ["Admin"],
	summary: "Get a user",
	description: 'Users whose deletion is under way read `status: "deleting"` until they are purged.',
	middleware: adminAuth(),
	security: bearerSecurity,
	request: { params: UserIdParams },
	responses: {
		200: { description: "The user", ...json(UserSchema) },
		...errorResponses(400, 401, 403, 404),
	},
});

const patchUserRoute = createRoute({
	method: "patch",
	path: "/v1/admin/users/{id}",
	tags: ["Admin"],
	summary: "Suspend, reactivate or rename a user",
	description: "A user whose deletion is under way cannot be changed (409 conflict).",
	middleware: adminAuth(),
	security: bearerSecurity,
	request: { params: UserIdParams, ...jsonBody(AdminUserUpdateSchema, false) },
	responses: {
		200: { description: "The updated user", ...json(UserSchema) },
		...errorResponses(400, 401, 403, 404, 409, 413),
	},
});

const deleteUserRoute = createRoute({
	method: "delete",
	path: "/v1/admin/users/{id}",
	tags: ["Admin"],
	summary: "Delete a user",
	description: "As DELETE /v1/me, for any user. Repeating it changes nothing.",
	middleware: adminAuth(),
	security: bearerSecurity,
	request: { params: UserIdParams },
	responses: {
		202: { description: "Deletion under way", ...json(DeletionSchema) },
		...errorResponses(400, 401, 403, 404),
	},
});

const unsubscribeRoute = createRoute({
	method: "get",
	path: "/v1/unsubscribe",
	tags: ["Users"],
	summary: "Turn off notification e-mails (link from an e-mail)",
	description:
		"No authentication: the signed token is the authorisation. Browsers (Accept preferring text/html) get a short page, other clients JSON.",
	request: {
		query: z.object({
			token: z
				.string()
				.min(1)
				.max(512)
				.openapi({ description: "The signed token from the e-mail link" }),
		}),
	},
	responses: {
		200: {
			description: "Notification e-mails are off",
			content: {
				"application/json": {
					schema: z.object({ unsubscribed: z.literal(true) }).openapi("Unsubscribed"),
				},
				"text/html": { schema: z.string() },
			},
		},
		...errorResponses(400, 404),
	},
});

const UNSUBSCRIBED_PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Unsubscribed</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}</style></head>
<body><h1>You are unsubscribed</h1><p>You will no longer receive notification e-mails. You can turn them back on in your account settings.</p></body>
</html>
`;

export function registerUserRoutes(app: OpenAPIHono<AppEnv>): void {
	app.openapi(getMeRoute, async (c) => {
		const { db } = c.get("services");
		return c.json(toUserJson(await getUser(db, userIdOf(c))), 200);
	});

	app.openapi(patchMeRoute, async (c) => {
		const { db, now } = c.get("services");
		const row = await updateProfile(db, userIdOf(c), c.req.valid("json"), now());
		return c.json(toUserJson(row), 200);
	});

	app.openapi(deleteMeRoute, async (c) => {
		const { db, config, now } = c.get("services");
		const userId = userIdOf(c);
		await requestDeletion(db, config, userId, now());
		recordAudit(c, { action: "user.deletion_requested", target: { type: "user", id: userId } });
		return c.json({ status: "deleting" as const }, 202);
	});

	app.openapi(createUserRoute, async (c) => {
		const { db, now } = c.get("services");
		const row = await createUser(db, c.req.valid("json"), now());
		recordAudit(c, {
			action: "user.created",
			target: { type: "user", id: row.id },
			userId: row.id,
		});
		return c.json(toUserJson(row), 201, { Location: `/v1/admin/users/${row.id}` });
	});

	app.openapi(listUsersRoute, async (c) => {
		const { db } = c.get("services");
		const query = c.req.valid("query");
		const rows = await listUsers(db, {
			limit: query.limit,
			after: cursorFrom(query),
			status: query.status,
		});
		return c.json(mapPage(paginate(rows, query.limit), toUserJson), 200);
	});

	app.openapi(getUserRoute, async (c) => {
		const { db } = c.get("services");
		return c.json(toUserJson(await getUser(db, c.req.valid("param").id)), 200);
	});

	app.openapi(patchUserRoute, async (c) => {
		const { db, now } = c.get("services");
		const { id } = c.req.valid("param");
		const body = c.req.valid("json") ?? {};
		const row = await adminUpdateUser(db, id, body, now());
		recordAudit(c, {
			action:
				body.status === "suspended"
					? "user.suspended"
					: body.status === "active"
						? "user.reactivated"
						: "user.updated",
			target: { type: "user", id },
			userId: id,
			detail: { fields: Object.keys(body).sort(), status: row.status },
		});
		return c.json(toUserJson(row), 200);
	});

	app.openapi(deleteUserRoute, async (c) => {
		const { db, config, now } = c.get("services");
		const { id } = c.req.valid("param");
		await requestDeletion(db, config, id, now());
		recordAudit(c, {
			action: "user.deletion_requested",
			target: { type: "user", id },
			userId: id,
		});
		return c.json({ status: "deleting" as const }, 202);
	});

	app.openapi(unsubscribeRoute, async (c) => {
		const { db, now, config } = c.get("services");
		const userId = await verifyUnsubscribeToken(
			unsubscribeKeys(config),
			c.req.valid("query").token,
		);
		if (!userId) {
			throw new LatchkeyError("invalid_request", "The unsubscribe link is invalid.", {
				hint: "Use the link exactly as it appears in the e-mail.",
				detail: [{ field: "token", location: "query", message: "not a valid unsubscribe token" }],
			});
		}
		await unsubscribeEmail(db, userId, now());
		// The token sits in the URL: keep the answer out of caches, and vary on the negotiated type.
		c.header("Cache-Control", "no-store");
		c.header("Vary", "Accept");
		const type = accepts(c, {
			header: "Accept",
			supports: ["application/json", "text/html"],
			default: "application/json",
		});
		if (type === "text/html") {
			c.header(
				"Content-Security-Policy",
				"default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
			);
			return c.html(UNSUBSCRIBED_PAGE, 200);
		}
		return c.json({ unsubscribed: true as const }, 200);
	});
}
