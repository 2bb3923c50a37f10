/**
 * Provisioning of managed credentials: what `GET /v1/credentials` calls to give a user the
 * credentials of every managed provider. The design (docs/managed.md):
 *
 * - Common path: one Redis round trip (a pipeline of two SMEMBERS: the mirror of the enabled
 *   generic provisioners, and the user's "provisioned" marker set), no Postgres and no lock.
 * - Otherwise, per missing provider: a per-(user, provider) `@upstash/lock`, then, in one
 *   Postgres batch, the intent row (managed_provisionings: attempts + 1, status pending) and a
 *   double check for the credential. The provider runs with the intent's recorded resources,
 *   records every resource it creates the moment it exists, and the credential is stored
 *   fenced by the attempt number, so an attempt that lost its lock cannot store a key that
 *   a newer attempt has already cleaned up.
 * - The listing waits at most PROVISION_WAIT_MS; the rest finishes under waitUntil. A failure is
 *   logged, recorded on the intent (last_error) and retried by a later listing after a backoff.
 */
import { Lock } from "@upstash/lock";
import { and, eq, inArray, sql } from "drizzle-orm";
import type { Config } from "../config.ts";
import { sealSecret } from "../credentials/service.ts";
import { newId } from "../crypto/encoding.ts";
import { sha256Hex } from "../crypto/hash.ts";
import {
	credentials,
	type ManagedProvisioningRow,
	managedProviderConfigs,
	managedProvisionings,
	users,
} from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import { createServices, type Services } from "../services.ts";
import { Timing } from "../timing.ts";
import { type ManagedProvider, ManagedProviderError, type ManagedUser } from "./provider.ts";
import { BUILTIN_MANAGED_PROVIDERS, findManagedProvider } from "./registry.ts";

/** How long a listing waits for missing managed credentials before answering without them. */
export const PROVISION_WAIT_MS = 2_000;
/** The lock's lease; each external call is bounded at 8 s and every record() extends it. */
const LOCK_LEASE_MS = 30_000;
/** Lock attempts 100 ms apart: a second listing waits about as long as the listing bound. */
const LOCK_RETRY = { attempts: 20, delay: 100 };
/** The "provisioned" marker outlives any session; it only saves work, Postgres stays the truth. */
const MARKER_TTL_SECONDS = 7 * 24 * 3600;
/** The mirror of enabled generic provisioners is rebuilt from Postgres at most this stale. */
const MIRROR_TTL_SECONDS = 300;
/** Present in every mirror, so an empty mirror is told apart from a missing one. */
const MIRROR_SENTINEL = "-";

/** After a failed attempt, later listings leave the provider alone for this long. */
export function retryBackoffMs(attempts: number): number {
	return Math.min(5_000 * 2 ** Math.max(0, attempts - 1), 15 * 60_000);
}

// Keys carry a tag of the database they mirror: deployments (or test runs) that share one
// Redis must not read each other's provisioner list.
const namespaces = new WeakMap<Config, Promise<string>>();
function namespace(config: Config): Promise<string> {
	let ns = namespaces.get(config);
	if (!ns) {
		ns = sha256Hex(config.DATABASE_URL).then((h) => `lk:managed:${h.slice(0, 12)}`);
		namespaces.set(config, ns);
	}
	return ns;
}

export const managedKeys = async (config: Config) => {
	const ns = await namespace(config);
	return {
		mirror: `${ns}:providers`,
		done: (userId: string) => `${ns}:done:${userId}`,
		lock: (userId: string, provider: string) => `${ns}:lock:${userId}:${provider}`,
	};
};

/** Rebuilds the Redis mirror of enabled generic provisioners from Postgres; returns their ids. */
export async function refreshProvisionerMirror(services: Services): Promise<string[]> {
	const rows = await services.db
		.select({ id: managedProviderConfigs.id })
		.from(managedProviderConfigs)
		.where(eq(managedProviderConfigs.enabled, true));
	const ids = rows.map((r) => r.id);
	const keys = await managedKeys(services.config);
	await services.redis
		.multi()
		.del(keys.mirror)
		.sadd(keys.mirror, MIRROR_SENTINEL, ...ids)
		.expire(keys.mirror, MIRROR_TTL_SECONDS)
		.exec();
	return ids;
}

/**
 * Housekeeping, not the request's work: it runs on its own services (own Timing), so it never
 * shows in the request's Server-Timing round-trip counts.
 */
