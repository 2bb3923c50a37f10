import type { Config } from "../config.ts";
import type { CredentialRow } from "../db/schema.ts";
import { describeOutboundFailure, type OutboundResponse, outboundFetch } from "../http/outbound.ts";
import type { Services } from "../services.ts";
import {
	CallBudget,
	DEPROVISION_STEP_CALLS,
	type DeprovisionOutcome,
	type ManagedProvider,
	ManagedProviderError,
	type ManagedUser,
	type ProvisionContext,
	type Provisioned,
} from "./provider.ts";

/**
 * AgentMail (https://docs.agentmail.to, API v0): one pod per user, and a pod-scoped API key as
 * the user's credential. The shapes below follow AgentMail's API reference:
 * - POST /v0/pods `{name?, client_id?}` → Pod `{pod_id, name, client_id, created_at, updated_at}`.
 *   AgentMail's "Idempotent Requests" guide: a create with a `client_id` already seen returns
 *   200 with the original resource instead of a duplicate.
 * - GET/DELETE /v0/pods/{pod_id}.
 * - POST /v0/pods/{pod_id}/api-keys `{name}` → `{api_key_id, api_key, prefix, name, pod_id,
 *   created_at}`; the secret `api_key` is shown in this response only. API keys take no
 *   `client_id` (the guide says so), so this create is not idempotent.
 * - GET /v0/pods/{pod_id}/api-keys → `{count, api_keys: [{api_key_id, name, pod_id, …}],
 *   limit?, next_page_token?}`; DELETE /v0/pods/{pod_id}/api-keys/{api_key_id}.
 * - GET /v0/pods/{pod_id}/inboxes → `{count, inboxes: [{inbox_id, pod_id, …}], next_page_token?}`;
 *   DELETE /v0/pods/{pod_id}/inboxes/{inbox_id}.
 * - Errors: `{name, message}` with a 4xx/5xx status; Latchkey never passes the body on.
 *
 * Because a key's secret cannot be read back, a key whose secret was lost (a crash between its
 * creation and the credential's storage) is useless: every key this provider creates carries
 * a name derived from the client id, and a retry deletes such keys before creating a fresh one.
 */

export const AGENTMAIL_ID = "agentmail";

/** Each call is bounded so that a provisioning fits well inside its lock's lease. */
const CALL_TIMEOUT_MS = 8_000;
/** Pages followed while looking for keys by name during a provisioning. */
const MAX_PAGES = 20;
/** Items asked for per listing page (AgentMail's `limit`). */
const PAGE_LIMIT = 100;

/** The pod's idempotency key: derived from the user id, the same on every retry. */
export const agentmailClientId = (userId: string) => `latchkey-${userId}`;
/** The name of every key made for a pod, so that keys whose secret was lost can be found. */
export const agentmailKeyName = (clientId: string) => `latchkey:${clientId}`;

interface Pod {
	pod_id: string;
	client_id?: string | null;
}
interface ApiKeyMeta {
	api_key_id: string;
	name?: string | null;
	pod_id?: string | null;
}
interface CreatedKey extends ApiKeyMeta {
	api_key: string;
}
interface Page {
	items: Record<string, unknown>[];
	next: string | undefined;
}

type Method = "GET" | "POST" | "DELETE";

/** Thrown when a step's call budget is spent; never leaves the deprovisioning. */
class BudgetSpent extends Error {}

/** A thin client: one method per call, failures as ManagedProviderError without any body. */
class AgentMailApi {
	constructor(
		private readonly config: Config,
		private readonly key: string,
		private readonly budget: CallBudget | null = null,
	) {}

