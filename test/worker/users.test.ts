import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { toBase64Url, utf8 } from "../../src/crypto/encoding.ts";
import { hmacSha256 } from "../../src/crypto/hash.ts";
import { users } from "../../src/db/schema.ts";
import { encodeCursor } from "../../src/http/pagination.ts";
import {
	createUnsubscribeToken,
	unsubscribeUrl,
	verifyUnsubscribeToken,
} from "../../src/users/unsubscribe.ts";
import { admin, createKey, createUser, userWithKey } from "./fixtures.ts";
import { call, expectError, holdTransaction, testDb, testEnv } from "./helpers.ts";

interface UserJson {
	id: string;
	email: string;
	name: string | null;
	timezone: string;
	status: string;
	email_verified: boolean;
	notifications: Record<string, boolean>;
	created_at: string;
}

interface Detail {
	field: string;
	message: string;
}

const USER_KEYS = [
	"created_at",
	"email",
	"email_verified",
	"id",
	"name",
	"notifications",
	"status",
	"timezone",
];

const runId = crypto.randomUUID().slice(0, 8);
let emailCounter = 0;
const uniqueEmail = (local = "u", domain = `users-${runId}.test`) =>
	`${local}-${++emailCounter}@${domain}`;

async function me(token: string): Promise<Response> {
	return call("/v1/me", { token });
}

async function patchMe(token: string, json: unknown): Promise<Response> {
	return call("/v1/me", { method: "PATCH", token, json });
}

async function adminGet(id: string): Promise<UserJson> {
	const res = await call(`/v1/admin/users/${id}`, { token: admin() });
	expect(res.status).toBe(200);
	return (await res.json()) as UserJson;
}

async function adminPatch(id: string, json: unknown): Promise<Response> {
	return call(`/v1/admin/users/${id}`, { method: "PATCH", token: admin(), json });
}

async function expectInvalid(res: Response, field?: string): Promise<Detail[]> {
	const body = await expectError(res, 400, "invalid_request");
	const detail = (body.error.detail ?? []) as Detail[];
	if (field !== undefined) expect(detail.map((d) => d.field)).toContain(field);
	return detail;
}

describe("GET /v1/me", () => {
	it("returns exactly the caller's user", async () => {
		const user = await userWithKey();
		const res = await me(user.key);
		expect(res.status).toBe(200);
		const body = (await res.json()) as UserJson;
		expect(Object.keys(body).sort()).toEqual(USER_KEYS);
		expect(body).toEqual({
			id: user.id,
			email: user.email,
			name: null,
			timezone: "UTC",
			status: "active",
			email_verified: false,
			notifications: { email: true },
			created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
		});
	});

	it("needs a credential", async () => {
		const res = await call("/v1/me");
		await expectError(res, 401, "unauthorized");
		expect(res.headers.get("www-authenticate")).toBe("Bearer");
	});

	it("refuses the admin token, which acts for no user", async () => {
		await expectError(await me(admin()), 403, "forbidden");
		await expectError(await patchMe(admin(), { name: "x" }), 403, "forbidden");
		await expectError(await call("/v1/me", { method: "DELETE", token: admin() }), 403, "forbidden");
	});

	it("answers with the caller's own user whoever else exists (tenant isolation)", async () => {
		const a = await userWithKey();
		const b = await userWithKey();
		const asA = (await (await me(a.key)).json()) as UserJson;
		const asB = (await (await me(b.key)).json()) as UserJson;
		expect(asA.id).toBe(a.id);
		expect(asB.id).toBe(b.id);
		expect(JSON.stringify(asA)).not.toContain(b.email);

		await patchMe(a.key, { name: "Only A", notifications: { email: false } });
		const bAfter = await adminGet(b.id);
		expect(bAfter.name).toBeNull();
		expect(bAfter.notifications).toEqual({ email: true });

		// A user key cannot reach another user through the admin routes either.
		for (const [path, method] of [
			[`/v1/admin/users/${b.id}`, "GET"],
			[`/v1/admin/users/${b.id}`, "PATCH"],
			[`/v1/admin/users/${b.id}`, "DELETE"],
		] as const) {
			const res = await call(path, {
				method,
				token: a.key,
				json: method === "PATCH" ? { status: "suspended" } : undefined,
			});
			await expectError(res, 403, "insufficient_scope");
		}
		expect((await adminGet(b.id)).status).toBe("active");
	});
});

