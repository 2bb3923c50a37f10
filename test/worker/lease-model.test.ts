import { eq } from "drizzle-orm";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import {
	deleteCredentialRow,
	openSecret,
	updateCredential,
} from "../../src/credentials/service.ts";
import { type CredentialRow, credentials } from "../../src/db/schema.ts";
import { LatchkeyError } from "../../src/errors.ts";
import {
	DEFAULT_LEASE_TTL_S,
	leaseEnd,
	MAX_LEASE_TTL_S,
	needsRefresh,
	tokenLimit,
} from "../../src/leases/policy.ts";
import { loadCredential, type RefreshHooks } from "../../src/leases/refresh.ts";
import {
	createLease,
	endCredentialLeases,
	type Lease,
	releaseLease,
	renewLease,
} from "../../src/leases/service.ts";
import { leaseKeys } from "../../src/leases/store.ts";
import { createLogger } from "../../src/log.ts";
import { createServices, type Services } from "../../src/services.ts";
import { Timing } from "../../src/timing.ts";
import { createKeyJson, exchange, userWithKey } from "./fixtures.ts";
import { call, clockedApp, expectError, testDb, testEnv } from "./helpers.ts";
import {
	authorize,
	callbackPath,
	connectIdOf,
	drive,
	finalize,
	introspect,
	providerBody,
	putProvider,
	RETURN_TO,
	refreshAttempts,
} from "./oauth-helpers.ts";

/**
 * A model-based test of the lease engine (docs/leases.md) on ONE OAuth credential at the real
 * authorization server (oidc-provider: refresh tokens rotated on every use, a reused one revoking
 * its whole grant), the real Redis scripts and the real Postgres row. fast-check interleaves
 * leases, renewals, releases, forced refreshes (some with another writer slipped in between the
 * provider's answer and the database write, through the engine's own hook), title edits, secret
 * edits, reconnects, clock steps, a revoked caller and the deletion; after every step the real
 * state is compared with a small model (live leases and their ends, the token each got, the
 * stored tokens, status, version and token version, whether the credential exists). Half the
 * runs use two-minute access tokens, shorter-lived than a lease.
 *
 * Invariants checked after every step:
 * - the stored refresh token is the provider's live one (introspected), unless the model says
 *   why not (below), or the credential is deleted;
 * - a lease returns the stored access token, never one a refresh, reconnect or edit replaced; a
 *   title edit, even during a refresh, neither fences the refresh nor loses its rotated token;
 * - no lease outlives its token: expires_at = min(now + ttl, token expiry), renewals past the
 *   token are 409 token_expiring, and Redis holds exactly the model's live leases;
 * - a revoked key or session is 401 at the lease route and nothing is granted;
 * - after deletion renew and release are 410 lease_gone, a lease is 404, Redis holds nothing.
 *
 * How secret edits and reconnects interact with the refresh token, as modelled here:
 * - a secret edit that names only `access_token` is merged over the stored secret: the refresh
 *   token stays the provider's live one;
 * - a secret edit that names `refresh_token` too legitimately replaces it with the user's value,
 *   which the provider does not know ("foreign"): the next refresh is `invalid_grant`, the
 *   credential turns `reconnect_required`, and a reconnect repairs it;
 * - a reconnect stores the new grant's refresh token, live; one that lands while a refresh is in
 *   flight fences that refresh off (its answer is dropped, the reconnect's tokens stand);
 * - a second refresher whose lock lapsed in a stall presents the rotated-away refresh token: the
 *   provider refuses it and, detecting reuse, revokes the whole grant. The refresher holding the
 *   answer still writes it over `reconnect_required` (the token version did not move), so the
 *   credential is active with tokens the provider has revoked ("revoked"); the next refresh is
 *   `invalid_grant` and asks for a reconnect;
 * - an access-token-only edit while a refresh is in flight fences the refresh; the user's access
 *   token stands and the refresh's rotated refresh token is carried over onto it (the stored one
 *   stays live).
 *
 * Time: Latchkey's clock is injected (the services here and the app that connects), so tokens,
 * leases and renewals all run on the model clock; nothing sleeps. The provider's own clock is
 * real, which only bounds refresh tokens (a day).
 */

