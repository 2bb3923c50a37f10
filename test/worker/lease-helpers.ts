import { eq } from "drizzle-orm";
import { afterAll, beforeAll, expect, inject } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { openSecret } from "../../src/credentials/service.ts";
import { type CredentialRow, credentials } from "../../src/db/schema.ts";
import { loadCredential } from "../../src/leases/refresh.ts";
import { createLease, type Lease } from "../../src/leases/service.ts";
import { createLogger, type Logger } from "../../src/log.ts";
import { createServices, type Services } from "../../src/services.ts";
import { Timing } from "../../src/timing.ts";
import { userWithKey } from "./fixtures.ts";
import { call, testDb, testEnv } from "./helpers.ts";
import { connect, introspect, providerBody, putProvider } from "./oauth-helpers.ts";

/**
 * What the lease and refresh-engine tests share: a clock the test moves, barriers, connected
 * credentials at the test authorization server, and aging a token by writing its row.
 */

export const { db } = testDb();

let counter = 0;
export const account = (label: string) =>
	`${label}-${Date.now().toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 6)}`;

export function barrier() {
	let open!: () => void;
	const promise = new Promise<void>((resolve) => {
		open = resolve;
	});
	return { promise, open };
}

/** Services with a clock the test moves (and, optionally, a logger the test reads). */
export function clockedServices(options: { logger?: Logger; env?: Record<string, string> } = {}) {
	const clock = { t: Date.now() };
	const built = createServices(
		loadConfig({ ...testEnv, ...options.env }),
		options.logger ?? createLogger("error"),
		new Timing(),
		() => new Date(clock.t),
	);
	return { ...built, clock };
}

/** A logger that keeps what it is told, for asserting on what operators would see. */
export function recordingLogger() {
	const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
	const make = (): Logger => ({
		debug: (msg, fields) => lines.push({ level: "debug", msg, fields }),
		info: (msg, fields) => lines.push({ level: "info", msg, fields }),
		warn: (msg, fields) => lines.push({ level: "warn", msg, fields }),
		error: (msg, fields) => lines.push({ level: "error", msg, fields }),
		child: () => make(),
	});
	return { logger: make(), lines };
}

/**
 * The three providers a lease test file registers for itself (so that another file's PUT cannot
 * change them mid-test): plain, invalidating on refresh, and one whose token endpoint drops every
 * connection. Returns a handle whose `services` is live between beforeAll and afterAll.
 */
export function leaseTestProviders(ids: { plain: string; invalidating: string; down: string }) {
	const handle = { services: undefined as unknown as Services };
	let dispose: (() => Promise<void>) | undefined;
	beforeAll(async () => {
		await registerProviders([
			[ids.plain, {}],
			[ids.invalidating, { refresh_invalidates_access_token: true }],
			[ids.down, { token_url: `http://127.0.0.1:${inject("dropperPort")}/token` }],
		]);
		const built = createServices(loadConfig(testEnv), createLogger("error"), new Timing());
		handle.services = built.services;
		dispose = built.dispose;
	});
	afterAll(async () => {
		await dispose?.();
	});
	return handle;
}

export async function registerProviders(entries: [string, Record<string, unknown>][]) {
	for (const [id, overrides] of entries) {
		const res = await putProvider(id, providerBody({ name: id, ...overrides }));
		if (res.status !== 200) throw new Error(`register ${id}: ${res.status} ${await res.text()}`);
	}
}

export async function connected(provider: string) {
	const user = await userWithKey();
	const username = account("lease");
	const id = await connect(user.key, username, {}, provider);
	return { user, username, id };
}

export async function rowOf(services: Services, id: string) {
	const found = await loadCredential(services, id);
	if (!found) throw new Error(`no credential ${id}`);
	return found as CredentialRow & { type: "oauth2" };
}

export async function tokensOf(services: Services, id: string) {
	return openSecret(services, await rowOf(services, id));
}

/** Ages a stored token: obtained `issuedAgoS` ago, expiring in `expiresInS` (from `now`). */
export async function age(id: string, issuedAgoS: number, expiresInS: number, now = Date.now()) {
	await db
		.update(credentials)
		.set({
			tokenIssuedAt: new Date(now - issuedAgoS * 1000),
			accessTokenExpiresAt: new Date(now + expiresInS * 1000),
		})
		.where(eq(credentials.id, id));
}

export function lease(
	key: string,
	id: string,
	body?: unknown,
	envOverride?: Record<string, string>,
) {
	return call(
		`/v1/credentials/${id}/leases`,
		{ method: "POST", token: key, ...(body === undefined ? {} : { json: body }) },
		envOverride,
	);
}

export async function leased(res: Response): Promise<Lease> {
	if (res.status !== 201) throw new Error(`lease: ${res.status} ${await res.text()}`);
	return (await res.json()) as Lease;
}

export async function storeCredential(key: string, body: Record<string, unknown>): Promise<string> {
	const res = await call("/v1/credentials", { method: "POST", token: key, json: body });
	if (res.status !== 201) throw new Error(`store: ${res.status} ${await res.text()}`);
	return ((await res.json()) as { id: string }).id;
}

/**
 * An invalidating provider's token inside its refresh margin (lifetime 120 s, margin 30 s, 20 s
 * left) that a lease holds anyway: the refresh was backing off when it was leased (so it was
 * leased to its expiry), and the backoff has just passed.
 */
export async function heldInMargin(s: Services, now: number, provider: string) {
	const c = await connected(provider);
	await age(c.id, 100, 20, now);
	await db
		.update(credentials)
		.set({ refreshRetryAt: new Date(now + 60_000), refreshFailures: 1 })
		.where(eq(credentials.id, c.id));
	const held = await createLease(s, { userId: c.user.id, credentialId: c.id, ttlSeconds: 10 });
	await db
		.update(credentials)
		.set({ refreshRetryAt: null, refreshFailures: 0 })
		.where(eq(credentials.id, c.id));
	return { ...c, held };
}

export const accessTokenOf = (l: Lease) => (l.secret as { access_token: string }).access_token;

/** Every refresh test ends here: the stored refresh token is one the provider still honours. */
export async function expectLiveRefreshToken(services: Services, id: string) {
	const { refresh_token } = await tokensOf(services, id);
	expect(refresh_token).toBeTruthy();
	expect((await introspect(refresh_token ?? "")).active).toBe(true);
}