describe("PATCH /v1/me", () => {
	it("updates name and timezone and returns the user", async () => {
		const user = await userWithKey();
		const res = await patchMe(user.key, { name: "  Ada Lovelace  ", timezone: "Europe/Paris" });
		expect(res.status).toBe(200);
		const body = (await res.json()) as UserJson;
		expect(body).toMatchObject({ id: user.id, name: "Ada Lovelace", timezone: "Europe/Paris" });
		expect((await (await me(user.key)).json()) as UserJson).toMatchObject({
			name: "Ada Lovelace",
			timezone: "Europe/Paris",
		});
	});

	it("accepts IANA names, fixing their case but keeping the alias the user chose", async () => {
		const user = await userWithKey();
		for (const [sent, stored] of [
			["utc", "UTC"],
			["america/new_york", "America/New_York"],
			["America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"],
			["Asia/Kolkata", "Asia/Kolkata"],
			["Asia/Calcutta", "Asia/Calcutta"],
			["Etc/GMT+5", "Etc/GMT+5"],
		]) {
			const res = await patchMe(user.key, { timezone: sent });
			expect(res.status, sent).toBe(200);
			expect(((await res.json()) as UserJson).timezone).toBe(stored);
		}
	});

	it("rejects anything that is not an IANA zone name, naming the field", async () => {
		const user = await userWithKey();
		for (const timezone of [
			"Mars/Olympus_Mons",
			"+01:00",
			"GMT+1:00",
			"",
			"Europe/Paris; drop",
			"x".repeat(65),
			5,
			null,
		]) {
			await expectInvalid(await patchMe(user.key, { timezone }), "timezone");
		}
		expect(((await (await me(user.key)).json()) as UserJson).timezone).toBe("UTC");
	});

	it("merges notification preferences", async () => {
		const user = await userWithKey();
		let res = await patchMe(user.key, { notifications: { email: false } });
		expect(((await res.json()) as UserJson).notifications).toEqual({ email: false });
		// Leaving notifications (or a channel) out keeps what is stored.
		res = await patchMe(user.key, { name: "N" });
		expect(((await res.json()) as UserJson).notifications).toEqual({ email: false });
		res = await patchMe(user.key, { notifications: {} });
		expect(((await res.json()) as UserJson).notifications).toEqual({ email: false });
		res = await patchMe(user.key, { notifications: { email: true } });
		expect(((await res.json()) as UserJson).notifications).toEqual({ email: true });
	});

	it("clears the name with null", async () => {
		const user = await userWithKey();
		await patchMe(user.key, { name: "Temp" });
		const res = await patchMe(user.key, { name: null });
		expect(((await res.json()) as UserJson).name).toBeNull();
	});

	it("treats an empty object or no body at all as no change", async () => {
		const user = await userWithKey();
		await patchMe(user.key, { name: "Kept" });
		const empty = await patchMe(user.key, {});
		expect(empty.status).toBe(200);
		expect(((await empty.json()) as UserJson).name).toBe("Kept");
		const none = await call("/v1/me", { method: "PATCH", token: user.key });
		expect(none.status).toBe(200);
		expect(((await none.json()) as UserJson).name).toBe("Kept");
	});

	it("rejects unknown fields and bad values with 400 in the error shape", async () => {
		const user = await userWithKey();
		const unknown = await expectInvalid(
			await patchMe(user.key, { name: "x", email: "new@example.com" }),
		);
		expect(JSON.stringify(unknown)).toContain("email");
		await expectInvalid(await patchMe(user.key, { name: 5 }), "name");
		await expectInvalid(await patchMe(user.key, { name: "" }), "name");
		await expectInvalid(await patchMe(user.key, { name: "   " }), "name");
		await expectInvalid(await patchMe(user.key, { name: "x".repeat(201) }), "name");
		await expectInvalid(
			await patchMe(user.key, { notifications: { email: "no" } }),
			"notifications.email",
		);
		await expectInvalid(await patchMe(user.key, { notifications: true }), "notifications");
		const channel = await expectInvalid(await patchMe(user.key, { notifications: { sms: true } }));
		expect(JSON.stringify(channel)).toContain("sms");
		await expectInvalid(await patchMe(user.key, []));
		await expectInvalid(await patchMe(user.key, null));
		await expectInvalid(await patchMe(user.key, "name"));
		expect(((await (await me(user.key)).json()) as UserJson).name).toBeNull();
	});

	it("rejects a body that is not JSON", async () => {
		const user = await userWithKey();
		const malformed = await call("/v1/me", {
			method: "PATCH",
			token: user.key,
			headers: { "content-type": "application/json" },
			body: "{name: nope",
		});
		await expectInvalid(malformed);
		// A body declared as something else is a bad request too.
		const text = await call("/v1/me", {
			method: "PATCH",
			token: user.key,
			headers: { "content-type": "text/plain" },
			body: "name=x",
		});
		await expectInvalid(text);
	});
});

