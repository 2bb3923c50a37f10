import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair } from "jose";
import type { OAuthServerDetails } from "./types.ts";

/**
 * A real OAuth 2.0 authorization server (panva's oidc-provider) for the OAuth tests: a
 * confidential client (client_secret_basic) that must use PKCE S256, a second one
 * (client_secret_post, PKCE optional) for providers configured the other way, rotating refresh
 * tokens, revocation and introspection. Tests in workerd drive the login and consent without a browser
 * through `POST /test/authorize`, which plays the user against the server's own endpoints.
 */

// oidc-provider ships no type declarations; this is the part of its API used here.
interface Grant {
	addOIDCScope(scope: string): void;
	addOIDCClaims(claims: string[]): void;
	addResourceScope(indicator: string, scope: string): void;
	save(): Promise<string>;
}
interface InteractionDetails {
	prompt: { name: string; details: Record<string, unknown> };
	params: Record<string, unknown>;
	session?: { accountId?: string };
	grantId?: string;
}
interface OidcProvider {
	callback(): (req: IncomingMessage, res: ServerResponse) => void;
	interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
	interactionFinished(
		req: IncomingMessage,
		res: ServerResponse,
		result: Record<string, unknown>,
		options?: { mergeWithLastSubmission?: boolean },
	): Promise<void>;
	Grant: {
		new (init: { accountId: string; clientId: string }): Grant;
		find(id: string): Promise<Grant | undefined>;
	};
	on(event: string, listener: (...args: unknown[]) => void): void;
}
type ProviderClass = new (issuer: string, configuration: Record<string, unknown>) => OidcProvider;

/**
 * Accounts whose ids start with this get access tokens of SHORT_LIVED_TTL_S seconds: tokens
 * shorter-lived than a lease (test/worker/lease-model.test.ts). Everyone else's live an hour.
 */
const SHORT_LIVED_ACCOUNT = "short-lived-";
const SHORT_LIVED_TTL_S = 120;

/** A client may revoke and introspect the tokens issued to it, and no others. */
const ownToken = async (
	_ctx: unknown,
	client: { clientId: string },
	token: { clientId?: string },
) => token.clientId === client.clientId;

const ROUTES = {
	authorization: "/authorize",
	token: "/token",
	revocation: "/revoke",
	introspection: "/introspect",
	userinfo: "/userinfo",
} as const;

async function loadProvider(): Promise<ProviderClass> {
	// A specifier in a variable keeps TypeScript from demanding declarations the package lacks.
	const specifier = "oidc-provider";
	const mod = (await import(specifier)) as { default: ProviderClass };
	return mod.default;
}

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		req.on("data", (chunk: Buffer) => chunks.push(chunk));
		req.on("end", () => {
			try {
				resolve(JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}"));
			} catch (err) {
				reject(err);
			}
		});
		req.on("error", reject);
	});
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
	res.writeHead(status, { "content-type": "application/json" });
	res.end(JSON.stringify(body));
}

export async function startOAuthServer(options: {
	redirectUris: string[];
	/**
	 * oidc-provider's own login and consent pages (its devInteractions), for a test driving a real
	 * browser through them, instead of the scripted interaction below.
	 */
	loginPages?: boolean;
}): Promise<
	OAuthServerDetails & {
		/**
		 * POST `{rules: [{account?, mode: "status" | "invalid_grant" | "delay", status?, delay_ms?,
		 * times?}]}` adds token-endpoint faults for refresh grants; DELETE clears them; GET →
		 * `{rules, applied}`. (GET `refreshAttemptsUrl?account=` → `{issued, attempts: number[], refresh_tokens}`.)
		 */
		tokenFaultsUrl: string;
		close: () => Promise<void>;
	}
