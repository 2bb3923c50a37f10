import type { Config } from "../config.ts";
import type { CredentialRow } from "../db/schema.ts";
import type { Services } from "../services.ts";
import {
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
const MAX_PAGES = 20;

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
interface Inbox {
	inbox_id: string;
}

type Method = "GET" | "POST" | "DELETE";

/** A thin client: one method per call, failures as ManagedProviderError without any body. */
class AgentMailApi {
	constructor(
		private readonly base: string,
		private readonly key: string,
	) {}

	/** The parsed body, or null on 404 when `allow404`. */
	async call<T>(method: Method, path: string, body?: unknown, allow404 = false): Promise<T | null> {
		// Ids are public; the query (a page token) is left out.
		const what = `${method} ${path.split("?")[0]}`;
		let res: Response;
		try {
			res = await fetch(`${this.base}${path}`, {
				method,
				headers: {
					authorization: `Bearer ${this.key}`,
					accept: "application/json",
					...(body === undefined ? {} : { "content-type": "application/json" }),
				},
				body: body === undefined ? undefined : JSON.stringify(body),
				signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
				// The organization key must not follow a redirect to another host.
				redirect: "manual",
			});
		} catch {
			throw new ManagedProviderError(`AgentMail could not be reached (${what}).`);
		}
		if (res.status === 404 && allow404) {
			await res.body?.cancel();
			return null;
		}
		if (!res.ok) {
			await res.body?.cancel();
			// 429 and 5xx pass; so may 401/403 once the operator fixes the key. A 4xx about the
			// request itself will fail the same way every time.
			const transient = res.status >= 500 || [401, 403, 408, 429].includes(res.status);
			throw new ManagedProviderError(
				`AgentMail answered ${res.status} to ${what}.`,
				!transient,
				res.status,
			);
		}
		try {
			const text = await res.text();
			return (text ? JSON.parse(text) : {}) as T;
		} catch {
			throw new ManagedProviderError(`AgentMail sent an unreadable answer to ${what}.`);
		}
	}

	/** Every item of a paginated list (bounded, so a broken cursor cannot loop forever). */
	async all<T>(path: string, field: string): Promise<T[] | null> {
		const out: T[] = [];
		let token: string | undefined;
		for (let page = 0; page < MAX_PAGES; page++) {
			const query = token ? `?page_token=${encodeURIComponent(token)}` : "";
			const body = await this.call<Record<string, unknown>>(
				"GET",
				`${path}${query}`,
				undefined,
				true,
			);
			if (body === null) return null;
			const items = body[field];
			if (Array.isArray(items)) out.push(...(items as T[]));
			token = typeof body.next_page_token === "string" ? body.next_page_token : undefined;
			if (!token) return out;
		}
		throw new ManagedProviderError(`AgentMail listed more than ${MAX_PAGES} pages of ${field}.`);
	}
}

const podPath = (podId: string) => `/v0/pods/${encodeURIComponent(podId)}`;

function api(config: Config): AgentMailApi {
	if (!config.AGENTMAIL_API_KEY) {
		throw new ManagedProviderError("AgentMail is not configured (AGENTMAIL_API_KEY is unset).");
	}
	return new AgentMailApi(config.AGENTMAIL_BASE_URL, config.AGENTMAIL_API_KEY);
}

function expectString(value: unknown, what: string): string {
	if (typeof value !== "string" || value === "") {
		throw new ManagedProviderError(`AgentMail's answer lacks ${what}.`, true);
	}
	return value;
}

/** Deletes the keys of a pod that `match`. */
async function deleteKeys(
	am: AgentMailApi,
	podId: string,
	match: (key: ApiKeyMeta) => boolean,
): Promise<void> {
	const keys = (await am.all<ApiKeyMeta>(`${podPath(podId)}/api-keys`, "api_keys")) ?? [];
	for (const key of keys.filter(match)) {
		await am.call(
			"DELETE",
			`${podPath(podId)}/api-keys/${encodeURIComponent(key.api_key_id)}`,
			undefined,
			true,
		);
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
	): Promise<DeprovisionOutcome> {
		const am = api(services.config);
		const clientId = agentmailClientId(user.id);
		const fromCredential = credential?.metadata.pod_id;
		let podId =
			resources.pod_id ?? (typeof fromCredential === "string" ? fromCredential : undefined);
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
		await deleteKeys(am, podId, () => true);
		const inboxes = (await am.all<Inbox>(`${podPath(podId)}/inboxes`, "inboxes")) ?? [];
		for (const inbox of inboxes) {
			await am.call(
				"DELETE",
				`${podPath(podId)}/inboxes/${encodeURIComponent(inbox.inbox_id)}`,
				undefined,
				true,
			);
		}
		await am.call("DELETE", podPath(podId), undefined, true);
		return { status: "deleted" };
	},
};
