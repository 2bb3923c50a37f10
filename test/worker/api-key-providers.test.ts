import { eq } from "drizzle-orm";
import { describe, expect, inject, it } from "vitest";
import { oauthProviders } from "../../src/db/schema.ts";
import type { UpstreamRecord, UpstreamState } from "../setup/upstream-types.ts";
import { userWithKey } from "./fixtures.ts";
import { type CallInit, call, expectError } from "./helpers.ts";
import { account, db, storeCredential } from "./lease-helpers.ts";
import { connect, providerBody, putProvider } from "./oauth-helpers.ts";

/**
 * API-key-only providers (docs/api.md, "OAuth connect"; docs/proxy.md, "Targets"): a provider
 * registered with an API target and no OAuth fields, whose api_key credentials the proxy
 * forwards, and which nothing OAuth will touch. Against the recording upstream
 * (test/setup/upstream.ts), reached over loopback (the suite sets LATCHKEY_PROXY_ALLOW_LOOPBACK).
 */

const UP = inject("upstream").url;

let seq = 0;
const tenant = () =>
	`k${Date.now().toString(36)}${(seq++).toString(36)}${Math.random().toString(36).slice(2, 6)}`;

const upstream = async (t: string) =>
	(await (await fetch(`${UP}/_control/${t}`)).json()) as UpstreamState;

const proxy = (key: string, credentialId: string, path: string, init: CallInit = {}) =>
	call(`/v1/proxy/${credentialId}${path}`, { token: key, ...init });

interface ProviderJson {
	kind: string;
	id: string;
	name: string;
	auth_types: string[];
	configured: boolean;
	managed: boolean;
	builtin: boolean;
	api_base_url: string;
	api_key_placement: unknown;
	[field: string]: unknown;
}

/** Registers `ak-<tenant>` with only an API target: a tenant of the upstream. */
async function apiKeyProvider(t: string, extra: Record<string, unknown> = {}) {
	const id = `ak-${t}`;
	const res = await putProvider(id, { name: `API ${t}`, api_base_url: `${UP}/t/${t}`, ...extra });
	expect(res.status, await res.clone().text()).toBe(200);
	return { id, json: (await res.json()) as ProviderJson };
}

/** GET /v1/providers, every page, as the caller sees it. */
async function listed(key: string) {
	const all: { id: string; auth_types: string[]; configured: boolean; managed: boolean }[] = [];
	let cursor: string | null = null;
	do {
		const res = await call(`/v1/providers?limit=100${cursor ? `&cursor=${cursor}` : ""}`, {
			token: key,
		});
		expect(res.status).toBe(200);
		const page = (await res.json()) as { data: typeof all; next_cursor: string | null };
		all.push(...page.data);
		cursor = page.next_cursor;
	} while (cursor);
	return all;
}