const PROVIDER_ID = "lease-model-idp";
const SEED = 42;
const NUM_RUNS = 25;
const MAX_COMMANDS = 25;
/** fast-check starts no new run after this (a failing run still shrinks within it). */
const TIME_LIMIT_MS = 40_000;
const MIN_RUNS = 6;
const MIN_STEPS_BEFORE_DELETE = 8;
const DELETED_GENERATION = "9007199254740991";
const LIVE_RT = "the stored refresh token is live at the provider exactly when the model says";

type OAuthRow = CredentialRow & { type: "oauth2" };
type RtState = "live" | "foreign" | "revoked";

interface ModelLease {
	id: string;
	/** When the lease ends (epoch ms of the model clock). */
	end: number;
	/** The latest end the leased token allows (its expiry at grant time); null when unknown. */
	limit: number | null;
	token: string;
	released: boolean;
}

interface Model {
	/** The model clock (epoch ms): the services' injected clock and the app's, moved together. */
	now: number;
	deleted: boolean;
	status: "active" | "reconnect_required";
	access: string;
	refresh: string;
	/** What the provider thinks of the stored refresh token. */
	rt: RtState;
	version: number;
	tokenVersion: number;
	title: string;
	leases: ModelLease[];
	/** Access tokens a refresh, reconnect or edit replaced: no lease may return one again. */
	superseded: Set<string>;
	revokedCallerDone: boolean;
	counter: number;
	/** Steps run so far. */
	steps: number;
}

interface Real {
	s: Services;
	/** The worker's app on the model clock: connects and reconnects stamp their tokens with it. */
	app: ReturnType<typeof clockedApp>;
	/** Work a lease leaves running past its answer (last_used_at), awaited after each step. */
	pending: Promise<unknown>[];
	clock: { t: number };
	userId: string;
	key: string;
	username: string;
	id: string;
}

type Cmd = fc.AsyncCommand<Model, Real>;

const { db } = testDb();

let services: Services;
let clock: { t: number };
let dispose: () => Promise<void>;

beforeAll(async () => {
	const res = await putProvider(PROVIDER_ID, providerBody({ name: PROVIDER_ID }));
	if (res.status !== 200) throw new Error(`register provider: ${res.status} ${await res.text()}`);
	clock = { t: Date.now() };
	const built = createServices(
		loadConfig(testEnv),
		createLogger("error"),
		new Timing(),
		() => new Date(clock.t),
	);
	services = built.services;
	dispose = built.dispose;
});

afterAll(async () => {
	await dispose?.();
});

/**
 * Accounts named so get two-minute access tokens at the test server (test/setup/oauth-server.ts):
 * tokens shorter-lived than a lease, whose leases are cut to their expiry.
 */
const SHORT_LIVED_ACCOUNT = "short-lived-";

let accounts = 0;
const account = (shortLived: boolean) =>
	`${shortLived ? SHORT_LIVED_ACCOUNT : "model-"}${Date.now().toString(36)}-${(accounts++).toString(36)}-${Math.random().toString(36).slice(2, 6)}`;

/**
 * authorize → log in at the provider → callback → claim, through the app on the model clock (the
 * `connect` of oauth-helpers, with every Latchkey request on that clock): a reconnect of the same
 * account repairs the credential in place.
 */
async function connectVia(
	app: ReturnType<typeof clockedApp>,
	key: string,
	username: string,
): Promise<string> {
	const started = await authorize(key, { return_to: RETURN_TO }, PROVIDER_ID, app.call);
	const callback = await app.call(callbackPath(await drive(started.authorization_url, username)));
	const res = await finalize(key, connectIdOf(callback), app.call);
	if (res.status !== 201) throw new Error(`connect: ${res.status} ${await res.text()}`);
	return ((await res.json()) as { id: string }).id;
}

async function rowOf(r: Real): Promise<OAuthRow> {
	const row = await loadCredential(r.s, r.id);
	if (row?.type !== "oauth2") throw new Error(`no OAuth credential ${r.id}`);
	return row as OAuthRow;
}

async function storedTokens(r: Real) {
	const row = await rowOf(r);
	const secret = await openSecret(r.s, row);
	return { row, access: secret.access_token, refresh: secret.refresh_token ?? "" };
}

