import { z } from "zod";
import type { Config } from "../config.ts";
import { randomBytes, toBase64Url } from "../crypto/encoding.ts";
import { sha256Hex } from "../crypto/hash.ts";
import { LatchkeyError } from "../errors.ts";
import { parseStoredJson } from "../redis/json.ts";
import type { Services } from "../services.ts";

/**
 * The `state` of an authorization request: 32 random bytes handed to the client, and the
 * request's context kept in Redis under the state's SHA-256, so that a Redis dump yields no
 * usable state. Single use, and valid for ten minutes.
 */

export const STATE_TTL_SECONDS = 600;
const STATE_PATTERN = /^[A-Za-z0-9_-]{43}$/;

const StateRecord = z.object({
	user_id: z.string(),
	provider: z.string(),
	scopes: z.array(z.string()),
	redirect_uri: z.string(),
	return_to: z.string().nullable(),
	credential_id: z.string().nullable(),
	code_verifier: z.string().nullable(),
	created_at: z.string(),
});

export type OAuthStateRecord = z.infer<typeof StateRecord>;

const stateKey = async (state: string) => `lk:oauth:state:${await sha256Hex(state)}`;

export async function createState(
	services: Services,
	record: Omit<OAuthStateRecord, "created_at">,
): Promise<{ state: string; expiresAt: Date }> {
	const state = toBase64Url(randomBytes(32));
	const createdAt = services.now();
	const full: OAuthStateRecord = { ...record, created_at: createdAt.toISOString() };
	await services.redis.set(await stateKey(state), JSON.stringify(full), {
		ex: STATE_TTL_SECONDS,
	});
	return { state, expiresAt: new Date(createdAt.getTime() + STATE_TTL_SECONDS * 1000) };
}

const invalidState = (message: string) =>
	new LatchkeyError("invalid_state", message, {
		hint: "Start again with POST /v1/oauth/{provider}/authorize; a state works once, for 10 minutes.",
	});

/**
 * Consumes a state exactly once. With `userId`, a state of another user is refused without being
 * consumed, so a stranger who learns a state cannot burn it: ownership is checked on a read, and
 * only then is the state taken with GETDEL, which is atomic, so two racing owners cannot both
 * win. Expiry is judged by the service clock as well as by the Redis TTL.
 */
export async function consumeState(
	services: Services,
	state: string,
	options: { userId?: string } = {},
): Promise<OAuthStateRecord> {
	if (!STATE_PATTERN.test(state)) throw invalidState("Unknown OAuth state.");
	const key = await stateKey(state);
	if (options.userId !== undefined) {
		const peek = parseStoredJson(StateRecord, await services.redis.get(key));
		if (!peek || peek.user_id !== options.userId) {
			throw invalidState("Unknown, expired or already used OAuth state.");
		}
	}
	const record = parseStoredJson(StateRecord, await services.redis.getdel(key));
	if (!record || (options.userId !== undefined && record.user_id !== options.userId)) {
		throw invalidState("Unknown, expired or already used OAuth state.");
	}
	const age = services.now().getTime() - Date.parse(record.created_at);
	if (!(age < STATE_TTL_SECONDS * 1000)) {
		throw invalidState("The OAuth state has expired.");
	}
	return record;
}

/**
 * `{LATCHKEY_PUBLIC_URL}/v1/oauth/callback`, where the provider sends the user by default. The
 * public URL may carry a path (a deployment under `https://host/latchkey`): the callback is
 * appended to it, never resolved against the origin, which would drop that path.
 */
export function defaultRedirectUri(config: Config): string {
	const base = new URL(config.LATCHKEY_PUBLIC_URL);
	base.pathname = `${base.pathname.replace(/\/+$/, "")}/v1/oauth/callback`;
	base.search = "";
	base.hash = "";
	return base.href;
}

/**
 * A redirect_uri or return_to must be an absolute http(s) URL on an allowed origin; otherwise
 * Latchkey would hand codes, or credential ids, to whoever asked. Returns the URL normalised.
 */
export function checkRedirectTarget(
	config: Config,
	value: string,
	field: "redirect_uri" | "return_to",
): string {
	const refuse = (message: string) =>
		new LatchkeyError("invalid_request", `${field} is not allowed.`, {
			hint: "Use a URL on LATCHKEY_PUBLIC_URL's origin or on an origin listed in LATCHKEY_ALLOWED_REDIRECT_ORIGINS.",
			detail: [{ field, location: "json", message }],
		});
	let url: URL;
	try {
		url = new URL(value);
	} catch {
		throw refuse("must be an absolute URL");
	}
	if (url.protocol !== "https:" && url.protocol !== "http:") throw refuse("must be http(s)");
	if (url.username || url.password) throw refuse("must not carry credentials");
	// A fragment in a redirect URI is forbidden by RFC 6749 §3.1.2, and would swallow our
	// parameters on return_to.
	if (url.hash) throw refuse("must not have a fragment");
	const allowed = new Set([
		new URL(config.LATCHKEY_PUBLIC_URL).origin,
		...config.LATCHKEY_ALLOWED_REDIRECT_ORIGINS,
	]);
	if (!allowed.has(url.origin)) throw refuse("origin not allowed");
	return url.href;
}
