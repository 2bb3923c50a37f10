import { sql } from "drizzle-orm";
import {
	boolean,
	check,
	index,
	integer,
	jsonb,
	pgTable,
	text,
	timestamp,
	uniqueIndex,
} from "drizzle-orm/pg-core";

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

export type CredentialType = "oauth2" | "api_key" | "user_password" | "host_scoped";
export type CredentialStatus = "active" | "reconnect_required" | "revoked";

/**
 * Envelope-encrypted secret: `ciphertext` is AES-256-GCM under a per-row data key, which is
 * stored wrapped (`data_key`) by the ring key named in `key_id`. See docs/security.md.
 */
const sealedColumns = {
	ciphertext: text("ciphertext").notNull(),
	dataKey: text("data_key").notNull(),
	keyId: text("key_id").notNull(),
};

export const credentials = pgTable(
	"credentials",
	{
		id: text("id").primaryKey(),
		/** Null for system credentials, which every user sees and none owns. */
		userId: text("user_id").references(() => users.id, { onDelete: "cascade" }),
		provider: text("provider").notNull(),
		type: text("type").$type<CredentialType>().notNull(),
		title: text("title").notNull(),
		scopes: text("scopes").array().notNull().default(sql`'{}'::text[]`),
		username: text("username"),
		host: text("host"),
		status: text("status").$type<CredentialStatus>().notNull().default("active"),
		managed: boolean("managed").notNull().default(false),
		system: boolean("system").notNull().default(false),
		metadata: jsonb("metadata")
			.$type<Record<string, unknown>>()
			.notNull()
			.default(sql`'{}'::jsonb`),
		accessTokenExpiresAt: timestamp("access_token_expires_at", {
			withTimezone: true,
			mode: "date",
		}),
		...sealedColumns,
		/**
		 * Which AAD the sealed secret is bound to (see credentialAadOf). The default 1 is the
		 * legacy AAD of rows written before version 2; every seal now writes 2 explicitly.
		 */
		aadVersion: integer("aad_version").notNull().default(1),
		/** Optimistic concurrency: every write checks and bumps it. */
		version: integer("version").notNull().default(1),
		/**
		 * Bumped only by writes of the secret (a refresh, a reconnect, a PATCH of secret fields).
		 * A refresh is fenced on this, not on `version`: an edit of the title or metadata while a
		 * refresh is in flight must not discard the tokens that refresh obtained.
		 */
		tokenVersion: integer("token_version").notNull().default(1),
		...timestamps,
		lastUsedAt: timestamp("last_used_at", { withTimezone: true, mode: "date" }),
		/**
		 * When the current OAuth access token was obtained: with its expiry, the token's lifetime,
		 * which sets the lease refresh margin (min(5 min, a quarter of the lifetime)).
		 */
		tokenIssuedAt: timestamp("token_issued_at", { withTimezone: true, mode: "date" }),
		/** Transient refresh failures in a row; reset by a successful refresh. */
		refreshFailures: integer("refresh_failures").notNull().default(0),
		/** No refresh reaches the provider before this (backoff after a transient failure). */
		refreshRetryAt: timestamp("refresh_retry_at", { withTimezone: true, mode: "date" }),
		/** The provider's error code of the last failed refresh (a short token, never a body). */
		refreshError: text("refresh_error"),
	},
	(t) => [
		index("credentials_user_order_idx").on(t.userId, t.createdAt, t.id),
		// The proactive refresh scans OAuth tokens by expiry.
		index("credentials_oauth_expiry_idx")
			.on(t.accessTokenExpiresAt)
			.where(sql`${t.type} = 'oauth2' and ${t.status} = 'active'`),
		// One managed credential per user and provider, however many provisionings race.
		uniqueIndex("credentials_managed_owner_idx").on(t.userId, t.provider).where(sql`${t.managed}`),
		index("credentials_system_idx").on(t.system).where(sql`${t.system}`),
		index("credentials_key_id_idx").on(t.keyId),
		index("credentials_legacy_aad_idx").on(t.id).where(sql`${t.aadVersion} < 2`),
	],
);

export type CredentialRow = typeof credentials.$inferSelect;

/** Where a provider takes an API key in a proxied request (docs/proxy.md). */
export type ApiKeyPlacement =
	| { in: "header"; name: string; prefix: string }
	| { in: "query"; name: string };

/**
 * Admin-registered OAuth2 providers, and admin-set client credentials for built-in ones
 * (`builtin = true`: endpoints come from the code, only the client is stored here).
 */
