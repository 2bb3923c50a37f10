import { and, eq, isNull, or, type SQL } from "drizzle-orm";
import { newId } from "../crypto/encoding.ts";
import {
	CREDENTIAL_AAD_VERSION,
	type CredentialAadFields,
	credentialAadOf,
	credentialAadV2,
	getKeyRing,
	open,
	type Sealed,
	seal,
} from "../crypto/envelope.ts";
import { type CursorKey, keysetAfter, keysetOrder } from "../db/pagination.ts";
import { type CredentialRow, type CredentialType, credentials, users } from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import type { Services } from "../services.ts";
import { assertUserActive } from "../user-status.ts";
import type { AnySecret, ConnectedAccount, OAuthTokenSet, SecretOf } from "./secrets.ts";

/** The credential object of API.md: metadata only, never a secret field. */
export interface CredentialJson {
	id: string;
	provider: string;
	type: CredentialType;
	title: string;
	scopes: string[];
	username: string | null;
	host: string | null;
	status: CredentialRow["status"];
	managed: boolean;
	system: boolean;
	metadata: Record<string, unknown>;
	version: number;
	access_token_expires_at: string | null;
	created_at: string;
	updated_at: string;
	last_used_at: string | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function toCredentialJson(row: CredentialRow): CredentialJson {
	return {
		id: row.id,
		provider: row.provider,
		type: row.type,
		title: row.title,
		scopes: row.scopes,
		username: row.username,
		host: row.host,
		status: row.status,
		managed: row.managed,
		system: row.system,
		metadata: row.metadata,
		version: row.version,
		access_token_expires_at: iso(row.accessTokenExpiresAt),
		created_at: row.createdAt.toISOString(),
		updated_at: row.updatedAt.toISOString(),
		last_used_at: iso(row.lastUsedAt),
	};
}

const notFound = () => new LatchkeyError("not_found", "No such credential.");

/** A user sees their own credentials and the system ones; anything else does not exist. */
export function visibleTo(userId: string): SQL | undefined {
	return or(
		eq(credentials.userId, userId),
		and(isNull(credentials.userId), eq(credentials.system, true)),
	);
}

export async function findVisible(
	services: Services,
	userId: string,
	id: string,
): Promise<CredentialRow> {
	const [row] = await services.db
		.select()
		.from(credentials)
		.where(and(eq(credentials.id, id), visibleTo(userId)))
		.limit(1);
	if (!row) throw notFound();
	return row;
}

export async function listCredentials(
	services: Services,
	userId: string,
	page: { limit: number; after?: CursorKey; provider?: string },
): Promise<CredentialRow[]> {
	return services.db
		.select()
		.from(credentials)
		.where(
			and(
				visibleTo(userId),
				page.provider ? eq(credentials.provider, page.provider) : undefined,
				keysetAfter(credentials.createdAt, credentials.id, page.after),
			),
		)
		.orderBy(...keysetOrder(credentials.createdAt, credentials.id))
		.limit(page.limit + 1);
}

export interface NewCredential<T extends CredentialType = CredentialType> {
	userId: string | null;
	provider: string;
	type: T;
	title: string;
	secret: SecretOf[T];
	scopes?: string[];
	username?: string | null;
	host?: string | null;
	metadata?: Record<string, unknown>;
	accessTokenExpiresAt?: Date | null;
	managed?: boolean;
	system?: boolean;
}

/** Seals a secret under the current AAD version, which binds the row's provider and host too. */
export async function sealSecret(
	services: Services,
	row: CredentialAadFields,
	secret: AnySecret,
): Promise<Sealed & { aadVersion: number }> {
	const ring = await getKeyRing(services.config);
	const sealed = await seal(ring, JSON.stringify(secret), credentialAadV2(row));
	return { ...sealed, aadVersion: CREDENTIAL_AAD_VERSION };
}

/** Decrypts a row's secret; a row that fails to decrypt is a loud error naming it. */
export async function openSecret<T extends CredentialType>(
	services: Services,
	row: CredentialRow & { type: T },
): Promise<SecretOf[T]> {
	const aad = credentialAadOf(row);
	if (aad === null) {
		throw new LatchkeyError(
			"decryption_failed",
			`The stored secret of credential ${row.id} could not be decrypted: its AAD version ${row.aadVersion} is unknown.`,
			{ hint: "The stored row was altered or written by a newer release. Report the request_id." },
		);
	}
	const ring = await getKeyRing(services.config);
	const plain = await open(ring, row, aad, `credential ${row.id}`);
	return JSON.parse(plain) as SecretOf[T];
}

/**
 * Whether `secret` is a whole secret of `type`, so that storing it needs nothing of the old one
 * (a row that no longer decrypts can then be repaired by replacing its secret).
 */
function isWholeSecret(type: CredentialType, secret: Partial<AnySecret>): boolean {
	switch (type) {
		case "api_key":
			return "api_key" in secret;
		case "user_password":
			return "password" in secret;
		case "host_scoped":
			return "headers" in secret;
		case "oauth2":
			return "access_token" in secret && "refresh_token" in secret;
	}
}

export async function createCredential(
	services: Services,
	input: NewCredential,
): Promise<CredentialRow> {
	const id = newId("cred");
	const now = services.now();
	const sealed = await sealSecret(
		services,
		{
			id,
			userId: input.userId,
			type: input.type,
			provider: input.provider,
			host: input.host ?? null,
		},
		input.secret,
	);
	const [row] = await services.db
		.insert(credentials)
		.values({
			id,
			userId: input.userId,
			provider: input.provider,
			type: input.type,
			title: input.title,
			scopes: input.scopes ?? [],
			username: input.username ?? null,
			host: input.host ?? null,
			metadata: input.metadata ?? {},
			accessTokenExpiresAt: input.accessTokenExpiresAt ?? null,
			// When this token was obtained, as far as Latchkey knows: its lifetime sets the lease margin.
			tokenIssuedAt: input.type === "oauth2" ? now : null,
			managed: input.managed ?? false,
			system: input.system ?? false,
			...sealed,
			createdAt: now,
			updatedAt: now,
		})
		.returning();
	return row as CredentialRow;
}

export interface CredentialChange {
	title?: string;
	metadata?: Record<string, unknown>;
	scopes?: string[];
	username?: string | null;
	host?: string | null;
	accessTokenExpiresAt?: Date | null;
	status?: CredentialRow["status"];
	/** Fields of the secret to replace; merged over the current secret. */
	secret?: Partial<AnySecret>;
}

const MAX_ATTEMPTS = 3;

export const preconditionFailed = (id: string, version: number) =>
	new LatchkeyError(
		"precondition_failed",
		`Credential ${id} is at version ${version}, not the one If-Match names; nothing was changed.`,
		{ hint: "Read the credential again and retry with its current ETag in If-Match." },
	);

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const sameTime = (a: Date | null, b: Date | null) =>
	(a?.getTime() ?? null) === (b?.getTime() ?? null);

/** The columns a change writes, leaving out fields it names with their current value. */
function changedColumns(
	row: CredentialRow,
	delta: CredentialChange,
): Partial<typeof credentials.$inferInsert> {
	const set: Partial<typeof credentials.$inferInsert> = {};
	if (delta.title !== undefined && delta.title !== row.title) set.title = delta.title;
	if (delta.metadata !== undefined && !sameJson(delta.metadata, row.metadata))
		set.metadata = delta.metadata;
	if (delta.scopes !== undefined && !sameJson(delta.scopes, row.scopes)) set.scopes = delta.scopes;
	if (delta.username !== undefined && delta.username !== row.username)
		set.username = delta.username;
	if (delta.host !== undefined && delta.host !== row.host) set.host = delta.host;
	if (
		delta.accessTokenExpiresAt !== undefined &&
		!sameTime(delta.accessTokenExpiresAt, row.accessTokenExpiresAt)
	)
		set.accessTokenExpiresAt = delta.accessTokenExpiresAt;
	if (delta.status !== undefined && delta.status !== row.status) set.status = delta.status;
	return set;
}

/**
 * Read, change, write back only if nobody wrote in between (`version`). A lost race re-reads
 * and re-applies the change, which is safe because a change names fields, not a whole object;
 * after a few lost races the caller gets 409 rather than a silent overwrite. With
 * `matches` (a request's If-Match) the row must be at that version, on every attempt,
 * or nothing is written (412). A change that alters nothing writes nothing and keeps the version.
 */
export async function updateCredential(
	services: Services,
	load: () => Promise<CredentialRow>,
	change: (row: CredentialRow) => CredentialChange | Promise<CredentialChange>,
	options: { matches?: (version: number) => boolean } = {},
): Promise<CredentialRow> {
	for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		const row = await load();
		const delta = await change(row);
		if (options.matches && !options.matches(row.version)) {
			throw preconditionFailed(row.id, row.version);
		}
		const set = changedColumns(row, delta);
		// The AAD binds host (and provider), so a new host means a new seal, secret changed or not.
		if (delta.secret !== undefined || set.host !== undefined) {
			const next = { ...row, host: set.host ?? row.host };
			const whole = delta.secret !== undefined && isWholeSecret(row.type, delta.secret);
			let current: Partial<AnySecret> = {};
			if (!whole) current = await openSecret(services, row);
			else if (row.type === "oauth2") {
				// The token type is not part of a patch: kept when the old secret still opens.
				current = await openSecret(services, row).catch(() => ({ token_type: "Bearer" }));
			}
			Object.assign(
				set,
				await sealSecret(services, next, { ...current, ...delta.secret } as AnySecret),
			);
		}
		if (Object.keys(set).length === 0) return row;
		if (row.type === "oauth2" && delta.secret && "access_token" in delta.secret) {
			// A new access token (a reconnect, or one the user stored): a new lifetime, and any
			// refresh backoff of the old one no longer applies.
			set.tokenIssuedAt = services.now();
			set.refreshFailures = 0;
			set.refreshRetryAt = null;
			set.refreshError = null;
		}
		set.version = row.version + 1;
		// Only a write of the secret fences an in-flight refresh (docs/leases.md); a title,
		// metadata or scope edit leaves the tokens a refresh may be about to write alone.
		if (delta.secret !== undefined) set.tokenVersion = row.tokenVersion + 1;
		set.updatedAt = services.now();
		const [updated] = await services.db
			.update(credentials)
			.set(set)
			.where(and(eq(credentials.id, row.id), eq(credentials.version, row.version)))
			.returning();
		if (updated) return updated;
	}
	throw new LatchkeyError(
		"version_conflict",
		"The credential changed concurrently; retry the request.",
	);
}

