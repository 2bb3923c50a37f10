import { eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { hostMatches } from "../../src/credentials/secrets.ts";
import { createCredential, openSecret } from "../../src/credentials/service.ts";
import type { Database } from "../../src/db/client.ts";
import { credentials } from "../../src/db/schema.ts";
import { createLogger } from "../../src/log.ts";
import { createServices } from "../../src/services.ts";
import { Timing } from "../../src/timing.ts";
import { admin, CREDENTIAL_KEYS, userWithKey } from "./fixtures.ts";
import { call, expectError, holdTransaction, testDb, testEnv } from "./helpers.ts";

const planted = () => `PLANTED-${crypto.randomUUID()}`;

/** One body per type, each carrying planted secret values the responses must never contain. */
function bodies() {
	const s = { api: planted(), pw: planted(), hdr: planted(), at: planted(), rt: planted() };
	return {
		secrets: Object.values(s),
		api_key: {
			provider: "openai",
			type: "api_key",
			api_key: s.api,
			title: "OpenAI",
			expires_at: "2030-01-01T00:00:00Z",
		},
		user_password: {
			provider: "smtp",
			type: "user_password",
			username: "bot@example.com",
			password: s.pw,
		},
		host_scoped: {
			provider: "internal-api",
			type: "host_scoped",
			host: "*.example.com",
			headers: { "X-Api-Key": s.hdr },
		},
		oauth2: {
			provider: "github",
			type: "oauth2",
			access_token: s.at,
			refresh_token: s.rt,
			scopes: ["repo"],
			access_token_expires_at: "2030-01-01T00:00:00Z",
		},
	} as const;
}

/** Stores a minimal api_key credential with a planted secret; returns its id. */
async function storeApiKey(key: string): Promise<{ id: string }> {
	const res = await call("/v1/credentials", {
		method: "POST",
		token: key,
		json: { provider: "p", type: "api_key", api_key: planted() },
	});
	if (res.status !== 201) throw new Error(`storeApiKey: ${res.status} ${await res.text()}`);
	return (await res.json()) as { id: string };
}

function expectNoSecret(text: string, secrets: readonly string[]) {
	for (const secret of secrets) expect(text).not.toContain(secret);
}

async function db<T>(work: (d: Database) => Promise<T>): Promise<T> {
	const handle = testDb();
	try {
		return await work(handle.db);
	} finally {
		await handle.end();
	}
}

describe("credentials CRUD", () => {
	it("stores every type encrypted and never returns a secret in any metadata response", async () => {
		const { key } = await userWithKey();
		const b = bodies();
		const ids: string[] = [];
		for (const type of ["api_key", "user_password", "host_scoped", "oauth2"] as const) {
			const res = await call("/v1/credentials", { method: "POST", token: key, json: b[type] });
			const text = await res.text();
			expect(res.status, text).toBe(201);
			expectNoSecret(text, b.secrets);
			const cred = JSON.parse(text) as Record<string, unknown>;
			expect(Object.keys(cred).sort()).toEqual(CREDENTIAL_KEYS);
			expect(cred).toMatchObject({ type, status: "active", managed: false, system: false });
			ids.push(cred.id as string);
		}
		const [apiKey, userPassword, hostScoped, oauth] = ids;
		const one = (await (
			await call(`/v1/credentials/${userPassword}`, { token: key })
		).json()) as Record<string, unknown>;
		expect(one).toMatchObject({ username: "bot@example.com", provider: "smtp" });
		const host = (await (
			await call(`/v1/credentials/${hostScoped}`, { token: key })
		).json()) as Record<string, unknown>;
		expect(host.host).toBe("*.example.com");
		const gh = (await (await call(`/v1/credentials/${oauth}`, { token: key })).json()) as Record<
			string,
			unknown
		>;
		expect(gh).toMatchObject({
			scopes: ["repo"],
			access_token_expires_at: "2030-01-01T00:00:00.000Z",
		});

		const list = await call("/v1/credentials", { token: key });
		const listText = await list.text();
		expectNoSecret(listText, b.secrets);
		expect((JSON.parse(listText) as { data: { id: string }[] }).data.map((c) => c.id)).toEqual(
			expect.arrayContaining(ids),
		);
		for (const id of ids)
			expectNoSecret(await (await call(`/v1/credentials/${id}`, { token: key })).text(), b.secrets);

		// At rest: no planted value appears in the row, only ciphertext.
		const rows = await db((d) =>
			d
				.select()
				.from(credentials)
				.where(eq(credentials.id, apiKey as string)),
		);
		expectNoSecret(JSON.stringify(rows), b.secrets);
		expect(rows[0]?.keyId).toBe(testEnv.LATCHKEY_ENCRYPTION_ACTIVE_KEY);
	});

	it("filters by provider and paginates", async () => {
		const { key } = await userWithKey();
		for (let i = 0; i < 5; i++) {
			await call("/v1/credentials", {
				method: "POST",
				token: key,
				json: { provider: i % 2 ? "odd" : "even", type: "api_key", api_key: planted() },
			});
		}
		const even = (await (await call("/v1/credentials?provider=even", { token: key })).json()) as {
			data: { provider: string }[];
		};
		expect(even.data.filter((c) => c.provider === "even")).toHaveLength(3);
		expect(even.data.every((c) => c.provider === "even")).toBe(true);
		const seen: string[] = [];
		let cursor: string | null = null;
		do {
			const page = (await (
				await call(`/v1/credentials?limit=2${cursor ? `&cursor=${cursor}` : ""}`, { token: key })
			).json()) as { data: { id: string; system: boolean }[]; next_cursor: string | null };
			expect(page.data.length).toBeLessThanOrEqual(2);
			seen.push(...page.data.filter((c) => !c.system).map((c) => c.id));
			cursor = page.next_cursor;
		} while (cursor);
		expect(new Set(seen).size).toBe(5);
	});

	it("patches title, metadata and the secret fields of the type, with guards", async () => {
		const { key } = await userWithKey();
		const b = bodies();
		const created = (await (
			await call("/v1/credentials", { method: "POST", token: key, json: b.oauth2 })
		).json()) as { id: string; version?: number };
		const path = `/v1/credentials/${created.id}`;
		const ok = await call(path, {
			method: "PATCH",
			token: key,
			json: { title: "Renamed", metadata: { team: "a" }, scopes: ["repo", "gist"] },
		});
		expect(ok.status).toBe(200);
		expect(await ok.json()).toMatchObject({
			title: "Renamed",
			metadata: { team: "a" },
			scopes: ["repo", "gist"],
		});
		const shrink = await call(path, { method: "PATCH", token: key, json: { scopes: ["gist"] } });
		expect((await expectError(shrink, 400, "invalid_request")).error.message).toContain("repo");
		await expectError(
			await call(path, { method: "PATCH", token: key, json: { type: "api_key" } }),
			400,
			"invalid_request",
		);
		const foreign = await call(path, { method: "PATCH", token: key, json: { password: "x" } });
		expect((await expectError(foreign, 400, "invalid_request")).error.detail).toEqual([
			{ field: "password", location: "json", message: "not a field of oauth2" },
		]);
		const newToken = planted();
		const rotated = await call(path, {
			method: "PATCH",
			token: key,
			json: { access_token: newToken },
		});
		expect(rotated.status).toBe(200);
		expectNoSecret(await rotated.text(), [newToken, ...b.secrets]);
		await expectError(
			await call(path, { method: "PATCH", token: key, json: { bogus: 1 } }),
			400,
			"invalid_request",
		);
	});

	it("concurrent patches all apply: a lost race retries instead of overwriting", async () => {
		const { key } = await userWithKey();
		const created = await storeApiKey(key);
		const path = `/v1/credentials/${created.id}`;
		const secrets = { a: planted(), b: planted(), c: planted() };
		const results = await Promise.all(
			(["a", "b", "c"] as const).map((t) =>
				call(path, { method: "PATCH", token: key, json: { title: `t-${t}`, api_key: secrets[t] } }),
			),
		);
		// Three writers, three attempts each: a writer loses at most once per other writer, so
		// every one of them gets through.
		expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
		const versions = await Promise.all(
			results.map(async (r) => ((await r.json()) as { version: number }).version),
		);
		expect([...versions].sort()).toEqual([2, 3, 4]);
		const row = await db(
			async (d) => (await d.select().from(credentials).where(eq(credentials.id, created.id)))[0],
		);
		// Every write bumped the version exactly once: none was lost or doubled.
		expect(row?.version).toBe(4);
		// The last writer's title and secret landed together.
		const last = row?.title.slice(2) as keyof typeof secrets;
		expect(Object.keys(secrets)).toContain(last);
		const { services: s, dispose } = createServices(
			loadConfig(testEnv),
			createLogger("error"),
			new Timing(),
		);
		try {
			expect(await openSecret(s, row as NonNullable<typeof row>)).toEqual({
				api_key: secrets[last],
			});
		} finally {
			await dispose();
		}
	});

	it("patches proven to overlap all apply, each bumping the version once", async () => {
		const { key } = await userWithKey();
		const created = await storeApiKey(key);
		const path = `/v1/credentials/${created.id}`;
		const titles = ["o-a", "o-b", "o-c"];
		// The row lock holds every writer's guarded UPDATE until all three have read version 1
		// and are waiting to write it: each must lose to the others and retry, not overwrite.
		const holder = await holdTransaction();
		let pending: Promise<Response[]>;
		try {
			await holder.query("select id from credentials where id = $1 for update", [created.id]);
			pending = Promise.all(
				titles.map((title) => call(path, { method: "PATCH", token: key, json: { title } })),
			);
			await holder.waitForBlocked(3);
		} finally {
			await holder.release();
		}
		const results = await pending;
		expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
		const bodies = await Promise.all(
			results.map(async (r) => (await r.json()) as { version: number; title: string }),
		);
		expect(bodies.map((b) => b.version).sort()).toEqual([2, 3, 4]);
		const row = await db(
			async (d) => (await d.select().from(credentials).where(eq(credentials.id, created.id)))[0],
		);
		expect(row?.version).toBe(4);
		// The row holds what the writer that got version 4 wrote.
		expect(row?.title).toBe(bodies.find((b) => b.version === 4)?.title);
	});

	it("a write that loses every one of its three attempts is 409 version_conflict and changes nothing", async () => {
		const { key } = await userWithKey();
		const original = planted();
		const res = await call("/v1/credentials", {
			method: "POST",
			token: key,
			json: { provider: "p", type: "api_key", title: "before", api_key: original },
		});
		expect(res.status).toBe(201);
		const { id } = (await res.json()) as { id: string };
		// A trigger on this row alone discards the guarded UPDATE, exactly what a writer that got
		// in first does to it (no row matches), and counts the attempts.
		const suffix = id.slice(5).toLowerCase();
		const fn = `lk_test_lose_${suffix}`;
		const counter = `lk_test_attempts_${suffix}`;
		const trigger = `lk_test_lose_${suffix}`;
		let response: Response;
		await db((d) => d.execute(sql.raw(`create sequence ${counter}`)));
		try {
			await db((d) =>
				d.execute(
					sql.raw(
						`create function ${fn}() returns trigger language plpgsql as $$ begin perform nextval('${counter}'); return null; end $$`,
					),
				),
			);
			await db((d) =>
				d.execute(
					sql.raw(
						`create trigger ${trigger} before update on credentials for each row when (old.id = '${id}') execute function ${fn}()`,
					),
				),
			);
			response = await call(`/v1/credentials/${id}`, {
				method: "PATCH",
				token: key,
				json: { title: "after", api_key: planted() },
			});
		} finally {
			await db((d) => d.execute(sql.raw(`drop trigger if exists ${trigger} on credentials`)));
			await db((d) => d.execute(sql.raw(`drop function if exists ${fn}()`)));
		}
		const [{ attempts } = { attempts: 0 }] = await db(
			async (d) =>
				(await d.execute(sql.raw(`select last_value::int as attempts from ${counter}`))).rows as {
					attempts: number;
				}[],
		);
		await db((d) => d.execute(sql.raw(`drop sequence ${counter}`)));
		await expectError(response, 409, "version_conflict");
		expect(attempts).toBe(3);
		// Nothing was lost or half-written: the row, its version and its secret are as before.
		const row = await db(
			async (d) => (await d.select().from(credentials).where(eq(credentials.id, id)))[0],
		);
		expect(row).toMatchObject({ title: "before", version: 1 });
		const { services: s, dispose } = createServices(
			loadConfig(testEnv),
			createLogger("error"),
			new Timing(),
		);
		try {
			expect(await openSecret(s, row as NonNullable<typeof row>)).toEqual({ api_key: original });
		} finally {
			await dispose();
		}
		// Once nobody races it, the same change applies.
		const retried = await call(`/v1/credentials/${id}`, {
			method: "PATCH",
			token: key,
			json: { title: "after" },
		});
		expect(retried.status).toBe(200);
		expect(await retried.json()).toMatchObject({ title: "after", version: 2 });
	});

	it("deletes own credentials; another user's are 404 everywhere", async () => {
		const a = await userWithKey();
		const b = await userWithKey();
		const cred = await storeApiKey(a.key);
		const path = `/v1/credentials/${cred.id}`;
		await expectError(await call(path, { token: b.key }), 404, "not_found");
		await expectError(
			await call(path, { method: "PATCH", token: b.key, json: { title: "x" } }),
			404,
			"not_found",
		);
		await expectError(await call(path, { method: "DELETE", token: b.key }), 404, "not_found");
		const listB = (await (await call("/v1/credentials", { token: b.key })).json()) as {
			data: { id: string }[];
		};
		expect(listB.data.map((c) => c.id)).not.toContain(cred.id);

		const del = await call(path, { method: "DELETE", token: a.key });
		expect(del.status).toBe(200);
		expect(await del.json()).toEqual({ deleted: true, revoked: null });
		await expectError(await call(path, { token: a.key }), 404, "not_found");
		await expectError(await call(path, { method: "DELETE", token: a.key }), 404, "not_found");
	});

	it("enforces scopes", async () => {
		const { key: readOnly } = await userWithKey(["credentials:read"]);
		await expectError(
			await call("/v1/credentials", {
				method: "POST",
				token: readOnly,
				json: { provider: "p", type: "api_key", api_key: "x" },
			}),
			403,
			"insufficient_scope",
		);
		expect((await call("/v1/credentials", { token: readOnly })).status).toBe(200);
		const { key: writeOnly } = await userWithKey(["credentials:write"]);
		await expectError(
			await call("/v1/credentials", { token: writeOnly }),
			403,
			"insufficient_scope",
		);
		await expectError(await call("/v1/credentials", { token: admin() }), 403, "forbidden");
	});

	it("refuses bad bodies with 400 and stores nothing", async () => {
		const { key } = await userWithKey();
		const bad: unknown[] = [
			{},
			{ provider: "p" },
			{ provider: "P!", type: "api_key", api_key: "x" },
			{ provider: "p", type: "nope", api_key: "x" },
			{ provider: "p", type: "api_key" },
			{ provider: "p", type: "api_key", api_key: "" },
			{ provider: "p", type: "api_key", api_key: "x", password: "y" },
			{ provider: "p", type: "user_password", username: "u" },
			{ provider: "p", type: "host_scoped", host: "not a host", headers: { a: "b" } },
			{ provider: "p", type: "host_scoped", host: "example.com", headers: {} },
			{
				provider: "p",
				type: "host_scoped",
				host: "example.com",
				headers: { "X-A": "line\r\nInjected: 1" },
			},
			{ provider: "p", type: "api_key", api_key: "x", expires_at: "soon" },
			{ provider: "p", type: "api_key", api_key: "x", metadata: { big: "x".repeat(9000) } },
			{ provider: "not-registered", type: "oauth2", access_token: "x" },
		];
		for (const json of bad) {
			await expectError(
				await call("/v1/credentials", { method: "POST", token: key, json }),
				400,
				"invalid_request",
			);
		}
		const list = (await (await call("/v1/credentials", { token: key })).json()) as {
			data: { system: boolean }[];
		};
		expect(list.data.filter((c) => !c.system)).toHaveLength(0);
		await expectError(
			await call("/v1/credentials?limit=500", { token: key }),
			400,
			"invalid_request",
		);
		await expectError(
			await call("/v1/credentials?provider=UPPER", { token: key }),
			400,
			"invalid_request",
		);
	});
});

describe("host_scoped host patterns", () => {
	it("*.example.com matches example.com and its subdomains, nothing else", () => {
		expect(hostMatches("*.example.com", "example.com")).toBe(true);
		expect(hostMatches("*.example.com", "api.example.com")).toBe(true);
		expect(hostMatches("*.example.com", "a.b.EXAMPLE.com")).toBe(true);
		expect(hostMatches("*.example.com", "badexample.com")).toBe(false);
		expect(hostMatches("*.example.com", "example.com.evil.net")).toBe(false);
		expect(hostMatches("api.example.com", "api.example.com")).toBe(true);
		expect(hostMatches("api.example.com", "example.com")).toBe(false);
		expect(hostMatches("api.example.com", "x.api.example.com")).toBe(false);
	});
});

describe("system credentials", () => {
	it("are shown to every user with system: true, never copied, and read-only", async () => {
		const secret = planted();
		const res = await call("/v1/admin/system-credentials", {
			method: "POST",
			token: admin(),
			json: { provider: "serpapi", type: "api_key", api_key: secret, title: "Shared SerpAPI" },
		});
		expect(res.status).toBe(201);
		const sys = (await res.json()) as { id: string; system: boolean };
		expect(sys.system).toBe(true);
		const a = await userWithKey();
		const b = await userWithKey();
		for (const u of [a, b]) {
			const list = await call("/v1/credentials", { token: u.key });
			const text = await list.text();
			expectNoSecret(text, [secret]);
			expect((JSON.parse(text) as { data: { id: string }[] }).data.map((c) => c.id)).toContain(
				sys.id,
			);
			expect((await call(`/v1/credentials/${sys.id}`, { token: u.key })).status).toBe(200);
			await expectError(
				await call(`/v1/credentials/${sys.id}`, {
					method: "PATCH",
					token: u.key,
					json: { title: "mine" },
				}),
				403,
				"credential_read_only",
			);
			await expectError(
				await call(`/v1/credentials/${sys.id}`, { method: "DELETE", token: u.key }),
				403,
				"credential_read_only",
			);
		}
		const copies = await db((d) =>
			d.select().from(credentials).where(eq(credentials.provider, "serpapi")),
		);
		expect(copies.filter((c) => c.id === sys.id || c.title === "Shared SerpAPI")).toHaveLength(1);
	});

	it("need the admin scope", async () => {
		const { key } = await userWithKey();
		await expectError(
			await call("/v1/admin/system-credentials", {
				method: "POST",
				token: key,
				json: { provider: "x", type: "api_key", api_key: "y" },
			}),
			403,
			"insufficient_scope",
		);
	});
});

describe("read-only and broken rows", () => {
	function services() {
		return createServices(loadConfig(testEnv), createLogger("error"), new Timing());
	}

	it("managed credentials are visible but read-only to their user", async () => {
		const { id, key } = await userWithKey();
		const { services: s, dispose } = services();
		const row = await createCredential(s, {
			userId: id,
			provider: "agentmail",
			type: "api_key",
			title: "AgentMail",
			secret: { api_key: planted() },
			managed: true,
			metadata: { pod_id: "pod_1" },
		});
		await dispose();
		const got = (await (await call(`/v1/credentials/${row.id}`, { token: key })).json()) as Record<
			string,
			unknown
		>;
		expect(got).toMatchObject({ managed: true, metadata: { pod_id: "pod_1" } });
		await expectError(
			await call(`/v1/credentials/${row.id}`, {
				method: "PATCH",
				token: key,
				json: { title: "x" },
			}),
			403,
			"credential_read_only",
		);
		await expectError(
			await call(`/v1/credentials/${row.id}`, { method: "DELETE", token: key }),
			403,
			"credential_read_only",
		);
	});

	it("a row that fails to decrypt is a named 500, never an empty secret, and loses no data", async () => {
		const { key } = await userWithKey();
		const hostScoped = (host: string) =>
			call("/v1/credentials", {
				method: "POST",
				token: key,
				json: { provider: "p", type: "host_scoped", host, headers: { "X-K": planted() } },
			}).then(async (r) => (await r.json()) as { id: string });
		const created = await hostScoped("a.example.com");
		// Move another row's ciphertext into this one: the AAD binding must refuse it.
		const other = await hostScoped("b.example.com");
		const before = await db(async (d) => {
			const [src] = await d.select().from(credentials).where(eq(credentials.id, other.id));
			await d
				.update(credentials)
				.set({ ciphertext: src?.ciphertext, dataKey: src?.dataKey })
				.where(eq(credentials.id, created.id));
			return (await d.select().from(credentials).where(eq(credentials.id, created.id)))[0];
		});
		// A new host re-seals the kept headers, so it must decrypt them first.
		const res = await call(`/v1/credentials/${created.id}`, {
			method: "PATCH",
			token: key,
			json: { host: "c.example.com" },
		});
		const body = await expectError(res, 500, "decryption_failed");
		expect(body.error.message).toContain(created.id);
		const after = await db(
			async (d) => (await d.select().from(credentials).where(eq(credentials.id, created.id)))[0],
		);
		expect(after).toEqual(before);
		// Metadata reads never decrypt, so they keep working.
		expect((await call(`/v1/credentials/${created.id}`, { token: key })).status).toBe(200);

		// Replacing the whole secret needs nothing of the old one: that is how the row is repaired.
		const headers = { "X-K": planted() };
		const repaired = await call(`/v1/credentials/${created.id}`, {
			method: "PATCH",
			token: key,
			json: { headers },
		});
		expect(repaired.status).toBe(200);
		const { services: s, dispose } = services();
		try {
			const row = await db(
				async (d) => (await d.select().from(credentials).where(eq(credentials.id, created.id)))[0],
			);
			expect(await openSecret(s, row as NonNullable<typeof row>)).toEqual({ headers });
		} finally {
			await dispose();
		}
	});

	it("an api_key row that fails to decrypt is repaired by a PATCH of its key", async () => {
		const { key } = await userWithKey();
		const created = await storeApiKey(key);
		const other = await storeApiKey(key);
		await db(async (d) => {
			const [src] = await d.select().from(credentials).where(eq(credentials.id, other.id));
			await d
				.update(credentials)
				.set({ ciphertext: src?.ciphertext, dataKey: src?.dataKey })
				.where(eq(credentials.id, created.id));
		});
		const res = await call(`/v1/credentials/${created.id}`, {
			method: "PATCH",
			token: key,
			json: { api_key: "replacement" },
		});
		expect(res.status).toBe(200);
		const { services: s, dispose } = services();
		try {
			const row = await db(
				async (d) => (await d.select().from(credentials).where(eq(credentials.id, created.id)))[0],
			);
			expect(await openSecret(s, row as NonNullable<typeof row>)).toEqual({
				api_key: "replacement",
			});
		} finally {
			await dispose();
		}
	});
});

describe("version, ETag and If-Match", () => {
	const fetchRow = (id: string) =>
		db(async (d) => (await d.select().from(credentials).where(eq(credentials.id, id)))[0]);

	it("every response holding one credential carries its version as a strong ETag", async () => {
		const { key } = await userWithKey();
		const created = await call("/v1/credentials", {
			method: "POST",
			token: key,
			json: { provider: "p", type: "api_key", api_key: planted() },
		});
		expect(created.status).toBe(201);
		const body = (await created.json()) as { id: string; version: number };
		expect(body.version).toBe(1);
		expect(created.headers.get("etag")).toBe('"1"');
		const got = await call(`/v1/credentials/${body.id}`, { token: key });
		expect(got.headers.get("etag")).toBe('"1"');
		expect(((await got.json()) as { version: number }).version).toBe(1);
		const patched = await call(`/v1/credentials/${body.id}`, {
			method: "PATCH",
			token: key,
			json: { title: "renamed" },
		});
		expect(patched.headers.get("etag")).toBe('"2"');
		expect(((await patched.json()) as { version: number }).version).toBe(2);
		const system = await call("/v1/admin/system-credentials", {
			method: "POST",
			token: admin(),
			json: { provider: "p", type: "api_key", api_key: planted() },
		});
		expect(system.headers.get("etag")).toBe('"1"');
	});

	it("PATCH with a stale If-Match is 412 and changes nothing; a current one applies", async () => {
		const { key } = await userWithKey();
		const { id } = await storeApiKey(key);
		const path = `/v1/credentials/${id}`;
		await call(path, { method: "PATCH", token: key, json: { title: "second" } });
		const before = await fetchRow(id);
		const stale = await call(path, {
			method: "PATCH",
			token: key,
			headers: { "if-match": '"1"' },
			json: { title: "lost update", api_key: planted() },
		});
		const err = await expectError(stale, 412, "precondition_failed");
		expect(err.error.hint).toBeTruthy();
		expect(await fetchRow(id)).toEqual(before);
		// A weak tag never matches (If-Match compares strongly).
		await expectError(
			await call(path, {
				method: "PATCH",
				token: key,
				headers: { "if-match": 'W/"2"' },
				json: { title: "weak" },
			}),
			412,
			"precondition_failed",
		);
		const current = await call(path, {
			method: "PATCH",
			token: key,
			headers: { "if-match": '"7", "2"' },
			json: { title: "third" },
		});
		expect(current.status).toBe(200);
		expect(current.headers.get("etag")).toBe('"3"');
		const any = await call(path, {
			method: "PATCH",
			token: key,
			headers: { "if-match": "*" },
			json: { title: "fourth" },
		});
		expect(any.status).toBe(200);
		// Without If-Match the last writer wins.
		const blind = await call(path, { method: "PATCH", token: key, json: { title: "fifth" } });
		expect(blind.status).toBe(200);
		expect((await fetchRow(id))?.title).toBe("fifth");
	});

	it("DELETE with a stale If-Match is 412 and deletes nothing; a current one deletes", async () => {
		const { key } = await userWithKey();
		const { id } = await storeApiKey(key);
		const path = `/v1/credentials/${id}`;
		await call(path, { method: "PATCH", token: key, json: { title: "second" } });
		await expectError(
			await call(path, { method: "DELETE", token: key, headers: { "if-match": '"1"' } }),
			412,
			"precondition_failed",
		);
		expect(await fetchRow(id)).toBeDefined();
		const del = await call(path, { method: "DELETE", token: key, headers: { "if-match": '"2"' } });
		expect(del.status).toBe(200);
		expect(await fetchRow(id)).toBeUndefined();
	});

	it("an empty PATCH, or one restating current values, keeps the version", async () => {
		const { key } = await userWithKey();
		const { id } = await storeApiKey(key);
		const path = `/v1/credentials/${id}`;
		const before = await fetchRow(id);
		const empty = await call(path, { method: "PATCH", token: key, json: {} });
		expect(empty.status).toBe(200);
		expect(empty.headers.get("etag")).toBe('"1"');
		const same = await call(path, {
			method: "PATCH",
			token: key,
			json: { title: before?.title, type: "api_key" },
		});
		expect(same.status).toBe(200);
		expect(await fetchRow(id)).toEqual(before);
	});

	it("a PATCH of host re-seals, binding the secret to the new host", async () => {
		const { key } = await userWithKey();
		const headers = { "X-Api-Key": planted() };
		const res = await call("/v1/credentials", {
			method: "POST",
			token: key,
			json: { provider: "internal", type: "host_scoped", host: "a.example.com", headers },
		});
		const { id } = (await res.json()) as { id: string };
		const before = await fetchRow(id);
		const patched = await call(`/v1/credentials/${id}`, {
			method: "PATCH",
			token: key,
			json: { host: "b.example.com" },
		});
		expect(patched.status).toBe(200);
		const after = await fetchRow(id);
		expect(after).toMatchObject({ host: "b.example.com", aadVersion: 2, version: 2 });
		expect(after?.ciphertext).not.toBe(before?.ciphertext);
		const { services: s, dispose } = createServices(
			loadConfig(testEnv),
			createLogger("error"),
			new Timing(),
		);
		try {
			const row = after as NonNullable<typeof after>;
			expect(await openSecret(s, row)).toEqual({ headers });
			// Moving the host back in the database (without a re-seal) no longer opens.
			await expect(openSecret(s, { ...row, host: "a.example.com" })).rejects.toMatchObject({
				code: "decryption_failed",
				message: expect.stringContaining(id),
			});
		} finally {
			await dispose();
		}
	});
});