async function rebuildMirrorDetached(services: Services): Promise<void> {
	const detached = createServices(services.config, services.logger, new Timing(), services.now);
	try {
		await refreshProvisionerMirror(detached.services);
	} catch (err) {
		services.logger.warn("managed provisioner mirror rebuild failed", {
			error_code: err instanceof LatchkeyError ? err.code : "error",
		});
	} finally {
		await detached.dispose();
	}
}

/**
 * A member `<provider>@<unix ms>` of the marker set: the provider failed for this user and is
 * not retried before that instant (by the injectable clock), so listings in the backoff cost no
 * Postgres either. Provider ids are slugs, which never contain "@".
 */
const backoffMember = (provider: string, retryAt: number) => `${provider}@${retryAt}`;

function backingOffInMarker(done: string[], provider: string, now: number): boolean {
	const prefix = `${provider}@`;
	return done.some((m) => m.startsWith(prefix) && Number(m.slice(prefix.length)) > now);
}

/** Records a failure's backoff in the marker set, replacing the provider's older ones. */
async function markBackoff(
	services: Services,
	userId: string,
	provider: string,
	retryAt: number,
	done: string[],
) {
	const key = (await managedKeys(services.config)).done(userId);
	const stale = done.filter((m) => m.startsWith(`${provider}@`));
	const pipe = services.redis.pipeline();
	if (stale.length > 0) pipe.srem(key, ...stale);
	await pipe.sadd(key, backoffMember(provider, retryAt)).expire(key, MARKER_TTL_SECONDS).exec();
}

async function markProvisioned(services: Services, userId: string, providers: string[]) {
	if (providers.length === 0) return;
	const key = (await managedKeys(services.config)).done(userId);
	const [first, ...rest] = providers as [string, ...string[]];
	await services.redis
		.pipeline()
		.sadd(key, first, ...rest)
		.expire(key, MARKER_TTL_SECONDS)
		.exec();
}

/**
 * Providers that should have a credential for every user of this deployment now. A missing
 * mirror (first request of a deployment, expiry, eviction) counts as "no generic provisioner"
 * for this request and is rebuilt in the background, so no listing waits on Postgres for it;
 * the generic provisioners are then provisioned by a later listing.
 */
async function wantedProviders(
	services: Services,
	mirror: string[],
	background: (work: Promise<unknown>) => void,
): Promise<string[]> {
	let generic: string[] = [];
	if (mirror.includes(MIRROR_SENTINEL)) generic = mirror.filter((id) => id !== MIRROR_SENTINEL);
	else background(rebuildMirrorDetached(services));
	const builtins: string[] = [];
	for (const p of BUILTIN_MANAGED_PROVIDERS) if (await p.available(services)) builtins.push(p.id);
	return [...builtins, ...generic.sort()];
}

/**
 * Makes sure the user has a credential of every available managed provider. Never throws and
 * never takes longer than PROVISION_WAIT_MS (plus one Redis round trip): whatever is still
 * running then goes to `background` (the request's waitUntil). Resolves true when a managed
 * credential may have appeared meanwhile, so the caller reads the list again.
 */
export async function ensureManagedCredentials(
	services: Services,
	userId: string,
	background: (work: Promise<unknown>) => void,
): Promise<boolean> {
	let missing: string[];
	let done: string[];
	try {
		const keys = await managedKeys(services.config);
		const [mirror, markers] = await services.redis
			.pipeline()
			.smembers(keys.mirror)
			.smembers(keys.done(userId))
			.exec<[string[], string[]]>();
		done = markers;
		const wanted = await wantedProviders(services, mirror, background);
		const now = services.now().getTime();
		missing = wanted.filter((id) => !done.includes(id) && !backingOffInMarker(done, id, now));
	} catch (err) {
		logFailure(services, "managed provisioning check failed", userId, undefined, err);
		return false;
	}
	if (missing.length === 0) return false;

	const work = provisionMissing(services, userId, missing, done).catch((err) => {
		logFailure(services, "managed provisioning failed", userId, undefined, err);
		return false;
	});
	background(work);
	let timer: ReturnType<typeof setTimeout> | undefined;
	const bound = new Promise<boolean>((resolve) => {
		timer = setTimeout(() => resolve(false), PROVISION_WAIT_MS);
	});
	try {
		return await Promise.race([work, bound]);
	} finally {
		if (timer !== undefined) clearTimeout(timer);
	}
}

