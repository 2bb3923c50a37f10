import type { Redis } from "@upstash/redis/cloudflare";
import { LatchkeyError } from "../errors.ts";

/**
 * Lease bookkeeping in Redis: every operation is one server-side Lua script, so it is atomic and
 * costs one round trip (EVALSHA; EVAL once per script per Redis after a restart).
 *
 * Key layout (docs/leases.md). Every key of a credential shares the hash tag `{<credential id>}`
 * so that a script touches one slot:
 *   lk:lease:{cid}:holders        ZSET  lease id → lease end (epoch ms)
 *   lk:lease:{cid}:writer         STR   writer intent `<refresher id>|<token version>`
 *   lk:lease:{cid}:gen            STR   the token version the last token write produced
 *   lk:lease:{cid}:l:<lease id>   HASH  u user, e end, t the latest end the token allows, r release
 *   lk:refresh:{cid}              STR   the single-flight refresh lock (@upstash/lock)
 *   lk:refresh:{cid}:stash        STR   `<token version>:<sealed provider answer>`
 * and two keys of their own, touched by single commands, never inside a credential's script:
 *   lk:refresh:stashes            ZSET  credential id → when its stash was written
 *   lk:lease:rate:<principal>     HASH  the principal's lease token bucket
 *
 * Every script is safe to run twice: the REST client retries a request whose reply was lost,
 * and a retry must neither wait on its own lock nor turn a success into a refusal.
 *
 * Times are the caller's clock (`services.now()`), passed in, never Redis's TIME: the lease
 * rules are then the same in tests with an injected clock. Key expiry (PEXPIRE) only bounds how
 * long bookkeeping lingers.
 */

/** How long a lease's record outlives its end (or release): renew and release say 410, not 404. */
const LEASE_RECORD_RETENTION_MS = 5 * 60 * 1000;
/** How long the token generation is kept: longer than any lease request's read-to-grant window. */
const GENERATION_TTL_MS = 10 * 60 * 1000;
/** The generation a deleted credential's leases are fenced with: no version ever reaches it. */
const DELETED_GENERATION = "9007199254740991";
/** Ended holders one script removes at most: no call does unbounded work. */
const PRUNE_LIMIT = 64;
/** The global index of pending refresh stashes, read by the scheduled worker (no SCAN). */
export const STASH_INDEX = "lk:refresh:stashes";

export const leaseKeys = (credentialId: string) => {
	const tag = `{${credentialId}}`;
	return {
		holders: `lk:lease:${tag}:holders`,
		writer: `lk:lease:${tag}:writer`,
		gen: `lk:lease:${tag}:gen`,
		lease: (leaseId: string) => `lk:lease:${tag}:l:${leaseId}`,
		lock: `lk:refresh:${tag}`,
		stash: `lk:refresh:${tag}:stash`,
	};
};

export const rateKey = (principal: string) => `lk:lease:rate:${principal}`;

// Shared Lua: drop at most PRUNE_LIMIT ended holders (KEYS[1]) as of ARGV now.
const PRUNE = `
local function prune(holders, now)
  local ended = redis.call('ZRANGEBYSCORE', holders, '-inf', now, 'LIMIT', 0, ${PRUNE_LIMIT})
  if #ended > 0 then redis.call('ZREM', holders, unpack(ended)) end
end
local function keep_holders(holders, now)
  local top = redis.call('ZRANGE', holders, -1, -1, 'WITHSCORES')
  if top[2] then redis.call('PEXPIRE', holders, math.max(tonumber(top[2]) - now, 0) + 60000) end
end
`;

