import { eq } from "drizzle-orm";
import { z } from "zod";
import type { ConnectedAccount } from "../credentials/secrets.ts";
import { randomBase62 } from "../crypto/encoding.ts";
import { getKeyRing, open, seal } from "../crypto/envelope.ts";
import { sha256Hex } from "../crypto/hash.ts";
import { users } from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import { parseStoredJson } from "../redis/json.ts";
import type { Services } from "../services.ts";
import { assertUserActive } from "../user-status.ts";
import { revokeUpstream } from "./service.ts";

/**
 * The provider's answer to a browser connect, parked until the user who started the connect
 * claims it (RFC 6749 §10.12, RFC 9700 §4.7). The GET callback runs in whatever browser finished
 * the login at the provider, and the state names only the user who *started*: storing the account
 * there would let a user who gets someone else to open their authorization URL receive that
 * person's provider account. So the callback parks the account under a one-time connect_id that
 * only reaches the completing browser, and only a request authenticated as the starting user,
 * presenting that id, turns it into a credential.
 *
 * Kept in Redis under the SHA-256 of the connect_id (a dump yields no usable id), sealed with the
 * envelope keys under an AAD that holds the connect_id itself and the owner: without the id,
 * which is never stored, the ring keys alone do not open it. Single use, ten minutes at most.
 */

export const CONNECT_TTL_SECONDS = 600;
/** 32 base62 characters: about 190 bits, like API key secrets. */
const CONNECT_ID_LENGTH = 32;
export const CONNECT_ID_PATTERN = /^[0-9A-Za-z]{32}$/;

const connectKey = async (connectId: string) => `lk:oauth:connect:${await sha256Hex(connectId)}`;
const connectAad = (connectId: string, userId: string) =>
	JSON.stringify(["oauth_connect", connectId, userId]);

const Parked = z.object({
	// In clear so that the claim script can compare the owner before it takes the value.
	user_id: z.string(),
	created_at: z.string(),
	sealed: z.object({ ciphertext: z.string(), dataKey: z.string(), keyId: z.string() }),
});

const Account = z.object({
	provider: z.string(),
	username: z.string().nullable(),
	tokens: z.object({
		accessToken: z.string(),
		refreshToken: z.string().optional(),
		tokenType: z.string(),
		expiresAt: z.string().nullable(),
		scopes: z.array(z.string()),
	}),
	credentialId: z.string().optional(),
	title: z.string().optional(),
});

/**
 * Takes the parked value only when it belongs to ARGV[1], in one step: a claim by another user
 * leaves it in place (so a stranger holding the id cannot burn it), and of two racing claims by
 * the owner exactly one gets it.
 */
const CLAIM_SCRIPT = `
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local owner = ARGV[1] .. string.char(10)
if string.sub(raw, 1, #owner) ~= owner then return false end
redis.call('DEL', KEYS[1])
return string.sub(raw, #owner + 1)
`;

/**
 * Stored as `<user id>\n<json>`: the owner is read by plain string comparison in the claim
 * script (no cjson, which not every Redis-compatible engine's Lua offers).
 */
const parkedValue = (userId: string, parked: unknown) => `${userId}\n${JSON.stringify(parked)}`;

export interface ParkedConnection {
	connectId: string;
	expiresAt: Date;
}

/**
 * Parks a connected account for its user to claim. A user who can no longer act (suspended, being
 * deleted) gets nothing parked: the caller hands the tokens back to the provider.
 */
export async function parkConnection(
	services: Services,
	account: ConnectedAccount,
): Promise<ParkedConnection> {
	const [owner] = await services.db
		.select({ status: users.status })
		.from(users)
		.where(eq(users.id, account.userId))
		.limit(1);
	assertUserActive(owner?.status ?? null);

	const connectId = randomBase62(CONNECT_ID_LENGTH);
	const createdAt = services.now();
	const plain: z.infer<typeof Account> = {
		provider: account.provider,
		username: account.username,
		tokens: { ...account.tokens, expiresAt: account.tokens.expiresAt?.toISOString() ?? null },
		...(account.credentialId === undefined ? {} : { credentialId: account.credentialId }),
		...(account.title === undefined ? {} : { title: account.title }),
	};
	const ring = await getKeyRing(services.config);
	const sealed = await seal(ring, JSON.stringify(plain), connectAad(connectId, account.userId));
	const parked: z.infer<typeof Parked> = {
		user_id: account.userId,
		created_at: createdAt.toISOString(),
		sealed,
	};
	await services.redis.set(await connectKey(connectId), parkedValue(account.userId, parked), {
		ex: CONNECT_TTL_SECONDS,
	});
	return { connectId, expiresAt: new Date(createdAt.getTime() + CONNECT_TTL_SECONDS * 1000) };
}

const noSuchConnection = () =>
	new LatchkeyError("not_found", "No such connection.", {
		hint: "A connect_id works once, within 10 minutes, and only with a token of the user who started the connection; start again with POST /v1/oauth/{provider}/authorize.",
	});

/**
 * Takes the parked account of `connectId` when it is `userId`'s, exactly once. Anything else
 * (unknown, expired, already claimed, another user's) is the same `not_found`, so the answer
 * never tells whether an id exists.
 */
export async function claimConnection(
	services: Services,
	connectId: string,
	userId: string,
): Promise<ConnectedAccount> {
	if (!CONNECT_ID_PATTERN.test(connectId)) throw noSuchConnection();
	const taken = parseStoredJson(
		Parked,
		await services.redis.eval(CLAIM_SCRIPT, [await connectKey(connectId)], [userId]),
	);
	if (!taken || taken.user_id !== userId) throw noSuchConnection();

	const ring = await getKeyRing(services.config);
	const account = Account.parse(
		JSON.parse(
			await open(ring, taken.sealed, connectAad(connectId, userId), "a parked OAuth connection"),
		),
	);
	const claimed: ConnectedAccount = {
		userId,
		provider: account.provider,
		username: account.username,
		tokens: {
			...account.tokens,
			expiresAt: account.tokens.expiresAt === null ? null : new Date(account.tokens.expiresAt),
		},
		...(account.credentialId === undefined ? {} : { credentialId: account.credentialId }),
		...(account.title === undefined ? {} : { title: account.title }),
	};
	// Redis's TTL normally ends it first; the service clock is the one the rest of the flow obeys.
	const age = services.now().getTime() - Date.parse(taken.created_at);
	if (!(age < CONNECT_TTL_SECONDS * 1000)) {
		await handBack(services, claimed);
		throw noSuchConnection();
	}
	return claimed;
}

/**
 * Claims the parked account and hands it to `keep`, which stores it. When it cannot be kept, the
 * tokens go back to the provider: the parked value is spent, so nothing would ever use them.
 */
export async function finishConnection<T>(
	services: Services,
	connectId: string,
	userId: string,
	keep: (account: ConnectedAccount) => Promise<T>,
): Promise<T> {
	const account = await claimConnection(services, connectId, userId);
	try {
		return await keep(account);
	} catch (err) {
		await handBack(services, account);
		throw err;
	}
}

async function handBack(services: Services, account: ConnectedAccount): Promise<void> {
	await revokeUpstream(services, account.provider, {
		accessToken: account.tokens.accessToken,
		refreshToken: account.tokens.refreshToken,
	}).catch(() => null);
}