const timesOf = (row: CredentialRow) => ({
	expiresAt: row.accessTokenExpiresAt,
	issuedAt: row.tokenIssuedAt,
});

/** The error code a domain call fails with; throws if it succeeds. */
async function failure(work: Promise<unknown>): Promise<string> {
	try {
		await work;
	} catch (err) {
		if (err instanceof LatchkeyError) return err.code;
		throw err;
	}
	throw new Error("expected the call to fail");
}

const accessOf = (l: Lease) => (l.secret as { access_token: string }).access_token;

function leaseOf(r: Real, ttlSeconds: number, hooks?: RefreshHooks) {
	return createLease(r.s, {
		userId: r.userId,
		credentialId: r.id,
		ttlSeconds,
		hooks,
		defer: (work) => r.pending.push(work),
	});
}

/** Waits for the work leases left running, so no step overlaps the previous one's. */
async function settle(r: Real): Promise<void> {
	await Promise.all(r.pending.splice(0));
}

/**
 * A lease was granted: it carries the stored token (never a superseded one), ends at
 * min(now + ttl, token expiry), and says when its token ends.
 */
async function recordLease(m: Model, r: Real, l: Lease, ttlSeconds: number): Promise<void> {
	const row = await rowOf(r);
	const now = new Date(m.now);
	const token = accessOf(l);
	expect(token, "a lease returns the stored access token").toBe(m.access);
	expect(m.superseded.has(token), "a lease never returns a superseded token").toBe(false);
	expect(l.credential_id).toBe(r.id);
	expect(l.token_expires_at).toBe(row.accessTokenExpiresAt?.toISOString() ?? null);
	const limit = tokenLimit(timesOf(row), row.updatedAt, now, false);
	expect(l.expires_at).toBe(leaseEnd(now, ttlSeconds * 1000, limit).toISOString());
	if (l.token_expires_at !== null) {
		expect(Date.parse(l.expires_at), "no lease outlives its token").toBeLessThanOrEqual(
			Date.parse(l.token_expires_at),
		);
	}
	m.leases.push({
		id: l.lease_id,
		end: Date.parse(l.expires_at),
		limit: l.token_expires_at === null ? null : Date.parse(l.token_expires_at),
		token,
		released: false,
	});
}

/**
 * A refresh from the model's tokens landed: new access and refresh tokens, the presented refresh
 * token spent at the provider (presented `presented` times), one token write.
 */
async function expectRefreshed(m: Model, r: Real, presented = 1): Promise<void> {
	const now = await storedTokens(r);
	expect(now.access, "the refresh stored a new access token").not.toBe(m.access);
	expect(now.refresh, "the refresh stored the rotated refresh token").not.toBe(m.refresh);
	expect(now.row.status).toBe("active");
	expect(now.row.tokenIssuedAt?.getTime()).toBe(m.now);
	expect(await refreshAttempts(m.refresh), "times the old refresh token was presented").toBe(
		presented,
	);
	m.superseded.add(m.access);
	m.access = now.access;
	m.refresh = now.refresh;
	m.rt = "live";
	m.status = "active";
	m.tokenVersion += 1;
	m.version += 1;
}

/** A refresh that the provider refuses (`invalid_grant`): reconnect_required, same token version. */
async function expectRefusedRefresh(m: Model, work: Promise<unknown>): Promise<void> {
	expect(await failure(work)).toBe("reconnect_required");
	m.status = "reconnect_required";
	m.version += 1;
}

