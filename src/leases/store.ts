import type { Redis } from "@upstash/redis/cloudflare";
import { LatchkeyError } from "../errors.ts";

/**
 * Lease bookkeeping in Redis: every operation is one server-side Lua script, so it is atomic and
 * costs one round trip (EVALSHA; EVAL once per script per Redis after a restart).
 *
 * Key layout (docs/leases.md). Every key of a credential shares the hash tag `{<credential id>}`
 * so that a script touches one slot:
 *   lk:lease:{cid}:holders        ZSET  lease id → lease end (epoch ms)
 *   lk:lease:{cid}:writer         STR   writer intent: a refresh waits for the holders to drain
 *   lk:lease:{cid}:gen            STR   the row version the last token write produced
 *   lk:lease:{cid}:l:<lease id>   HASH  u = user id, e = lease end, t = token expiry (ms or "")
 *   lk:refresh:{cid}              STR   the single-flight refresh lock (@upstash/lock)
 *   lk:refresh:{cid}:stash        STR   a provider's answer sealed until the database has it
 *
 * Times are the caller's clock (`services.now()`), passed in, never Redis's TIME: the lease
 * rules are then the same in tests with an injected clock. Key expiry (PEXPIRE) only bounds how
 * long bookkeeping lingers, with generous slack.
 */

/** How long a lease's record outlives its end, so renew and release can say 410, not 404. */
export const LEASE_RECORD_RETENTION_MS = 24 * 3600 * 1000;
/** The generation a deleted credential's leases are fenced with: no version ever reaches it. */
const DELETED_GENERATION = "9007199254740991";

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

// Grant: refused while a refresh waits for the holders to drain (writer priority), and for a
// token older than the last refresh wrote (the caller read the row before that write).
const GRANT = `
local writer = redis.call('PTTL', KEYS[2])
if writer > 0 or writer == -1 then return {'queued', writer} end
local gen = tonumber(redis.call('GET', KEYS[3]) or '0')
if tonumber(ARGV[6]) < gen then return {'stale', tostring(gen)} end
local now = tonumber(ARGV[1])
local lease_end = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], lease_end, ARGV[3])
redis.call('HSET', KEYS[4], 'u', ARGV[4], 'e', ARGV[2], 't', ARGV[5])
redis.call('PEXPIRE', KEYS[4], lease_end - now + tonumber(ARGV[7]))
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], tonumber(top[2]) - now + 60000)
return {'ok', ''}
`;

const RENEW = `
local rec = redis.call('HMGET', KEYS[3], 'u', 't')
if not rec[1] or rec[1] ~= ARGV[3] then return {'unknown', ''} end
local now = tonumber(ARGV[1])
local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not score or tonumber(score) <= now then return {'gone', ''} end
local lease_end = tonumber(ARGV[4])
if rec[2] ~= '' and lease_end > tonumber(rec[2]) then return {'expiring', rec[2]} end
local writer = redis.call('PTTL', KEYS[2])
if writer > 0 or writer == -1 then return {'expiring', rec[2]} end
redis.call('ZADD', KEYS[1], 'XX', lease_end, ARGV[2])
redis.call('HSET', KEYS[3], 'e', ARGV[4])
redis.call('PEXPIRE', KEYS[3], lease_end - now + tonumber(ARGV[5]))
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], tonumber(top[2]) - now + 60000)
return {'ok', ''}
`;

const RELEASE = `
local user = redis.call('HGET', KEYS[2], 'u')
if not user or user ~= ARGV[2] then return 'unknown' end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) <= tonumber(ARGV[3]) then return 'gone' end
redis.call('ZREM', KEYS[1], ARGV[1])
return 'ok'
`;

// A credential's deletion: every lease ends at once, and a grant racing the deletion (its row read
// before the delete) is refused as stale, then finds no row.
const END_ALL = `
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
return 1
`;

// A refresh that would invalidate held tokens announces itself (new grants queue behind it) and
// learns how many unexpired leases still hold the current token, and until when.
const BEGIN_WRITE = `
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
local last = 0
if n > 0 then
  local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  last = tonumber(top[2])
end
local ttl = math.max(last - now, 0) + tonumber(ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
return {n, tostring(last)}
`;

// The new tokens are in the database: the intent ends (if still ours) and older tokens stop
// being granted; the stash has done its job.
const COMMIT_WRITE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
local gen = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[2]) > gen then redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) end
redis.call('DEL', KEYS[3])
return 1
`;

const ABANDON_WRITE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`;

type Reply = [string, string | number];

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

export type GrantResult =
	| { outcome: "ok" }
	| { outcome: "queued"; retryInMs: number }
	| { outcome: "stale" };

export type RenewResult =
	| { outcome: "ok" }
	| { outcome: "unknown" | "gone" }
	| { outcome: "expiring"; tokenExpiresAt: number | null };

export class LeaseStore {
	private readonly scripts;

