import { z } from "zod";
import { LatchkeyError } from "./errors.ts";

/**
 * Raw bindings as Cloudflare hands them to the worker. Everything is a string (or absent);
 * `loadConfig` is the only place that interprets them.
 */
export type Env = Record<string, unknown>;

const base64Key32 = z.string().refine((v) => {
	try {
		return atob(v).length === 32;
	} catch {
		return false;
	}
}, "must be base64 of exactly 32 bytes");

const jsonOf = <T extends z.ZodType>(schema: T) =>
	z.string().transform((raw, ctx): z.output<T> => {
		let parsed: unknown;
		try {
			parsed = JSON.parse(raw);
		} catch {
			ctx.addIssue({ code: "custom", message: "must be valid JSON" });
			return z.NEVER;
		}
		const result = schema.safeParse(parsed);
		if (!result.success) {
			for (const issue of result.error.issues) {
				ctx.addIssue({ code: "custom", message: issue.message, path: issue.path });
			}
			return z.NEVER;
		}
		return result.data;
	});

/**
 * Signing keys. The first private key whose `nbf` (unix seconds; absent = always) has passed
 * signs; every key is published in the JWKS at once. Keys retired from signing may stay in the
 * set as public keys so tokens they signed keep verifying.
 */
const signingJwk = z
	.object({
		kty: z.enum(["OKP", "EC"]),
		kid: z.string().min(1),
		d: z.string().min(1).optional(),
		alg: z.enum(["EdDSA", "Ed25519", "ES256"]).optional(),
		nbf: z.number().int().positive().optional(),
	})
	.passthrough()
	.refine((k) => k.nbf === undefined || k.d !== undefined, {
		message: "a key with nbf is a future signing key and must be private",
	});

const csv = z
	.string()
	.optional()
	.transform((v) =>
		(v ?? "")
			.split(",")
			.map((s) => s.trim())
			.filter(Boolean),
	);

/** Comma-separated http(s) origins (`https://app.example.com`), stored in their canonical form. */
const originList = csv.pipe(
	z.array(
		z.string().transform((value, ctx) => {
			let url: URL | undefined;
			try {
				url = new URL(value);
			} catch {
				url = undefined;
			}
			// Only an exact origin is accepted: a path here would suggest a prefix match that is not made.
			if (
				!url ||
				(url.protocol !== "https:" && url.protocol !== "http:") ||
				url.href !== `${url.origin}/`
			) {
				ctx.addIssue({
					code: "custom",
					message: "must be a comma-separated list of http(s) origins",
				});
				return z.NEVER;
			}
			return url.origin;
		}),
	),
);

const optionalNonEmpty = z
	.string()
	.optional()
	.transform((v) => (v === undefined || v.trim() === "" ? undefined : v.trim()));

/** A whole number setting with a default, within bounds. */
const wholeNumber = (fallback: number, min: number, max: number) =>
	optionalNonEmpty
		.pipe(z.string().regex(/^\d+$/, "must be a whole number").optional())
		.transform((v) => (v === undefined ? fallback : Number(v)))
		.pipe(z.number().int().min(min).max(max));

