import { env } from "cloudflare:workers";
import { eq, inArray } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { openSecret } from "../../src/credentials/service.ts";
import { newId, randomBase62, randomBytes, toBase64 } from "../../src/crypto/encoding.ts";
import {
	credentialAad,
	credentialAadV2,
	getKeyRing,
	type KeyRing,
	open,
	providerAad,
	type Sealed,
	seal,
} from "../../src/crypto/envelope.ts";
import { type CredentialType, credentials, oauthProviders, users } from "../../src/db/schema.ts";
import { jobs } from "../../src/jobs/index.ts";
import {
	type LegacyCredentialSnapshot,
	resealRows,
	rewrapDataKeys,
	rewrapJob,
	rewrapRows,
	type SealedRowSnapshot,
} from "../../src/jobs/rewrap.ts";
import type { Logger } from "../../src/log.ts";
import { sealedSecretOf } from "../../src/oauth/providers.ts";
import { createServices, type Services } from "../../src/services.ts";
import { Timing } from "../../src/timing.ts";
import { testDb } from "./helpers.ts";

const testEnv = env as unknown as Record<string, string>;

// The database is shared with other test files running at the same time. Key ids unique to
// this file keep it deterministic: the job only moves rows under keys its ring holds, and the
// "new" key is the suite's own active key, so anything it touches stays readable for everyone.
const tag = randomBase62(8);
const OLD = `rw-old-${tag}`;
const GONE = `rw-gone-${tag}`;
const ACTIVE = testEnv.LATCHKEY_ENCRYPTION_ACTIVE_KEY as string;
const baseKeys = JSON.parse(testEnv.LATCHKEY_ENCRYPTION_KEYS as string) as Record<string, string>;
const oldKey = toBase64(randomBytes(32));

const envWith = (keys: Record<string, string>, active: string) => ({
	...testEnv,
	LATCHKEY_ENCRYPTION_KEYS: JSON.stringify(keys),
	LATCHKEY_ENCRYPTION_ACTIVE_KEY: active,
});
/** Before the rotation: only the old key. */
const oldEnv = envWith({ [OLD]: oldKey }, OLD);
/** Mid-rotation: the suite's key is active, the old one is still configured. */
const rotatedEnv = envWith({ ...baseKeys, [OLD]: oldKey }, ACTIVE);
/** A key that is later lost from the configuration. */
const goneEnv = envWith({ [GONE]: toBase64(randomBytes(32)) }, GONE);

interface Captured {
	level: string;
	msg: string;
	fields: Record<string, unknown>;
}

function capturingLogger(): Logger & { records: Captured[] } {
	const records: Captured[] = [];
	const logger = {
		records,
		debug: (msg: string, fields = {}) => void records.push({ level: "debug", msg, fields }),
		info: (msg: string, fields = {}) => void records.push({ level: "info", msg, fields }),
		warn: (msg: string, fields = {}) => void records.push({ level: "warn", msg, fields }),
		error: (msg: string, fields = {}) => void records.push({ level: "error", msg, fields }),
		child: () => logger,
	};
	return logger;
}

/** Services for the rotated configuration, disposed when `work` is done. */
async function withRotatedServices<T>(
	work: (services: Services, logs: Captured[]) => Promise<T>,
): Promise<T> {
	const logger = capturingLogger();
	const { services, dispose } = createServices(loadConfig(rotatedEnv), logger, new Timing());
	try {
		return await work(services, logger.records);
	} finally {
		await dispose();
	}
}

const db = testDb();
let oldRing: KeyRing;
let goneRing: KeyRing;
/** The suite's normal ring: it does not hold the old key. */
let currentRing: KeyRing;
let userId: string;
const credentialIds: string[] = [];
const providerIds: string[] = [];

interface Planted {
	id: string;
	table: "credentials" | "oauth_providers";
	aad: string;
	plaintext: string;
	sealed: Sealed;
}

async function plantCredential(
	ring: KeyRing,
	type: CredentialType,
	plaintext: string,
	owner: string | null = userId,
): Promise<Planted> {
	const id = newId("cred");
	const aad = credentialAadV2({ id, userId: owner, type, provider: "example", host: null });
	const sealed = await seal(ring, plaintext, aad);
	await db.db.insert(credentials).values({
		id,
		userId: owner,
		provider: "example",
		type,
		title: `rewrap ${type}`,
		system: owner === null,
		aadVersion: 2,
		...sealed,
	});
	credentialIds.push(id);
	return { id, table: "credentials", aad, plaintext, sealed };
}