describe("an API-key-only provider is registered with an API target and nothing OAuth", () => {
	it("answers kind api_key, without endpoints or client, and is listed as API-key only", async () => {
		const t = tenant();
		const placement = { in: "header", name: "X-Api-Key", prefix: "" };
		const { id, json } = await apiKeyProvider(t, { api_key_placement: placement });
		expect(json).toMatchObject({
			kind: "api_key",
			id,
			name: `API ${t}`,
			auth_types: ["api_key"],
			default_scopes: [],
			configured: true,
			managed: false,
			builtin: false,
			api_base_url: `${UP}/t/${t}`,
			api_key_placement: placement,
		});
		for (const field of ["authorize_url", "token_url", "client_id", "client_secret"]) {
			expect(json, field).not.toHaveProperty(field);
		}
		const [row] = await db.select().from(oauthProviders).where(eq(oauthProviders.id, id));
		expect(row).toMatchObject({ clientId: null, ciphertext: null, dataKey: null, keyId: null });

		const { key } = await userWithKey();
		const entry = (await listed(key)).find((p) => p.id === id);
		expect(entry).toEqual({
			id,
			name: `API ${t}`,
			auth_types: ["api_key"],
			default_scopes: [],
			configured: true,
			managed: false,
		});
		// Built-ins keep their OAuth entry.
		expect((await listed(key)).find((p) => p.id === "github")?.auth_types).toEqual(["oauth2"]);
	});

	it("half an OAuth2 provider is a 400 naming what is missing, and nothing is stored", async () => {
		const t = tenant();
		const id = `ak-${t}`;
		const bodies: [Record<string, unknown>, string[]][] = [
			// A client but no endpoints.
			[
				{ name: "x", api_base_url: `${UP}/t/${t}`, client_id: "c", client_secret: "s" },
				["authorize_url", "token_url"],
			],
			// Endpoints but no client.
			[
				{
					name: "x",
					api_base_url: `${UP}/t/${t}`,
					authorize_url: "https://idp.example.com/authorize",
					token_url: "https://idp.example.com/token",
				},
				["client_id", "client_secret"],
			],
			// One stray OAuth field.
			[
				{ name: "x", api_base_url: `${UP}/t/${t}`, pkce: false },
				["authorize_url", "token_url", "client_id", "client_secret"],
			],
			// No OAuth field, and no API target either.
			[{ name: "x" }, ["api_base_url"]],
			[{ name: "x", api_base_url: null }, ["api_base_url"]],
		];
		for (const [body, fields] of bodies) {
			const res = await putProvider(id, body);
			const error = await expectError(res, 400, "invalid_request");
			expect(error.error.hint).toBeTruthy();
			const named = (error.error.detail as { field: string }[]).map((d) => d.field);
			expect(named, JSON.stringify(body)).toEqual(fields);
		}
		// A built-in is always OAuth2: its client stays required.
		const builtin = await putProvider("notion", { api_base_url: "https://api.example.com" });
		const error = await expectError(builtin, 400, "invalid_request");
		expect((error.error.detail as { field: string }[]).map((d) => d.field)).toEqual([
			"client_id",
			"client_secret",
		]);
		expect(await db.select().from(oauthProviders).where(eq(oauthProviders.id, id))).toEqual([]);
	});

	it("its api_base_url follows the proxy's rule", async () => {
		const res = await putProvider(`ak-${tenant()}`, {
			name: "x",
			api_base_url: "https://169.254.169.254/latest",
		});
		const error = await expectError(res, 400, "invalid_request");
		expect((error.error.detail as { field: string }[])[0]?.field).toBe("api_base_url");
	});

	it("the table itself refuses half a provider", async () => {
		const base = { name: "x", builtin: false, apiBaseUrl: "https://api.example.com" };
		// A client without its sealed secret, and endpoints without a client.
		await expect(
			db.insert(oauthProviders).values({ ...base, id: `ak-${tenant()}`, clientId: "c" }),
		).rejects.toThrow();
		await expect(
			db.insert(oauthProviders).values({
				...base,
				id: `ak-${tenant()}`,
				authorizeUrl: "https://idp.example.com/a",
				tokenUrl: "https://idp.example.com/t",
			}),
		).rejects.toThrow();
		// No endpoints, no client, and no API target.
		await expect(
			db.insert(oauthProviders).values({ id: `ak-${tenant()}`, name: "x", builtin: false }),
		).rejects.toThrow();
		// A built-in's row always carries its client.
		await expect(
			db.insert(oauthProviders).values({ ...base, id: "slack", builtin: true }),
		).rejects.toThrow();
		// The API-key-only row: no endpoints, no client, an API target.
		const id = `ak-${tenant()}`;
		await db.insert(oauthProviders).values({ ...base, id });
		expect(await db.select().from(oauthProviders).where(eq(oauthProviders.id, id))).toHaveLength(1);
	});
});

describe("the proxy forwards its API keys as it declares", () => {
	it("default placement: Authorization: Bearer <key>, in place of the caller's Latchkey key", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const { id: provider } = await apiKeyProvider(t);
		const secret = `sk-${crypto.randomUUID()}`;
		const id = await storeCredential(key, { provider, type: "api_key", api_key: secret });
		const res = await proxy(key, id, "/echo/v1/chat/completions?stream=false", {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ model: "m" }),
		});
		expect(res.status).toBe(200);
		const { requests } = await upstream(t);
		expect(requests).toHaveLength(1);
		const got = requests[0] as UpstreamRecord;
		expect(got.method).toBe("POST");
		expect(got.path).toBe(`/t/${t}/echo/v1/chat/completions`);
		expect(got.query).toBe("?stream=false");
		expect(got.body).toBe(JSON.stringify({ model: "m" }));
		expect(got.headers.authorization).toBe(`Bearer ${secret}`);
		expect(JSON.stringify(got.headers)).not.toContain(key);
	});

	it("a declared header: the key there, and the caller's Authorization not forwarded", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const { id: provider } = await apiKeyProvider(t, {
			api_key_placement: { in: "header", name: "x-api-key", prefix: "" },
		});
		const secret = `sk-ant-${crypto.randomUUID()}`;
		const id = await storeCredential(key, { provider, type: "api_key", api_key: secret });
		const res = await proxy(key, id, "/echo/v1/messages", {
			headers: { "x-api-key": "callers-own", "anthropic-version": "2023-06-01" },
		});
		expect(res.status).toBe(200);
		const got = (await upstream(t)).requests[0] as UpstreamRecord;
		expect(got.path).toBe(`/t/${t}/echo/v1/messages`);
		expect(got.headers["x-api-key"]).toBe(secret);
		expect(got.headers["anthropic-version"]).toBe("2023-06-01");
		expect(got.headers.authorization).toBeUndefined();
		expect(JSON.stringify(got.headers)).not.toContain(key);
	});

	it("a declared query parameter: the key there, the caller's of that name replaced", async () => {
		const { key } = await userWithKey();
		const t = tenant();
		const { id: provider } = await apiKeyProvider(t, {
			api_key_placement: { in: "query", name: "api_key" },
		});
		const secret = `qk/${crypto.randomUUID()}+=`;
		const id = await storeCredential(key, { provider, type: "api_key", api_key: secret });
		const res = await proxy(key, id, "/echo/search?q=x&api_key=callers-own");
		expect(res.status).toBe(200);
		const got = (await upstream(t)).requests[0] as UpstreamRecord;
		expect(new URLSearchParams(got.query).getAll("api_key")).toEqual([secret]);
		expect(new URLSearchParams(got.query).get("q")).toBe("x");
		expect(got.headers.authorization).toBeUndefined();
		expect(JSON.stringify(got.headers)).not.toContain(key);
	});

	it("another user's credential of it is 404, and nothing is sent", async () => {
		const owner = await userWithKey();
		const other = await userWithKey();
		const t = tenant();
		const { id: provider } = await apiKeyProvider(t);
		const id = await storeCredential(owner.key, { provider, type: "api_key", api_key: "k_own" });
		await expectError(await proxy(other.key, id, "/echo"), 404, "not_found");
		await expectError(await call(`/v1/credentials/${id}`, { token: other.key }), 404, "not_found");
		expect((await upstream(t)).requests).toHaveLength(0);
		// The owner's call goes through.
		expect((await proxy(owner.key, id, "/echo")).status).toBe(200);
		expect((await upstream(t)).requests).toHaveLength(1);
	});
});

