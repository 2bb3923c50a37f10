import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { auditRefusals, recordAudit } from "../audit/index.ts";
import {
	type AuthEnv,
	authenticate,
	leasePrincipalOf,
	liveCheckOf,
	requireScope,
	requireUser,
	userIdOf,
} from "../auth/middleware.ts";
import type { AppEnv } from "../http/context.ts";
import { NO_STORE } from "../http/headers.ts";
import {
	bearerSecurity,
	CredentialIdParam,
	errorResponses,
	idParam,
	json,
} from "../http/openapi.ts";
import { DEFAULT_LEASE_TTL_S, MAX_LEASE_TTL_S } from "./policy.ts";
import { createLease, credentialOfLease, releaseLease, renewLease } from "./service.ts";

/** Seconds, 1–900. */
const ttlSeconds = () => z.number().int().min(1).max(MAX_LEASE_TTL_S);

const TtlBody = z
	.object({
		ttl_seconds: ttlSeconds()
			.default(DEFAULT_LEASE_TTL_S)
			.openapi({ description: `Seconds, 1–${MAX_LEASE_TTL_S}; default ${DEFAULT_LEASE_TTL_S}.` }),
	})
	.strict();

/** Renewal: no default, so that "no TTL asked for" is visible (it never shortens the lease). */
const RenewBody = z
	.object({
		ttl_seconds: ttlSeconds()
			.optional()
			.openapi({
				description: `Seconds, 1–${MAX_LEASE_TTL_S}. Absent: now + ${DEFAULT_LEASE_TTL_S} s or the current end, whichever is later.`,
			}),
	})
	.strict();

const Timestamp = z.string().openapi({ format: "date-time" });

const SecretSchema = z
	.discriminatedUnion("type", [
		z.object({
			type: z.literal("oauth2"),
			access_token: z.string(),
			token_type: z.string(),
		}),
		z.object({ type: z.literal("api_key"), api_key: z.string() }),
		z.object({
			type: z.literal("user_password"),
			username: z.string().nullable(),
			password: z.string(),
		}),
		z.object({
			type: z.literal("host_scoped"),
			host: z.string().nullable(),
			headers: z.record(z.string(), z.string()),
		}),
	])
	.openapi("LeaseSecret", {
		description: "Exactly the keys of its type. The refresh token never leaves Latchkey.",
	});

const LeaseSchema = z
	.object({
		lease_id: z.string(),
		credential_id: z.string(),
		expires_at: Timestamp.openapi({
			description: "The lease's end: its TTL, cut to the token's expiry when that comes first.",
		}),
		token_expires_at: Timestamp.nullable(),
		secret: SecretSchema,
	})
	.openapi("Lease");

const LeaseParam = idParam("lease_id", "lease_4f9QbX2mT7aLkP0sVd1e_Zr8YcQw2mNb5Lx0Pk7aT3eUv");

/** Optional body: a lease request may send none at all. */
const optionalJson = { ...json(TtlBody), required: false } as const;
const optionalRenewJson = { ...json(RenewBody), required: false } as const;