	/** The parsed body, or null on 404 when `allow404`. */
	async call<T>(method: Method, path: string, body?: unknown, allow404 = false): Promise<T | null> {
		if (this.budget && !this.budget.take()) throw new BudgetSpent();
		// Ids are public; the query (a page token) is left out.
		const what = `${method} ${path.split("?")[0]}`;
		let res: OutboundResponse;
		try {
			res = await outboundFetch(this.config, `${this.config.AGENTMAIL_BASE_URL}${path}`, {
				method,
				headers: {
					authorization: `Bearer ${this.key}`,
					accept: "application/json",
					...(body === undefined ? {} : { "content-type": "application/json" }),
				},
				body: body === undefined ? undefined : JSON.stringify(body),
				timeoutMs: CALL_TIMEOUT_MS,
			});
		} catch (err) {
			const described = describeOutboundFailure(err, "AgentMail", what);
			if (described === null) throw err;
			throw new ManagedProviderError(described);
		}
		if (res.status === 404 && allow404) return null;
		if (!res.ok) {
			// 429 and 5xx pass; so may 401/403 once the operator fixes the key. A 4xx about the
			// request itself will fail the same way every time.
			const transient = res.status >= 500 || [401, 403, 408, 429].includes(res.status);
			throw new ManagedProviderError(
				`AgentMail answered ${res.status}, an error status, to ${what}.`,
				!transient,
				res.status,
			);
		}
		try {
			return (res.text ? JSON.parse(res.text) : {}) as T;
		} catch {
			throw new ManagedProviderError(`AgentMail sent an unreadable answer to ${what}.`);
		}
	}

	/** One page of a list; null when the list's parent is gone (404). */
	async page(
		path: string,
		field: string,
		token?: string,
		limit = PAGE_LIMIT,
	): Promise<Page | null> {
		const query = new URLSearchParams({ limit: String(Math.max(1, limit)) });
		if (token) query.set("page_token", token);
		const body = await this.call<Record<string, unknown>>(
			"GET",
			`${path}?${query}`,
			undefined,
			true,
		);
		if (body === null) return null;
		const items = Array.isArray(body[field]) ? (body[field] as Record<string, unknown>[]) : [];
		const next =
			typeof body.next_page_token === "string" && body.next_page_token !== ""
				? body.next_page_token
				: undefined;
		return { items, next };
	}
}

const podPath = (podId: string) => `/v0/pods/${encodeURIComponent(podId)}`;

function api(config: Config, budget: CallBudget | null = null): AgentMailApi {
	if (!config.AGENTMAIL_API_KEY) {
		throw new ManagedProviderError("AgentMail is not configured (AGENTMAIL_API_KEY is unset).");
	}
	return new AgentMailApi(config, config.AGENTMAIL_API_KEY, budget);
}

function expectString(value: unknown, what: string): string {
	if (typeof value !== "string" || value === "") {
		throw new ManagedProviderError(`AgentMail's answer lacks ${what}.`, true);
	}
	return value;
}

/** Deletes the keys of a pod that `match`, following page tokens (bounded). */
async function deleteKeys(
	am: AgentMailApi,
	podId: string,
	match: (key: ApiKeyMeta) => boolean,
): Promise<void> {
	const found: ApiKeyMeta[] = [];
	let token: string | undefined;
	for (let page = 0; ; page++) {
		if (page >= MAX_PAGES) {
			throw new ManagedProviderError(`AgentMail listed more than ${MAX_PAGES} pages of api_keys.`);
		}
		const listed = await am.page(`${podPath(podId)}/api-keys`, "api_keys", token);
		if (listed === null) break;
		found.push(...(listed.items as unknown as ApiKeyMeta[]).filter(match));
		token = listed.next;
		if (!token) break;
	}
	for (const key of found) {
		await am.call(
			"DELETE",
			`${podPath(podId)}/api-keys/${encodeURIComponent(key.api_key_id)}`,
			undefined,
			true,
		);
	}
}

/**
 * Deletes everything listed under `path`, within the budget. Each pass follows the page tokens
 * to the end of the list, then starts over, until a pass lists nothing: deleting while paging
 * may shift what a token points at, and starting over from what is left is correct however
 * the API pages. Nothing is kept between steps: what was deleted is gone, so the next step
 * simply starts again. Counts each deletion in `progress` as it happens, so a step cut short
 * by its budget still knows what it did.
 */
async function deleteAll(
	am: AgentMailApi,
	path: string,
	field: string,
	idOf: (item: Record<string, unknown>) => string,
	budget: CallBudget,
	progress: { deleted: number },
): Promise<void> {
	for (;;) {
		let listed = 0;
		let deletedThisPass = 0;
		let token: string | undefined;
		do {
			// Leaves room for at least one deletion after the listing.
			const page = await am.page(path, field, token, Math.min(PAGE_LIMIT, budget.left - 1));
			if (page === null) return;
			listed += page.items.length;
			for (const item of page.items) {
				const gone = await am.call(
					"DELETE",
					`${path}/${encodeURIComponent(idOf(item))}`,
					undefined,
					true,
				);
				if (gone !== null) {
					progress.deleted += 1;
					deletedThisPass += 1;
				}
			}
			token = page.next;
		} while (token);
		// A pass that deleted nothing of what it listed (all already gone) would list it again.
		if (listed === 0 || deletedThisPass === 0) return;
	}
}

