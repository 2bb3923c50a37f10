/**
 * The audit log (docs/audit.md). Capabilities record events through this module; it sits below
 * them all (it imports no capability), and src/app.ts installs its middleware and routes.
 *
 * For the authenticated proxy: `recordProxyCall(c, …)` records one `proxy.call` event per
 * forwarded request, written after the response like every other event.
 */
export type {
	AuditAction,
	AuditActor,
	AuditDetail,
	AuditEventInput,
	AuditTargetType,
} from "./events.ts";
export { SYSTEM_ACTOR } from "./events.ts";
export {
	actorOf,
	auditRefusals,
	auditTrail,
	recordAudit,
	recordProxyCall,
	systemRecord,
	writeAfterResponse,
} from "./record.ts";
export { type AuditRouteHooks, registerAuditRoutes } from "./routes.ts";
export { drainPendingAudit, pruneAudit, writeAuditRecords } from "./store.ts";
export { verifyAudit } from "./verify.ts";
