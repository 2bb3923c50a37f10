import { call, testEnv } from "./helpers.ts";

export const admin = () => testEnv.LATCHKEY_ADMIN_TOKEN;

let counter = 0;
const runId = Math.random().toString(36).slice(2, 8);

/** A fresh user via the admin route; emails are unique per test run. */
export async function createUser(
	opts: { email?: string; name?: string } = {},
): Promise<{ id: string; email: string }> {
	counter += 1;
	const email =
		opts.email ?? `user-${runId}-${counter}-${Math.random().toString(36).slice(2, 8)}@example.com`;
	const res = await call("/v1/admin/users", {
		method: "POST",
		token: admin(),
		json: { email, name: opts.name },
	});
	if (res.status !== 201) throw new Error(`createUser: ${res.status} ${await res.text()}`);
	const body = (await res.json()) as { id: string; email: string };
	return { id: body.id, email: body.email };
}

export interface KeyOptions {
	scopes?: string[];
	name?: string;
	expires_at?: string;
}

/** Issues an API key for the user through the admin route; returns the plaintext key. */
export async function createKey(userId: string, opts: KeyOptions | string[] = {}): Promise<string> {
	const o = Array.isArray(opts) ? { scopes: opts } : opts;
	const res = await call(`/v1/admin/users/${userId}/api-keys`, {
		method: "POST",
		token: admin(),
		json: { name: o.name ?? "test key", scopes: o.scopes, expires_at: o.expires_at },
	});
	if (res.status !== 201) throw new Error(`createKey: ${res.status} ${await res.text()}`);
	return ((await res.json()) as { key: string }).key;
}

export async function createKeyJson(
	userId: string,
	opts: KeyOptions = {},
): Promise<{ id: string; key: string; scopes: string[] }> {
	const res = await call(`/v1/admin/users/${userId}/api-keys`, {
		method: "POST",
		token: admin(),
		json: { name: opts.name ?? "test key", scopes: opts.scopes, expires_at: opts.expires_at },
	});
	if (res.status !== 201) throw new Error(`createKeyJson: ${res.status} ${await res.text()}`);
	return (await res.json()) as { id: string; key: string; scopes: string[] };
}

/** A user with one key carrying every user scope. */
export async function userWithKey(
	scopes?: string[],
): Promise<{ id: string; email: string; key: string }> {
	const user = await createUser();
	return { ...user, key: await createKey(user.id, scopes ? { scopes } : {}) };
}

export interface TokenPairJson {
	access_token: string;
	refresh_token: string;
	expires_in: number;
	refresh_expires_in: number;
	scope: string;
	token_type: string;
}

export async function exchange(apiKey: string): Promise<TokenPairJson> {
	const res = await call("/v1/auth/token", {
		method: "POST",
		json: { grant_type: "api_key", api_key: apiKey },
	});
	if (res.status !== 200) throw new Error(`exchange: ${res.status} ${await res.text()}`);
	return (await res.json()) as TokenPairJson;
}

/** The fields of the credential object of API.md, sorted. */
export const CREDENTIAL_KEYS = [
	"access_token_expires_at",
	"created_at",
	"host",
	"id",
	"last_used_at",
	"managed",
	"metadata",
	"provider",
	"scopes",
	"status",
	"system",
	"title",
	"type",
	"updated_at",
	"username",
	"version",
].sort();