/** The invariants of docs/leases.md, against the model and the real row, provider and Redis. */
async function checkInvariants(m: Model, r: Real): Promise<void> {
	await settle(r);
	const keys = leaseKeys(r.id);
	if (m.deleted) {
		expect(await loadCredential(r.s, r.id)).toBeNull();
		expect(await r.s.redis.exists(keys.holders)).toBe(0);
		expect(String(await r.s.redis.get(keys.gen))).toBe(DELETED_GENERATION);
		return;
	}
	const { row, access, refresh } = await storedTokens(r);
	expect({
		status: row.status,
		version: row.version,
		tokenVersion: row.tokenVersion,
		title: row.title,
		access,
		refresh,
	}).toEqual({
		status: m.status,
		version: m.version,
		tokenVersion: m.tokenVersion,
		title: m.title,
		access: m.access,
		refresh: m.refresh,
	});
	expect(m.superseded.has(access)).toBe(false);
	// The stored refresh token is the provider's live one, unless the model says why not.
	expect((await introspect(refresh)).active, `${LIVE_RT} (model: ${m.rt})`).toBe(m.rt === "live");

	// No lease outlives its token; Redis holds exactly the model's live leases, with their ends.
	const live = m.leases.filter((l) => !l.released && l.end > m.now);
	for (const l of live) if (l.limit !== null) expect(l.end).toBeLessThanOrEqual(l.limit);
	const flat = await r.s.redis.zrange<(string | number)[]>(keys.holders, 0, -1, {
		withScores: true,
	});
	const held: [string, number][] = [];
	for (let i = 0; i + 1 < flat.length; i += 2) {
		const end = Number(flat[i + 1]);
		if (end > m.now) held.push([String(flat[i]), end]);
	}
	const expected = live.map((l): [string, number] => [l.id, l.end]);
	const byId = (a: [string, number], b: [string, number]) => a[0].localeCompare(b[0]);
	expect(held.sort(byId), "Redis holds exactly the live leases").toEqual(expected.sort(byId));
}

/** Steps run per kind (and variant) over the whole property: the test must not be vacuous. */
const ran = new Map<string, number>();
const count = (kind: string) => ran.set(kind, (ran.get(kind) ?? 0) + 1);