> {
	const Provider = await loadProvider();
	const clientId = "latchkey-test";
	const clientSecret = randomBytes(24).toString("base64url");
	const postClientId = "latchkey-test-post";
	const postClientSecret = randomBytes(24).toString("base64url");

	let handle: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
		res.writeHead(503).end();
	};
	const server = createServer((req, res) => handle(req, res));
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	const issuer = `http://127.0.0.1:${port}`;

	const { privateKey } = await generateKeyPair("RS256", { extractable: true });
	const provider = new Provider(issuer, {
		clients: [
			{
				client_id: clientId,
				client_secret: clientSecret,
				redirect_uris: options.redirectUris,
				grant_types: ["authorization_code", "refresh_token"],
				response_types: ["code"],
				token_endpoint_auth_method: "client_secret_basic",
			},
			{
				client_id: postClientId,
				client_secret: postClientSecret,
				redirect_uris: options.redirectUris,
				grant_types: ["authorization_code", "refresh_token"],
				response_types: ["code"],
				token_endpoint_auth_method: "client_secret_post",
			},
		],
		jwks: { keys: [{ ...(await exportJWK(privateKey)), alg: "RS256", use: "sig", kid: "test" }] },
		cookies: { keys: [randomBytes(32).toString("base64url")] },
		routes: ROUTES,
		scopes: ["openid", "offline_access", "email", "profile"],
		claims: {
			openid: ["sub"],
			email: ["email", "email_verified"],
			profile: ["preferred_username", "name"],
		},
		// Every user is someone: the username the test plays is the account id.
		findAccount: async (_ctx: unknown, sub: string) => ({
			accountId: sub,
			claims: async () => ({
				sub,
				preferred_username: sub,
				name: sub,
				email: `${sub}@example.test`,
				email_verified: true,
			}),
		}),
		pkce: {
			required: (_ctx: unknown, client: { clientId: string }) => client.clientId === clientId,
		},
		ttl: {
			AccessToken: (_ctx: unknown, token: { accountId?: string }) =>
				token.accountId?.startsWith(SHORT_LIVED_ACCOUNT) ? SHORT_LIVED_TTL_S : 3600,
			AuthorizationCode: 60,
			IdToken: 3600,
			RefreshToken: 86_400,
			Interaction: 600,
			Session: 3600,
			Grant: 86_400,
		},
		// Refresh tokens without the offline_access + prompt=consent ceremony, rotated on each use.
		issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(t: string): boolean }) =>
			client.grantTypeAllowed("refresh_token"),
		rotateRefreshToken: () => true,
		features: {
			devInteractions: { enabled: options.loginPages ?? false },
			revocation: { enabled: true, allowedPolicy: ownToken },
			introspection: { enabled: true, allowedPolicy: ownToken },
		},
		// Errors as JSON rather than an HTML page, so a failing test shows why.
		renderError: async (ctx: { type: string; body: unknown }, out: unknown) => {
			ctx.type = "json";
			ctx.body = out;
		},
	});

	const oidc = provider.callback();

	// Token lifecycle per account, so tests can see what the server issued and what was given back.
	const ledger = new Map<string, Record<string, number>>();
	for (const kind of ["access_token", "refresh_token"]) {
		for (const event of ["saved", "destroyed"]) {
			provider.on(`${kind}.${event}`, (...args: unknown[]) => {
				const token = args[0] as { accountId?: string };
				if (!token.accountId) return;
				const entry = ledger.get(token.accountId) ?? {};
				entry[`${kind}.${event}`] = (entry[`${kind}.${event}`] ?? 0) + 1;
				ledger.set(token.accountId, entry);
			});
		}
	}

	// Token-endpoint attempts per presented refresh token, successful or refused, so a test can
	// tell that a refresh token was (or was never again) presented.
	const refreshAttempts = new Map<string, number>();
	const countRefresh = (...args: unknown[]) => {
		const ctx = args[0] as { oidc?: { params?: Record<string, unknown> } };
		const params = ctx.oidc?.params;
		if (params?.grant_type !== "refresh_token" || typeof params.refresh_token !== "string") return;
		refreshAttempts.set(params.refresh_token, (refreshAttempts.get(params.refresh_token) ?? 0) + 1);
	};
	provider.on("grant.success", countRefresh);
	provider.on("grant.error", countRefresh);

	// Which account each refresh token was issued to (an opaque token's value is its jti), so
	// attempts and injected faults can be told per account.
	const refreshTokenAccount = new Map<string, string>();
	provider.on("refresh_token.saved", (...args: unknown[]) => {
		const token = args[0] as { jti?: string; accountId?: string };
		if (token.jti && token.accountId) refreshTokenAccount.set(token.jti, token.accountId);
	});

	/**
	 * Faults of the token endpoint a soak or test switches on (`POST /test/token-faults`): for
	 * refresh-token grants of one account (or of every account when `account` is absent), answer
	 * `status` (a bare 5xx), or `invalid_grant` (400, as a provider refusing the refresh token),
	 * or pass the request on after `delay_ms`. Each rule applies `times` times (default 1);
	 * `applied` records every fault given, so a caller can tell a refusal the provider really gave.
	 */
	interface TokenFault {
		account?: string;
		mode: "status" | "invalid_grant" | "delay";
		status?: number;
		delay_ms?: number;
		times?: number;
	}
	const tokenFaults: TokenFault[] = [];
	const faultsApplied: {
		account: string | null;
		mode: string;
		status: number | null;
		at: string;
	}[] = [];
	const takeTokenFault = (account: string | undefined): TokenFault | undefined => {
		const index = tokenFaults.findIndex((f) => f.account === undefined || f.account === account);
		if (index < 0) return undefined;
		const fault = tokenFaults[index] as TokenFault;
		const left = (fault.times ?? 1) - 1;
		if (left <= 0) tokenFaults.splice(index, 1);
		else fault.times = left;
		return fault;
	};
	/** Reads the token request's form body, then hands it to oidc-provider as already parsed. */
	const tokenWithFaults = (req: IncomingMessage, res: ServerResponse) => {
		const chunks: Buffer[] = [];
		req.on("data", (chunk: Buffer) => chunks.push(chunk));
		req.on("error", () => res.destroy());
		req.on("end", () => {
			const raw = Buffer.concat(chunks).toString("utf8");
			(req as IncomingMessage & { body?: string }).body = raw;
			const params = new URLSearchParams(raw);
			const presented = params.get("refresh_token");
			const fault =
				params.get("grant_type") === "refresh_token" && presented
					? takeTokenFault(refreshTokenAccount.get(presented))
					: undefined;
			if (!fault) {
				oidc(req, res);
				return;
			}
			const account = (presented && refreshTokenAccount.get(presented)) ?? null;
			if (fault.mode === "delay") {
				faultsApplied.push({ account, mode: "delay", status: null, at: new Date().toISOString() });
				setTimeout(() => oidc(req, res), Math.min(fault.delay_ms ?? 1000, 60_000));
				return;
			}
			const status = fault.mode === "invalid_grant" ? 400 : (fault.status ?? 500);
			faultsApplied.push({ account, mode: fault.mode, status, at: new Date().toISOString() });
			if (fault.mode === "invalid_grant") {
				sendJson(res, 400, { error: "invalid_grant", error_description: "injected refusal" });
			} else sendJson(res, status, { error: "server_error", error_description: "injected" });
		});
	};

	/** The user's side of an interaction: log in as `username`, then grant or refuse. */
	async function interact(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
		const details = await provider.interactionDetails(req, res);
		const username = url.searchParams.get("username") ?? "alice";
		if (url.searchParams.get("decision") === "deny") {
			await provider.interactionFinished(
				req,
				res,
				{ error: "access_denied", error_description: "The user declined." },
				{ mergeWithLastSubmission: false },
			);
			return;
		}
		if (details.prompt.name === "login") {
			await provider.interactionFinished(
				req,
				res,
				{ login: { accountId: username } },
				{ mergeWithLastSubmission: false },
			);
			return;
		}
		const accountId = details.session?.accountId ?? username;
		const grant =
			(details.grantId ? await provider.Grant.find(details.grantId) : undefined) ??
			new provider.Grant({ accountId, clientId: String(details.params.client_id) });
		const missing = details.prompt.details as {
			missingOIDCScope?: string[];
			missingOIDCClaims?: string[];
			missingResourceScopes?: Record<string, string[]>;
		};
		if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
		if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
		for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
			grant.addResourceScope(indicator, scopes.join(" "));
		}
		const grantId = await grant.save();
		await provider.interactionFinished(req, res, { consent: { grantId } });
	}

	/**
	 * Plays a browser: follows the server's redirects with a cookie jar, answering its interaction
	 * pages, until the server redirects away from itself (to the client's redirect_uri).
	 */
	async function drive(authorizationUrl: string, username: string, decision: string) {
		const jar = new Map<string, string>();
		let url = new URL(authorizationUrl);
		for (let hop = 0; hop < 20; hop++) {
			if (url.origin !== issuer) return { redirect: url.href };
			if (url.pathname.startsWith("/interaction/") && !options.loginPages) {
				url.searchParams.set("username", username);
				url.searchParams.set("decision", decision);
			}
			const response = await fetch(url, {
				redirect: "manual",
				headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; ") },
			});
			for (const cookie of response.headers.getSetCookie()) {
				const pair = cookie.split(";")[0] ?? "";
				const at = pair.indexOf("=");
				const name = pair.slice(0, at).trim();
				const value = pair.slice(at + 1).trim();
				if (value) jar.set(name, value);
				else jar.delete(name);
			}
			const location = response.headers.get("location");
			if (!location) {
				return {
					error: `no redirect from ${url.pathname}`,
					status: response.status,
					body: await response.text(),
				};
			}
			url = new URL(location, url);
		}
		return { error: "too many redirects" };
	}

	handle = (req, res) => {
		const url = new URL(req.url ?? "/", issuer);
		if (req.method === "POST" && url.pathname === "/test/authorize") {
			readJson(req)
				.then((body) =>
					drive(
						String(body.authorization_url),
						String(body.username ?? "alice"),
						String(body.decision ?? "approve"),
					),
				)
				.then((result) => sendJson(res, "redirect" in result ? 200 : 500, result))
				.catch((err: unknown) => sendJson(res, 500, { error: String(err) }));
			return;
		}
		if (req.method === "POST" && url.pathname === "/test/refresh-attempts") {
			readJson(req)
				.then((body) =>
					sendJson(res, 200, { attempts: refreshAttempts.get(String(body.refresh_token)) ?? 0 }),
				)
				.catch((err: unknown) => sendJson(res, 500, { error: String(err) }));
			return;
		}
		if (url.pathname === "/test/token-faults") {
			if (req.method === "POST") {
				readJson(req)
					.then((body) => {
						tokenFaults.push(...((body.rules ?? []) as TokenFault[]));
						sendJson(res, 200, { rules: tokenFaults.length });
					})
					.catch((err: unknown) => sendJson(res, 500, { error: String(err) }));
			} else if (req.method === "DELETE") {
				tokenFaults.splice(0);
				sendJson(res, 200, { rules: 0 });
			} else sendJson(res, 200, { rules: tokenFaults, applied: faultsApplied });
			return;
		}
		if (req.method === "GET" && url.pathname === "/test/refresh-attempts") {
			// Attempts per refresh token issued to one account, at oidc-provider (faults answered
			// above it are not attempts).
			const account = url.searchParams.get("account") ?? "";
			const attempts: number[] = [];
			const tokens: string[] = [];
			for (const [token, owner] of refreshTokenAccount)
				if (owner === account) {
					attempts.push(refreshAttempts.get(token) ?? 0);
					tokens.push(token);
				}
			sendJson(res, 200, { issued: attempts.length, attempts, refresh_tokens: tokens });
			return;
		}
		if (req.method === "POST" && url.pathname === ROUTES.token && tokenFaults.length > 0) {
			tokenWithFaults(req, res);
			return;
		}
		if (req.method === "GET" && url.pathname === "/test/tokens") {
			sendJson(res, 200, ledger.get(url.searchParams.get("account") ?? "") ?? {});
			return;
		}
		if (url.pathname.startsWith("/interaction/") && !options.loginPages) {
			interact(req, res, url).catch((err: unknown) => sendJson(res, 500, { error: String(err) }));
			return;
		}
		oidc(req, res);
	};

	return {
		issuer,
		clientId,
		clientSecret,
		postClientId,
		postClientSecret,
		redirectUris: options.redirectUris,
		authorizeUrl: `${issuer}${ROUTES.authorization}`,
		tokenUrl: `${issuer}${ROUTES.token}`,
		revokeUrl: `${issuer}${ROUTES.revocation}`,
		introspectionUrl: `${issuer}${ROUTES.introspection}`,
		userinfoUrl: `${issuer}${ROUTES.userinfo}`,
		driveUrl: `${issuer}/test/authorize`,
		tokensUrl: `${issuer}/test/tokens`,
		refreshAttemptsUrl: `${issuer}/test/refresh-attempts`,
		tokenFaultsUrl: `${issuer}/test/token-faults`,
		close: () =>
			new Promise((resolve) => {
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	};
}