describe("DELETE /v1/me", () => {
	it("answers 202, kills the key at once and leaves the user readable as deleting", async () => {
		const user = await userWithKey();
		const second = await createKey(user.id);
		expect((await me(user.key)).status).toBe(200);
		const res = await call("/v1/me", { method: "DELETE", token: user.key });
		expect(res.status).toBe(202);
		expect(await res.json()).toEqual({ status: "deleting" });

		await expectError(await me(user.key), 401, "unauthorized");
		await expectError(await me(second), 401, "unauthorized");
		const seen = await adminGet(user.id);
		expect(seen.status).toBe("deleting");
		expect(seen.email).toBe(user.email);
	});

	it("cannot be undone by an admin, and repeating it is harmless", async () => {
		const user = await userWithKey();
		await call("/v1/me", { method: "DELETE", token: user.key });
		await expectError(await adminPatch(user.id, { status: "active" }), 409, "conflict");
		await expectError(await adminPatch(user.id, { status: "suspended" }), 409, "conflict");
		await expectError(await adminPatch(user.id, { name: "Renamed" }), 409, "conflict");
		const again = await call(`/v1/admin/users/${user.id}`, { method: "DELETE", token: admin() });
		expect(again.status).toBe(202);
		expect(await again.json()).toEqual({ status: "deleting" });
		expect((await adminGet(user.id)).status).toBe("deleting");
	});
});