// Grant: refused while a refresh waits for the holders to drain (writer priority), for a token
// older than the last refresh wrote (the caller read the row before that write), when the
// credential has as many live leases as it may, and when the principal's bucket is empty. A
// retry of a grant that already landed (same lease id) answers ok without charging again.
const GRANT = `${PRUNE}
local now = tonumber(ARGV[1])
local lease_end = tonumber(ARGV[2])
if redis.call('HGET', KEYS[4], 'u') == ARGV[4] then return {'ok', ''} end
local writer = redis.call('PTTL', KEYS[2])
if writer > 0 or writer == -1 then return {'queued', tostring(writer)} end
local gen = tonumber(redis.call('GET', KEYS[3]) or '0')
if tonumber(ARGV[6]) < gen then return {'stale', tostring(gen)} end
prune(KEYS[1], now)
local cap = tonumber(ARGV[10])
if redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf') >= cap then
  local first = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  return {'full', tostring(math.max(tonumber(first[2]) - now, 1))}
end
local burst = tonumber(ARGV[8])
if burst > 0 then
  local rate = tonumber(ARGV[9]) / 1000
  local b = redis.call('HMGET', KEYS[5], 'k', 's')
  local tokens = burst
  local last = now
  local k, s = tonumber(b[1]), tonumber(b[2])
  if k and s then
    tokens = math.min(burst, k + math.max(now - s, 0) * rate)
    last = math.max(s, now)
  end
  if tokens < 1 then return {'limited', tostring(math.ceil((1 - tokens) / rate))} end
  redis.call('HSET', KEYS[5], 'k', tostring(tokens - 1), 's', tostring(last))
  redis.call('PEXPIRE', KEYS[5], math.ceil(burst / rate) + 1000)
end
redis.call('ZADD', KEYS[1], lease_end, ARGV[3])
redis.call('HSET', KEYS[4], 'u', ARGV[4], 'e', ARGV[2], 't', ARGV[5])
redis.call('PEXPIRE', KEYS[4], lease_end - now + tonumber(ARGV[7]))
keep_holders(KEYS[1], now)
return {'ok', ''}
`;

// Renew: without an explicit TTL (ARGV[5] = '0') a renewal never ends a lease sooner than it
// already ends. Running it twice gives the same end.
const RENEW = `${PRUNE}
local rec = redis.call('HMGET', KEYS[3], 'u', 't')
if not rec[1] or rec[1] ~= ARGV[3] then return {'unknown', ''} end
local now = tonumber(ARGV[1])
local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not score or tonumber(score) <= now then return {'gone', ''} end
local lease_end = tonumber(ARGV[4])
if ARGV[5] == '0' then lease_end = math.max(lease_end, tonumber(score)) end
if rec[2] ~= '' and lease_end > tonumber(rec[2]) then return {'expiring', rec[2]} end
local writer = redis.call('PTTL', KEYS[2])
if writer > 0 or writer == -1 then return {'expiring', rec[2]} end
redis.call('ZADD', KEYS[1], 'XX', lease_end, ARGV[2])
redis.call('HSET', KEYS[3], 'e', tostring(lease_end))
redis.call('PEXPIRE', KEYS[3], lease_end - now + tonumber(ARGV[6]))
keep_holders(KEYS[1], now)
return {'ok', tostring(lease_end)}
`;

// Release: the record remembers which request released it (ARGV[4]), so that request's retry
// is still a success while any other release of an ended lease is 410.
const RELEASE = `
local rec = redis.call('HMGET', KEYS[2], 'u', 'r')
if not rec[1] or rec[1] ~= ARGV[2] then return 'unknown' end
if rec[2] == ARGV[4] then return 'ok' end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) <= tonumber(ARGV[3]) then return 'gone' end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'r', ARGV[4])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]))
return 'ok'
`;

// Retract: a provisional grant whose row read disagreed (docs/leases.md, "The fast path") is
// removed as if it had never been, its rate token given back. Only the request that made it
// retracts it (same user, same lease id); a retry finds nothing left and gives nothing back.
const RETRACT = `
if redis.call('HGET', KEYS[2], 'u') ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
local burst = tonumber(ARGV[3])
if burst > 0 then
  local k = tonumber(redis.call('HGET', KEYS[3], 'k'))
  if k then redis.call('HSET', KEYS[3], 'k', tostring(math.min(burst, k + 1))) end
end
return 1
`;

