import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
	checksum,
	crc32,
	formatKey,
	generateKey,
	KEY_LENGTH,
	parseKey,
} from "../../src/auth/key-format.ts";
import { BASE62 } from "../../src/crypto/encoding.ts";
import { admin, createKey, createKeyJson, createUser, userWithKey } from "./fixtures.ts";
import { call, clockedApp, expectError, testEnv } from "./helpers.ts";

const base62 = (n: number) => fc.stringMatching(new RegExp(`^[0-9A-Za-z]{${n}}$`));

describe("key format", () => {
	it("CRC-32 matches zlib's check values", () => {
		expect(crc32("123456789")).toBe(0xcbf43926);
		expect(crc32("")).toBe(0);
		expect(crc32("The quick brown fox jumps over the lazy dog")).toBe(0x414fa339);
	});

	it("round-trips any id and secret, and has the documented shape", () => {
		fc.assert(
			fc.property(base62(12), base62(32), (id, secret) => {
				const key = formatKey(id, secret);
				expect(key).toHaveLength(KEY_LENGTH);
				expect(key).toMatch(/^lk_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}$/);
				expect(parseKey(key)).toEqual({ id, secret });
			}),
		);
		const { id, secret, key } = generateKey();
		expect(parseKey(key)).toEqual({ id, secret });
	});

	it("rejects any single-character change", () => {
		fc.assert(
			fc.property(base62(12), base62(32), fc.nat(), fc.nat(60), (id, secret, pos, shift) => {
				const key = formatKey(id, secret);
				const i = 3 + (pos % (key.length - 3));
				if (key[i] === "_") return;
				const c = BASE62[(BASE62.indexOf(key[i] as string) + 1 + shift) % 62] as string;
				const mutated = key.slice(0, i) + c + key.slice(i + 1);
				expect(parseKey(mutated)).toBeNull();
			}),
		);
	});

	it("checksum is CRC-32 in base62, zero-padded to 6", () => {
		const body = "lk_000000000000_00000000000000000000000000000000";
		const n = crc32(body);
		let decoded = 0;
		for (const ch of checksum(body)) decoded = decoded * 62 + BASE62.indexOf(ch);
		expect(decoded).toBe(n);
		expect(checksum(body)).toHaveLength(6);
	});

	it("a malformed key or bad checksum is refused without touching the database", async () => {
		const deadDb = new URL(testEnv.DATABASE_URL);
		deadDb.port = "1";
		const { key } = generateKey();
		const badSum = `${key.slice(0, -1)}${key.endsWith("0") ? "1" : "0"}`;
		for (const token of ["lk_short", badSum, `${key}x`]) {
			const res = await call("/v1/whoami", { token }, { DATABASE_URL: deadDb.toString() });
			const body = await expectError(res, 401, "unauthorized");
			expect(body.error.message).toMatch(/malformed/i);
		}
	});
});