const ConfigSchema = z
	.object({
		LATCHKEY_ADMIN_TOKEN: z.string().min(32, "must be at least 32 characters"),
		LATCHKEY_ENCRYPTION_KEYS: jsonOf(z.record(z.string().min(1), base64Key32)),
		LATCHKEY_ENCRYPTION_ACTIVE_KEY: z.string().min(1),
		LATCHKEY_JWT_SIGNING_KEYS: jsonOf(z.object({ keys: z.array(signingJwk).min(1) })),
		LATCHKEY_HMAC_SECRET: z.string().min(32, "must be at least 32 characters"),
		/**
		 * More HMAC keys for unsubscribe links, `{"<key id>":"<secret of 32+ characters>"}`;
		 * LATCHKEY_HMAC_SECRET is key "default". Rotation: docs/security.md.
		 */
		LATCHKEY_HMAC_KEYS: optionalNonEmpty.pipe(
			z
				.string()
				.optional()
				.transform((v) => v ?? "{}")
				.pipe(
					jsonOf(
						z.record(
							z
								.string()
								.regex(/^[A-Za-z0-9_-]{1,32}$/, "key ids are 1-32 of A-Z a-z 0-9 _ -")
								.refine((id) => id !== "default", "the key id 'default' is LATCHKEY_HMAC_SECRET"),
							z.string().min(32, "every key must be at least 32 characters"),
						),
					),
				),
		),
		/** The key id that signs new unsubscribe links; "default" (LATCHKEY_HMAC_SECRET) when unset. */
		LATCHKEY_HMAC_ACTIVE_KEY: optionalNonEmpty,
		DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }),
		UPSTASH_REDIS_REST_URL: z.url({ protocol: /^https?$/ }),
		UPSTASH_REDIS_REST_TOKEN: z.string().min(1),
		LATCHKEY_PUBLIC_URL: z.url({ protocol: /^https?$/ }),
		LATCHKEY_ALLOWED_ORIGINS: csv,
		/** Origins, besides LATCHKEY_PUBLIC_URL's, that OAuth redirect_uri and return_to may use. */
		LATCHKEY_ALLOWED_REDIRECT_ORIGINS: originList,
		/** `http://host:port/sql` of a local stand-in for Neon's HTTP endpoint; unset on Cloudflare. */
		LATCHKEY_DB_HTTP_ENDPOINT: optionalNonEmpty.pipe(z.url({ protocol: /^https?$/ }).optional()),
		/** host:port of a local WebSocket→TCP bridge; unset on Cloudflare (Neon speaks WebSocket). */
		LATCHKEY_DB_WS_PROXY: optionalNonEmpty,
		LATCHKEY_LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
		/** After this instant legacy (`sk-…`) keys are refused; before it they carry `Sunset`. */
		LEGACY_KEYS_SUNSET: optionalNonEmpty.pipe(z.iso.datetime({ offset: true }).optional()),
		EXTERNAL_JWT_JWKS_URL: optionalNonEmpty.pipe(z.url({ protocol: /^https?$/ }).optional()),
		EXTERNAL_JWT_ISSUER: optionalNonEmpty,
		EXTERNAL_JWT_AUDIENCE: optionalNonEmpty,
		/** The platform's AgentMail organization key; set, it enables AgentMail managed credentials. */
		AGENTMAIL_API_KEY: optionalNonEmpty,
		/** AgentMail's API root (paths under `/v0/`); a stand-in's in tests. */
		AGENTMAIL_BASE_URL: optionalNonEmpty.pipe(
			z
				.url({ protocol: /^https?$/ })
				.optional()
				.transform((v) => (v ?? "https://api.agentmail.to").replace(/\/+$/, "")),
		),
		/** Attempts a deletion job gets before it is `failed` (docs/operations.md). */
		LATCHKEY_JOB_MAX_ATTEMPTS: wholeNumber(8, 1, 50),
		/** How long a failed deletion job holds back its user's purge, so that a retry can still work. */
		LATCHKEY_FAILED_JOB_RETENTION_HOURS: wholeNumber(168, 0, 8760),
		/** How long finished deletion jobs stay listed after their user was purged. */
		LATCHKEY_JOB_RETENTION_DAYS: wholeNumber(30, 1, 3650),
		/** The least time between a deletion request and the purge of the user's rows. */
		LATCHKEY_PURGE_DELAY_SECONDS: wholeNumber(0, 0, 30 * 86_400),
		/** How long ended (revoked or expired) sessions and their refresh tokens are kept. */
		LATCHKEY_SESSION_RETENTION_DAYS: wholeNumber(30, 1, 3650),
		/** How long delivered and failed webhook deliveries are kept (docs/webhooks.md). */
		LATCHKEY_WEBHOOK_RETENTION_DAYS: wholeNumber(30, 1, 3650),
		/**
		 * How far ahead the scheduled run refreshes OAuth tokens (docs/leases.md); 0 turns the
		 * proactive refresh off, leaving every refresh to the lease that needs it.
		 */
		LATCHKEY_PROACTIVE_REFRESH_SECONDS: wholeNumber(900, 0, 86_400),
		/**
		 * The proactive refresh leaves alone tokens nobody has leased for this long: a
		 * short-lived token of an abandoned credential is not refreshed forever.
		 */
		LATCHKEY_PROACTIVE_REFRESH_IDLE_SECONDS: wholeNumber(7 * 86_400, 60, 365 * 86_400),
		/** At most this many proactive refreshes per user per scheduled run (fairness). */
		LATCHKEY_PROACTIVE_REFRESH_PER_USER: wholeNumber(5, 1, 1000),
		/**
		 * Leases per principal (an API key and the sessions obtained from it): a token bucket of
		 * this size, refilled at LATCHKEY_LEASE_RATE_PER_SECOND. The default admits a herd of 500
		 * leases at once. 0 turns the limit off.
		 */
		LATCHKEY_LEASE_BURST: wholeNumber(500, 0, 1_000_000),
		LATCHKEY_LEASE_RATE_PER_SECOND: wholeNumber(50, 1, 1_000_000),
		/** Live leases one credential may have at once (a system credential counts all users'). */
		LATCHKEY_MAX_LEASES_PER_CREDENTIAL: wholeNumber(1000, 1, 100_000),
		/**
		 * Days of audit log kept (docs/audit.md): the scheduled worker deletes older UTC days whole.
		 * 0 keeps everything.
		 */
		LATCHKEY_AUDIT_RETENTION_DAYS: wholeNumber(365, 0, 36_500),
		/**
		 * Lets the authenticated proxy reach loopback hosts over http (a `host_scoped` host such as
		 * `127.0.0.1:8080`, or a provider's api_base_url): `npm run dev` sets it, `npm start` only
		 * when told to. Never on a shared host: any user could then reach its local services.
		 */
		LATCHKEY_PROXY_ALLOW_LOOPBACK: z
			.enum(["true", "false", "on", "off", "1", "0", ""])
			.optional()
			.transform((v) => v === "true" || v === "on" || v === "1"),
		/**
		 * How long a proxied call may wait for the upstream's response headers after the last byte
		 * of its request body moved (docs/proxy.md); then 504 upstream_timeout.
		 */
		LATCHKEY_PROXY_TIMEOUT_SECONDS: wholeNumber(30, 1, 300),
		/** The largest request body the proxy forwards (streamed, never held whole); beyond it 413. */
		LATCHKEY_PROXY_MAX_REQUEST_BYTES: wholeNumber(100 * 1024 * 1024, 1, 2 ** 31),
		/**
		 * `off` sends every lease the serial way (row read, then grant) instead of the fast path
		 * (docs/leases.md): an operator's switch, and the bench's baseline.
		 */
		LATCHKEY_LEASE_FAST_PATH: z
			.enum(["on", "off", ""])
			.optional()
			.transform((v) => v !== "off"),
	})
	.superRefine((cfg, ctx) => {
		if (!(cfg.LATCHKEY_ENCRYPTION_ACTIVE_KEY in cfg.LATCHKEY_ENCRYPTION_KEYS)) {
			ctx.addIssue({
				code: "custom",
				path: ["LATCHKEY_ENCRYPTION_ACTIVE_KEY"],
				message: "must name a key of LATCHKEY_ENCRYPTION_KEYS",
			});
		}
		if (
			cfg.LATCHKEY_HMAC_ACTIVE_KEY !== undefined &&
			cfg.LATCHKEY_HMAC_ACTIVE_KEY !== "default" &&
			!Object.hasOwn(cfg.LATCHKEY_HMAC_KEYS, cfg.LATCHKEY_HMAC_ACTIVE_KEY)
		) {
			ctx.addIssue({
				code: "custom",
				path: ["LATCHKEY_HMAC_ACTIVE_KEY"],
				message: "must name a key of LATCHKEY_HMAC_KEYS, or 'default'",
			});
		}
		const external = [
			cfg.EXTERNAL_JWT_JWKS_URL,
			cfg.EXTERNAL_JWT_ISSUER,
			cfg.EXTERNAL_JWT_AUDIENCE,
		];
		if (external.some(Boolean) && !external.every(Boolean)) {
			for (const name of [
				"EXTERNAL_JWT_JWKS_URL",
				"EXTERNAL_JWT_ISSUER",
				"EXTERNAL_JWT_AUDIENCE",
			] as const) {
				if (!cfg[name]) {
					ctx.addIssue({
						code: "custom",
						path: [name],
						message: "all three EXTERNAL_JWT_* variables must be set together",
					});
				}
			}
		}
		// One private key without nbf always signs; a set whose every private key waits for its
		// nbf would leave a fresh deploy unable to sign until then.
		if (!cfg.LATCHKEY_JWT_SIGNING_KEYS.keys.some((k) => k.d && k.nbf === undefined)) {
			ctx.addIssue({
				code: "custom",
				path: ["LATCHKEY_JWT_SIGNING_KEYS"],
				message: "needs a private key without nbf to sign until a newer key's nbf passes",
			});
		}
	});

