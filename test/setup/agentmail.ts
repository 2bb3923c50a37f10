import type { IncomingMessage, ServerResponse } from "node:http";
import {
	type FailRule,
	governed,
	listen,
	newTenant,
	readBody,
	release,
	rid,
	send,
	type Tenant,
} from "./fake-http.ts";

/**
 * A stand-in for AgentMail's HTTP API (v0), the part Latchkey uses, with AgentMail's paths and
 * shapes (https://docs.agentmail.to, API reference "Pods" and "Pods › API Keys"):
 *   POST   /v0/pods                              {name?, client_id?} → 200 Pod; a client_id seen
 *                                                before returns the pod made then (idempotency)
 *   GET    /v0/pods/{pod_id}                     → Pod | 404 {name, message}
 *   DELETE /v0/pods/{pod_id}                     → 200 {} (409 while the pod has inboxes)
 *   GET    /v0/pods/{pod_id}/api-keys            → {count, limit, api_keys: [...], next_page_token?}
 *   POST   /v0/pods/{pod_id}/api-keys            {name} → {api_key_id, api_key, prefix, name, pod_id, created_at}
 *   DELETE /v0/pods/{pod_id}/api-keys/{id}       → 200 {}
 *   GET    /v0/pods/{pod_id}/inboxes             → {count, limit, inboxes: [...], next_page_token?}
 *   POST   /v0/pods/{pod_id}/inboxes             {username?} → Inbox (what a user's agent does)
 *   DELETE /v0/pods/{pod_id}/inboxes/{inbox_id}  → 200 {}
 * Lists come two items a page (`limit`, at most 100, overrides), so callers must follow
 * next_page_token. Like AgentMail's, a page token is an opaque cursor (after the last item of
 * the page), not an offset: deleting items while paging neither skips nor repeats any.
 *
 * Every bearer token that is not a pod key the fake minted is an organization of its own: a
 * test picks a fresh org key and has a private AgentMail (no reset, no cross-test leaks). A pod
 * key works only inside its pod.
 *
 * Control endpoints (no auth; the org key URL-encoded in the path), used by the helpers in
 * test/setup/managed-control.ts:
 *   GET  /_control/orgs/{org}          → {pods, api_keys (with secrets), inboxes, calls, held}
 *                                       (`held`: requests a "hang" rule is holding now)
 *   POST /_control/orgs/{org}/rules    {rules: FailRule[]} (see fake-http.ts) → 204
 *   DELETE /_control/orgs/{org}/rules  → {cleared}: drops the rules not yet used up
 *   POST /_control/orgs/{org}/release  → {released}: lets held ("hang") requests go on
 *   POST /_control/orgs/{org}/pods     {client_id, name?} → Pod, made directly (e.g. someone
 *                                       else's pod, for ownership checks)
 *   POST /_control/orgs/{org}/inboxes  {pod_id, count} → {created}: many inboxes in a pod at
 *                                       once (a pod hundreds of agents wrote to)
 */

interface Pod {
	pod_id: string;
	name: string | null;
	client_id: string | null;
	created_at: string;
	updated_at: string;
}
interface ApiKey {
	api_key_id: string;
	api_key: string;
	prefix: string;
	name: string;
	pod_id: string;
	created_at: string;
}
interface Inbox {
	inbox_id: string;
	pod_id: string;
	username: string;
	created_at: string;
}

interface Org extends Tenant {
	pods: Map<string, Pod>;
	keys: Map<string, ApiKey>;
	inboxes: Map<string, Inbox>;
}

const notFound = { status: 404, body: { name: "NotFoundError", message: "Resource not found" } };