describe("API keys", () => {
	it("creates a key shown once, lists it without the key, and authenticates with it", async () => {
		const { id: userId, key } = await userWithKey();
		const res = await call("/v1/api-keys", { method: "POST", token: key, json: { name: "ci" } });
		expect(res.status).toBe(201);
		expect(res.headers.get("cache-control")).toBe("no-store");
		const created = (await res.json()) as Record<string, unknown>;
		expect(Object.keys(created).sort()).toEqual(
			["created_at", "expires_at", "id", "key", "kind", "last_used_at", "name", "scopes"].sort(),
		);
		expect(created.last_used_at).toBeNull();
		expect(created.scopes).toEqual([
			"credentials:read",
			"credentials:write",
			"credentials:use",
			"keys:write",
		]);
		const who = await call("/v1/whoami", { token: created.key as string });
		expect(await who.json()).toMatchObject({ user_id: userId, method: "api_key" });

		const list = await call("/v1/api-keys", { token: key });
		const text = await list.text();
		expect(text).not.toContain(created.key as string);
		expect(text).not.toContain(key);
		expect((JSON.parse(text) as { data: { id: string }[] }).data.map((k) => k.id)).toContain(
			created.id,
		);
	});

	it("records last_used_at off the response path", async () => {
		const { key } = await userWithKey();
		const id = key.slice(3, 15);
		const created = await call(`/v1/whoami`, { token: key });
		expect(created.status).toBe(200);
		// call() waits for the execution context, so the deferred write has landed by now.
		const list = (await (await call("/v1/api-keys", { token: key })).json()) as {
			data: { id: string; last_used_at: string | null }[];
		};
		const used = list.data.find((k) => k.id === id)?.last_used_at;
		expect(used).toMatch(/^\d{4}-\d\d-\d\dT/);
		expect(Date.now() - Date.parse(used as string)).toBeLessThan(60_000);
	});

	describe("scopes", () => {
		it("a key gets its creator's scopes by default and never more", async () => {
			const { key } = await userWithKey(["keys:write", "credentials:read"]);
			const dflt = await call("/v1/api-keys", { method: "POST", token: key, json: { name: "d" } });
			expect(((await dflt.json()) as { scopes: string[] }).scopes.sort()).toEqual([
				"credentials:read",
				"keys:write",
			]);
			const subset = await call("/v1/api-keys", {
				method: "POST",
				token: key,
				json: { name: "s", scopes: ["credentials:read"] },
			});
			expect(subset.status).toBe(201);
			const wider = await call("/v1/api-keys", {
				method: "POST",
				token: key,
				json: { name: "w", scopes: ["credentials:write"] },
			});
			await expectError(wider, 403, "insufficient_scope");
			const adminScope = await call("/v1/api-keys", {
				method: "POST",
				token: key,
				json: { name: "a", scopes: ["admin"] },
			});
			await expectError(adminScope, 403, "insufficient_scope");
		});

		it("the admin route cannot grant admin either", async () => {
			const user = await createUser();
			const res = await call(`/v1/admin/users/${user.id}/api-keys`, {
				method: "POST",
				token: admin(),
				json: { name: "x", scopes: ["admin"] },
			});
			await expectError(res, 403, "insufficient_scope");
		});

		it("every scope boundary is enforced", async () => {
			const user = await createUser();
			const noKeys = await createKey(user.id, [
				"credentials:read",
				"credentials:write",
				"credentials:use",
			]);
			await expectError(await call("/v1/api-keys", { token: noKeys }), 403, "insufficient_scope");
			await expectError(
				await call("/v1/api-keys", { method: "POST", token: noKeys, json: { name: "x" } }),
				403,
				"insufficient_scope",
			);
			await expectError(
				await call("/v1/admin/users", { token: noKeys }),
				403,
				"insufficient_scope",
			);
			const keysOnly = await createKey(user.id, ["keys:write"]);
			expect((await call("/v1/api-keys", { token: keysOnly })).status).toBe(200);
			await expectError(
				await call(`/v1/admin/users/${user.id}/api-keys`, {
					method: "POST",
					token: keysOnly,
					json: { name: "x" },
				}),
				403,
				"insufficient_scope",
			);
			// A route naming no scope needs only a principal.
			const readOnly = await createKey(user.id, ["credentials:read"]);
			expect((await call("/v1/whoami", { token: readOnly })).status).toBe(200);
		});

		it("an unknown scope name is 400 invalid_request naming the field, on both creation routes", async () => {
			const { id, key } = await userWithKey();
			const own = await expectError(
				await call("/v1/api-keys", {
					method: "POST",
					token: key,
					json: { name: "x", scopes: ["credentials:read", "root"] },
				}),
				400,
				"invalid_request",
			);
			expect(own.error.detail).toEqual([
				expect.objectContaining({ field: "scopes.1", location: "json" }),
			]);
			const viaAdmin = await expectError(
				await call(`/v1/admin/users/${id}/api-keys`, {
					method: "POST",
					token: admin(),
					json: { name: "x", scopes: ["Credentials:Read"] },
				}),
				400,
				"invalid_request",
			);
			expect(viaAdmin.error.detail).toEqual([
				expect.objectContaining({ field: "scopes.0", location: "json" }),
			]);
		});

		it("a roll never grants what the caller lacks: 403 and nothing changes", async () => {
			const user = await createUser();
			const full = await createKeyJson(user.id, { name: "full" });
			const keysOnly = await createKey(user.id, ["keys:write"]);
			const listBefore = (await (await call("/v1/api-keys", { token: keysOnly })).json()) as {
				data: { id: string }[];
			};
			const res = await call(`/v1/api-keys/${full.id}/roll`, {
				method: "POST",
				token: keysOnly,
				json: { grace_seconds: 0 },
			});
			const body = await expectError(res, 403, "insufficient_scope");
			expect(JSON.stringify(body)).not.toContain("lk_");
			// The rolled key still works, and no key was created.
			expect((await call("/v1/whoami", { token: full.key })).status).toBe(200);
			const listAfter = (await (await call("/v1/api-keys", { token: keysOnly })).json()) as {
				data: { id: string }[];
			};
			expect(listAfter.data.map((k) => k.id).sort()).toEqual(
				listBefore.data.map((k) => k.id).sort(),
			);
			// A caller holding every scope of the key may roll it.
			const rolled = await call(`/v1/api-keys/${full.id}/roll`, {
				method: "POST",
				token: full.key,
				json: { grace_seconds: 60 },
			});
			expect(rolled.status).toBe(201);
			expect(((await rolled.json()) as { scopes: string[] }).scopes.sort()).toEqual(
				[...full.scopes].sort(),
			);
			// A narrower key may roll a sibling within its own scopes.
			const narrow = await createKeyJson(user.id, { scopes: ["keys:write"] });
			const ok = await call(`/v1/api-keys/${narrow.id}/roll`, { method: "POST", token: keysOnly });
			expect(ok.status).toBe(201);
		});
	});

	it("expires at expires_at", async () => {
		const clock = clockedApp();
		const user = await createUser();
		const expires = new Date(clock.now().getTime() + 3600_000).toISOString();
		const { key } = await createKeyJson(user.id, { expires_at: expires });
		expect((await clock.call("/v1/whoami", { token: key })).status).toBe(200);
		clock.advance(3601);
		const body = await expectError(
			await clock.call("/v1/whoami", { token: key }),
			401,
			"unauthorized",
		);
		expect(body.error.message).toMatch(/expired/);
		const past = await call(`/v1/admin/users/${user.id}/api-keys`, {
			method: "POST",
			token: admin(),
			json: { name: "p", expires_at: "2001-01-01T00:00:00Z" },
		});
		await expectError(past, 400, "invalid_request");
	});

	it("revocation is effective at once", async () => {
		const { key } = await userWithKey();
		const other = (await (
			await call("/v1/api-keys", { method: "POST", token: key, json: { name: "victim" } })
		).json()) as {
			id: string;
			key: string;
		};
		expect((await call("/v1/whoami", { token: other.key })).status).toBe(200); // now cached
		const del = await call(`/v1/api-keys/${other.id}`, { method: "DELETE", token: key });
		expect(del.status).toBe(204);
		await expectError(await call("/v1/whoami", { token: other.key }), 401, "unauthorized");
		await expectError(
			await call(`/v1/api-keys/${other.id}`, { method: "DELETE", token: key }),
			404,
			"not_found",
		);
	});

	it("roll keeps the old key for the grace period only", async () => {
		const clock = clockedApp();
		const { key } = await userWithKey();
		const victim = (await (
			await clock.call("/v1/api-keys", {
				method: "POST",
				token: key,
				json: { name: "rollme", scopes: ["keys:write"] },
			})
		).json()) as {
			id: string;
			key: string;
		};
		const rolled = await clock.call(`/v1/api-keys/${victim.id}/roll`, {
			method: "POST",
			token: key,
			json: { grace_seconds: 60 },
		});
		expect(rolled.status).toBe(201);
		const fresh = (await rolled.json()) as {
			id: string;
			key: string;
			name: string;
			scopes: string[];
		};
		expect(fresh.name).toBe("rollme");
		expect(fresh.scopes).toEqual(["keys:write"]);
		expect(fresh.key).not.toBe(victim.key);
		expect((await clock.call("/v1/whoami", { token: victim.key })).status).toBe(200);
		expect((await clock.call("/v1/whoami", { token: fresh.key })).status).toBe(200);
		clock.advance(61);
		await expectError(await clock.call("/v1/whoami", { token: victim.key }), 401, "unauthorized");
		expect((await clock.call("/v1/whoami", { token: fresh.key })).status).toBe(200);

		// No grace: the old key dies with the roll.
		const again = await clock.call(`/v1/api-keys/${fresh.id}/roll`, { method: "POST", token: key });
		expect(again.status).toBe(201);
		await expectError(await clock.call("/v1/whoami", { token: fresh.key }), 401, "unauthorized");
		const bad = await clock.call(`/v1/api-keys/${fresh.id}/roll`, {
			method: "POST",
			token: key,
			json: { grace_seconds: 86_401 },
		});
		await expectError(bad, 400, "invalid_request");
	});

	it("every response that shows a key is no-store: creation, admin creation, roll", async () => {
		const { id, key } = await userWithKey();
		const created = await call("/v1/api-keys", {
			method: "POST",
			token: key,
			json: { name: "shown once" },
		});
		expect(created.status).toBe(201);
		const { id: createdId } = (await created.clone().json()) as { id: string };
		const responses: [string, Response][] = [
			["POST /v1/api-keys", created],
			[
				"POST /v1/admin/users/{id}/api-keys",
				await call(`/v1/admin/users/${id}/api-keys`, {
					method: "POST",
					token: admin(),
					json: { name: "by admin" },
				}),
			],
			[
				"POST /v1/api-keys/{id}/roll",
				await call(`/v1/api-keys/${createdId}/roll`, {
					method: "POST",
					token: key,
					json: { grace_seconds: 60 },
				}),
			],
		];
		for (const [label, res] of responses) {
			expect(res.status, label).toBe(201);
			expect(((await res.json()) as { key: string }).key, label).toMatch(/^lk_/);
			expect(res.headers.get("cache-control"), label).toBe("no-store");
		}
	});

	it("another user's key is a 404 for every key route", async () => {
		const a = await userWithKey();
		const b = await userWithKey();
		const bKey = (await (
			await call("/v1/api-keys", { method: "POST", token: b.key, json: { name: "b" } })
		).json()) as { id: string };
		await expectError(
			await call(`/v1/api-keys/${bKey.id}`, { method: "DELETE", token: a.key }),
			404,
			"not_found",
		);
		await expectError(
			await call(`/v1/api-keys/${bKey.id}/roll`, { method: "POST", token: a.key }),
			404,
			"not_found",
		);
		const list = (await (await call("/v1/api-keys", { token: a.key })).json()) as {
			data: { id: string }[];
		};
		expect(list.data.map((k) => k.id)).not.toContain(bKey.id);
	});

	it("the admin token has no keys of its own", async () => {
		await expectError(await call("/v1/api-keys", { token: admin() }), 403, "forbidden");
		await expectError(
			await call("/v1/admin/users/usr_nope/api-keys", {
				method: "POST",
				token: admin(),
				json: { name: "x" },
			}),
			404,
			"not_found",
		);
	});

	it("bad bodies are 400 in the error shape", async () => {
		const { key, id } = await userWithKey();
		const cases: [string, string, unknown][] = [
			["/v1/api-keys", "POST", {}],
			["/v1/api-keys", "POST", { name: "" }],
			["/v1/api-keys", "POST", { name: "x", scopes: "keys:write" }],
			["/v1/api-keys", "POST", { name: "x", expires_at: "tomorrow" }],
			["/v1/api-keys", "POST", { name: "x", extra: 1 }],
			["/v1/api-keys/whatever/roll", "POST", { grace_seconds: -1 }],
			["/v1/api-keys/whatever/roll", "POST", { grace_seconds: "10" }],
		];
		for (const [path, method, json] of cases) {
			await expectError(await call(path, { method, token: key, json }), 400, "invalid_request");
		}
		const unknown = await expectError(
			await call("/v1/api-keys", {
				method: "POST",
				token: key,
				json: { name: "x", extra: 1, more: 2 },
			}),
			400,
			"invalid_request",
		);
		expect((unknown.error.detail as { field: string }[]).map((d) => d.field).sort()).toEqual([
			"extra",
			"more",
		]);
		await expectError(await call("/v1/api-keys?limit=0", { token: key }), 400, "invalid_request");
		await expectError(
			await call("/v1/api-keys?cursor=%%%", { token: key }),
			400,
			"invalid_request",
		);
		const adminCases: [string, unknown][] = [
			[`/v1/admin/users/${id}/api-keys`, { scopes: [] }],
			[`/v1/admin/users/${id}/api-keys/import`, { key: "not-legacy", name: "x" }],
			[`/v1/admin/users/${id}/api-keys/import`, { key: "sk-abcdefghijklmnopqrstu" }],
		];
		for (const [path, json] of adminCases) {
			await expectError(
				await call(path, { method: "POST", token: admin(), json }),
				400,
				"invalid_request",
			);
		}
		const raw = await call("/v1/api-keys", {
			method: "POST",
			token: key,
			body: "name=x",
			headers: { "content-type": "text/plain" },
		});
		expect(raw.status).toBe(400);
	});
});