export const oauthProviders = pgTable(
	"oauth_providers",
	{
		id: text("id").primaryKey(),
		builtin: boolean("builtin").notNull().default(false),
		name: text("name").notNull(),
		authorizeUrl: text("authorize_url"),
		tokenUrl: text("token_url"),
		revokeUrl: text("revoke_url"),
		userinfoUrl: text("userinfo_url"),
		issuer: text("issuer"),
		defaultScopes: text("default_scopes").array().notNull().default(sql`'{}'::text[]`),
		scopeSeparator: text("scope_separator").notNull().default(" "),
		pkce: boolean("pkce").notNull().default(true),
		clientAuth: text("client_auth").$type<"basic" | "post">().notNull().default("basic"),
		authorizeParams: jsonb("authorize_params")
			.$type<Record<string, string>>()
			.notNull()
			.default(sql`'{}'::jsonb`),
		refreshInvalidatesAccessToken: boolean("refresh_invalidates_access_token")
			.notNull()
			.default(false),
		refreshTokenRotates: boolean("refresh_token_rotates").notNull().default(false),
		/**
		 * Where the authenticated proxy sends this provider's OAuth2 and API-key credentials
		 * (https; docs/proxy.md). Null: the built-in value, or none.
		 */
		apiBaseUrl: text("api_base_url"),
		/** How an API key rides a proxied request; null: the built-in value, else `Authorization: Bearer`. */
		apiKeyPlacement: jsonb("api_key_placement").$type<ApiKeyPlacement>(),
		/** Null only on an API-key-only provider (no OAuth endpoints, no client): see the check. */
		clientId: text("client_id"),
		/** The client secret, sealed like a credential secret; null with client_id. */
		ciphertext: text("ciphertext"),
		dataKey: text("data_key"),
		keyId: text("key_id"),
		...timestamps,
	},
	(t) => [
		index("oauth_providers_key_id_idx").on(t.keyId),
		// A row is either an OAuth2 provider (a client, sealed secret and, unless it overrides a
		// built-in, both endpoints) or a custom API-key-only provider: no endpoints, no client, an
		// api_base_url. Nothing in between, so no code path meets half a provider.
		check(
			"oauth_providers_kind_check",
			sql`(${t.clientId} is not null and ${t.ciphertext} is not null and ${t.dataKey} is not null and ${t.keyId} is not null and (${t.builtin} or (${t.authorizeUrl} is not null and ${t.tokenUrl} is not null))) or (not ${t.builtin} and ${t.clientId} is null and ${t.ciphertext} is null and ${t.dataKey} is null and ${t.keyId} is null and ${t.authorizeUrl} is null and ${t.tokenUrl} is null and ${t.apiBaseUrl} is not null)`,
		),
	],
);

export type OAuthProviderRow = typeof oauthProviders.$inferSelect;

export type ProvisioningStatus = "pending" | "done" | "failed";

/**
 * The intent of a managed provisioning, written before any call to the provider, so that a
 * retry after a crash finds (and reuses or cleans up) what the crashed attempt created.
 * One row per user and managed provider.
 */
export const managedProvisionings = pgTable(
	"managed_provisionings",
	{
		userId: text("user_id")
			.notNull()
			.references(() => users.id, { onDelete: "cascade" }),
		provider: text("provider").notNull(),
		status: text("status").$type<ProvisioningStatus>().notNull().default("pending"),
		/** The idempotency key sent to the provider (derived from the user id). */
		clientId: text("client_id").notNull(),
		/** External resource ids created so far (e.g. `pod_id`, `key_id`). */
		resources: jsonb("resources")
			.$type<Record<string, string>>()
			.notNull()
			.default(sql`'{}'::jsonb`),
		attempts: integer("attempts").notNull().default(0),
		lastError: text("last_error"),
		...timestamps,
	},
	(t) => [uniqueIndex("managed_provisionings_pk").on(t.userId, t.provider)],
);

export type ManagedProvisioningRow = typeof managedProvisionings.$inferSelect;

/**
 * Admin-configured generic HTTP provisioners: Latchkey POSTs to `provision_url` (signed with
 * the HMAC secret, sealed here like a credential secret) and DELETEs to `deprovision_url`.
 */
export const managedProviderConfigs = pgTable("managed_provider_configs", {
	id: text("id").primaryKey(),
	name: text("name").notNull(),
	provisionUrl: text("provision_url").notNull(),
	deprovisionUrl: text("deprovision_url").notNull(),
	enabled: boolean("enabled").notNull().default(true),
	...sealedColumns,
	...timestamps,
});

export type ManagedProviderConfigRow = typeof managedProviderConfigs.$inferSelect;

export type JobStatus = "pending" | "running" | "done" | "failed";
export type JobKind = "deprovision_managed" | "revoke_oauth";

/**
 * Deprovisioning work of account deletion, run by the scheduled worker. Claimed with
 * FOR UPDATE SKIP LOCKED and held by a claim lease (`claimed_until`), so overlapping runs never
 * process a job twice and a crashed run's claim lapses. No foreign key to users: the purge
 * deletes the user once every job is done or failed, and jobs outlive it for the retention.
 */