	constructor(private readonly redis: Redis) {
		this.scripts = {
			grant: scriptOf<Reply>(redis, GRANT),
			renew: scriptOf<Reply>(redis, RENEW),
			release: scriptOf<string>(redis, RELEASE),
			endAll: scriptOf<number>(redis, END_ALL),
			beginWrite: scriptOf<[number, string]>(redis, BEGIN_WRITE),
			commitWrite: scriptOf<number>(redis, COMMIT_WRITE),
			abandonWrite: scriptOf<number>(redis, ABANDON_WRITE),
		};
	}

	grant(input: {
		credentialId: string;
		leaseId: string;
		userId: string;
		now: number;
		leaseEnd: number;
		tokenExpiresAt: number | null;
		version: number;
	}): Promise<GrantResult> {
		const k = leaseKeys(input.credentialId);
		return guarded(async () => {
			const [outcome, value] = await this.scripts.grant.exec(
				[k.holders, k.writer, k.gen, k.lease(input.leaseId)],
				[
					String(input.now),
					String(input.leaseEnd),
					input.leaseId,
					input.userId,
					input.tokenExpiresAt === null ? "" : String(input.tokenExpiresAt),
					String(input.version),
					String(LEASE_RECORD_RETENTION_MS),
				],
			);
			if (outcome === "queued") return { outcome, retryInMs: Number(value) };
			if (outcome === "stale") return { outcome };
			return { outcome: "ok" };
		});
	}

	renew(input: {
		credentialId: string;
		leaseId: string;
		userId: string;
		now: number;
		leaseEnd: number;
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
					String(LEASE_RECORD_RETENTION_MS),
				],
			);
			if (outcome === "expiring") {
				return { outcome, tokenExpiresAt: value === "" ? null : Number(value) };
			}
			if (outcome === "unknown" || outcome === "gone") return { outcome };
			return { outcome: "ok" };
		});
	}

	release(input: {
		credentialId: string;
		leaseId: string;
		userId: string;
		now: number;
	}): Promise<"ok" | "unknown" | "gone"> {
		const k = leaseKeys(input.credentialId);
		return guarded(async () => {
			const outcome = await this.scripts.release.exec(
				[k.holders, k.lease(input.leaseId)],
				[input.leaseId, input.userId, String(input.now)],
			);
			return outcome === "ok" || outcome === "gone" ? outcome : "unknown";
		});
	}

	/** Ends every lease of a deleted credential at once. */
	endAll(credentialId: string): Promise<void> {
		const k = leaseKeys(credentialId);
		return guarded(async () => {
			await this.scripts.endAll.exec(
				[k.holders, k.writer, k.gen, k.stash],
				[DELETED_GENERATION, String(LEASE_RECORD_RETENTION_MS)],
			);
		});
	}

	/** Sets (or refreshes) the writer intent; answers the unexpired holders and the last lease end. */
	beginWrite(input: {
		credentialId: string;
		writer: string;
		now: number;
		slackMs: number;
	}): Promise<{ holders: number; lastLeaseEnd: number }> {
		const k = leaseKeys(input.credentialId);
		return guarded(async () => {
			const [holders, last] = await this.scripts.beginWrite.exec(
				[k.holders, k.writer],
				[String(input.now), input.writer, String(input.slackMs)],
			);
			return { holders: Number(holders), lastLeaseEnd: Number(last) };
		});
	}

	commitWrite(credentialId: string, writer: string, version: number): Promise<void> {
		const k = leaseKeys(credentialId);
		return guarded(async () => {
			await this.scripts.commitWrite.exec(
				[k.writer, k.gen, k.stash],
				[writer, String(version), String(LEASE_RECORD_RETENTION_MS)],
			);
		});
	}

	abandonWrite(credentialId: string, writer: string): Promise<void> {
		const k = leaseKeys(credentialId);
		return guarded(async () => {
			await this.scripts.abandonWrite.exec([k.writer], [writer]);
		});
	}

	/** Whether a refresh is running or pending for this credential (lock held or intent set). */
	refreshInProgress(credentialId: string): Promise<boolean> {
		const k = leaseKeys(credentialId);
		return guarded(async () => (await this.redis.exists(k.lock, k.writer)) > 0);
	}

	stash(credentialId: string, value: string, ttlMs: number): Promise<void> {
		return guarded(async () => {
			await this.redis.set(leaseKeys(credentialId).stash, value, { px: ttlMs });
		});
	}

	readStash(credentialId: string): Promise<string | null> {
		return guarded(async () => {
			const value = await this.redis.get<unknown>(leaseKeys(credentialId).stash);
			if (value === null || value === undefined) return null;
			// The client parses JSON-looking strings; the stash is JSON, so give it back as text.
			return typeof value === "string" ? value : JSON.stringify(value);
		});
	}

	dropStash(credentialId: string): Promise<void> {
		return guarded(async () => {
			await this.redis.del(leaseKeys(credentialId).stash);
		});
	}
}