describe("legacy keys", () => {
	const legacy = () => `sk-${crypto.randomUUID().replaceAll("-", "")}`;

	it("imported keys work with a Deprecation header, and are stored hashed", async () => {
		const user = await createUser();
		const key = legacy();
		const res = await call(`/v1/admin/users/${user.id}/api-keys/import`, {
			method: "POST",
			token: admin(),
			json: { key, name: "old" },
		});
		expect(res.status).toBe(201);
		const imported = (await res.json()) as { created_at: string; kind: string };
		expect(JSON.stringify(imported)).not.toContain(key);
		expect(imported.kind).toBe("legacy");
		const who = await call("/v1/whoami", { token: key });
		expect(who.status).toBe(200);
		expect(await who.json()).toMatchObject({ user_id: user.id, method: "legacy_key" });
		expect(who.headers.get("deprecation")).toBe(
			`@${Math.floor(Date.parse(imported.created_at) / 1000)}`,
		);
		expect(who.headers.get("sunset")).toBeNull();
		const dup = await call(`/v1/admin/users/${user.id}/api-keys/import`, {
			method: "POST",
			token: admin(),
			json: { key, name: "again" },
		});
		await expectError(dup, 409, "conflict");
	});

	it("carry Sunset before LEGACY_KEYS_SUNSET and fail with legacy_key_expired after it", async () => {
		const user = await createUser();
		const key = legacy();
		await call(`/v1/admin/users/${user.id}/api-keys/import`, {
			method: "POST",
			token: admin(),
			json: { key, name: "old" },
		});
		const sunset = new Date(Date.now() + 86_400_000);
		const before = await call(
			"/v1/whoami",
			{ token: key },
			{ LEGACY_KEYS_SUNSET: sunset.toISOString() },
		);
		expect(before.status).toBe(200);
		expect(before.headers.get("sunset")).toBe(sunset.toUTCString());
		const after = await call(
			"/v1/whoami",
			{ token: key },
			{ LEGACY_KEYS_SUNSET: new Date(Date.now() - 1000).toISOString() },
		);
		await expectError(after, 401, "legacy_key_expired");
		const exchangeAfter = await call(
			"/v1/auth/token",
			{ method: "POST", json: { grant_type: "api_key", api_key: key } },
			{ LEGACY_KEYS_SUNSET: new Date(Date.now() - 1000).toISOString() },
		);
		await expectError(exchangeAfter, 401, "legacy_key_expired");
		const exchangeBefore = await call(
			"/v1/auth/token",
			{ method: "POST", json: { grant_type: "api_key", api_key: key } },
			{ LEGACY_KEYS_SUNSET: sunset.toISOString() },
		);
		expect(exchangeBefore.status).toBe(200);
		expect(after.headers.get("www-authenticate")).toBe("Bearer");
		await expectError(await call("/v1/whoami", { token: legacy() }), 401, "unauthorized");
	});
});