export function registerLeaseRoutes(app: OpenAPIHono<AppEnv>): void {
	const authed = app as unknown as OpenAPIHono<AuthEnv>;

	authed.openapi(
		createRoute({
			method: "post",
			path: "/v1/credentials/{id}/leases",
			tags: ["Leases"],
			summary:
				"Lease a credential's secret for an agent run (refreshing an OAuth token first if needed)",
			description:
				"The only way a secret leaves Latchkey. An OAuth2 token is refreshed first when it expires before the lease's end plus min(5 minutes, a quarter of its lifetime); however many leases ask at once, one refresh reaches the provider. A token too short-lived to cover the TTL is leased with `expires_at` cut to its expiry. For providers whose refresh invalidates the previous access token, only the token's own margin starts a refresh (never the TTL a caller asks for), and leases end where that margin begins, so the refresh waits for no lease; should one still hold the token, the refresh waits for it and new leases queue behind it (503 `refresh_pending` with Retry-After if that takes longer than about 25 s). 429 `rate_limited` with Retry-After when the caller's key has used its lease rate (default: 500 at once, then 50 a second) or the credential has as many live leases as it may (default 1000).",
			security: bearerSecurity,
			// The fresh check of the caller's key or session runs in one batch with the credential read.
			middleware: [
				authenticate({ deferLiveCheck: true }),
				// Refusals of an authenticated caller (scope, not found, limits, refresh failures).
				auditRefusals((c) => ({
					action: "lease.refused",
					target: { type: "credential", id: c.req.param("id") ?? "" },
				})),
				requireUser(),
				requireScope("credentials:use"),
			],
			request: { params: CredentialIdParam, body: optionalJson },
			responses: {
				201: { description: "Leased", headers: noStoreHeaders, ...json(LeaseSchema) },
				...errorResponses(400, 401, 403, 404, 409, 429, 502, 503),
			},
		}),
		async (c) => {
			const services = c.get("services");
			const lease = await createLease(services, {
				userId: userIdOf(c),
				principal: leasePrincipalOf(c),
				credentialId: c.req.valid("param").id,
				ttlSeconds: ttlOf(c.req.valid("json")),
				liveCheck: liveCheckOf(c),
				defer: (work) => c.executionCtx.waitUntil(work),
			});
			recordAudit(c, {
				action: "lease.granted",
				target: { type: "credential", id: lease.credential_id },
				detail: { lease_id: lease.lease_id, expires_at: lease.expires_at },
			});
			return c.json(lease, 201, NO_STORE);
		},
	);

	authed.openapi(
		createRoute({
			method: "post",
			path: "/v1/leases/{lease_id}/renew",
			tags: ["Leases"],
			summary: "Extend a lease",
			description:
				"Sets the lease's end to now + `ttl_seconds`. Without `ttl_seconds` (no body, or none in it) the end becomes now + 60 s or stays where it is, whichever is later: a renewal never shortens a lease unless `ttl_seconds` asks for it. 409 `token_expiring` when the leased token cannot cover the renewal (for providers whose refresh invalidates the previous token, leases end where its refresh margin begins) or a refresh is waiting for it: release and lease again. 410 `lease_gone` after expiry, release or the credential's deletion (the lease's record is kept 5 minutes past its end; after that, 404).",
			security: bearerSecurity,
			middleware: [authenticate(), requireUser(), requireScope("credentials:use")],
			request: { params: LeaseParam, body: optionalRenewJson },
			responses: {
				200: {
					description: "Renewed",
					...json(z.object({ expires_at: Timestamp }).openapi("LeaseRenewed")),
				},
				...errorResponses(400, 401, 403, 404, 409, 410, 503),
			},
		}),
		async (c) => {
			const leaseId = c.req.valid("param").lease_id;
			const renewed = await renewLease(c.get("services"), {
				userId: userIdOf(c),
				leaseId,
				// No TTL asked for: the renewal may not shorten the lease.
				ttlSeconds: c.req.valid("json")?.ttl_seconds,
			});
			recordAudit(c, {
				action: "lease.renewed",
				target: { type: "lease", id: leaseId },
				detail: { credential_id: credentialOfLease(leaseId), expires_at: renewed.expires_at },
			});
			return c.json(renewed, 200);
		},
	);

	authed.openapi(
		createRoute({
			method: "delete",
			path: "/v1/leases/{lease_id}",
			tags: ["Leases"],
			summary: "Release a lease",
			security: bearerSecurity,
			middleware: [authenticate(), requireUser(), requireScope("credentials:use")],
			request: { params: LeaseParam },
			responses: {
				204: { description: "Released" },
				...errorResponses(401, 403, 404, 410, 503),
			},
		}),
		async (c) => {
			const leaseId = c.req.valid("param").lease_id;
			await releaseLease(c.get("services"), { userId: userIdOf(c), leaseId });
			recordAudit(c, {
				action: "lease.released",
				target: { type: "lease", id: leaseId },
				detail: { credential_id: credentialOfLease(leaseId) },
			});
			return c.body(null, 204);
		},
	);
}

const noStoreHeaders = z.object({
	"Cache-Control": z.literal("no-store").openapi({ description: "A lease carries a secret." }),
});

/** The TTL of an optional body: none at all means the default. */
function ttlOf(body: { ttl_seconds?: number } | undefined): number {
	return body?.ttl_seconds ?? DEFAULT_LEASE_TTL_S;
}