describe("admin: create users", () => {
	it("creates a user with a normalised e-mail and answers 201 with its location", async () => {
		const email = uniqueEmail("Ada.Lovelace");
		const res = await call("/v1/admin/users", {
			method: "POST",
			token: admin(),
			json: { email: `  ${email.toUpperCase()} `, name: "Ada" },
		});
		expect(res.status).toBe(201);
		const body = (await res.json()) as UserJson;
		expect(Object.keys(body).sort()).toEqual(USER_KEYS);
		expect(body).toMatchObject({
			email: email.toLowerCase(),
			name: "Ada",
			status: "active",
			timezone: "UTC",
		});
		expect(body.id).toMatch(/^usr_[0-9A-Za-z]{20}$/);
		expect(res.headers.get("location")).toBe(`/v1/admin/users/${body.id}`);
		expect(await adminGet(body.id)).toEqual(body);
	});

	it("refuses a duplicate e-mail whatever its case with 409 email_conflict", async () => {
		const email = uniqueEmail("dup");
		await createUser({ email });
		for (const variant of [email, email.toUpperCase(), ` ${email} `]) {
			const res = await call("/v1/admin/users", {
				method: "POST",
				token: admin(),
				json: { email: variant },
			});
			await expectError(res, 409, "email_conflict");
		}
	});

	it("lets exactly one of concurrent creations with the same e-mail win", async () => {
		const email = uniqueEmail("race");
		const results = await Promise.all(
			[email, email.toUpperCase(), email].map((e) =>
				call("/v1/admin/users", { method: "POST", token: admin(), json: { email: e } }),
			),
		);
		expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409]);
	});

	it("creations with the same e-mail proven to overlap: one 201, the others 409, one row", async () => {
		const email = uniqueEmail("overlap");
		// An uncommitted row with the address makes every creation wait on the unique index, so
		// all three are past any lookup they might do before they insert; rolled back, they race.
		const holder = await holdTransaction();
		let pending: Promise<Response[]>;
		try {
			await holder.query("insert into users (id, email) values ($1, $2)", [
				`usr_hold${crypto.randomUUID().replace(/-/g, "").slice(0, 16)}`,
				email,
			]);
			pending = Promise.all(
				[email, email.toUpperCase(), ` ${email}`].map((e) =>
					call("/v1/admin/users", { method: "POST", token: admin(), json: { email: e } }),
				),
			);
			await holder.waitForBlocked(3);
		} finally {
			await holder.release("rollback");
		}
		const results = await pending;
		expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409]);
		for (const r of results) if (r.status === 409) await expectError(r, 409, "email_conflict");
		const created = (await results.find((r) => r.status === 201)?.json()) as UserJson;
		const handle = testDb();
		const rows = await handle.db
			.select({ id: users.id })
			.from(users)
			.where(sql`lower(${users.email}) = ${email}`);
		await handle.end();
		expect(rows).toEqual([{ id: created.id }]);
	});

	it("rejects bad bodies with 400", async () => {
		const post = (json: unknown) =>
			call("/v1/admin/users", { method: "POST", token: admin(), json });
		for (const email of [
			"",
			"nope",
			"a@b",
			"a b@example.com",
			"@example.com",
			"a@example..com",
			`${"x".repeat(250)}@example.com`,
			7,
		]) {
			await expectInvalid(await post({ email }), "email");
		}
		await expectInvalid(await post({}), "email");
		await expectInvalid(await post({ email: uniqueEmail(), name: "" }), "name");
		const extra = await expectInvalid(await post({ email: uniqueEmail(), status: "suspended" }));
		expect(JSON.stringify(extra)).toContain("status");
		await expectInvalid(await post([]));
		await expectInvalid(
			await call("/v1/admin/users", {
				method: "POST",
				token: admin(),
				headers: { "content-type": "application/json" },
				body: "not json",
			}),
		);
		await expectInvalid(await call("/v1/admin/users", { method: "POST", token: admin() }), "email");
	});
});