export async function deleteCredentialRow(
	services: Services,
	userId: string,
	id: string,
	expectedVersion?: number,
): Promise<boolean> {
	const deleted = await services.db
		.delete(credentials)
		.where(
			and(
				eq(credentials.id, id),
				eq(credentials.userId, userId),
				expectedVersion === undefined ? undefined : eq(credentials.version, expectedVersion),
			),
		)
		.returning({ id: credentials.id });
	return deleted.length > 0;
}

export function assertWritable(row: CredentialRow): void {
	if (row.system || row.managed) {
		throw new LatchkeyError(
			"credential_read_only",
			row.system ? "System credentials are read-only." : "Managed credentials are read-only.",
			{
				hint: row.system
					? "The platform admin manages this credential."
					: "The platform provisions this credential.",
			},
		);
	}
}

const union = (a: string[], b: string[]) => [...new Set([...a, ...b])];

function oauthSecret(tokens: OAuthTokenSet, previousRefresh?: string): SecretOf["oauth2"] {
	const refresh = tokens.refreshToken ?? previousRefresh;
	return {
		access_token: tokens.accessToken,
		token_type: tokens.tokenType || "Bearer",
		...(refresh ? { refresh_token: refresh } : {}),
	};
}

/**
 * Stores the result of an OAuth connect. A scope upgrade (`credentialId`) or a reconnect of the
 * same provider account with a superset of scopes updates in place: same id and title, and
 * the old refresh token is kept when the provider sends none. Anything else is a new credential.
 */