// A credential's deletion: every lease ends at once, and a grant racing the deletion (its row read
// before the delete) is refused as stale, then finds no row.
const END_ALL = `
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
return 1
`;

// A refresh of the token at version ARGV[4] learns how many unexpired leases still hold it, and
// announces itself (new grants queue behind it) when none do or when it will wait for them
// (ARGV[5] = '1'); a refresh that will not wait (the proactive one) leaves everything as it is
// while leases are held. Announcing takes over an intent a request left when it gave up (only
// the lock holder announces); nothing here erases one. A refresh whose token version was
// already superseded announces nothing.
const BEGIN_WRITE = `
local now = tonumber(ARGV[1])
local gen = tonumber(redis.call('GET', KEYS[3]) or '0')
if gen > tonumber(ARGV[4]) then return {-1, '0'} end
local n = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
local last = 0
if n > 0 then
  local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  last = tonumber(top[2])
end
if ARGV[5] == '1' or n == 0 then
  local ttl = math.max(last - now, 0) + tonumber(ARGV[3])
  local pttl = redis.call('PTTL', KEYS[2])
  redis.call('SET', KEYS[2], ARGV[2] .. '|' .. ARGV[4], 'PX', math.max(ttl, pttl))
end
return {n, tostring(last)}
`;

// Keeps our intent alive while the refresh it announces runs.
const EXTEND_WRITE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`;

// The new tokens (version ARGV[1]) are in the database: an intent to refresh an older token has
// done its job whoever announced it, older tokens stop being granted, and a stash of an older
// version is spent.
const COMMIT_WRITE = `
local v = redis.call('GET', KEYS[1])
if v then
  local base = tonumber(string.match(v, '|(%d+)$') or '0')
  if base < tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end
end
local gen = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[1]) > gen then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) end
local s = redis.call('GET', KEYS[3])
if s then
  local base = tonumber(string.match(s, '^(%d+):') or '0')
  if base < tonumber(ARGV[1]) then redis.call('DEL', KEYS[3]) end
end
return 1
`;

const ABANDON_WRITE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`;

