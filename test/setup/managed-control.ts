/**
 * Controls of the managed-provider fakes, for worker tests (fetch only, no Node modules).
 *
 * The fakes start in test/setup/global.ts; their roots come through `inject("agentmail")` and
 * `inject("provisioner")` (types in test/env.d.ts).
 *
 * AgentMail (test/setup/agentmail.ts): every bearer key is a private AgentMail organization.
 *   const am = agentmailOrg(inject("agentmail").url);   // a fresh org key
 *   call("/v1/credentials", { token }, am.env);          // AGENTMAIL_API_KEY/_BASE_URL for one call
 *   await am.state();      // {pods, api_keys (with secrets), inboxes, calls: [{method, path, status}]}
 *   await am.fail({ method: "POST", path: "/api-keys$", mode: "drop_after" });
 *   await am.release();    // lets "hang" requests go on
 *   await am.createPod("someone-else");                 // a pod of another client id
 *
 * Generic provisioner (test/setup/provisioner.ts): every tenant is a private backend.
 *   const gp = await provisionerTenant(inject("provisioner").url, [user.id]);
 *   // PUT /v1/admin/managed-providers/{id} with gp.provisionUrl, gp.deprovisionUrl, gp.secret
 *   await gp.state();      // {accounts, calls: [{..., signature_ok, idempotency_key}]}
 *   await gp.allow(userId); await gp.fail(rule); await gp.release();
 *
 * Rules (FailRule in fake-http.ts): {method?, path? (regex on the path), mode, status?, times?}
 * with mode `status` (answer `status`, do nothing), `drop_before` (close without doing
 * anything), `drop_after` (do it, then close without an answer), `hang` (hold until release).
 */

export interface FailRule {
	method?: string;
	path?: string;
	mode: "status" | "drop_before" | "drop_after" | "hang";
	status?: number;
	times?: number;
}

export interface FakeCall {
	method: string;
	path: string;
	status: number | "dropped";
	[extra: string]: unknown;
}

export interface AgentMailState {
	pods: { pod_id: string; client_id: string | null; name: string | null }[];
	api_keys: { api_key_id: string; api_key: string; name: string; pod_id: string }[];
	inboxes: { inbox_id: string; pod_id: string }[];
	calls: FakeCall[];
	/** Requests a "hang" rule is holding now. */
	held: number;
}

const randomToken = (n = 12) =>
	Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) =>
		b.toString(16).padStart(2, "0"),
	).join("");

async function ok(res: Response): Promise<Response> {
	if (!res.ok) throw new Error(`fake control: ${res.status} ${await res.text()}`);
	return res;
}

const postJson = (url: string, body: unknown, method = "POST") =>
	fetch(url, {
		method,
		headers: { "content-type": "application/json" },
		body: JSON.stringify(body),
	}).then(ok);

export function agentmailOrg(baseUrl: string, orgKey = `am_org_${randomToken()}`) {
	const control = `${baseUrl}/_control/orgs/${encodeURIComponent(orgKey)}`;
	return {
		orgKey,
		baseUrl,
		/** Bindings that enable AgentMail for one call: `call(path, init, am.env)`. */
		env: { AGENTMAIL_API_KEY: orgKey, AGENTMAIL_BASE_URL: baseUrl },
		state: async () => (await (await fetch(control).then(ok)).json()) as AgentMailState,
		fail: (...rules: FailRule[]) => postJson(`${control}/rules`, { rules }),
		release: async () =>
			((await (await postJson(`${control}/release`, {})).json()) as { released: number }).released,
		createPod: async (clientId: string) =>
			(await (await postJson(`${control}/pods`, { client_id: clientId })).json()) as {
				pod_id: string;
				client_id: string;
			},
		/** Calls AgentMail as a holder of `key` would (e.g. a user's pod key making an inbox). */
		api: (key: string, method: string, path: string, body?: unknown) =>
			fetch(`${baseUrl}${path}`, {
				method,
				headers: {
					authorization: `Bearer ${key}`,
					...(body === undefined ? {} : { "content-type": "application/json" }),
				},
				body: body === undefined ? undefined : JSON.stringify(body),
			}),
	};
}

export type AgentMailOrg = ReturnType<typeof agentmailOrg>;

export interface ProvisionerState {
	accounts: {
		account_id: string;
		client_id: string;
		api_key: string;
		user_id: string;
		deleted: boolean;
	}[];
	calls: FakeCall[];
}

/** A private tenant of the provisioner fake, with a fresh HMAC secret, allowing `users`. */
export async function provisionerTenant(baseUrl: string, users: string[] = []) {
	const name = `t${randomToken(6)}`;
	const secret = `whsec_${randomToken(24)}`;
	const control = `${baseUrl}/_control/tenants/${name}`;
	const allow = (...ids: string[]) => postJson(control, { secret, users: ids }, "PUT");
	await allow(...users);
	return {
		name,
		secret,
		provisionUrl: `${baseUrl}/t/${name}/provision`,
		deprovisionUrl: `${baseUrl}/t/${name}/deprovision`,
		allow,
		state: async () => (await (await fetch(control).then(ok)).json()) as ProvisionerState,
		fail: (...rules: FailRule[]) => postJson(`${control}/rules`, { rules }),
		release: async () =>
			((await (await postJson(`${control}/release`, {})).json()) as { released: number }).released,
		createAccount: async (clientId: string) =>
			(await (await postJson(`${control}/accounts`, { client_id: clientId })).json()) as {
				account_id: string;
			},
	};
}

export type ProvisionerTenant = Awaited<ReturnType<typeof provisionerTenant>>;