export const agentmailProvider: ManagedProvider = {
	id: AGENTMAIL_ID,
	name: "AgentMail",
	clientIdFor: agentmailClientId,

	available: (services) => Boolean(services.config.AGENTMAIL_API_KEY),

	async provision(
		services: Services,
		user: ManagedUser,
		ctx: ProvisionContext,
	): Promise<Provisioned> {
		const am = api(services.config);
		// Idempotent by client_id: a crashed attempt's pod comes back rather than a second one.
		const pod = await am.call<Pod>("POST", "/v0/pods", {
			name: `Latchkey ${user.id}`,
			client_id: ctx.clientId,
		});
		const podId = expectString(pod?.pod_id, "pod_id");
		if (pod?.client_id && pod.client_id !== ctx.clientId) {
			throw new ManagedProviderError("AgentMail returned a pod of another client id.", true);
		}
		if (ctx.resources.pod_id !== podId) await ctx.record({ pod_id: podId });

		// Any key of ours already in the pod was made by an attempt that never stored it (the
		// service calls provision only while the user has no such credential): its secret is
		// gone, so it is deleted rather than left working and unknown.
		const keyName = agentmailKeyName(ctx.clientId);
		await deleteKeys(
			am,
			podId,
			(k) => k.name === keyName || k.api_key_id === ctx.resources.api_key_id,
		);

		const created = await am.call<CreatedKey>("POST", `${podPath(podId)}/api-keys`, {
			name: keyName,
		});
		const keyId = expectString(created?.api_key_id, "api_key_id");
		// Recorded before the secret goes anywhere, so a crash from here on leaves a known key.
		await ctx.record({ api_key_id: keyId });
		return {
			title: "AgentMail",
			apiKey: expectString(created?.api_key, "api_key"),
			resources: { pod_id: podId, api_key_id: keyId },
		};
	},

	async deprovision(
		services: Services,
		user: { id: string },
		resources: Record<string, string>,
		credential: CredentialRow | null,
		budget: CallBudget = new CallBudget(DEPROVISION_STEP_CALLS),
	): Promise<DeprovisionOutcome> {
		const am = api(services.config, budget);
		const clientId = agentmailClientId(user.id);
		const fromCredential = credential?.metadata.pod_id;
		let podId =
			resources.pod_id ?? (typeof fromCredential === "string" ? fromCredential : undefined);
		const progress = { deleted: 0 };
		try {
			if (!podId) {
				// Nothing recorded: a crash may have come between the pod's creation and its record.
				// Creating by client_id returns that pod if it exists, so nothing stays behind.
				const pod = await am.call<Pod>("POST", "/v0/pods", {
					name: `Latchkey ${user.id}`,
					client_id: clientId,
				});
				podId = expectString(pod?.pod_id, "pod_id");
			}
			const pod = await am.call<Pod>("GET", podPath(podId), undefined, true);
			if (pod === null) return { status: "deleted" };
			if (pod.client_id !== clientId) {
				return {
					status: "ownership_mismatch",
					detail: `AgentMail pod ${podId} belongs to client id ${pod.client_id ?? "(none)"}, not ${clientId}.`,
				};
			}
			// The pod is this user's, so is everything in it: keys the user's key made, and inboxes.
			const base = podPath(podId);
			await deleteAll(
				am,
				`${base}/api-keys`,
				"api_keys",
				(k) => String(k.api_key_id),
				budget,
				progress,
			);
			await deleteAll(
				am,
				`${base}/inboxes`,
				"inboxes",
				(i) => String(i.inbox_id),
				budget,
				progress,
			);
			await am.call("DELETE", base, undefined, true);
			return { status: "deleted" };
		} catch (err) {
			if (!(err instanceof BudgetSpent)) throw err;
			if (progress.deleted === 0) {
				throw new ManagedProviderError(
					`AgentMail deprovisioning made no progress within ${budget.limit} calls.`,
				);
			}
			return {
				status: "partial",
				detail: `deleted ${progress.deleted} AgentMail keys and inboxes of pod ${podId}; more remain`,
			};
		}
	},
};
