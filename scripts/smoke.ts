/**
 * `npm run smoke`: the quick start as a new user meets it. Starts `npm run dev` on its embedded
 * defaults (whatever else listens on this machine), then drives the README's flow through it:
 * a user, a key, a token exchange, 30 concurrent credential writes alongside 10 more token
 * exchanges, and the account's deletion. Any 5xx, an unexpected status or a server that is not
 * ready within the bound fails it; it prints how long `npm run dev` took to become ready.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { freePort } from "./lib/net.ts";
import { ROOT, stopChild } from "./lib/wrangler.ts";

const READY_WITHIN_S = 60;

function fail(message: string): never {
	throw new Error(message);
}

async function waitReady(url: string, child: ChildProcess): Promise<number> {
	const started = Date.now();
	while (Date.now() - started < READY_WITHIN_S * 1000) {
		if (child.exitCode !== null)
			fail(`npm run dev exited with ${child.exitCode} before it was ready`);
		try {
			const res = await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(2000) });
			await res.body?.cancel();
			if (res.status === 200) return (Date.now() - started) / 1000;
		} catch {
			// not listening yet
		}
		await new Promise((r) => setTimeout(r, 200));
	}
	return fail(`/health/ready did not answer 200 within ${READY_WITHIN_S} s`);
}

async function flow(url: string, admin: string): Promise<void> {
	const call = async (method: string, path: string, token: string, body?: unknown) => {
		const res = await fetch(url + path, {
			method,
			headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
			body: body === undefined ? undefined : JSON.stringify(body),
		});
		const text = await res.text();
		if (res.status >= 500) fail(`${method} ${path} → ${res.status} ${text.slice(0, 200)}`);
		return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
	};
	const expect = (what: string, got: number, want: number) => {
		if (got !== want) fail(`${what}: expected ${want}, got ${got}`);
	};

	const user = await call("POST", "/v1/admin/users", admin, {
		email: `smoke-${Date.now()}@example.com`,
	});
	expect("create user", user.status, 201);
	const created = await call("POST", `/v1/admin/users/${user.json.id}/api-keys`, admin, {
		name: "smoke",
	});
	expect("create key", created.status, 201);
	const key = created.json.key as string;
	const exchange = () =>
		call("POST", "/v1/auth/token", "-", { grant_type: "api_key", api_key: key });
	expect("token exchange", (await exchange()).status, 200);

	const results = await Promise.all([
		...Array.from({ length: 30 }, (_, i) =>
			call("POST", "/v1/credentials", key, {
				provider: "smoke",
				type: "api_key",
				api_key: `smoke_${i}_${randomBytes(8).toString("hex")}`,
			}),
		),
		...Array.from({ length: 10 }, exchange),
	]);
	const writes = results.slice(0, 30);
	const bad = results.filter((r, i) => r.status !== (i < 30 ? 201 : 200));
	if (bad.length > 0) fail(`${bad.length}/40 concurrent requests failed (e.g. ${bad[0]?.status})`);
	const listed = await call("GET", "/v1/credentials?limit=100", key);
	expect("list", listed.status, 200);
	const ids = new Set((listed.json.data as { id: string }[]).map((c) => c.id));
	if (!writes.every((w) => ids.has(w.json.id as string))) fail("a written credential is missing");

	// Twenty agent runs lease one credential at once: each gets its secret, one releases.
	const target = writes[0]?.json as { id: string };
	const leases = await Promise.all(
		Array.from({ length: 20 }, () =>
			call("POST", `/v1/credentials/${target.id}/leases`, key, { ttl_seconds: 60 }),
		),
	);
	if (leases.some((l) => l.status !== 201)) fail("a concurrent lease failed");
	const secret = (leases[0]?.json.secret ?? {}) as { type?: string; api_key?: string };
	if (secret.type !== "api_key" || !secret.api_key?.startsWith("smoke_0_"))
		fail("a lease returned the wrong secret");
	expect(
		"release a lease",
		(await call("DELETE", `/v1/leases/${leases[0]?.json.lease_id}`, key)).status,
		204,
	);

	expect("delete account", (await call("DELETE", "/v1/me", key)).status, 202);
	expect("key after deletion", (await call("GET", "/v1/me", key)).status, 401);
}

const port = await freePort();
const admin = `smoke-${randomBytes(24).toString("hex")}`;
const url = `http://127.0.0.1:${port}`;
const child = spawn(
	process.execPath,
	[join(ROOT, "node_modules/tsx/dist/cli.mjs"), "scripts/dev.ts"],
	{
		cwd: ROOT,
		// Only what a user would have: no DATABASE_URL or REDIS_URL, so the embedded defaults start.
		env: {
			...Object.fromEntries(
				Object.entries(process.env).filter(([k]) => k !== "DATABASE_URL" && k !== "REDIS_URL"),
			),
			PORT: String(port),
			LATCHKEY_ADMIN_TOKEN: admin,
			WRANGLER_SEND_METRICS: "false",
		},
		stdio: ["ignore", "pipe", "pipe"],
	},
);
let output = "";
child.stdout?.on("data", (d) => {
	output += d;
});
child.stderr?.on("data", (d) => {
	output += d;
});

let code = 0;
try {
	const seconds = await waitReady(url, child);
	await flow(url, admin);
	console.log(
		`smoke: OK — npm run dev ready in ${seconds.toFixed(1)} s; user, key, token, 30 concurrent writes with 10 exchanges, 20 concurrent leases, deletion`,
	);
} catch (err) {
	console.error(`smoke: FAIL — ${(err as Error).message}`);
	console.error(output.split("\n").slice(-40).join("\n"));
	code = 1;
} finally {
	await stopChild(child);
}
process.exit(code);
