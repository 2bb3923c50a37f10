import { and, eq, isNull, or, type SQL } from "drizzle-orm";
import { newId } from "../crypto/encoding.ts";
import { credentialAad, getKeyRing, open, seal } from "../crypto/envelope.ts";
import { type CursorKey, keysetAfter, keysetOrder } from "../db/pagination.ts";
import { type CredentialRow, type CredentialType, credentials, users } from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import type { ConnectedAccount, OAuthTokenSet } from "../oauth/service.ts";
import type { Services } from "../services.ts";
import { assertUserActive } from "../user-status.ts";
import type { AnySecret, SecretOf } from "./secrets.ts";

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
		access_token_expires_at: iso(row.accessTokenExpiresAt),
		created_at: row.createdAt.toISOString(),
		updated_at: row.updatedAt.toISOString(),
		last_used_at: iso(row.lastUsedAt),
	};
}

const notFound = () => new LatchkeyError("not_found", "No such credential.");

/** A user sees their own credentials and the system ones; anything else does not exist. */
function visibleTo(userId: string): SQL | undefined {
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

export async function sealSecret(
	services: Services,
	row: { id: string; userId: string | null; type: CredentialType },
	secret: AnySecret,
) {
	const ring = await getKeyRing(services.config);
	return seal(ring, JSON.stringify(secret), credentialAad(row));
}

/** Decrypts a row's secret; a row that fails to decrypt is a loud error naming it. */
export async function openSecret<T extends CredentialType>(
	services: Services,
	row: CredentialRow & { type: T },
): Promise<SecretOf[T]> {
	const ring = await getKeyRing(services.config);
	const plain = await open(ring, row, credentialAad(row), `credential ${row.id}`);
	return JSON.parse(plain) as SecretOf[T];
}

export async function createCredential(
	services: Services,
	input: NewCredential,
): Promise<CredentialRow> {
	const id = newId("cred");
	const now = services.now();
	const sealed = await sealSecret(
		services,
		{ id, userId: input.userId, type: input.type },
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

/**
 * Read, change, write back only if nobody wrote in between (`version`). A lost race re-reads
 * and re-applies the change, which is safe because a change names fields, not a whole object;
 * after a few lost races the caller gets 409 rather than a silent overwrite.
 */
export async function updateCredential(
	services: Services,
	load: () => Promise<CredentialRow>,
	change: (row: CredentialRow) => CredentialChange | Promise<CredentialChange>,
): Promise<CredentialRow> {
	for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		const row = await load();
		const delta = await change(row);
		const set: Partial<typeof credentials.$inferInsert> = {
			version: row.version + 1,
			updatedAt: services.now(),
		};
		if (delta.title !== undefined) set.title = delta.title;
		if (delta.metadata !== undefined) set.metadata = delta.metadata;
		if (delta.scopes !== undefined) set.scopes = delta.scopes;
		if (delta.username !== undefined) set.username = delta.username;
		if (delta.host !== undefined) set.host = delta.host;
		if (delta.accessTokenExpiresAt !== undefined)
			set.accessTokenExpiresAt = delta.accessTokenExpiresAt;
		if (delta.status !== undefined) set.status = delta.status;
		if (delta.secret !== undefined) {
			const current = await openSecret(services, row);
			Object.assign(
				set,
				await sealSecret(services, row, { ...current, ...delta.secret } as AnySecret),
			);
		}
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
): Promise<boolean> {
	const deleted = await services.db
		.delete(credentials)
		.where(and(eq(credentials.id, id), eq(credentials.userId, userId)))
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

export async function getCredentialJson(
	services: Services,
	userId: string,
	id: string,
): Promise<CredentialJson> {
	return toCredentialJson(await findVisible(services, userId, id));
}