describe("admin: read, update and delete users", () => {
	it("answers 404 for an unknown id and for a malformed one", async () => {
		const unknown = "usr_00000000000000000000";
		await expectError(
			await call(`/v1/admin/users/${unknown}`, { token: admin() }),
			404,
			"not_found",
		);
		await expectError(await adminPatch(unknown, { status: "suspended" }), 404, "not_found");
		await expectError(
			await call(`/v1/admin/users/${unknown}`, { method: "DELETE", token: admin() }),
			404,
			"not_found",
		);
		// A malformed id is simply not found, refused before any query.
		for (const bad of ["x".repeat(65), "usr%20space", "usr%00", "%27%3B", "%C3%A9"]) {
			await expectError(await call(`/v1/admin/users/${bad}`, { token: admin() }), 404, "not_found");
			await expectError(await adminPatch(bad, { status: "active" }), 404, "not_found");
			await expectError(
				await call(`/v1/admin/users/${bad}`, { method: "DELETE", token: admin() }),
				404,
				"not_found",
			);
		}
	});

	it("rejects bad PATCH bodies", async () => {
		const user = await createUser();
		await expectInvalid(await adminPatch(user.id, { status: "deleting" }), "status");
		await expectInvalid(await adminPatch(user.id, { status: "gone" }), "status");
		await expectInvalid(await adminPatch(user.id, { email: "x@example.com" }));
		await expectInvalid(await adminPatch(user.id, { name: 1 }), "name");
		await expectInvalid(
			await call(`/v1/admin/users/${user.id}`, {
				method: "PATCH",
				token: admin(),
				headers: { "content-type": "application/json" },
				body: "{",
			}),
		);
		expect((await adminGet(user.id)).status).toBe("active");
	});

	it("renames a user", async () => {
		const user = await createUser();
		const res = await adminPatch(user.id, { name: "Grace Hopper" });
		expect(res.status).toBe(200);
		expect(((await res.json()) as UserJson).name).toBe("Grace Hopper");
	});

	it("suspension refuses the user's key at once, and reactivation restores it", async () => {
		const user = await userWithKey();
		expect((await me(user.key)).status).toBe(200); // the key is now in this isolate's cache
		const suspended = await adminPatch(user.id, { status: "suspended" });
		expect(suspended.status).toBe(200);
		expect(((await suspended.json()) as UserJson).status).toBe("suspended");
		await expectError(await me(user.key), 403, "user_suspended");
		await expectError(await patchMe(user.key, { name: "x" }), 403, "user_suspended");
		expect((await adminGet(user.id)).status).toBe("suspended");

		const active = await adminPatch(user.id, { status: "active" });
		expect(((await active.json()) as UserJson).status).toBe("active");
		expect((await me(user.key)).status).toBe(200);
	});

	it("admin delete answers 202 and revokes the user's keys", async () => {
		const user = await userWithKey();
		expect((await me(user.key)).status).toBe(200);
		const res = await call(`/v1/admin/users/${user.id}`, { method: "DELETE", token: admin() });
		expect(res.status).toBe(202);
		expect(await res.json()).toEqual({ status: "deleting" });
		await expectError(await me(user.key), 401, "unauthorized");
		expect((await adminGet(user.id)).status).toBe("deleting");
	});

	it("a suspended user can still be deleted, and then not reactivated", async () => {
		const user = await createUser();
		await adminPatch(user.id, { status: "suspended" });
		expect(
			(await call(`/v1/admin/users/${user.id}`, { method: "DELETE", token: admin() })).status,
		).toBe(202);
		await expectError(await adminPatch(user.id, { status: "active" }), 409, "conflict");
	});

	it("admin routes need the admin scope", async () => {
		const user = await userWithKey();
		const attempts: [string, string, unknown?][] = [
			["/v1/admin/users", "POST", { email: uniqueEmail() }],
			["/v1/admin/users", "GET"],
			[`/v1/admin/users/${user.id}`, "GET"],
			[`/v1/admin/users/${user.id}`, "PATCH", { name: "x" }],
			[`/v1/admin/users/${user.id}`, "DELETE"],
		];
		for (const [path, method, json] of attempts) {
			await expectError(
				await call(path, { method, token: user.key, json }),
				403,
				"insufficient_scope",
			);
			await expectError(await call(path, { method, json }), 401, "unauthorized");
		}
		expect((await adminGet(user.id)).status).toBe("active");
	});
});