function logFailure(
	services: Services,
	msg: string,
	userId: string,
	provider: string | undefined,
	err: unknown,
) {
	services.logger.warn(msg, {
		user_id: userId,
		...(provider ? { provider } : {}),
		error_code:
			err instanceof LatchkeyError
				? err.code
				: err instanceof ManagedProviderError
					? `provider_${err.status ?? "error"}`
					: "error",
		// Provider errors are written to carry no secret and no upstream body.
		error: err instanceof ManagedProviderError ? err.message : undefined,
	});
}

async function provisionMissing(
	services: Services,
	userId: string,
	missing: string[],
	markers: string[],
): Promise<boolean> {
	const { db } = services;
	// One round trip: the user (status, email), credentials already there (a lost marker), and
	// the intents (backoff after a failure).
	const [userRows, present, intents] = await db.batch([
		db
			.select({ id: users.id, email: users.email, status: users.status })
			.from(users)
			.where(eq(users.id, userId))
			.limit(1),
		db
			.select({ provider: credentials.provider })
			.from(credentials)
			.where(
				and(
					eq(credentials.userId, userId),
					eq(credentials.managed, true),
					inArray(credentials.provider, missing),
				),
			),
		db
			.select()
			.from(managedProvisionings)
			.where(
				and(
					eq(managedProvisionings.userId, userId),
					inArray(managedProvisionings.provider, missing),
				),
			),
	]);
	const user = userRows[0];
	// Suspended or deleting users get nothing new; the deletion jobs remove what they have.
	if (user?.status !== "active") return false;
	const have = new Set(present.map((r) => r.provider));
	await markProvisioned(services, userId, [...have]);
	const now = services.now().getTime();
	const backingOff = (intent: ManagedProvisioningRow | undefined) =>
		intent?.status === "failed" &&
		intent.updatedAt.getTime() + retryBackoffMs(intent.attempts) > now;
	const todo = missing.filter(
		(id) => !have.has(id) && !backingOff(intents.find((i) => i.provider === id)),
	);
	const results = await Promise.all(
		todo.map(async (id) => {
			try {
				const provider = await findManagedProvider(services, id);
				if (!provider || !(await provider.available(services))) return false;
				return await provisionOne(services, { id: user.id, email: user.email }, provider, markers);
			} catch (err) {
				logFailure(services, "managed provisioning failed", userId, id, err);
				return false;
			}
		}),
	);
	return results.some(Boolean);
}