describe("nothing OAuth touches it", () => {
	it("the connect flow refuses it with a 400 naming the provider", async () => {
		const { key } = await userWithKey();
		const { id } = await apiKeyProvider(tenant());
		const res = await call(`/v1/oauth/${id}/authorize`, { method: "POST", token: key, json: {} });
		const error = await expectError(res, 400, "invalid_request");
		expect(error.error.message).toContain("API-key only");
		expect(error.error.hint).toContain("api_key");
		expect(error.error.detail).toEqual([
			expect.objectContaining({ field: "provider", location: "path" }),
		]);
	});

	it("an OAuth2 credential cannot name it; an api_key credential can", async () => {
		const { key } = await userWithKey();
		const { id } = await apiKeyProvider(tenant());
		const res = await call("/v1/credentials", {
			method: "POST",
			token: key,
			json: { provider: id, type: "oauth2", access_token: "at-imported" },
		});
		const error = await expectError(res, 400, "invalid_request");
		expect(error.error.detail).toEqual([
			expect.objectContaining({
				field: "provider",
				message: expect.stringContaining("API-key-only"),
			}),
		]);
		await storeCredential(key, { provider: id, type: "api_key", api_key: "k" });
	});

	it("an OAuth2 provider with OAuth2 credentials cannot become API-key only (409); one without can, and back", async () => {
		const t = tenant();
		const id = `ak-${t}`;
		const oauthBody = providerBody({ name: id, api_base_url: `${UP}/t/${t}` });
		expect((await putProvider(id, oauthBody)).status).toBe(200);
		const apiOnly = { name: id, api_base_url: `${UP}/t/${t}` };

		// No credential yet: it may change kind, and change back.
		const converted = await putProvider(id, apiOnly);
		expect(converted.status).toBe(200);
		expect(((await converted.json()) as ProviderJson).kind).toBe("api_key");
		const back = await putProvider(id, oauthBody);
		expect(back.status).toBe(200);
		expect(((await back.json()) as ProviderJson).kind).toBe("oauth2");

		const { key } = await userWithKey();
		await connect(key, account("ak"), {}, id);
		await expectError(await putProvider(id, apiOnly), 409, "conflict");
		const [row] = await db.select().from(oauthProviders).where(eq(oauthProviders.id, id));
		expect(row?.clientId).not.toBeNull();
	});

	it("an OAuth2 credential whose provider is API-key only (as a race between converting and connecting could leave it) can still be deleted: there is nothing to revoke with", async () => {
		const t = tenant();
		const id = `ak-${t}`;
		expect((await putProvider(id, providerBody({ name: id }))).status).toBe(200);
		const { key } = await userWithKey();
		const credentialId = await connect(key, account("ak-race"), {}, id);
		// The state the check-then-convert race can still leave (the conversion checks for OAuth2
		// credentials, then writes), made directly.
		await db
			.update(oauthProviders)
			.set({
				authorizeUrl: null,
				tokenUrl: null,
				revokeUrl: null,
				userinfoUrl: null,
				issuer: null,
				clientId: null,
				ciphertext: null,
				dataKey: null,
				keyId: null,
				apiBaseUrl: `${UP}/t/${t}`,
			})
			.where(eq(oauthProviders.id, id));
		const res = await call(`/v1/credentials/${credentialId}`, { method: "DELETE", token: key });
		expect(res.status).toBe(200);
		expect(await res.json()).toEqual({ deleted: true, revoked: null });
	});
});