/** A host-scoped credential as rows were written before AAD version 2 (host not bound). */
async function plantLegacyHostScoped(ring: KeyRing, host: string, headers: Record<string, string>) {
	const id = newId("cred");
	const sealed = await seal(
		ring,
		JSON.stringify({ headers }),
		credentialAad({ id, userId, type: "host_scoped" }),
	);
	await db.db.insert(credentials).values({
		id,
		userId,
		provider: "internal",
		type: "host_scoped",
		title: "legacy",
		host,
		...sealed,
	});
	credentialIds.push(id);
	return { id, sealed };
}

async function credentialRow(id: string) {
	const [row] = await db.db.select().from(credentials).where(eq(credentials.id, id));
	if (!row) throw new Error(`credential ${id} vanished`);
	return row;
}

const legacySnapshot = (
	row: Awaited<ReturnType<typeof credentialRow>>,
): LegacyCredentialSnapshot => ({
	id: row.id,
	userId: row.userId,
	type: row.type,
	provider: row.provider,
	host: row.host,
	aadVersion: row.aadVersion,
	version: row.version,
	ciphertext: row.ciphertext,
	dataKey: row.dataKey,
	keyId: row.keyId,
});

async function plantProvider(ring: KeyRing, plaintext: string): Promise<Planted> {
	const id = `rw-prov-${randomBase62(8).toLowerCase()}`;
	const aad = providerAad(id);
	const sealed = await seal(ring, plaintext, aad);
	await db.db.insert(oauthProviders).values({
		id,
		name: "Rewrap test provider",
		authorizeUrl: "https://idp.example.com/authorize",
		tokenUrl: "https://idp.example.com/token",
		clientId: "client",
		...sealed,
	});
	providerIds.push(id);
	return { id, table: "oauth_providers", aad, plaintext, sealed };
}

async function stored(p: Planted) {
	if (p.table === "credentials") {
		const [row] = await db.db.select().from(credentials).where(eq(credentials.id, p.id));
		if (!row) throw new Error(`credential ${p.id} vanished`);
		return row;
	}
	const [row] = await db.db.select().from(oauthProviders).where(eq(oauthProviders.id, p.id));
	if (!row) throw new Error(`provider ${p.id} vanished`);
	// Planted providers are OAuth ones: their sealed columns are set.
	return { ...row, ...sealedSecretOf(row) };
}

const snapshot = (s: Sealed & { id: string }): SealedRowSnapshot => ({
	id: s.id,
	ciphertext: s.ciphertext,
	dataKey: s.dataKey,
	keyId: s.keyId,
});

beforeAll(async () => {
	[oldRing, goneRing, currentRing] = await Promise.all([
		getKeyRing(loadConfig(oldEnv)),
		getKeyRing(loadConfig(goneEnv)),
		getKeyRing(loadConfig(testEnv)),
	]);
	userId = newId("usr");
	await db.db.insert(users).values({ id: userId, email: `rewrap-${tag}@example.com` });
});

afterAll(async () => {
	if (credentialIds.length)
		await db.db.delete(credentials).where(inArray(credentials.id, credentialIds));
	if (providerIds.length)
		await db.db.delete(oauthProviders).where(inArray(oauthProviders.id, providerIds));
	await db.db.delete(users).where(eq(users.id, userId));
	await db.end();
});

