import { and, eq, ne, type SQL, sql } from "drizzle-orm";
import type { PgUpdateSetSource } from "drizzle-orm/pg-core";
import { userAccessRevocations } from "../auth/api-keys.ts";
import { invalidateUser } from "../auth/cache.ts";
import { revokeSessionsWhere } from "../auth/sessions.ts";
import type { Config } from "../config.ts";
import { newId } from "../crypto/encoding.ts";
import type { Database } from "../db/client.ts";
import { violatedUniqueConstraint } from "../db/errors.ts";
import { type CursorKey, keysetAfter, keysetOrder } from "../db/pagination.ts";
import {
	type NotificationPreferences,
	sessions,
	type UserRow,
	type UserStatus,
	users,
} from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import { enqueueDeletionJobs } from "../jobs/deletion.ts";
import {
	beingDeleted,
	findUser,
	getUser,
	invalidUserField,
	normaliseEmail,
	normaliseName,
	userNotFound,
} from "../user-records.ts";

/**
 * Users: the accounts that own credentials. Every rule about what a user record may contain is
 * enforced here or in src/user-records.ts, whoever the caller (admin route, /v1/me,
 * identity-provider sign-in), so route schemas only have to shape requests. Those that auth/
 * applies too (e-mail, name, whether an admin may still change the user) are the latter's, below
 * both auth/ and users/.
 */

export const USER_STATUSES = [
	"active",
	"suspended",
	"deleting",
] as const satisfies readonly UserStatus[];
/** What an admin may set directly; `deleting` is reached only through deletion. */
export const SETTABLE_STATUSES = ["active", "suspended"] as const satisfies readonly UserStatus[];
export type SettableStatus = (typeof SETTABLE_STATUSES)[number];

/** Channels a user can turn on or off; a channel not listed here cannot be stored. */
export const NOTIFICATION_CHANNELS = ["email"] as const;
export type NotificationChannel = (typeof NOTIFICATION_CHANNELS)[number];

// Intl also accepts UTC offsets ("+01:00") as zones; the contract asks for IANA names only.
const ZONE_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+){0,2}$/;

export interface UserJson {
	id: string;
	email: string;
	name: string | null;
	timezone: string;
	status: UserStatus;
	email_verified: boolean;
	notifications: NotificationPreferences;
	created_at: string;
}

export function toUserJson(row: UserRow): UserJson {
	return {
		id: row.id,
		email: row.email,
		name: row.name,
		timezone: row.timezone,
		status: row.status,
		email_verified: row.emailVerified,
		notifications: { ...row.notifications },
		created_at: row.createdAt.toISOString(),
	};
}

const invalid = invalidUserField;

/**
 * The zone name to store, or null when the runtime does not know the zone. ICU resolves aliases
 * to CLDR's preferred ids ("Asia/Kolkata" → "Asia/Calcutta"), which would surprise the user, so
 * only a difference of case is corrected ("utc" → "UTC") and a valid alias is kept as sent.
 */
export function canonicalTimeZone(raw: string): string | null {
	if (!ZONE_NAME_PATTERN.test(raw)) return null;
	let resolved: string;
	try {
		resolved = new Intl.DateTimeFormat("en-US", { timeZone: raw }).resolvedOptions().timeZone;
	} catch {
		return null;
	}
	return resolved.toLowerCase() === raw.toLowerCase() ? resolved : raw;
}

function normaliseNotifications(
	raw: Record<string, unknown>,
): Partial<Record<NotificationChannel, boolean>> {
	const out: Partial<Record<NotificationChannel, boolean>> = {};
	for (const [channel, enabled] of Object.entries(raw)) {
		if (!(NOTIFICATION_CHANNELS as readonly string[]).includes(channel)) {
			throw invalid(`notifications.${channel}`, "unknown notification channel");
		}
		if (typeof enabled !== "boolean")
			throw invalid(`notifications.${channel}`, "must be a boolean");
		out[channel as NotificationChannel] = enabled;
	}
	return out;
}

type UserChanges = PgUpdateSetSource<typeof users>;

const EMAIL_UNIQUE_INDEX = "users_email_lower_idx";

export interface CreateUserInput {
	email: string;
	name?: string | null | undefined;
	emailVerified?: boolean | undefined;
}

export async function createUser(
	db: Database,
	input: CreateUserInput,
	now: Date,
): Promise<UserRow> {
	const email = normaliseEmail(input.email);
	if (!email) throw invalid("email", "must be an e-mail address");
	const name = input.name === undefined ? null : normaliseName(input.name);
	try {
		// Timestamps come from the service clock at millisecond precision, which keeps list cursors
		// exact and lets tests move time.
		const [row] = await db
			.insert(users)
			.values({
				id: newId("usr"),
				email,
				name,
				emailVerified: input.emailVerified ?? false,
				createdAt: now,
				updatedAt: now,
			})
			.returning();
		if (!row) throw new Error("insert returned no row");
		return row;
	} catch (err) {
		// The unique index decides, not a prior lookup: two concurrent creations cannot both pass.
		if (violatedUniqueConstraint(err) === EMAIL_UNIQUE_INDEX) {
			throw new LatchkeyError("email_conflict", "A user with this e-mail address already exists.", {
				hint: "E-mail addresses compare case-insensitively; look the existing user up instead.",
			});
		}
		throw err;
	}
}