// The lock's own compare-and-set operations: @upstash/lock takes it; these keep and free it by
// the holder's id, so a holder whose acquisition reply was lost can still do both.
const EXTEND_LOCK = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;
const RELEASE_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`;

// A stash is dropped only when it is the one expected (its token version), so a stale reader
// cannot remove a newer refresher's stash.
const DROP_STASH = `
local s = redis.call('GET', KEYS[1])
if s and string.match(s, '^(%d+):') == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
`;

const UNINDEX = `
local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
if at and tonumber(at) == tonumber(ARGV[2]) then redis.call('ZREM', KEYS[1], ARGV[1]) end
return 1
`;

type Reply = [string, string];

const shas = new Map<string, Promise<string>>();

/** SHA-1 of a script, computed once per isolate rather than once per request. */
function shaOf(script: string): Promise<string> {
	let sha = shas.get(script);
	if (!sha) {
		sha = crypto.subtle
			.digest("SHA-1", new TextEncoder().encode(script))
			.then((d) => [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join(""));
		shas.set(script, sha);
	}
	return sha;
}

/** EVALSHA, and EVAL once when this Redis has not seen the script yet (NOSCRIPT). */
function scriptOf<T>(redis: Redis, script: string) {
	return {
		async exec(keys: string[], args: string[]): Promise<T> {
			const sha = await shaOf(script);
			try {
				return (await redis.evalsha(sha, keys, args)) as T;
			} catch (err) {
				if (!(err instanceof Error) || !err.message.includes("NOSCRIPT")) throw err;
				return (await redis.eval(script, keys, args)) as T;
			}
		},
	};
}

/** A lock store that does not answer is a 503: neither the caller's fault nor the provider's. */
export function lockStoreDown(cause: unknown): LatchkeyError {
	return new LatchkeyError("dependency_unavailable", "The lease store (Redis) is unavailable.", {
		retryAfter: 2,
		cause,
	});
}

async function guarded<T>(work: () => Promise<T>): Promise<T> {
	try {
		return await work();
	} catch (err) {
		if (err instanceof LatchkeyError) throw err;
		throw lockStoreDown(err);
	}
}

const stores = new WeakMap<Redis, LeaseStore>();

/** The lease store on the services' undecoded Redis client, built once per client. */
export function leaseStoreOf(services: { rawRedis: Redis }): LeaseStore {
	let store = stores.get(services.rawRedis);
	if (!store) {
		store = new LeaseStore(services.rawRedis);
		stores.set(services.rawRedis, store);
	}
	return store;
}

export type GrantResult =
	| { outcome: "ok" }
	| { outcome: "queued"; retryInMs: number }
	| { outcome: "stale" }
	/** The credential has as many live leases as it may; the first ends in `retryInMs`. */
	| { outcome: "full"; retryInMs: number }
	/** The principal's lease rate is spent; a lease is admitted again in `retryInMs`. */
	| { outcome: "limited"; retryInMs: number };

export type RenewResult =
	| { outcome: "ok"; leaseEnd: number }
	| { outcome: "unknown" | "gone" }
	| { outcome: "expiring"; tokenLimit: number | null };

export interface RateLimit {
	/** Bucket size; 0 turns the limit off. */
	burst: number;
	perSecond: number;
}

export class LeaseStore {
	private readonly scripts;

	constructor(private readonly redis: Redis) {
		this.scripts = {
			grant: scriptOf<Reply>(redis, GRANT),
			renew: scriptOf<Reply>(redis, RENEW),
			release: scriptOf<string>(redis, RELEASE),
			retract: scriptOf<number>(redis, RETRACT),
			endAll: scriptOf<number>(redis, END_ALL),
			beginWrite: scriptOf<[number, string]>(redis, BEGIN_WRITE),
			extendWrite: scriptOf<number>(redis, EXTEND_WRITE),
			commitWrite: scriptOf<number>(redis, COMMIT_WRITE),
			abandonWrite: scriptOf<number>(redis, ABANDON_WRITE),
			extendLock: scriptOf<number>(redis, EXTEND_LOCK),
			releaseLock: scriptOf<number>(redis, RELEASE_LOCK),
			dropStash: scriptOf<number>(redis, DROP_STASH),
			unindex: scriptOf<number>(redis, UNINDEX),
		};
	}

	grant(input: {
		credentialId: string;
		leaseId: string;
		userId: string;
		/** Who the rate limit counts against: the API key (shared by its sessions) or the user. */
		principal: string;
		now: number;
		leaseEnd: number;
		/** The latest end a lease (or renewal) of this token may have; null when unknown. */
		tokenLimit: number | null;
		tokenVersion: number;
		rate: RateLimit;
		maxLeases: number;
	}): Promise<GrantResult> {
		const k = leaseKeys(input.credentialId);
		return guarded(async () => {
			const [outcome, value] = await this.scripts.grant.exec(
				[k.holders, k.writer, k.gen, k.lease(input.leaseId), rateKey(input.principal)],
				[
					String(input.now),
					String(input.leaseEnd),
					input.leaseId,
					input.userId,
					input.tokenLimit === null ? "" : String(input.tokenLimit),
					String(input.tokenVersion),
					String(LEASE_RECORD_RETENTION_MS),
					String(input.rate.burst),
					String(input.rate.perSecond),
					String(input.maxLeases),
				],
			);
			switch (outcome) {
				case "queued":
				case "full":
				case "limited":
					return { outcome, retryInMs: Number(value) };
				case "stale":
					return { outcome };
				default:
					return { outcome: "ok" };
			}
		});
	}

	renew(input: {
		credentialId: string;
		leaseId: string;
		userId: string;
		now: number;
		leaseEnd: number;
		/** False: the renewal may not end the lease sooner than it already ends. */
		explicit: boolean;
	}): Promise<RenewResult> {
		const k = leaseKeys(input.credentialId);
		return guarded(async () => {
			const [outcome, value] = await this.scripts.renew.exec(
				[k.holders, k.writer, k.lease(input.leaseId)],
				[
					String(input.now),
					input.leaseId,
					input.userId,
					String(input.leaseEnd),
					input.explicit ? "1" : "0",
					String(LEASE_RECORD_RETENTION_MS),
				],
			);
			if (outcome === "expiring") {
				return { outcome, tokenLimit: value === "" ? null : Number(value) };
			}
			if (outcome === "unknown" || outcome === "gone") return { outcome };
			return { outcome: "ok", leaseEnd: Number(value) };
		});
	}

	release(input: {
		credentialId: string;
		leaseId: string;
		userId: string;
		now: number;
		/** Unique per request: a retry of this release is still a success. */
		requestId?: string;
	}): Promise<"ok" | "unknown" | "gone"> {
		const k = leaseKeys(input.credentialId);
		return guarded(async () => {
			const outcome = await this.scripts.release.exec(
				[k.holders, k.lease(input.leaseId)],
				[
					input.leaseId,
					input.userId,
					String(input.now),
					input.requestId ?? crypto.randomUUID(),
					String(LEASE_RECORD_RETENTION_MS),
				],
			);
			return outcome === "ok" || outcome === "gone" ? outcome : "unknown";
		});
	}

	/** Removes a provisional grant this request made, and gives its rate token back. */
	retract(input: {
		credentialId: string;
		leaseId: string;
		userId: string;
		principal: string;
		rate: RateLimit;
	}): Promise<void> {
		const k = leaseKeys(input.credentialId);
		return guarded(async () => {
			await this.scripts.retract.exec(
				[k.holders, k.lease(input.leaseId), rateKey(input.principal)],
				[input.leaseId, input.userId, String(input.rate.burst)],
			);
		});
	}

	/** Ends every lease of a deleted credential at once. */
	endAll(credentialId: string): Promise<void> {
		const k = leaseKeys(credentialId);
		return guarded(async () => {
			await this.scripts.endAll.exec(
				[k.holders, k.writer, k.gen, k.stash],
				[DELETED_GENERATION, String(GENERATION_TTL_MS)],
			);
		});
	}

	/**
	 * Counts the unexpired holders of the token at `tokenVersion` and sets (or takes over) the
	 * writer intent when there are none, or always with `announce`. `superseded` when newer
	 * tokens were committed meanwhile.
	 */
	beginWrite(input: {
		credentialId: string;
		writer: string;
		tokenVersion: number;
		now: number;
		slackMs: number;
		announce: boolean;
	}): Promise<{ superseded: true } | { superseded: false; holders: number; lastLeaseEnd: number }> {
		const k = leaseKeys(input.credentialId);
		return guarded(async () => {
			const [holders, last] = await this.scripts.beginWrite.exec(
				[k.holders, k.writer, k.gen],
				[
					String(input.now),
					input.writer,
					String(input.slackMs),
					String(input.tokenVersion),
					input.announce ? "1" : "0",
				],
			);
			if (Number(holders) < 0) return { superseded: true };
			return { superseded: false, holders: Number(holders), lastLeaseEnd: Number(last) };
		});
	}

	/** Keeps the intent `writer|tokenVersion` for at least `ttlMs` more, if it is still ours. */
	extendWrite(credentialId: string, intent: string, ttlMs: number): Promise<boolean> {
		const k = leaseKeys(credentialId);
		return guarded(
			async () => (await this.scripts.extendWrite.exec([k.writer], [intent, String(ttlMs)])) === 1,
		);
	}

	commitWrite(credentialId: string, tokenVersion: number): Promise<void> {
		const k = leaseKeys(credentialId);
		return guarded(async () => {
			await this.scripts.commitWrite.exec(
				[k.writer, k.gen, k.stash],
				[String(tokenVersion), String(GENERATION_TTL_MS)],
			);
		});
	}

	abandonWrite(credentialId: string, intent: string): Promise<void> {
		const k = leaseKeys(credentialId);
		return guarded(async () => {
			await this.scripts.abandonWrite.exec([k.writer], [intent]);
		});
	}

	/** Whether `holder` holds the refresh lock (a lost acquisition reply leaves it ours). */
	async holdsLock(credentialId: string, holder: string): Promise<boolean> {
		return guarded(async () => (await this.redis.get(leaseKeys(credentialId).lock)) === holder);
	}

	extendLock(credentialId: string, holder: string, ttlMs: number): Promise<boolean> {
		const k = leaseKeys(credentialId);
		return guarded(
			async () => (await this.scripts.extendLock.exec([k.lock], [holder, String(ttlMs)])) === 1,
		);
	}

	releaseLock(credentialId: string, holder: string): Promise<void> {
		const k = leaseKeys(credentialId);
		return guarded(async () => {
			await this.scripts.releaseLock.exec([k.lock], [holder]);
		});
	}

	/** Whether a refresh is running or pending for this credential (lock held or intent set). */
	refreshInProgress(credentialId: string): Promise<boolean> {
		const k = leaseKeys(credentialId);
		return guarded(async () => (await this.redis.exists(k.lock, k.writer)) > 0);
	}

	/**
	 * Seals the provider's answer away until the database has it, and indexes it so the
	 * scheduled worker recovers it even if no lease comes (one round trip: a pipeline).
	 */
	stash(
		credentialId: string,
		tokenVersion: number,
		sealed: string,
		now: number,
		ttlMs: number,
	): Promise<void> {
		return guarded(async () => {
			await this.redis
				.pipeline()
				.zadd(STASH_INDEX, { score: now, member: credentialId })
				.set(leaseKeys(credentialId).stash, `${tokenVersion}:${sealed}`, { px: ttlMs })
				.exec();
		});
	}

	/** The stash and the token version it was obtained from, or null. */
	readStash(credentialId: string): Promise<{ tokenVersion: number; sealed: string } | null> {
		return guarded(async () => {
			const value = await this.redis.get<unknown>(leaseKeys(credentialId).stash);
			if (value === null || value === undefined) return null;
			// The client parses JSON-looking replies; the stash is a prefixed string.
			const text = typeof value === "string" ? value : JSON.stringify(value);
			const m = /^(\d+):([\s\S]*)$/.exec(text);
			if (!m) return { tokenVersion: -1, sealed: text };
			return { tokenVersion: Number(m[1]), sealed: m[2] as string };
		});
	}

	/** Drops the stash if it is the one obtained from `tokenVersion` (-1: whatever it is). */
	dropStash(credentialId: string, tokenVersion: number): Promise<void> {
		const k = leaseKeys(credentialId);
		return guarded(async () => {
			if (tokenVersion < 0) await this.redis.del(k.stash);
			else await this.scripts.dropStash.exec([k.stash], [String(tokenVersion)]);
		});
	}

	/** Credentials with a pending stash, oldest first, with when each was indexed. */
	pendingStashes(limit: number): Promise<{ credentialId: string; indexedAt: number }[]> {
		return guarded(async () => {
			const flat = await this.redis.zrange<(string | number)[]>(STASH_INDEX, 0, limit - 1, {
				withScores: true,
			});
			const out: { credentialId: string; indexedAt: number }[] = [];
			for (let i = 0; i + 1 < flat.length; i += 2) {
				out.push({ credentialId: String(flat[i]), indexedAt: Number(flat[i + 1]) });
			}
			return out;
		});
	}

	/**
	 * Forgets an index entry whose stash is gone, unless a newer stash re-indexed it meanwhile
	 * (the entry's time moved on).
	 */
	unindexStash(credentialId: string, indexedAt: number): Promise<void> {
		return guarded(async () => {
			await this.scripts.unindex.exec([STASH_INDEX], [credentialId, String(indexedAt)]);
		});
	}
}