describe("rewrap-data-keys job", () => {
	it("is registered with the scheduled jobs", () => {
		expect(rewrapJob.name).toBe("rewrap-data-keys");
		expect(jobs).toContain(rewrapJob);
	});

	it("moves every row onto the active key, leaves unreadable rows alone, and then has nothing left", async () => {
		const planted = [
			await plantCredential(oldRing, "api_key", JSON.stringify({ api_key: "sk-rewrap" })),
			await plantCredential(
				oldRing,
				"user_password",
				JSON.stringify({ username: "ada", password: "pässwörd" }),
			),
			await plantCredential(
				oldRing,
				"host_scoped",
				JSON.stringify({ host: "api.example.com", headers: { "X-Key": "v" } }),
			),
			await plantCredential(
				oldRing,
				"oauth2",
				JSON.stringify({ access_token: "at", refresh_token: "rt" }),
			),
			await plantCredential(oldRing, "api_key", JSON.stringify({ api_key: "system" }), null),
			await plantProvider(oldRing, "client-secret-rewrap"),
		];
		const lost = await plantCredential(goneRing, "api_key", JSON.stringify({ api_key: "lost" }));
		const before = new Map(
			await Promise.all(planted.map(async (p) => [p.id, await stored(p)] as const)),
		);

		// A bounded run stops after its batch budget even though work remains.
		const bounded = await withRotatedServices((s) =>
			rewrapDataKeys(s, { batchSize: 2, maxBatches: 1 }),
		);
		expect(bounded.batches).toBe(1);
		expect(bounded.rewrapped).toBeLessThanOrEqual(2);
		expect(bounded.remaining).toBeGreaterThanOrEqual(planted.length - 2);

		const { result, logs } = await withRotatedServices(async (s, logs) => ({
			result: await rewrapJob.run(s),
			logs,
		}));
		expect(result.rewrapped).toBeGreaterThanOrEqual(planted.length - 2);
		expect(result.failed).toBeGreaterThanOrEqual(1);

		for (const p of planted) {
			const row = await stored(p);
			const was = before.get(p.id);
			expect(row.keyId).toBe(ACTIVE);
			expect(row.ciphertext).toBe(p.sealed.ciphertext);
			expect(row.dataKey).not.toBe(p.sealed.dataKey);
			expect(row.updatedAt).toEqual(was?.updatedAt);
			if ("version" in row) expect(row.version).toBe(1);
			expect(await open(currentRing, row, p.aad, p.id)).toBe(p.plaintext);
		}

		const lostRow = await stored(lost);
		expect(lostRow.keyId).toBe(GONE);
		expect(lostRow.dataKey).toBe(lost.sealed.dataKey);
		expect(lostRow.ciphertext).toBe(lost.sealed.ciphertext);
		const failure = logs.find((r) => r.level === "warn" && r.fields.row_id === lost.id);
		expect(failure?.fields).toMatchObject({ table: "credentials", key_id: GONE });
		const logged = JSON.stringify(logs);
		for (const p of [...planted, lost]) {
			expect(logged).not.toContain(p.sealed.ciphertext);
			expect(logged).not.toContain(p.sealed.dataKey);
			expect(logged).not.toContain(p.plaintext);
		}
		expect(logged).not.toContain(oldKey);
		expect(
			logs.find((r) => r.msg.includes("can be dropped") && r.fields.key_id === OLD),
		).toBeDefined();
		expect(
			logs.find((r) => r.level === "error" && r.fields.key_id === GONE && r.fields.row_count === 1),
		).toBeDefined();
		expect(result.droppable_keys).toBeGreaterThanOrEqual(1);
		expect(result.old_keys_in_use).toBeGreaterThanOrEqual(1);

		const second = await withRotatedServices((s) => rewrapDataKeys(s));
		expect(second.rewrapped).toBe(0);
		expect(second.conflicts).toBe(0);
		expect((await stored(lost)).dataKey).toBe(lost.sealed.dataKey);
	});

	it("does not clobber a row re-sealed between the read and the write", async () => {
		const untouched = await plantCredential(oldRing, "api_key", JSON.stringify({ api_key: "a" }));
		const raced = await plantCredential(oldRing, "api_key", JSON.stringify({ api_key: "b" }));
		const staleRows = [snapshot(await stored(untouched)), snapshot(await stored(raced))];

		// A concurrent PATCH re-seals the secret (still under the old key, as an instance that has
		// not picked up the rotation would) and bumps the version.
		const resealed = await seal(oldRing, JSON.stringify({ api_key: "b2" }), raced.aad);
		await db.db
			.update(credentials)
			.set({ ...resealed, version: 2 })
			.where(eq(credentials.id, raced.id));

		const outcome = await withRotatedServices(async (s) =>
			rewrapRows(s, await getKeyRing(s.config), "credentials", staleRows),
		);
		expect(outcome).toEqual({ rewrapped: 1, failed: 0, conflicts: 1 });

		const racedRow = await stored(raced);
		expect(racedRow).toMatchObject({ ...resealed, version: 2 });
		expect(await open(oldRing, racedRow, raced.aad, raced.id)).toBe('{"api_key":"b2"}');
		const untouchedRow = await stored(untouched);
		expect(untouchedRow.keyId).toBe(ACTIVE);
		expect(await open(currentRing, untouchedRow, untouched.aad, untouched.id)).toBe(
			untouched.plaintext,
		);
	});

	it("counts a tampered row as failed without writing it or stopping the batch", async () => {
		const good = await plantCredential(oldRing, "api_key", JSON.stringify({ api_key: "g" }));
		const bad = await plantCredential(oldRing, "api_key", JSON.stringify({ api_key: "t" }));
		const tampered = `${bad.sealed.dataKey.slice(0, 10)}${bad.sealed.dataKey[10] === "A" ? "B" : "A"}${bad.sealed.dataKey.slice(11)}`;
		await db.db.update(credentials).set({ dataKey: tampered }).where(eq(credentials.id, bad.id));

		const outcome = await withRotatedServices(async (s) =>
			rewrapRows(s, await getKeyRing(s.config), "credentials", [
				snapshot(await stored(bad)),
				snapshot(await stored(good)),
			]),
		);
		expect(outcome).toEqual({ rewrapped: 1, failed: 1, conflicts: 0 });
		expect((await stored(bad)).dataKey).toBe(tampered);
		expect((await stored(good)).keyId).toBe(ACTIVE);
	});
});