export async function saveOAuthCredential(
	services: Services,
	input: ConnectedAccount,
): Promise<{ id: string; created: boolean }> {
	const { db } = services;
	// The GET callback carries no credential: the state names the user, who may have been
	// suspended or deleted since the connect began.
	const [owner] = await db
		.select({ status: users.status })
		.from(users)
		.where(eq(users.id, input.userId))
		.limit(1);
	assertUserActive(owner?.status ?? null);
	let target: CredentialRow | undefined;
	if (input.credentialId) {
		const [row] = await db
			.select()
			.from(credentials)
			.where(
				and(
					eq(credentials.id, input.credentialId),
					eq(credentials.userId, input.userId),
					eq(credentials.type, "oauth2"),
					eq(credentials.provider, input.provider),
				),
			)
			.limit(1);
		if (!row) throw notFound();
		target = row;
	} else if (input.username) {
		const candidates = await db
			.select()
			.from(credentials)
			.where(
				and(
					eq(credentials.userId, input.userId),
					eq(credentials.type, "oauth2"),
					eq(credentials.provider, input.provider),
					eq(credentials.username, input.username),
					eq(credentials.managed, false),
				),
			);
		target = candidates.find((c) => c.scopes.every((s) => input.tokens.scopes.includes(s)));
	}

	if (!target) {
		const row = await createCredential(services, {
			userId: input.userId,
			provider: input.provider,
			type: "oauth2",
			title: input.title ?? input.provider,
			secret: oauthSecret(input.tokens),
			scopes: input.tokens.scopes,
			username: input.username,
			accessTokenExpiresAt: input.tokens.expiresAt,
		});
		return { id: row.id, created: true };
	}
	const id = target.id;
	const updated = await updateCredential(
		services,
		async () => {
			const [row] = await db.select().from(credentials).where(eq(credentials.id, id)).limit(1);
			if (!row) throw notFound();
			return row;
		},
		async (row) => {
			const current = await openSecret(services, row as CredentialRow & { type: "oauth2" });
			return {
				scopes: union(row.scopes, input.tokens.scopes),
				username: input.username ?? row.username,
				accessTokenExpiresAt: input.tokens.expiresAt,
				status: "active",
				secret: oauthSecret(input.tokens, current.refresh_token),
			};
		},
	);
	return { id: updated.id, created: false };
}
