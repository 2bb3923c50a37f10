import { describe, expect, it } from "vitest";
import { admin, createUser } from "./fixtures.ts";
import { call } from "./helpers.ts";

const legacy = () => `sk-${crypto.randomUUID().replaceAll("-", "")}`;

async function importKey(): Promise<{ key: string; importedAt: string }> {
	const user = await createUser();
	const key = legacy();
	const res = await call(`/v1/admin/users/${user.id}/api-keys/import`, {
		method: "POST",
		token: admin(),
		json: { key, name: "old" },
	});
	expect(res.status).toBe(201);
	return { key, importedAt: ((await res.json()) as { created_at: string }).created_at };
}

const exchange = (apiKey: string, env?: Record<string, string>) =>
	call("/v1/auth/token", { method: "POST", json: { grant_type: "api_key", api_key: apiKey } }, env);

describe("token exchange with a legacy key", () => {
	it("carries Deprecation with the key's import time, and no Sunset when none is set", async () => {
		const { key, importedAt } = await importKey();
		const res = await exchange(key);
		expect(res.status).toBe(200);
		expect(res.headers.get("deprecation")).toBe(`@${Math.floor(Date.parse(importedAt) / 1000)}`);
		expect(res.headers.get("sunset")).toBeNull();
		expect(res.headers.get("cache-control")).toBe("no-store");
		// The same headers as a request authenticated by the key.
		const who = await call("/v1/whoami", { token: key });
		expect(who.headers.get("deprecation")).toBe(res.headers.get("deprecation"));
	});

	it("carries Sunset as an HTTP-date when LEGACY_KEYS_SUNSET is set", async () => {
		const { key } = await importKey();
		const sunset = new Date(Date.now() + 86_400_000);
		const env = { LEGACY_KEYS_SUNSET: sunset.toISOString() };
		const res = await exchange(key, env);
		expect(res.status).toBe(200);
		expect(res.headers.get("sunset")).toBe(sunset.toUTCString());
		const who = await call("/v1/whoami", { token: key }, env);
		expect(who.headers.get("sunset")).toBe(res.headers.get("sunset"));
	});

	it("an lk_ key's exchange carries neither header", async () => {
		const user = await createUser();
		const created = await call(`/v1/admin/users/${user.id}/api-keys`, {
			method: "POST",
			token: admin(),
			json: { name: "new" },
		});
		const { key } = (await created.json()) as { key: string };
		const res = await exchange(key, {
			LEGACY_KEYS_SUNSET: new Date(Date.now() + 86_400_000).toISOString(),
		});
		expect(res.status).toBe(200);
		expect(res.headers.get("deprecation")).toBeNull();
		expect(res.headers.get("sunset")).toBeNull();
	});
});