/** An OAuth client of a built-in provider, set at deploy time through the environment. */
export interface EnvOAuthClient {
	clientId?: string;
	clientSecret?: string;
}

export type Config = z.output<typeof ConfigSchema> & {
	/**
	 * `OAUTH_<PROVIDER>_CLIENT_ID` / `_CLIENT_SECRET`, keyed by `<PROVIDER>`. Read by pattern rather
	 * than listed in the schema so that a new built-in provider needs no change here.
	 */
	OAUTH_CLIENTS: Readonly<Record<string, EnvOAuthClient>>;
};

const OAUTH_CLIENT_VAR = /^OAUTH_([A-Z0-9_]+)_CLIENT_(ID|SECRET)$/;

function oauthClientsFromEnv(env: Env): Record<string, EnvOAuthClient> {
	const clients: Record<string, EnvOAuthClient> = {};
	for (const [name, value] of Object.entries(env)) {
		const match = OAUTH_CLIENT_VAR.exec(name);
		if (!match || typeof value !== "string" || value.trim() === "") continue;
		const [, provider, part] = match as unknown as [string, string, "ID" | "SECRET"];
		clients[provider] ??= {};
		if (part === "ID") clients[provider].clientId = value.trim();
		else clients[provider].clientSecret = value.trim();
	}
	return clients;
}