export const jobs = pgTable(
	"jobs",
	{
		id: text("id").primaryKey(),
		userId: text("user_id").notNull(),
		kind: text("kind").$type<JobKind>().notNull(),
		status: text("status").$type<JobStatus>().notNull().default("pending"),
		/** What the job acts on (credential id, provider, external resource ids); never a secret. */
		payload: jsonb("payload").$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
		attempts: integer("attempts").notNull().default(0),
		maxAttempts: integer("max_attempts").notNull().default(8),
		nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true, mode: "date" })
			.notNull()
			.defaultNow(),
		claimedBy: text("claimed_by"),
		claimedUntil: timestamp("claimed_until", { withTimezone: true, mode: "date" }),
		lastError: text("last_error"),
		finishedAt: timestamp("finished_at", { withTimezone: true, mode: "date" }),
		...timestamps,
	},
	(t) => [
		index("jobs_due_idx").on(t.nextAttemptAt).where(sql`${t.status} in ('pending', 'running')`),
		index("jobs_user_idx").on(t.userId),
		index("jobs_status_order_idx").on(t.status, t.createdAt, t.id),
	],
);

export type JobRow = typeof jobs.$inferSelect;

/**
 * The audit log (docs/audit.md): append-only, one row per event, hash-chained per chain
 * (`<UTC day>/<shard>`). Each row's `hash` covers its content, its place (chain, seq) and the
 * previous row's hash, so an edited, reordered or removed row breaks the chain. `detail` is
 * canonical JSON kept as text: jsonb would reorder its keys and change what was hashed. No
 * foreign keys: events outlive the users, keys and credentials they name, for the retention.
 */
export const auditEvents = pgTable(
	"audit_events",
	{
		id: text("id").primaryKey(),
		chain: text("chain").notNull(),
		seq: integer("seq").notNull(),
		at: timestamp("at", { withTimezone: true, mode: "date" }).notNull(),
		action: text("action").notNull(),
		outcome: text("outcome").notNull(),
		/** The user the event is about (who may read it); null: only the admin. */
		userId: text("user_id"),
		authMethod: text("auth_method").notNull(),
		actorUserId: text("actor_user_id"),
		actorKeyId: text("actor_key_id"),
		actorSessionId: text("actor_session_id"),
		targetType: text("target_type"),
		targetId: text("target_id"),
		ip: text("ip"),
		requestId: text("request_id"),
		detail: text("detail").notNull(),
		prevHash: text("prev_hash").notNull(),
		hash: text("hash").notNull(),
	},
	(t) => [
		uniqueIndex("audit_events_chain_seq_idx").on(t.chain, t.seq),
		index("audit_events_user_at_idx").on(t.userId, t.at, t.id),
		index("audit_events_at_idx").on(t.at, t.id),
		index("audit_events_target_idx").on(t.targetType, t.targetId, t.at, t.id),
	],
);

export type AuditEventRow = typeof auditEvents.$inferSelect;

/**
 * The last (seq, hash) of every chain, written by the same statement as the row: without it,
 * removing a chain's last rows would leave a shorter chain that still verifies.
 */
export const auditChainHeads = pgTable("audit_chain_heads", {
	chain: text("chain").primaryKey(),
	seq: integer("seq").notNull(),
	hash: text("hash").notNull(),
	updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull(),
});

export type WebhookDeliveryStatus = "pending" | "delivered" | "failed";

/**
 * Platform-configured webhook endpoints (docs/webhooks.md): the URL, the event types it wants,
 * and its Standard Webhooks signing secret (`whsec_…`), sealed like a credential secret.
 */
export const webhooks = pgTable("webhooks", {
	id: text("id").primaryKey(),
	url: text("url").notNull(),
	events: text("events").array().notNull(),
	...sealedColumns,
	...timestamps,
});

export type WebhookRow = typeof webhooks.$inferSelect;

/**
 * One row per event × webhook, written in the same statement as the event's audit row, and sent
 * by the scheduled worker with retries (exponential backoff with jitter); `failed` after
 * `max_attempts` is the dead letter. The payload is the exact body sent (and signed) each time.
 */
export const webhookDeliveries = pgTable(
	"webhook_deliveries",
	{
		id: text("id").primaryKey(),
		webhookId: text("webhook_id")
			.notNull()
			.references(() => webhooks.id, { onDelete: "cascade" }),
		eventType: text("event_type").notNull(),
		payload: text("payload").notNull(),
		status: text("status").$type<WebhookDeliveryStatus>().notNull().default("pending"),
		attempts: integer("attempts").notNull().default(0),
		maxAttempts: integer("max_attempts").notNull(),
		nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true, mode: "date" })
			.notNull()
			.defaultNow(),
		claimedUntil: timestamp("claimed_until", { withTimezone: true, mode: "date" }),
		lastStatus: integer("last_status"),
		lastError: text("last_error"),
		deliveredAt: timestamp("delivered_at", { withTimezone: true, mode: "date" }),
		...timestamps,
	},
	(t) => [
		index("webhook_deliveries_due_idx").on(t.nextAttemptAt).where(sql`${t.status} = 'pending'`),
		index("webhook_deliveries_webhook_order_idx").on(t.webhookId, t.createdAt, t.id),
	],
);

export type WebhookDeliveryRow = typeof webhookDeliveries.$inferSelect;