describe("re-sealing credentials under the AAD that binds provider and host", () => {
	it("moves legacy rows to the current AAD, after which a moved host or provider fails to open", async () => {
		const headers = { "X-Api-Key": "legacy-header-secret" };
		const underOld = await plantLegacyHostScoped(oldRing, "api.example.com", headers);
		const underActive = await plantLegacyHostScoped(currentRing, "api.example.com", headers);
		// Legacy rows still open (the job must be able to read them).
		await withRotatedServices(async (s) => {
			expect(await openSecret(s, await credentialRow(underActive.id))).toEqual({ headers });
		});

		const result = await withRotatedServices((s) => rewrapDataKeys(s));
		expect(result.resealed).toBeGreaterThanOrEqual(2);
		for (const planted of [underOld, underActive]) {
			const row = await credentialRow(planted.id);
			expect(row.aadVersion).toBe(2);
			expect(row.keyId).toBe(ACTIVE);
			expect(row.ciphertext).not.toBe(planted.sealed.ciphertext);
			expect(row.version).toBe(1);
		}

		await withRotatedServices(async (s) => {
			const row = await credentialRow(underOld.id);
			expect(await openSecret(s, row)).toEqual({ headers });
			// Someone with write access to the table points the headers at another host…
			await expect(openSecret(s, { ...row, host: "attacker.example.net" })).rejects.toMatchObject({
				code: "decryption_failed",
				message: expect.stringContaining(`credential ${row.id}`),
			});
			// …or the credential at another provider, or pretends the row is still legacy.
			await expect(openSecret(s, { ...row, provider: "other" })).rejects.toMatchObject({
				code: "decryption_failed",
				message: expect.stringContaining(row.id),
			});
			await expect(openSecret(s, { ...row, aadVersion: 1 })).rejects.toMatchObject({
				code: "decryption_failed",
			});
		});

		await db.db
			.update(credentials)
			.set({ host: "attacker.example.net" })
			.where(eq(credentials.id, underActive.id));
		await withRotatedServices(async (s) => {
			await expect(openSecret(s, await credentialRow(underActive.id))).rejects.toMatchObject({
				code: "decryption_failed",
				message: expect.stringContaining(underActive.id),
			});
		});
	});

	it("does not overwrite a row changed between the read and the write", async () => {
		const kept = await plantLegacyHostScoped(currentRing, "a.example.com", { "X-K": "1" });
		const raced = await plantLegacyHostScoped(currentRing, "b.example.com", { "X-K": "2" });
		const stale = [
			legacySnapshot(await credentialRow(kept.id)),
			legacySnapshot(await credentialRow(raced.id)),
		];
		// A concurrent PATCH (title only: the sealed columns stay) bumps the version.
		await db.db
			.update(credentials)
			.set({ title: "renamed", version: 2 })
			.where(eq(credentials.id, raced.id));

		const outcome = await withRotatedServices(async (s) =>
			resealRows(s, await getKeyRing(s.config), stale),
		);
		expect(outcome).toEqual({ resealed: 1, failed: 0, conflicts: 1 });
		const racedRow = await credentialRow(raced.id);
		expect(racedRow).toMatchObject({ title: "renamed", version: 2, aadVersion: 1 });
		expect(racedRow.dataKey).toBe(raced.sealed.dataKey);
		expect((await credentialRow(kept.id)).aadVersion).toBe(2);
	});
});