/** The `<PROVIDER>` part of a provider's environment variables: `my-app.io` → `MY_APP_IO`. */
export function oauthEnvName(providerId: string): string {
	return providerId.toUpperCase().replace(/[-.]/g, "_");
}

// Workers hand the same env object to every request of an isolate, so validation runs once.
const cache = new WeakMap<object, Config | LatchkeyError>();

/**
 * Validates the bindings. Throws a `misconfigured` error naming the offending variables and
 * the rule they break, never their values.
 */
export function loadConfig(env: Env): Config {
	const hit = cache.get(env);
	if (hit instanceof LatchkeyError) throw hit;
	if (hit) return hit;
	const parsed = ConfigSchema.safeParse(env);
	if (parsed.success) {
		const config: Config = { ...parsed.data, OAUTH_CLIENTS: oauthClientsFromEnv(env) };
		cache.set(env, config);
		return config;
	}
	const problems = parsed.error.issues.map((issue) => {
		const variable = String(issue.path[0] ?? "configuration");
		const missing = env[variable] === undefined || env[variable] === "";
		return { variable, problem: missing ? "missing" : issue.message };
	});
	const names = [...new Set(problems.map((p) => p.variable))];
	const err = new LatchkeyError(
		"misconfigured",
		`Latchkey is misconfigured: ${names.join(", ")} ${names.length === 1 ? "is" : "are"} missing or invalid.`,
		{ detail: problems },
	);
	cache.set(env, err);
	throw err;
}