/** True when the user has the provider's credential at the end (made here or found). */
async function provisionOne(
	services: Services,
	user: ManagedUser,
	provider: ManagedProvider,
	markers: string[],
): Promise<boolean> {
	const { db } = services;
	const keys = await managedKeys(services.config);
	const lock = new Lock({
		id: keys.lock(user.id, provider.id),
		redis: services.redis,
		lease: LOCK_LEASE_MS,
		retry: LOCK_RETRY,
	});
	// Not acquired: another request is provisioning and will set the marker.
	if (!(await lock.acquire())) return false;
	const clientId = provider.clientIdFor(user.id);
	let attempt: number | undefined;
	try {
		const now = services.now();
		// The intent comes first and in the same transaction as the double check, which
		// therefore sees any credential a previous lock holder stored before this attempt began.
		const [intent, existing] = await db.batch([
			db
				.insert(managedProvisionings)
				.values({
					userId: user.id,
					provider: provider.id,
					clientId,
					status: "pending",
					attempts: 1,
					createdAt: now,
					updatedAt: now,
				})
				.onConflictDoUpdate({
					target: [managedProvisionings.userId, managedProvisionings.provider],
					set: {
						attempts: sql`${managedProvisionings.attempts} + 1`,
						status: "pending",
						clientId,
						updatedAt: now,
					},
				})
				.returning({
					attempts: managedProvisionings.attempts,
					resources: managedProvisionings.resources,
				}),
			db
				.select({ id: credentials.id })
				.from(credentials)
				.where(
					and(
						eq(credentials.userId, user.id),
						eq(credentials.provider, provider.id),
						eq(credentials.managed, true),
					),
				)
				.limit(1),
		]);
		const row = intent[0];
		if (!row) throw new Error("managed provisioning intent was not written");
		attempt = row.attempts;
		if (existing.length > 0) {
			await setIntentStatus(services, user.id, provider.id, attempt, "done", null);
			await markProvisioned(services, user.id, [provider.id]);
			return true;
		}

		const resources: Record<string, string> = { ...row.resources };
		const provisioned = await provider.provision(services, user, {
			clientId,
			resources: { ...resources },
			record: async (created) => {
				Object.assign(resources, created);
				// Not fenced: an id must never be lost, whichever attempt made it.
				await db
					.update(managedProvisionings)
					.set({
						resources: sql`${managedProvisionings.resources} || ${JSON.stringify(created)}::jsonb`,
						updatedAt: services.now(),
					})
					.where(
						and(
							eq(managedProvisionings.userId, user.id),
							eq(managedProvisionings.provider, provider.id),
						),
					);
				await lock.extend(LOCK_LEASE_MS).catch(() => false);
			},
		});
		const stored = await storeFenced(services, user.id, provider, attempt, {
			...provisioned,
			resources: { ...resources, ...provisioned.resources },
		});
		if (!stored) {
			// A newer attempt took over (this one outlived its lock): it cleans up what this one
			// made, since every id is recorded.
			services.logger.warn("managed provisioning superseded", {
				user_id: user.id,
				provider: provider.id,
				attempt,
			});
			return false;
		}
		await markProvisioned(services, user.id, [provider.id]);
		services.logger.info("managed credential provisioned", {
			user_id: user.id,
			provider: provider.id,
			credential_id: stored,
			attempt,
		});
		return true;
	} catch (err) {
		logFailure(services, "managed provisioning failed", user.id, provider.id, err);
		if (attempt !== undefined) {
			const message =
				err instanceof ManagedProviderError
					? err.message
					: err instanceof LatchkeyError
						? err.code
						: "internal error";
			await setIntentStatus(services, user.id, provider.id, attempt, "failed", message).catch(
				() => undefined,
			);
			const retryAt = services.now().getTime() + retryBackoffMs(attempt);
			await markBackoff(services, user.id, provider.id, retryAt, markers).catch(() => undefined);
		}
		return false;
	} finally {
		await lock.release().catch(() => false);
	}
}

async function setIntentStatus(
	services: Services,
	userId: string,
	provider: string,
	attempt: number,
	status: "done" | "failed",
	lastError: string | null,
) {
	await services.db
		.update(managedProvisionings)
		.set({ status, lastError: lastError?.slice(0, 500) ?? null, updatedAt: services.now() })
		.where(
			and(
				eq(managedProvisionings.userId, userId),
				eq(managedProvisionings.provider, provider),
				eq(managedProvisionings.attempts, attempt),
			),
		);
}

/**
 * Stores the credential and marks the intent done in one statement, only if the intent is
 * still at this attempt (fencing). Returns the credential id, or null when fenced out.
 */
async function storeFenced(
	services: Services,
	userId: string,
	provider: ManagedProvider,
	attempt: number,
	provisioned: { title: string; apiKey: string; resources: Record<string, string> },
): Promise<string | null> {
	const id = newId("cred");
	const now = services.now().toISOString();
	const sealed = await sealSecret(
		services,
		{ id, userId, type: "api_key", provider: provider.id, host: null },
		{ api_key: provisioned.apiKey },
	);
	const result = await services.db.execute(sql`
		with fence as (
			update managed_provisionings
			set status = 'done', last_error = null, updated_at = ${now}::timestamptz
			where user_id = ${userId} and provider = ${provider.id}
				and attempts = ${attempt} and status = 'pending'
				-- A user whose deletion began meanwhile gets nothing new; the deletion jobs
				-- deprovision what this attempt recorded.
				and exists (select 1 from users where id = ${userId} and status = 'active')
			returning 1
		)
		insert into credentials (id, user_id, provider, type, title, metadata, managed,
			ciphertext, data_key, key_id, aad_version, created_at, updated_at)
		select ${id}, ${userId}, ${provider.id}, 'api_key', ${provisioned.title},
			${JSON.stringify(provisioned.resources)}::jsonb, true,
			${sealed.ciphertext}, ${sealed.dataKey}, ${sealed.keyId}, ${sealed.aadVersion},
			${now}::timestamptz, ${now}::timestamptz
		from fence
		on conflict (user_id, provider) where managed do nothing
		returning id`);
	const rows = (result as unknown as { rows: { id: string }[] }).rows;
	return rows[0]?.id ?? null;
}
