import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { freePort } from "../../scripts/lib/net.ts";
import { cleanEnv, runScript } from "./run-script.ts";

/**
 * A DATABASE_URL that cannot work stops `npm run dev` and `npm start` at once, with a message
 * that names DATABASE_URL and the step that failed, before .dev.vars is written or any engine,
 * bridge or runtime starts.
 */
const infra = inject("infra");
const DEADLINE_MS = 20_000;

const run = (args: string[], env: Record<string, string>) =>
	runScript(args, cleanEnv(env), { deadlineMs: DEADLINE_MS });

function withUrl(base: string, change: (url: URL) => void): string {
	const url = new URL(base);
	change(url);
	return url.toString();
}

describe("a DATABASE_URL that cannot work (npm run dev, npm start)", () => {
	let dir: string;
	beforeAll(async () => {
		dir = await mkdtemp(join(tmpdir(), "latchkey-dburl-"));
	});
	afterAll(async () => {
		await rm(dir, { recursive: true, force: true });
	});

	const cases: Array<{ name: string; url: () => Promise<string>; expected: RegExp[] }> = [
		{
			name: "not a URL",
			url: async () => "postgres@localhost/latchkey",
			expected: [/DATABASE_URL is not a URL: expected postgres:\/\//],
		},
		{
			name: "not a postgres URL",
			url: async () => "https://example.com/db",
			expected: [/DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL/],
		},
		{
			name: "unreachable",
			url: async () => `postgres://postgres@127.0.0.1:${await freePort()}/latchkey`,
			expected: [
				/DATABASE_URL \(127\.0\.0\.1:\d+\/latchkey\): connecting to Postgres failed/,
				/ECONNREFUSED/,
				/Nothing answers there/,
			],
		},
		{
			name: "a role that does not exist",
			url: async () =>
				withUrl(infra.adminUrl, (u) => {
					u.username = "no_such_role_latchkey";
					u.password = "wrong";
				}),
			expected: [
				/DATABASE_URL \(.*\): connecting to Postgres failed/,
				/no_such_role_latchkey/,
				/SQLSTATE 28(000|P01)/,
			],
		},
		{
			name: "a database that does not exist",
			url: async () =>
				withUrl(infra.adminUrl, (u) => {
					u.pathname = "/no_such_database_latchkey";
				}),
			expected: [
				/DATABASE_URL \(.*\/no_such_database_latchkey\): connecting to Postgres failed/,
				/SQLSTATE 3D000/,
				/The database does not exist/,
			],
		},
	];

	for (const c of cases) {
		it(`${c.name}: both commands exit non-zero, naming DATABASE_URL and the step`, async () => {
			const url = await c.url();
			const [dev, start] = await Promise.all([
				run(["scripts/dev.ts"], { DATABASE_URL: url, PORT: String(await freePort()) }),
				run(["scripts/start.ts", "--data-dir", dir, "--vars-file", join(dir, ".dev.vars")], {
					DATABASE_URL: url,
					PORT: String(await freePort()),
				}),
			]);
			for (const [name, result] of [
				["dev", dev],
				["start", start],
			] as const) {
				expect(result.code, `${name}:\n${result.output}`).not.toBe(0);
				expect(result.code, `${name} was killed at the deadline`).not.toBeNull();
				for (const pattern of c.expected) expect(result.output, name).toMatch(pattern);
				// The password never reaches the message.
				expect(result.output).not.toContain(":wrong@");
				expect(result.output).not.toContain("migrations applied");
			}
			// Nothing was generated or started: no .dev.vars, no cluster, no bundle.
			expect(await readdir(dir)).toEqual([]);
		});
	}
});