export async function startAgentMail(): Promise<{ url: string; close(): Promise<void> }> {
	const orgs = new Map<string, Org>();
	const podKeys = new Map<string, { org: string; podId: string }>();
	const org = (key: string): Org => {
		let o = orgs.get(key);
		if (!o) {
			o = { ...newTenant(), pods: new Map(), keys: new Map(), inboxes: new Map() };
			orgs.set(key, o);
		}
		return o;
	};
	const now = () => new Date().toISOString();
	const createPod = (o: Org, body: { name?: string; client_id?: string }) => {
		const existing = body.client_id
			? [...o.pods.values()].find((p) => p.client_id === body.client_id)
			: undefined;
		if (existing) return existing;
		const pod: Pod = {
			pod_id: rid("pod_"),
			name: body.name ?? null,
			client_id: body.client_id ?? null,
			created_at: now(),
			updated_at: now(),
		};
		o.pods.set(pod.pod_id, pod);
		stamp(pod.pod_id);
		return pod;
	};
	// Creation order of every item, for cursors that survive deletions.
	const seqOf = new Map<string, number>();
	let seq = 0;
	const stamp = (id: string) => seqOf.set(id, ++seq);
	const page = <T extends { api_key_id?: string; inbox_id?: string; pod_id: string }>(
		items: T[],
		field: string,
		url: URL,
	) => {
		const limit = Math.min(100, Math.max(1, Number(url.searchParams.get("limit") ?? 2)));
		const token = url.searchParams.get("page_token");
		const after = token ? Number(Buffer.from(token, "base64url").toString()) : 0;
		const idOf = (i: T) => i.api_key_id ?? i.inbox_id ?? i.pod_id;
		const rest = items
			.map((i) => ({ i, n: seqOf.get(idOf(i)) ?? 0 }))
			.filter((x) => x.n > after)
			.sort((a, b) => a.n - b.n);
		const slice = rest.slice(0, limit).map((x) => x.i);
		const last = rest[limit - 1];
		const next =
			rest.length > limit && last ? Buffer.from(String(last.n)).toString("base64url") : undefined;
		return {
			count: slice.length,
			limit,
			[field]: slice,
			...(next ? { next_page_token: next } : {}),
		};
	};
	const keyMeta = ({ api_key: _secret, ...meta }: ApiKey) => meta;
	const makeInbox = (o: Org, podId: string, username: string): Inbox => {
		const inbox: Inbox = {
			inbox_id: `${username}@agentmail.to`,
			pod_id: podId,
			username,
			created_at: now(),
		};
		o.inboxes.set(inbox.inbox_id, inbox);
		stamp(inbox.inbox_id);
		return inbox;
	};

	async function control(req: IncomingMessage, res: ServerResponse, parts: string[]) {
		const [, , encoded, action] = parts;
		const o = org(decodeURIComponent(encoded ?? ""));
		if (req.method === "GET" && action === undefined) {
			send(res, 200, {
				pods: [...o.pods.values()],
				api_keys: [...o.keys.values()],
				inboxes: [...o.inboxes.values()],
				calls: o.calls,
				held: o.hung.length,
			});
		} else if (req.method === "POST" && action === "rules") {
			const { rules } = JSON.parse(await readBody(req)) as { rules: FailRule[] };
			o.rules.push(...rules);
			send(res, 204);
		} else if (req.method === "DELETE" && action === "rules") {
			send(res, 200, { cleared: o.rules.splice(0).length });
		} else if (req.method === "POST" && action === "release") {
			send(res, 200, { released: release(o) });
		} else if (req.method === "POST" && action === "pods") {
			send(res, 200, createPod(o, JSON.parse(await readBody(req))));
		} else if (req.method === "POST" && action === "inboxes") {
			const { pod_id, count } = JSON.parse(await readBody(req)) as {
				pod_id: string;
				count: number;
			};
			for (let n = 0; n < count; n++) makeInbox(o, pod_id, rid("bulk", 6).toLowerCase());
			send(res, 200, { created: count });
		} else send(res, 404, { name: "NotFoundError", message: "no such control" });
	}

	return listen(async (req, res) => {
		const url = new URL(req.url ?? "/", "http://fake");
		const parts = url.pathname.split("/").filter(Boolean);
		if (parts[0] === "_control" && parts[1] === "orgs") return control(req, res, parts);
		const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
		if (!bearer) {
			send(res, 401, { name: "UnauthorizedError", message: "Missing API key" });
			return;
		}
		const scoped = podKeys.get(bearer);
		const orgKey = scoped?.org ?? bearer;
		const o = org(orgKey);
		const raw = req.method === "POST" ? await readBody(req) : "";
		await governed(o, req, res, url.pathname, async () => {
			const body = raw ? (JSON.parse(raw) as Record<string, string>) : {};
			if (parts[0] !== "v0" || parts[1] !== "pods") return notFound;
			const [, , podId, sub, subId] = parts;
			if (scoped && podId !== scoped.podId) {
				return { status: 403, body: { name: "ForbiddenError", message: "Key is pod-scoped" } };
			}
			if (podId === undefined) {
				if (req.method === "POST") return { status: 200, body: createPod(o, body) };
				if (req.method === "GET")
					return { status: 200, body: page([...o.pods.values()], "pods", url) };
				return notFound;
			}
			const pod = o.pods.get(podId);
			if (!pod) return notFound;
			if (sub === undefined) {
				if (req.method === "GET") return { status: 200, body: pod };
				if (req.method === "DELETE") {
					if ([...o.inboxes.values()].some((i) => i.pod_id === podId)) {
						return { status: 409, body: { name: "ConflictError", message: "Pod has inboxes" } };
					}
					o.pods.delete(podId);
					for (const [id, k] of o.keys) if (k.pod_id === podId) o.keys.delete(id);
					return { status: 200, body: {} };
				}
				return notFound;
			}
			if (sub === "api-keys") {
				const inPod = [...o.keys.values()].filter((k) => k.pod_id === podId);
				if (subId === undefined && req.method === "GET")
					return { status: 200, body: page(inPod.map(keyMeta), "api_keys", url) };
				if (subId === undefined && req.method === "POST") {
					const key: ApiKey = {
						api_key_id: rid("ak_"),
						api_key: rid("am_pod_", 24),
						prefix: "am_pod",
						name: body.name ?? "",
						pod_id: podId,
						created_at: now(),
					};
					o.keys.set(key.api_key_id, key);
					stamp(key.api_key_id);
					podKeys.set(key.api_key, { org: orgKey, podId });
					return { status: 200, body: key, extra: { api_key_id: key.api_key_id } };
				}
				const key = subId ? o.keys.get(subId) : undefined;
				if (subId && req.method === "DELETE") {
					if (!key || key.pod_id !== podId) return notFound;
					o.keys.delete(subId);
					podKeys.delete(key.api_key);
					return { status: 200, body: {} };
				}
				return notFound;
			}
			if (sub === "inboxes") {
				const inPod = [...o.inboxes.values()].filter((i) => i.pod_id === podId);
				if (subId === undefined && req.method === "GET")
					return { status: 200, body: page(inPod, "inboxes", url) };
				if (subId === undefined && req.method === "POST") {
					const username = body.username ?? rid("agent", 4).toLowerCase();
					return { status: 200, body: makeInbox(o, podId, username) };
				}
				if (subId && req.method === "DELETE") {
					const inbox = o.inboxes.get(decodeURIComponent(subId));
					if (!inbox || inbox.pod_id !== podId) return notFound;
					o.inboxes.delete(inbox.inbox_id);
					return { status: 200, body: {} };
				}
			}
			return notFound;
		});
	});
}