abstract class Step implements Cmd {
	check(m: Readonly<Model>): boolean {
		return !m.deleted;
	}
	async run(m: Model, r: Real): Promise<void> {
		count(this.kind());
		m.steps += 1;
		await this.step(m, r);
		await checkInvariants(m, r);
	}
	protected abstract step(m: Model, r: Real): Promise<void>;
	abstract toString(): string;
	kind(): string {
		return this.toString().replace(/\(.*$/, "");
	}
}

/** A lease of `ttl` seconds; refreshes first when the token would not outlast it plus the margin. */
class LeaseCmd extends Step {
	constructor(readonly ttl: number) {
		super();
	}
	protected async step(m: Model, r: Real) {
		if (m.status === "reconnect_required") {
			expect(await failure(leaseOf(r, this.ttl))).toBe("reconnect_required");
			count("lease:refused");
			return;
		}
		const before = await rowOf(r);
		const refresh = needsRefresh(
			timesOf(before),
			before.updatedAt,
			new Date(m.now),
			this.ttl * 1000,
			false,
		);
		if (refresh && m.rt !== "live") {
			await expectRefusedRefresh(m, leaseOf(r, this.ttl));
			count("lease:invalid_grant");
			return;
		}
		const l = await leaseOf(r, this.ttl);
		if (refresh) {
			await expectRefreshed(m, r);
			count("lease:refreshed");
		}
		await recordLease(m, r, l, this.ttl);
	}
	toString() {
		return `lease(${this.ttl})`;
	}
}

type Interleave = "none" | "title" | "stall" | "reconnect" | "secret";
/**
 * The interleavings the property draws, "secret" being an edit of the access token alone while
 * the refresh is in flight (it found the loss of the rotated refresh token that the engine now
 * prevents by carrying it over).
 */
const INTERLEAVINGS: Interleave[] = ["none", "title", "stall", "reconnect", "secret"];

/**
 * Ages the token into its refresh margin (30 s left of an hour), then leases: the provider
 * rotates. `interleave` slips another writer in after the provider answered and before the
 * database write: a title edit (must not fence the refresh), a reconnect (must fence it), or a
 * second refresher whose lock lapsed presenting the rotated-away refresh token.
 */
class ForceRefreshCmd extends Step {
	constructor(
		readonly ttl: number,
		readonly interleave: Interleave,
	) {
		super();
	}
	protected async step(m: Model, r: Real) {
		await db
			.update(credentials)
			.set({
				tokenIssuedAt: new Date(m.now - 3_570_000),
				accessTokenExpiresAt: new Date(m.now + 30_000),
			})
			.where(eq(credentials.id, r.id));
		if (m.status === "reconnect_required") {
			expect(await failure(leaseOf(r, this.ttl))).toBe("reconnect_required");
			count("lease:refused");
			return;
		}
		if (m.rt !== "live") {
			await expectRefusedRefresh(m, leaseOf(r, this.ttl));
			count("lease:invalid_grant");
			return;
		}
		let hookRan = false;
		const hooks: RefreshHooks = {};
		if (this.interleave === "title") {
			const title = `during refresh ${++m.counter}`;
			hooks.afterProviderCall = async () => {
				hookRan = true;
				await updateCredential(
					r.s,
					() => rowOf(r),
					() => ({ title }),
				);
				m.title = title;
				m.version += 1;
			};
		} else if (this.interleave === "stall") {
			hooks.afterProviderCall = async () => {
				hookRan = true;
				// The lock lapsed (a stall longer than its lease): another isolate refreshes.
				await r.s.redis.del(leaseKeys(r.id).lock);
				expect(await failure(leaseOf(r, 60))).toBe("reconnect_required");
				expect((await rowOf(r)).status).toBe("reconnect_required");
			};
		} else if (this.interleave === "reconnect") {
			hooks.afterProviderCall = async () => {
				hookRan = true;
				expect(await connectVia(r.app, r.key, r.username)).toBe(r.id);
			};
		} else if (this.interleave === "secret") {
			const access = `user_at_${++m.counter}_${r.id}`;
			hooks.afterProviderCall = async () => {
				hookRan = true;
				await updateCredential(
					r.s,
					() => rowOf(r),
					() => ({ secret: { access_token: access } }),
				);
			};
		}
		const presented = m.refresh;
		const l = await leaseOf(r, this.ttl, hooks);
		expect(hookRan).toBe(this.interleave !== "none");
		if (this.interleave === "reconnect") {
			// Fenced off: the reconnect's tokens stand, the refresh's answer is dropped.
			const now = await storedTokens(r);
			expect(now.refresh).not.toBe(presented);
			expect(now.access).not.toBe(m.access);
			expect(await refreshAttempts(presented)).toBe(1);
			m.superseded.add(m.access);
			m.access = now.access;
			m.refresh = now.refresh;
			m.rt = "live";
			m.status = "active";
			m.tokenVersion += 1;
			m.version += 1;
		} else if (this.interleave === "secret") {
			// Fenced off by the edit of the access token: the user's access token stands, and the
			// rotated refresh token is carried over onto it (one more token write).
			const now = await storedTokens(r);
			expect(accessOf(l)).toBe(now.access);
			expect(now.refresh).not.toBe(presented);
			expect(await refreshAttempts(presented)).toBe(1);
			m.superseded.add(m.access);
			m.access = now.access;
			m.refresh = now.refresh;
			m.rt = "live";
			m.tokenVersion += 2;
			m.version += 2;
		} else if (this.interleave === "stall") {
			// Written over reconnect_required (same token version), but the provider revoked the
			// grant when the rotated-away token came back.
			m.version += 1;
			await expectRefreshed(m, r, 2);
			m.rt = "revoked";
		} else {
			await expectRefreshed(m, r);
		}
		await recordLease(m, r, l, this.ttl);
	}
	toString() {
		return `forceRefresh(${this.ttl}, ${this.interleave})`;
	}
	override kind() {
		return `forceRefresh:${this.interleave}`;
	}
}

/**
 * The `pick`-th latest lease: of those the model holds live (`live`), or of all ever granted,
 * ended and released ones included (`any`, or when none is live).
 */
type Target = "live" | "any";
function nthLatest(m: Model, target: Target, pick: number): ModelLease {
	const live = m.leases.filter((l) => !l.released && l.end > m.now);
	const from = target === "live" && live.length > 0 ? live : m.leases;
	return from[from.length - 1 - (pick % from.length)] as ModelLease;
}
const targetArb = fc.constantFrom<Target>("live", "live", "any");

/** Renew lease number `pick` (of all ever granted, ended ones included), with or without a TTL. */
/**
 * A renewal's TTL: seconds, the default (none given), or the whole seconds the lease's token has
 * left ("tokenEnd", allowed) or one more ("pastToken", refused): the token limit's boundary.
 */
type RenewTtl = number | undefined | "tokenEnd" | "pastToken";

class RenewCmd implements Cmd {
	constructor(
		readonly target: Target,
		readonly pick: number,
		readonly ttl: RenewTtl,
	) {}
	check(m: Readonly<Model>) {
		return !m.deleted && m.leases.length > 0;
	}
	async run(m: Model, r: Real) {
		const l = nthLatest(m, this.target, this.pick);
		let ttl = this.ttl;
		if (ttl === "tokenEnd" || ttl === "pastToken") {
			const left = Math.floor(((l.limit ?? m.now + 60_000) - m.now) / 1000);
			ttl = Math.min(Math.max(left + (ttl === "pastToken" ? 1 : 0), 1), MAX_LEASE_TTL_S);
		}
		const renew = renewLease(r.s, { userId: r.userId, leaseId: l.id, ttlSeconds: ttl });
		if (l.released || l.end <= m.now) {
			expect(await failure(renew)).toBe("lease_gone");
			count("renew:gone");
		} else {
			let end = m.now + (ttl ?? DEFAULT_LEASE_TTL_S) * 1000;
			if (ttl === undefined) end = Math.max(end, l.end);
			if (l.limit !== null && end > l.limit) {
				// A renewal never makes a lease outlive its token.
				expect(await failure(renew)).toBe("token_expiring");
				count("renew:token_expiring");
			} else {
				expect(Date.parse((await renew).expires_at)).toBe(end);
				l.end = end;
				count("renew:ok");
			}
		}
		await checkInvariants(m, r);
	}
	toString() {
		return `renew(${this.target}:${this.pick}, ${this.ttl ?? "default"})`;
	}
}

class ReleaseCmd implements Cmd {
	constructor(
		readonly target: Target,
		readonly pick: number,
	) {}
	check(m: Readonly<Model>) {
		return !m.deleted && m.leases.length > 0;
	}
	async run(m: Model, r: Real) {
		const l = nthLatest(m, this.target, this.pick);
		const release = releaseLease(r.s, { userId: r.userId, leaseId: l.id });
		if (l.released || l.end <= m.now) {
			expect(await failure(release)).toBe("lease_gone");
			count("release:gone");
		} else {
			await release;
			l.released = true;
			count("release:ok");
		}
		await checkInvariants(m, r);
	}
	toString() {
		return `release(${this.target}:${this.pick})`;
	}
}

/** A title edit: a new version, the same token version, the tokens untouched. */
class TitleCmd extends Step {
	protected async step(m: Model, r: Real) {
		const title = `title ${++m.counter}`;
		await updateCredential(
			r.s,
			() => rowOf(r),
			() => ({ title }),
		);
		m.title = title;
		m.version += 1;
	}
	toString() {
		return "editTitle";
	}
}

type SecretEdit = "access" | "short" | "refresh";

/**
 * A secret edit (a PATCH of the secret): a new access token; with "short" one that lives two
 * minutes (its leases are cut to its expiry), with "refresh" also a refresh token the provider
 * never issued.
 */
class SecretCmd extends Step {
	constructor(readonly edit: SecretEdit) {
		super();
	}
	protected async step(m: Model, r: Real) {
		const n = ++m.counter;
		const access = `user_at_${n}_${r.id}`;
		const refresh = `user_rt_${n}_${r.id}`;
		await updateCredential(
			r.s,
			() => rowOf(r),
			() => ({
				secret:
					this.edit === "refresh"
						? { access_token: access, refresh_token: refresh }
						: { access_token: access },
				...(this.edit === "short" ? { accessTokenExpiresAt: new Date(m.now + 120_000) } : {}),
			}),
		);
		m.superseded.add(m.access);
		m.access = access;
		if (this.edit === "refresh") {
			m.refresh = refresh;
			m.rt = "foreign";
		}
		m.version += 1;
		m.tokenVersion += 1;
	}
	toString() {
		return `editSecret(${this.edit})`;
	}
}

/** Connects the same account again at the provider: repaired in place, a new live grant. */
class ReconnectCmd extends Step {
	protected async step(m: Model, r: Real) {
		expect(await connectVia(r.app, r.key, r.username)).toBe(r.id);
		const now = await storedTokens(r);
		expect(now.access).not.toBe(m.access);
		expect(now.refresh).not.toBe(m.refresh);
		m.superseded.add(m.access);
		m.access = now.access;
		m.refresh = now.refresh;
		m.rt = "live";
		m.status = "active";
		m.version += 1;
		m.tokenVersion += 1;
	}
	toString() {
		return "reconnect";
	}
}

class AdvanceCmd extends Step {
	constructor(readonly seconds: number) {
		super();
	}
	protected async step(m: Model, r: Real) {
		r.clock.t += this.seconds * 1000;
		r.app.advance(this.seconds);
		m.now += this.seconds * 1000;
		expect(r.app.now().getTime()).toBe(r.clock.t);
	}
	toString() {
		return `advance(${this.seconds}s)`;
	}
}

/**
 * A key and a session of the same user, warm in this isolate's authentication cache, are revoked;
 * leasing through the route with either is 401 and grants nothing.
 */
class RevokedCallerCmd extends Step {
	override check(m: Readonly<Model>) {
		return !m.deleted && !m.revokedCallerDone;
	}
	protected async step(m: Model, r: Real) {
		m.revokedCallerDone = true;
		const extra = await createKeyJson(r.userId, { name: "revoked in the model test" });
		const session = await exchange(extra.key);
		expect((await call("/v1/me", { token: session.access_token })).status).toBe(200);
		expect((await call(`/v1/credentials/${r.id}`, { token: extra.key })).status).toBe(200);
		const holdersBefore = await r.s.redis.zcard(leaseKeys(r.id).holders);
		const revoked = await call(`/v1/api-keys/${extra.id}`, { method: "DELETE", token: r.key });
		expect(revoked.status).toBe(204);
		for (const token of [extra.key, session.access_token]) {
			await expectError(
				await call(`/v1/credentials/${r.id}/leases`, {
					method: "POST",
					token,
					json: { ttl_seconds: 60 },
				}),
				401,
				"unauthorized",
			);
		}
		expect(await r.s.redis.zcard(leaseKeys(r.id).holders)).toBe(holdersBefore);
	}
	toString() {
		return "revokedCaller";
	}
}

/** Deletes the credential (the route, or the row then its leases): every lease ends at once. */
class DeleteCmd extends Step {
	constructor(readonly viaRoute: boolean) {
		super();
	}
	/** Not before the credential has seen some traffic: deletion ends the run. */
	override check(m: Readonly<Model>) {
		return !m.deleted && m.steps >= MIN_STEPS_BEFORE_DELETE;
	}
	protected async step(m: Model, r: Real) {
		if (this.viaRoute) {
			const res = await call(`/v1/credentials/${r.id}`, { method: "DELETE", token: r.key });
			expect(res.status).toBe(200);
		} else {
			expect(await deleteCredentialRow(r.s, r.userId, r.id)).toBe(true);
			await endCredentialLeases(r.s, r.id);
		}
		m.deleted = true;
		for (const l of m.leases) {
			expect(
				await failure(renewLease(r.s, { userId: r.userId, leaseId: l.id, ttlSeconds: 5 })),
			).toBe("lease_gone");
			expect(await failure(releaseLease(r.s, { userId: r.userId, leaseId: l.id }))).toBe(
				"lease_gone",
			);
		}
		expect(await failure(leaseOf(r, 60))).toBe("not_found");
	}
	toString() {
		return `delete(${this.viaRoute ? "route" : "service"})`;
	}
}

const ttlArb = fc.constantFrom(5, 30, 60, 300, 900);
/**
 * Steps that leave the refresh token dead (a stall, a foreign refresh token) are rarer than the
 * others, so that most of a run is spent on a credential that can still refresh.
 */
const interleaveArb = fc.oneof(
	...INTERLEAVINGS.map((i) => ({ weight: i === "stall" ? 1 : 2, arbitrary: fc.constant(i) })),
);
const commandArb: fc.Arbitrary<Cmd> = fc.oneof(
	{ weight: 5, arbitrary: ttlArb.map((t) => new LeaseCmd(t)) },
	{
		weight: 4,
		arbitrary: fc.tuple(ttlArb, interleaveArb).map(([t, i]) => new ForceRefreshCmd(t, i)),
	},
	{
		weight: 3,
		arbitrary: fc
			.tuple(
				targetArb,
				fc.nat(3),
				fc.oneof(
					ttlArb,
					fc.constantFrom<RenewTtl>(undefined, "tokenEnd", "pastToken", "pastToken"),
				),
			)
			.map(([target, p, t]) => new RenewCmd(target, p, t)),
	},
	{
		weight: 2,
		arbitrary: fc.tuple(targetArb, fc.nat(3)).map(([target, p]) => new ReleaseCmd(target, p)),
	},
	{ weight: 2, arbitrary: fc.constant(new TitleCmd()) },
	{ weight: 1, arbitrary: fc.constant(new SecretCmd("access")) },
	{ weight: 2, arbitrary: fc.constant(new SecretCmd("short")) },
	{ weight: 1, arbitrary: fc.constant(new SecretCmd("refresh")) },
	{ weight: 2, arbitrary: fc.constant(new ReconnectCmd()) },
	{
		weight: 3,
		arbitrary: fc.constantFrom(1, 30, 300, 1800, 2700, 3500).map((s) => new AdvanceCmd(s)),
	},
	{ weight: 1, arbitrary: fc.constant(new RevokedCallerCmd()) },
	{ weight: 1, arbitrary: fc.boolean().map((route) => new DeleteCmd(route)) },
);

/**
 * A fresh user and credential per run, connected at the provider (with an hour-long or a
 * two-minute access token); the model starts from it.
 */
async function setup(shortLived: boolean): Promise<{ model: Model; real: Real }> {
	clock.t = Date.now();
	const app = clockedApp(new Date(clock.t));
	const user = await userWithKey();
	const username = account(shortLived);
	const id = await connectVia(app, user.key, username);
	const real: Real = {
		s: services,
		pending: [],
		app,
		clock,
		userId: user.id,
		key: user.key,
		username,
		id,
	};
	const { row, access, refresh } = await storedTokens(real);
	const model: Model = {
		now: clock.t,
		deleted: false,
		status: "active",
		access,
		refresh,
		rt: "live",
		version: row.version,
		tokenVersion: row.tokenVersion,
		title: row.title,
		leases: [],
		superseded: new Set(),
		revokedCallerDone: false,
		counter: 0,
		steps: 0,
	};
	await checkInvariants(model, real);
	return { model, real };
}

/** Every kind of step, interleaving and outcome the property must have exercised. */
const EXERCISED = [
	"lease",
	"lease:refreshed",
	"lease:invalid_grant",
	"lease:refused",
	...INTERLEAVINGS.map((i) => `forceRefresh:${i}`),
	"renew:ok",
	"renew:gone",
	"renew:token_expiring",
	"release:ok",
	"release:gone",
	"editTitle",
	"editSecret",
	"reconnect",
	"advance",
	"revokedCaller",
	"delete",
];

describe("lease engine, model-based", () => {
	it("leases, renewals, refreshes, edits, reconnects and deletion keep the invariants", async () => {
		const started = performance.now();
		ran.clear();
		const out = await fc.check(
			fc.asyncProperty(
				fc.boolean(),
				fc.commands([commandArb], { maxCommands: MAX_COMMANDS, size: "max" }),
				async (shortLived, cmds) => {
					await fc.asyncModelRun(() => setup(shortLived), cmds);
				},
			),
			{
				seed: SEED,
				numRuns: NUM_RUNS,
				interruptAfterTimeLimit: TIME_LIMIT_MS,
				markInterruptAsFailure: false,
			},
		);
		if (out.failed) {
			throw new Error(`${fc.defaultReportMessage(out)}\n${String(out.errorInstance)}`, {
				cause: out.errorInstance,
			});
		}
		const elapsed = Math.round(performance.now() - started);
		console.info(`lease model: ${out.numRuns} runs in ${elapsed} ms`, Object.fromEntries(ran));
		// Bounded by time, but never vacuous.
		expect(out.numRuns).toBeGreaterThanOrEqual(MIN_RUNS);
		expect(
			EXERCISED.filter((k) => !ran.has(k)),
			"steps and outcomes never exercised",
		).toEqual([]);
	}, 60_000);
});