describe("admin: list users", () => {
	interface ListJson {
		data: UserJson[];
		next_cursor: string | null;
	}

	async function list(query: string): Promise<ListJson> {
		const res = await call(`/v1/admin/users?${query}`, { token: admin() });
		expect(res.status, await res.clone().text()).toBe(200);
		return (await res.json()) as ListJson;
	}

	it("pages through every user exactly once, in creation order, stable under inserts", async () => {
		const domain = `list-${crypto.randomUUID().slice(0, 8)}.test`;
		// A cursor just before this test's users, so the walk skips what other tests created earlier.
		const start = encodeCursor({ createdAt: new Date(Date.now() - 1), id: "0" });
		const created: string[] = [];
		for (let i = 0; i < 7; i++)
			created.push((await createUser({ email: uniqueEmail("p", domain) })).id);

		const seen: string[] = [];
		let cursor: string | null = start;
		let pages = 0;
		while (cursor) {
			const page = await list(`limit=3&cursor=${encodeURIComponent(cursor)}`);
			expect(page.data.length).toBeLessThanOrEqual(3);
			for (const u of page.data) {
				expect(Object.keys(u).sort()).toEqual(USER_KEYS);
				if (u.email.endsWith(`@${domain}`)) seen.push(u.id);
			}
			if (pages === 0) {
				// Inserted mid-walk: it sorts after everything already listed and shows up once, at the end.
				created.push((await createUser({ email: uniqueEmail("late", domain) })).id);
			}
			cursor = page.next_cursor;
			pages += 1;
			expect(pages).toBeLessThan(200);
		}
		expect(pages).toBeGreaterThanOrEqual(3);
		expect(seen).toEqual(created);
	});

	it("defaults to 50 per page, oldest first", async () => {
		await createUser();
		const first = await list("");
		expect(first.data.length).toBeGreaterThan(0);
		expect(first.data.length).toBeLessThanOrEqual(50);
		if (first.next_cursor !== null) expect(first.data.length).toBe(50);
		const times = first.data.map((u) => Date.parse(u.created_at));
		expect([...times].sort((a, b) => a - b)).toEqual(times);

		const start = encodeCursor({ createdAt: new Date(Date.now() - 1), id: "0" });
		for (let i = 0; i < 3; i++) await createUser();
		const two = await list(`limit=2&cursor=${start}`);
		expect(two.data).toHaveLength(2);
		expect(two.next_cursor).not.toBeNull();
	});

	it("filters by status", async () => {
		const start = encodeCursor({ createdAt: new Date(Date.now() - 1), id: "0" });
		const a = await createUser();
		const b = await createUser();
		await adminPatch(b.id, { status: "suspended" });
		const suspended = await list(`status=suspended&limit=100&cursor=${start}`);
		expect(suspended.data.every((u) => u.status === "suspended")).toBe(true);
		expect(suspended.data.map((u) => u.id)).toContain(b.id);
		expect(suspended.data.map((u) => u.id)).not.toContain(a.id);
		const active = await list(`status=active&limit=100&cursor=${start}`);
		expect(active.data.map((u) => u.id)).toContain(a.id);
		expect(active.data.map((u) => u.id)).not.toContain(b.id);
	});

	it("rejects bad limits, cursors and statuses with 400 naming the parameter", async () => {
		const get = (q: string) => call(`/v1/admin/users?${q}`, { token: admin() });
		for (const limit of ["0", "101", "-5", "2.5", "ten", ""])
			await expectInvalid(await get(`limit=${limit}`), "limit");
		const cursor = encodeCursor({ createdAt: new Date(), id: "usr_x" });
		for (const bad of [
			"garbage",
			"!!",
			`${cursor.slice(0, -2)}`,
			toBase64Url(utf8('{"v":1}')),
			"x".repeat(600),
		]) {
			await expectInvalid(await get(`cursor=${encodeURIComponent(bad)}`), "cursor");
		}
		await expectInvalid(await get("cursor="), "cursor");
		await expectInvalid(await get("status=gone"), "status");
	});
});

