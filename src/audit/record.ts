/**
 * Recording audit events from requests: routes call `recordAudit(c, …)`, which only buffers; the
 * `auditTrail()` middleware (installed by src/app.ts) writes the request's events after the
 * response, through `waitUntil`, so an event never adds a round trip to the request it records.
 */
import type { Context, MiddlewareHandler } from "hono";
import { newId } from "../crypto/encoding.ts";
import { toLatchkeyError } from "../http/error-handler.ts";
import type { Services } from "../services.ts";
import { requestTiming, Timing } from "../timing.ts";
import {
	type AuditActor,
	type AuditAuthMethod,
	type AuditEventInput,
	type AuditRecord,
	canonicalDetail,
	SYSTEM_ACTOR,
} from "./events.ts";
import { writeAuditRecords } from "./store.ts";

/**
 * What audit/ reads of the request's principal (set by auth/'s authenticate()). Named here by
 * shape, since auth/ sits above audit/ and records into it.
 */
export interface PrincipalLike {
	method: Exclude<AuditAuthMethod, "refresh_token" | "system">;
	userId: string | null;
	keyId?: string | undefined;
	sessionId?: string | undefined;
}

// biome-ignore lint/suspicious/noExplicitAny: any route's context, whatever its env.
type AnyContext = Context<any, any, any>;

const buffers = new WeakMap<AnyContext, AuditRecord[]>();

export function principalOf(c: AnyContext): PrincipalLike | undefined {
	return (c.var as { principal?: PrincipalLike }).principal;
}

export function actorOf(principal: PrincipalLike): AuditActor {
	return {
		method: principal.method,
		userId: principal.userId,
		keyId: principal.keyId ?? null,
		sessionId: principal.sessionId ?? null,
	};
}

const MAX_IP_LENGTH = 64;
/** Ids as the API issues them; a path segment that is none (a refused request's) is not kept. */
const TARGET_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

function toRecord(
	input: AuditEventInput,
	actor: AuditActor,
	at: Date,
	request: { ip: string | null; requestId: string | null },
): AuditRecord {
	const target = input.target && TARGET_ID.test(input.target.id) ? input.target : null;
	return {
		id: newId("aud"),
		at,
		action: input.action,
		outcome: input.outcome ?? "success",
		userId: input.userId !== undefined ? input.userId : actor.userId,
		actor,
		targetType: target?.type ?? null,
		targetId: target?.id ?? null,
		// Printable ASCII only (Postgres text holds no NUL, and the hash must see what is stored).
		ip: request.ip ? request.ip.replace(/[^\x20-\x7e]/g, "").slice(0, MAX_IP_LENGTH) : null,
		requestId: request.requestId,
		detail: canonicalDetail(input.detail),
	};
}

/**
 * Writes `records` after the response (the request's waitUntil, through
 * `services.afterResponse`; awaited where there is no request), under a Timing of its own: the
 * deferred writes are not the response's round trips and must not show in its Server-Timing.
 */
export function writeAfterResponse(
	services: Services,
	records: AuditRecord[],
	requestId: string | null,
): Promise<void> {
	return services.afterResponse(
		requestTiming.run(new Timing(), () => writeAuditRecords(services, records, { requestId })),
	);
}

const writeOf = (c: AnyContext, records: AuditRecord[]) =>
	writeAfterResponse(c.get("services") as Services, records, c.get("requestId") ?? null);

/**
 * Records an event of this request. The actor is the request's principal unless `input.actor`
 * names one (the token endpoint, where the refresh token is the credential); a request with
 * neither is a programming error. Never throws for I/O: nothing is written until the response
 * has gone.
 */
export function recordAudit(c: AnyContext, input: AuditEventInput): void {
	const principal = principalOf(c);
	const actor = input.actor ?? (principal ? actorOf(principal) : undefined);
	if (!actor) throw new Error(`recordAudit(${input.action}): no principal; pass input.actor`);
	const services = c.get("services") as Services;
	const record = toRecord(input, actor, services.now(), {
		ip: c.req.header("cf-connecting-ip") ?? null,
		requestId: c.get("requestId") ?? null,
	});
	const buffer = buffers.get(c);
	if (buffer) buffer.push(record);
	// Outside auditTrail() (a route registered without it): written after the response all the same.
	else void writeOf(c, [record]);
}

/**
 * The composition root's middleware: collects the events routes record and writes them after the
 * response (waitUntil). Infrastructure (http/) knows nothing of it; src/app.ts installs it.
 */
export function auditTrail(): MiddlewareHandler {
	return async function auditTrail(c, next) {
		const buffer: AuditRecord[] = [];
		buffers.set(c, buffer);
		try {
			await next();
		} finally {
			buffers.delete(c);
			if (buffer.length > 0) await writeOf(c, buffer);
		}
	};
}

/**
 * For a route's middleware list, after authentication: records the request's refusal (a 4xx,
 * `denied`, or a 5xx, `failure`) with its error code, as `describe` names it. Requests refused
 * before a principal was known (a bad key: 401) are not recorded; the authentication-failure
 * limiter counts those.
 */
export function auditRefusals(
	describe: (c: AnyContext) => Pick<AuditEventInput, "action" | "target">,
): MiddlewareHandler {
	return async function auditRefusals(c, next) {
		await next();
		if (!c.error || !principalOf(c)) return;
		const err = toLatchkeyError(c.error);
		recordAudit(c, {
			...describe(c),
			outcome: err.status >= 500 ? "failure" : "denied",
			detail: { code: err.code, status: err.status },
		});
	};
}

/**
 * For the authenticated proxy (src/proxy/): one `proxy.call` event per forwarded
 * request, naming the credential, the method, the upstream host and the status; never the path,
 * query or any header or body, which can carry secrets.
 */
export function recordProxyCall(
	c: AnyContext,
	call: { credentialId: string; method: string; host: string; status: number },
): void {
	recordAudit(c, {
		action: "proxy.call",
		outcome: call.status >= 500 ? "failure" : "success",
		target: { type: "credential", id: call.credentialId },
		detail: { method: call.method, host: call.host, status: call.status },
	});
}

/** An event of the scheduled worker (no request): actor `system`. */
export function systemRecord(services: Services, input: AuditEventInput): AuditRecord {
	return toRecord(input, input.actor ?? SYSTEM_ACTOR, services.now(), {
		ip: null,
		requestId: null,
	});
}
