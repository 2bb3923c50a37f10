import { createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
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
 * A platform backend behind Latchkey's generic HTTP provisioner (docs/managed.md, "Generic
 * provisioner"), verifying every request the way a real one should:
 *   POST   /t/{tenant}/provision    → 200 {api_key, resources: {account_id}, title}; the same
 *                                     answer again for a client_id it has seen (idempotency)
 *   DELETE /t/{tenant}/deprovision  → 204; 404 when the account is gone; 409 when the account
 *                                     belongs to another client_id
 * A request whose `Latchkey-Signature` (t=<unix>,v2=<hex HMAC-SHA256(secret,
 * "<t>\n<METHOD>\n<path?query>\n<Idempotency-Key>\n<body>")>) does not verify for the method,
 * path and Idempotency-Key it arrived with, whose timestamp is more than 300 s off, or whose
 * Idempotency-Key is not the body's client_id is answered 401 and logged with
 * `signature_ok: false`. Users not on the
 * tenant's allow list are answered 403, so a provisioner switched on by one test does not hand
 * credentials to other tests' users.
 *
 * Control endpoints (used by test/setup/managed-control.ts):
 *   PUT  /_control/tenants/{t}          {secret, users: [user ids]} → 204 (adds users)
 *   GET  /_control/tenants/{t}          → {accounts, calls}
 *   POST /_control/tenants/{t}/rules    {rules: FailRule[]} → 204
 *   POST /_control/tenants/{t}/release  → {released}
 *   POST /_control/tenants/{t}/accounts {client_id} → account made directly (someone else's)
 */

interface Account {
	account_id: string;
	client_id: string;
	api_key: string;
	user_id: string;
	deleted: boolean;
}

interface ProvisionerTenant extends Tenant {
	secret: string;
	users: Set<string>;
	accounts: Map<string, Account>;
}

const SKEW_SECONDS = 300;

function verify(secret: string, req: IncomingMessage, body: string): boolean {
	const header = String(req.headers["latchkey-signature"] ?? "");
	const match = /^t=(\d+),v2=([0-9a-f]{64})$/.exec(header);
	if (!match) return false;
	const [, t, mac] = match as unknown as [string, string, string];
	if (Math.abs(Date.now() / 1000 - Number(t)) > SKEW_SECONDS) return false;
	// What the request arrived with, not what its body claims: a replay elsewhere fails here.
	const signed = [
		t,
		req.method ?? "",
		req.url ?? "",
		String(req.headers["idempotency-key"] ?? ""),
		body,
	].join("\n");
	const expected = createHmac("sha256", secret).update(signed).digest();
	return timingSafeEqual(expected, Buffer.from(mac, "hex"));
}

export async function startProvisioner(): Promise<{ url: string; close(): Promise<void> }> {
	const tenants = new Map<string, ProvisionerTenant>();
	const tenant = (name: string) => {
		let t = tenants.get(name);
		if (!t) {
			t = { ...newTenant(), secret: "", users: new Set(), accounts: new Map() };
			tenants.set(name, t);
		}
		return t;
	};
	const makeAccount = (t: ProvisionerTenant, clientId: string, userId: string): Account => {
		const account: Account = {
			account_id: rid("acct_"),
			client_id: clientId,
			api_key: rid("gp_live_", 24),
			user_id: userId,
			deleted: false,
		};
		t.accounts.set(account.account_id, account);
		return account;
	};

	return listen(async (req, res) => {
		const url = new URL(req.url ?? "/", "http://fake");
		const parts = url.pathname.split("/").filter(Boolean);
		const body = await readBody(req);
		if (parts[0] === "_control" && parts[1] === "tenants" && parts[2]) {
			const t = tenant(decodeURIComponent(parts[2]));
			const action = parts[3];
			if (req.method === "PUT" && !action) {
				const { secret, users } = JSON.parse(body) as { secret: string; users: string[] };
				t.secret = secret;
				for (const u of users) t.users.add(u);
				send(res, 204);
			} else if (req.method === "GET" && !action) {
				send(res, 200, { accounts: [...t.accounts.values()], calls: t.calls });
			} else if (req.method === "POST" && action === "rules") {
				t.rules.push(...(JSON.parse(body) as { rules: FailRule[] }).rules);
				send(res, 204);
			} else if (req.method === "POST" && action === "release") {
				send(res, 200, { released: release(t) });
			} else if (req.method === "POST" && action === "accounts") {
				const { client_id } = JSON.parse(body) as { client_id: string };
				send(res, 200, makeAccount(t, client_id, "someone-else"));
			} else send(res, 404, { error: "no such control" });
			return;
		}
		if (parts[0] !== "t" || !parts[1]) {
			send(res, 404, { error: "not found" });
			return;
		}
		const t = tenant(decodeURIComponent(parts[1]));
		const op = parts[2];
		await governed(t, req, res, url.pathname, async () => {
			const signed = t.secret !== "" && verify(t.secret, req, body);
			let payload: {
				event?: string;
				client_id?: string;
				user?: { id?: string };
				resources?: Record<string, string>;
			} = {};
			try {
				payload = JSON.parse(body);
			} catch {
				return { status: 400, body: { error: "bad json" } };
			}
			const idempotencyOk = req.headers["idempotency-key"] === payload.client_id;
			const extra = { signature_ok: signed, idempotency_key: req.headers["idempotency-key"] };
			if (!signed || !idempotencyOk)
				return { status: 401, body: { error: "bad signature" }, extra };
			const userId = payload.user?.id ?? "";
			const clientId = payload.client_id ?? "";
			if (op === "provision" && req.method === "POST" && payload.event === "provision") {
				if (!t.users.has(userId)) return { status: 403, body: { error: "unknown user" }, extra };
				const account =
					[...t.accounts.values()].find((a) => a.client_id === clientId && !a.deleted) ??
					makeAccount(t, clientId, userId);
				return {
					status: 200,
					body: {
						api_key: account.api_key,
						resources: { account_id: account.account_id },
						title: "Fake platform",
					},
					extra: { ...extra, account_id: account.account_id },
				};
			}
			if (op === "deprovision" && req.method === "DELETE" && payload.event === "deprovision") {
				const account = t.accounts.get(payload.resources?.account_id ?? "");
				if (!account || account.deleted) return { status: 404, extra };
				if (account.client_id !== clientId)
					return { status: 409, body: { error: "not yours" }, extra };
				account.deleted = true;
				return { status: 204, extra };
			}
			return { status: 404, body: { error: "not found" }, extra };
		});
	});
}