describe("GET /v1/unsubscribe", () => {
	const secret = () => testEnv.LATCHKEY_HMAC_SECRET;

	it("turns notification e-mails off and answers JSON to API clients", async () => {
		const user = await createUser();
		const token = await createUnsubscribeToken(secret(), user.id);
		const res = await call(`/v1/unsubscribe?token=${token}`);
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toContain("application/json");
		expect(res.headers.get("cache-control")).toBe("no-store");
		expect(await res.json()).toEqual({ unsubscribed: true });
		expect((await adminGet(user.id)).notifications).toEqual({ email: false });

		// Following the link twice is fine.
		const again = await call(`/v1/unsubscribe?token=${token}`, { headers: { accept: "*/*" } });
		expect(again.status).toBe(200);
		expect(await again.json()).toEqual({ unsubscribed: true });
	});

	it("answers a short HTML page to browsers", async () => {
		const user = await createUser();
		const link = new URL(await unsubscribeUrl(testEnv.LATCHKEY_PUBLIC_URL, secret(), user.id));
		expect(link.pathname).toBe("/v1/unsubscribe");
		const res = await call(`${link.pathname}${link.search}`, {
			headers: { accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8" },
		});
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toContain("text/html");
		expect(await res.text()).toContain("You are unsubscribed");
		expect((await adminGet(user.id)).notifications.email).toBe(false);
	});

	it("keeps a path prefix of the public URL in the link", async () => {
		const link = await unsubscribeUrl("https://example.com/vault/", secret(), "usr_abc");
		expect(link.startsWith("https://example.com/vault/v1/unsubscribe?token=")).toBe(true);
	});

	it("rejects tampered, foreign and garbage tokens with 400 and changes nothing", async () => {
		const user = await createUser();
		const token = await createUnsubscribeToken(secret(), user.id);
		const [payload, signature] = token.split(".") as [string, string];
		const other = await createUser();
		const otherPayload = (await createUnsubscribeToken(secret(), other.id)).split(".")[0] as string;
		const flip = (s: string, i: number) =>
			s.slice(0, i) + (s[i] === "A" ? "B" : "A") + s.slice(i + 1);
		const signed = async (claims: unknown, key = secret()) => {
			const p = toBase64Url(utf8(JSON.stringify(claims)));
			return `${p}.${await hmacSha256(key, p)}`;
		};
		const bad = [
			`${flip(payload, 3)}.${signature}`,
			`${payload}.${flip(signature, 0)}`,
			`${payload}.${flip(signature, signature.length - 1)}`,
			`${otherPayload}.${signature}`,
			`${payload}.${signature}x`,
			`${payload}`,
			`${payload}.${signature}.x`,
			await signed({ v: 1, p: "verify_email", u: user.id }),
			await signed({ v: 2, p: "unsubscribe", u: user.id }),
			await signed(
				{ v: 1, p: "unsubscribe", u: user.id },
				"another-secret-of-at-least-32-characters!",
			),
			await signed({ v: 1, p: "unsubscribe" }),
			await signed(["unsubscribe", user.id]),
			"garbage",
			"a.b",
			"....",
		];
		for (const t of bad) {
			expect(await verifyUnsubscribeToken(secret(), t), t).toBeNull();
			const res = await call(`/v1/unsubscribe?token=${encodeURIComponent(t)}`);
			const body = await expectError(res, 400, "invalid_request");
			expect(JSON.stringify(body)).not.toContain(t);
		}
		await expectInvalid(await call("/v1/unsubscribe"), "token");
		await expectInvalid(await call("/v1/unsubscribe?token="), "token");
		await expectInvalid(await call(`/v1/unsubscribe?token=${"a".repeat(600)}`), "token");
		expect((await adminGet(user.id)).notifications).toEqual({ email: true });
		expect((await adminGet(other.id)).notifications).toEqual({ email: true });
	});

	it("answers 404 for a valid token of a user that no longer exists", async () => {
		const token = await createUnsubscribeToken(secret(), "usr_neverexisted000000");
		await expectError(await call(`/v1/unsubscribe?token=${token}`), 404, "not_found");
	});
});

describe("OpenAPI", () => {
	it("documents the user routes", async () => {
		const doc = (await (await call("/openapi.json")).json()) as {
			paths: Record<string, Record<string, { tags?: string[] }>>;
			components: { schemas: Record<string, unknown> };
		};
		for (const path of ["/v1/me", "/v1/admin/users", "/v1/admin/users/{id}", "/v1/unsubscribe"]) {
			expect(doc.paths).toHaveProperty([path]);
		}
		expect(Object.keys(doc.paths["/v1/me"] ?? {}).sort()).toEqual(["delete", "get", "patch"]);
		expect(doc.paths["/v1/admin/users"]?.post?.tags).toEqual(["Admin"]);
		expect(doc.components.schemas).toHaveProperty("User");
		expect(doc.components.schemas).toHaveProperty("ProfileUpdate");
	});
});