export interface ListUsersOptions {
	limit: number;
	after?: CursorKey | undefined;
	status?: UserStatus | undefined;
}

/** Up to `limit + 1` users in keyset order, like every list query; the extra row says more follow. */
export function listUsers(db: Database, options: ListUsersOptions): Promise<UserRow[]> {
	const conditions: (SQL | undefined)[] = [
		keysetAfter(users.createdAt, users.id, options.after),
		options.status ? eq(users.status, options.status) : undefined,
	];
	return db
		.select()
		.from(users)
		.where(and(...conditions))
		.orderBy(...keysetOrder(users.createdAt, users.id))
		.limit(options.limit + 1);
}

export interface ProfileUpdate {
	name?: string | null | undefined;
	timezone?: string | undefined;
	/** Merged into the stored preferences: channels left out keep their setting. */
	notifications?: Record<string, unknown> | undefined;
}

function profileChanges(patch: ProfileUpdate): UserChanges {
	const changes: UserChanges = {};
	if (patch.name !== undefined) changes.name = normaliseName(patch.name);
	if (patch.timezone !== undefined) {
		const zone = canonicalTimeZone(patch.timezone);
		if (!zone) throw invalid("timezone", "must be an IANA time zone name such as Europe/Paris");
		changes.timezone = zone;
	}
	if (patch.notifications !== undefined) {
		const prefs = normaliseNotifications(patch.notifications);
		if (Object.keys(prefs).length > 0) {
			// Merged by Postgres in the UPDATE itself, so concurrent changes to different channels
			// (the profile page and an unsubscribe link) do not overwrite each other.
			changes.notifications = sql`${users.notifications} || ${JSON.stringify(prefs)}::jsonb`;
		}
	}
	return changes;
}

export async function updateProfile(
	db: Database,
	userId: string,
	patch: ProfileUpdate,
	now: Date,
): Promise<UserRow> {
	const changes = profileChanges(patch);
	if (Object.keys(changes).length === 0) return getUser(db, userId);
	const [row] = await db
		.update(users)
		.set({ ...changes, updatedAt: now })
		.where(eq(users.id, userId))
		.returning();
	if (!row) throw userNotFound();
	return row;
}

export interface AdminUpdate {
	status?: SettableStatus | undefined;
	name?: string | null | undefined;
}

/**
 * Admin changes to a user. A user being deleted stays so: reactivating it would hand back an
 * account whose keys are revoked and whose data is about to be purged.
 */
export async function adminUpdateUser(
	db: Database,
	id: string,
	patch: AdminUpdate,
	now: Date,
): Promise<UserRow> {
	const changes = profileChanges({ name: patch.name });
	if (patch.status !== undefined) {
		if (!(SETTABLE_STATUSES as readonly string[]).includes(patch.status)) {
			throw invalid("status", `must be one of ${SETTABLE_STATUSES.join(", ")}`);
		}
		changes.status = patch.status;
	}
	if (Object.keys(changes).length === 0) return getUser(db, id);
	// The status guard is part of the UPDATE, so a deletion racing this change cannot be undone by it.
	const update = db
		.update(users)
		.set({ ...changes, updatedAt: now })
		.where(and(eq(users.id, id), ne(users.status, "deleting")))
		.returning();
	// A suspension ends the user's sessions (API.md): in the same batch, one round trip.
	const [row] =
		patch.status === "suspended"
			? (
					await db.batch([
						update,
						revokeSessionsWhere(db, eq(sessions.userId, id), now, "user_suspended"),
					])
				)[0]
			: await update;
	if (row) {
		// A suspension must bite at once in this isolate, and a reactivation must not wait for a
		// cached refusal; other isolates follow within the cache's bound.
		if (patch.status !== undefined) invalidateUser(id);
		return row;
	}
	const existing = await findUser(db, id);
	if (!existing) throw userNotFound();
	throw beingDeleted();
}

/**
 * Marks the user for deletion, cuts off every key and session at once and enqueues the
 * deprovisioning jobs; the scheduled worker runs them and purges later. Repeating the request
 * changes nothing (job ids are derived from what they act on), and keeps the time of the first.
 */
export async function requestDeletion(
	db: Database,
	config: Config,
	userId: string,
	now: Date,
): Promise<UserRow> {
	// One batch: the status change, the revocations and the jobs commit together or not at all,
	// in one round trip. For an unknown user the other statements match nothing; the jobs are
	// enqueued after the status change, which they require.
	const [[row]] = await db.batch([
		db
			.update(users)
			.set({
				status: "deleting",
				deletionRequestedAt: sql`coalesce(${users.deletionRequestedAt}, ${now.toISOString()}::timestamptz)`,
				updatedAt: now,
			})
			.where(eq(users.id, userId))
			.returning(),
		...userAccessRevocations(db, userId, now),
		...enqueueDeletionJobs(db, config, now, [userId]),
	]);
	if (!row) throw userNotFound();
	invalidateUser(userId);
	return row;
}

/** Turns off notification e-mails (the unsubscribe link). */
export function unsubscribeEmail(db: Database, userId: string, now: Date): Promise<UserRow> {
	return updateProfile(db, userId, { notifications: { email: false } }, now);
}
