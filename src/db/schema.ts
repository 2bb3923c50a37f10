import { sql } from "drizzle-orm";
import { boolean, index, jsonb, pgTable, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";

const timestamps = {
	createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
	updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
};

export type UserStatus = "active" | "suspended" | "deleting";

export interface NotificationPreferences {
	email: boolean;
	[channel: string]: boolean;
}

export const users = pgTable(
	"users",
	{
		id: text("id").primaryKey(),
		email: text("email").notNull(),
		name: text("name"),
		timezone: text("timezone").notNull().default("UTC"),
		status: text("status").$type<UserStatus>().notNull().default("active"),
		emailVerified: boolean("email_verified").notNull().default(false),
		notifications: jsonb("notifications")
			.$type<NotificationPreferences>()
			.notNull()
			.default(sql`'{"email": true}'::jsonb`),
		/** `issuer|subject` of an external identity provider, when the user came from one. */
		externalSubject: text("external_subject"),
		/** When deletion was requested; the scheduled worker purges the row later. */
		deletionRequestedAt: timestamp("deletion_requested_at", { withTimezone: true, mode: "date" }),
		...timestamps,
	},
	(t) => [
		// Emails compare case-insensitively: two accounts must not differ only by case.
		uniqueIndex("users_email_lower_idx").on(sql`lower(${t.email})`),
		uniqueIndex("users_external_subject_idx").on(t.externalSubject),
		index("users_status_idx").on(t.status),
	],
);

export type UserRow = typeof users.$inferSelect;

export type KeyKind = "standard" | "legacy";

export const apiKeys = pgTable(
	"api_keys",
	{
		/** The public id embedded in the key (`lk_<id>_…`); legacy keys get a random one. */
		id: text("id").primaryKey(),
		userId: text("user_id")
			.notNull()
			.references(() => users.id, { onDelete: "cascade" }),
		name: text("name").notNull(),
		kind: text("kind").$type<KeyKind>().notNull().default("standard"),
		/** Hex SHA-256 of the secret part (standard) or of the whole key (legacy). */
		secretHash: text("secret_hash").notNull(),
		scopes: text("scopes").array().notNull(),
		expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }),
		revokedAt: timestamp("revoked_at", { withTimezone: true, mode: "date" }),
		lastUsedAt: timestamp("last_used_at", { withTimezone: true, mode: "date" }),
		/** The key this one replaced through a roll. */
		rolledFrom: text("rolled_from"),
		createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
	},
	(t) => [
		index("api_keys_user_idx").on(t.userId),
		// Legacy keys have no public id, so they are found by the hash of the whole key.
		uniqueIndex("api_keys_legacy_hash_idx").on(t.secretHash).where(sql`${t.kind} = 'legacy'`),
	],
);

export type ApiKeyRow = typeof apiKeys.$inferSelect;

export const sessions = pgTable(
	"sessions",
	{
		id: text("id").primaryKey(),
		userId: text("user_id")
			.notNull()
			.references(() => users.id, { onDelete: "cascade" }),
		apiKeyId: text("api_key_id")
			.notNull()
			.references(() => apiKeys.id, { onDelete: "cascade" }),
		scopes: text("scopes").array().notNull(),
		createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
		/** Absolute cap (30 days from the key exchange), whatever the rotations. */
		expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
		revokedAt: timestamp("revoked_at", { withTimezone: true, mode: "date" }),
		revokedReason: text("revoked_reason"),
	},
	(t) => [index("sessions_user_idx").on(t.userId), index("sessions_key_idx").on(t.apiKeyId)],
);

export type SessionRow = typeof sessions.$inferSelect;

export const refreshTokens = pgTable(
	"refresh_tokens",
	{
		id: text("id").primaryKey(),
		sessionId: text("session_id")
			.notNull()
			.references(() => sessions.id, { onDelete: "cascade" }),
		/** Hex SHA-256 of the opaque token; the token itself is never stored. */
		tokenHash: text("token_hash").notNull(),
		createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
		expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
		usedAt: timestamp("used_at", { withTimezone: true, mode: "date" }),
		/** `jti` of the access token minted with this refresh token, so both die together. */
		accessJti: text("access_jti"),
		/** The token issued when this one was used. */
		successorId: text("successor_id"),
		/** Set when a retry inside the grace window replaced this token's pair. */
		invalidatedAt: timestamp("invalidated_at", { withTimezone: true, mode: "date" }),
	},
	(t) => [
		uniqueIndex("refresh_tokens_hash_idx").on(t.tokenHash),
		index("refresh_tokens_session_idx").on(t.sessionId),
		index("refresh_tokens_access_jti_idx").on(t.accessJti),
	],
);

export type RefreshTokenRow = typeof refreshTokens.$inferSelect;
