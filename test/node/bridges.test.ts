import { createHash, randomUUID } from "node:crypto";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { Lock } from "@upstash/lock";
import { Ratelimit } from "@upstash/ratelimit";
import { Redis } from "@upstash/redis";
import { Redis as IORedis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUpstashBridge } from "../../scripts/bridges/upstash-rest.ts";
import { canConnect, freePort } from "../../scripts/lib/net.ts";

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const redisTarget = new URL(REDIS_URL);
// Real Redis is the reference every reply is compared with. On a machine without one (the
// README's bare-machine promise) the comparisons are skipped and said so; CI must have it.
const realRedis = await canConnect(redisTarget.hostname, Number(redisTarget.port || 6379), 1000);
if (!realRedis && process.env.CI) throw new Error(`CI needs the real Redis at ${REDIS_URL}`);
const TOKEN = `test-${randomUUID()}`;

type Bridge = Awaited<ReturnType<typeof startUpstashBridge>>;
type Mode = "redis" | "embedded";

const bridges = {} as Record<Mode, Bridge>;
let direct: IORedis;
const touched = new Set<string>();

function client(mode: Mode, extra: { automaticDeserialization?: boolean } = {}): Redis {
	return new Redis({
		url: bridges[mode].url,
		token: TOKEN,
		enableTelemetry: false,
		retry: false,
		...extra,
	});
}

/** A fresh key namespace per test; every prefix is swept in afterAll. */
function keys(): (name: string) => string {
	const prefix = `lk-test:${randomUUID()}:`;
	touched.add(prefix);
	return (name) => `${prefix}${name}`;
}

async function sweep(redis: Redis, prefix: string): Promise<void> {
	const found = await redis.keys(`${prefix}*`);
	if (found.length > 0) await redis.del(...found);
}

beforeAll(async () => {
	if (realRedis) {
		direct = new IORedis(REDIS_URL, { lazyConnect: true });
		await direct.connect();
		bridges.redis = await startUpstashBridge({ token: TOKEN, redisUrl: REDIS_URL });
	}
	bridges.embedded = await startUpstashBridge({ token: TOKEN, embedded: true });
});

afterAll(async () => {
	for (const prefix of realRedis ? touched : []) {
		await sweep(client("redis"), prefix);
		const leftovers = await direct.keys(`${prefix}*`);
		if (leftovers.length > 0) await direct.del(...leftovers);
	}
	await bridges.redis?.close();
	await bridges.embedded?.close();
	direct?.disconnect();
});

/**
 * Raw commands whose replies must come back exactly as Redis sends them. Run through the
 * bridge by `@upstash/redis` with automatic deserialisation off, and directly through ioredis.
 */
const RAW_SEQUENCE = (k: (n: string) => string): [string, ...string[]][] => [
	["SET", k("s"), "héllo ✓ 🚀 \u0000\u0001 tab\tend"],
	["GET", k("s")],
	["STRLEN", k("s")],
	["APPEND", k("s"), "+"],
	["GETRANGE", k("s"), "0", "4"],
	["GET", k("missing")],
	["SET", k("n"), "10"],
	["INCR", k("n")],
	["INCRBY", k("n"), "5"],
	["DECR", k("n")],
	["INCRBYFLOAT", k("n"), "1.5"],
	["SET", k("nx"), "v", "NX", "PX", "60000"],
	["SET", k("nx"), "w", "NX", "PX", "60000"],
	["GET", k("nx")],
	["SET", k("ok"), "OK"],
	["GET", k("ok")],
	["MGET", k("s"), k("missing"), k("ok")],
	["HSET", k("h"), "f1", "v1", "f2", "ünï"],
	["HGET", k("h"), "f2"],
	["HGETALL", k("h")],
	["HINCRBY", k("h"), "count", "3"],
	["HEXISTS", k("h"), "f1"],
	["HDEL", k("h"), "f1"],
	["HLEN", k("h")],
	["SADD", k("set"), "a", "b", "c"],
	["SISMEMBER", k("set"), "b"],
	["SCARD", k("set")],
	["ZADD", k("z"), "1", "a", "2.5", "b", "3", "c"],
	["ZRANGE", k("z"), "0", "-1", "WITHSCORES"],
	["ZSCORE", k("z"), "b"],
	["ZINCRBY", k("z"), "1", "a"],
	["ZRANK", k("z"), "c"],
	["ZREVRANGE", k("z"), "0", "1"],
	["ZREM", k("z"), "b"],
	["ZCARD", k("z")],
	["RPUSH", k("l"), "x", "y", "z"],
	["LPUSH", k("l"), "w"],
	["LRANGE", k("l"), "0", "-1"],
	["LPOP", k("l")],
	["RPOP", k("l")],
	["LLEN", k("l")],
	["LINDEX", k("l"), "0"],
	["TYPE", k("h")],
	["EXISTS", k("s"), k("h"), k("missing")],
	["EXPIRE", k("s"), "100"],
	["PERSIST", k("s")],
	["TTL", k("s")],
	["EVAL", "return {1, 'two', ARGV[1], redis.call('GET', KEYS[1]), 3.9}", "1", k("ok"), "arg"],
	["EVAL", "return redis.call('INCRBY', KEYS[1], ARGV[1])", "1", k("counter"), "7"],
	["DEL", k("s"), k("h"), k("missing")],
];

async function settle<T>(work: Promise<T>): Promise<T | { error: string }> {
	try {
		return await work;
	} catch (err) {
		// Error texts differ in detail between engines and clients; the error code must not.
		const message = (err as Error).message.replace(/^Command failed: /, "");
		return { error: message.split(" ")[0] ?? "" };
	}
}

describe.each<Mode>(["redis", "embedded"])("Upstash bridge (%s mode)", (mode) => {
	// The redis mode needs the real Redis; so does comparing the embedded engine with it.
	const itIf = it.skipIf(mode === "redis" && !realRedis);
	const itWithReference = it.skipIf(!realRedis);

	itWithReference("returns the same raw replies as Redis itself", async () => {
		const kb = keys();
		const kd = keys();
		const raw = client(mode, { automaticDeserialization: false });
		const viaBridge: unknown[] = [];
		for (const command of RAW_SEQUENCE(kb)) viaBridge.push(await settle(raw.exec(command)));
		const viaDirect: unknown[] = [];
		for (const [name, ...args] of RAW_SEQUENCE(kd)) {
			viaDirect.push(await settle(direct.call(name, ...args)));
		}
		// Keys differ by prefix only; replies that echo keys are not in the sequence.
		expect(viaBridge).toEqual(viaDirect);
		const members = (await raw.exec(["SMEMBERS", kb("set")])) as string[];
		expect(members.sort()).toEqual(["a", "b", "c"]);
	});

	itWithReference("matches ioredis through the typed client API", async () => {
		const k = keys();
		const d = keys();
		const redis = client(mode);
		const ops: Array<[string, () => Promise<unknown>, () => Promise<unknown>]> = [
			["set text", () => redis.set(k("t"), "zé ✓"), () => direct.set(d("t"), "zé ✓")],
			["get text", () => redis.get(k("t")), () => direct.get(d("t"))],
			["set number", () => redis.set(k("num"), 42), () => direct.set(d("num"), "42")],
			["get number", () => redis.get(k("num")), async () => Number(await direct.get(d("num")))],
			[
				"set json",
				() => redis.set(k("j"), { a: 1, b: ["x", null], c: "ü" }),
				() => direct.set(d("j"), JSON.stringify({ a: 1, b: ["x", null], c: "ü" })),
			],
			[
				"get json",
				() => redis.get(k("j")),
				async () => JSON.parse((await direct.get(d("j"))) ?? ""),
			],
			[
				"set nx px",
				() => redis.set(k("lock"), "me", { nx: true, px: 60_000 }),
				() => direct.set(d("lock"), "me", "PX", 60_000, "NX"),
			],
			[
				"set nx px again",
				() => redis.set(k("lock"), "you", { nx: true, px: 60_000 }),
				() => direct.set(d("lock"), "you", "PX", 60_000, "NX"),
			],
			[
				"pttl within lease",
				async () => {
					const ms = await redis.pttl(k("lock"));
					return ms > 0 && ms <= 60_000;
				},
				async () => {
					const ms = await direct.pttl(d("lock"));
					return ms > 0 && ms <= 60_000;
				},
			],
			["incr", () => redis.incr(k("ctr")), () => direct.incr(d("ctr"))],
			["incrby", () => redis.incrby(k("ctr"), 9), () => direct.incrby(d("ctr"), 9)],
			["expire", () => redis.expire(k("ctr"), 10), () => direct.expire(d("ctr"), 10)],
			[
				"ttl",
				async () => {
					const s = await redis.ttl(k("ctr"));
					return s > 0 && s <= 10;
				},
				async () => {
					const s = await direct.ttl(d("ctr"));
					return s > 0 && s <= 10;
				},
			],
			[
				"hset",
				() => redis.hset(k("h"), { name: "Zoë", n: 3 }),
				() => direct.hset(d("h"), { name: "Zoë", n: "3" }),
			],
			[
				"hgetall",
				() => redis.hgetall(k("h")),
				async () => {
					const all = await direct.hgetall(d("h"));
					return { ...all, n: Number(all.n) };
				},
			],
			["hget", () => redis.hget(k("h"), "name"), () => direct.hget(d("h"), "name")],
			["sadd", () => redis.sadd(k("s"), "x", "y"), () => direct.sadd(d("s"), "x", "y")],
			[
				"smembers",
				async () => (await redis.smembers(k("s"))).sort(),
				async () => (await direct.smembers(d("s"))).sort(),
			],
			[
				"zadd",
				() => redis.zadd(k("z"), { score: 2, member: "b" }, { score: 1, member: "a" }),
				() => direct.zadd(d("z"), 2, "b", 1, "a"),
			],
			[
				"zrange withscores",
				() => redis.zrange(k("z"), 0, -1, { withScores: true }),
				async () => {
					const flat = await direct.zrange(d("z"), 0, -1, "WITHSCORES");
					return flat.map((v, i) => (i % 2 === 1 ? Number(v) : v));
				},
			],
			[
				"zscore",
				() => redis.zscore(k("z"), "b"),
				async () => Number(await direct.zscore(d("z"), "b")),
			],
			["rpush", () => redis.rpush(k("l"), "p", "q"), () => direct.rpush(d("l"), "p", "q")],
			["lrange", () => redis.lrange(k("l"), 0, -1), () => direct.lrange(d("l"), 0, -1)],
			["exists", () => redis.exists(k("t"), k("nope")), () => direct.exists(d("t"), d("nope"))],
			[
				"del",
				() => redis.del(k("t"), k("num"), k("nope")),
				() => direct.del(d("t"), d("num"), d("nope")),
			],
			["get deleted", () => redis.get(k("t")), () => direct.get(d("t"))],
			[
				"pipeline",
				() => redis.pipeline().set(k("p"), 1).incr(k("p")).get(k("p")).hget(k("h"), "name").exec(),
				async () => {
					const res = await direct
						.pipeline()
						.set(d("p"), "1")
						.incr(d("p"))
						.get(d("p"))
						.hget(d("h"), "name")
						.exec();
					const values = (res ?? []).map(([, v]) => v);
					return [values[0], values[1], Number(values[2]), values[3]];
				},
			],
			[
				"multi",
				() => redis.multi().set(k("m"), "a").append(k("m"), "b").get(k("m")).del(k("m")).exec(),
				async () => {
					const res = await direct
						.multi()
						.set(d("m"), "a")
						.append(d("m"), "b")
						.get(d("m"))
						.del(d("m"))
						.exec();
					return (res ?? []).map(([, v]) => v);
				},
			],
			[
				"eval",
				() => redis.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", [k("e")], [5]),
				() => direct.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", 1, d("e"), 5),
			],
			["error reply", () => settle(redis.incr(k("j"))), () => settle(direct.incr(d("j")))],
		];
		for (const [name, viaBridge, viaDirect] of ops) {
			expect({ name, result: await viaBridge() }).toEqual({ name, result: await viaDirect() });
		}
		await expect(redis.incr(k("j"))).rejects.toThrow(/ERR/);
	});

	itIf("keeps bytes intact under base64 encoding", async () => {
		const k = keys();
		const text = "zé ✓ 🚀 \u0000\u00ff";
		const res = await fetch(bridges[mode].url, {
			method: "POST",
			headers: { Authorization: `Bearer ${TOKEN}`, "Upstash-Encoding": "base64" },
			body: JSON.stringify(["SET", k("b"), text]),
		});
		expect(await res.json()).toEqual({ result: "OK" });
		const got = await fetch(bridges[mode].url, {
			method: "POST",
			headers: { Authorization: `Bearer ${TOKEN}`, "Upstash-Encoding": "base64" },
			body: JSON.stringify(["MGET", k("b"), k("none")]),
		});
		const body = (await got.json()) as { result: [string, null] };
		expect(Buffer.from(body.result[0], "base64")).toEqual(Buffer.from(text, "utf8"));
		expect(body.result[1]).toBeNull();
		if (mode === "redis") {
			const bytes = Buffer.from([0x00, 0xff, 0x80, 0x41, 0xc3, 0x28, 0x0a]);
			await direct.set(k("raw"), bytes);
			const raw = await fetch(bridges[mode].url, {
				method: "POST",
				headers: { Authorization: `Bearer ${TOKEN}`, "Upstash-Encoding": "base64" },
				body: JSON.stringify(["GET", k("raw")]),
			});
			const rawBody = (await raw.json()) as { result: string };
			expect(Buffer.from(rawBody.result, "base64")).toEqual(bytes);
		}
	});

	itIf("answers errors with 400 for single commands and per entry in pipelines", async () => {
		const k = keys();
		const post = (path: string, body: unknown) =>
			fetch(`${bridges[mode].url}${path}`, {
				method: "POST",
				headers: { Authorization: `Bearer ${TOKEN}` },
				body: JSON.stringify(body),
			});
		await post("/", ["SET", k("s"), "text"]);
		const single = await post("/", ["INCR", k("s")]);
		expect(single.status).toBe(400);
		expect(await single.json()).toEqual({ error: expect.stringMatching(/^ERR /) });
		const pipeline = await post("/pipeline", [
			["INCR", k("s")],
			["GET", k("s")],
		]);
		expect(pipeline.status).toBe(200);
		expect(await pipeline.json()).toEqual([
			{ error: expect.stringMatching(/^ERR /) },
			{ result: "text" },
		]);
		const pathForm = await fetch(`${bridges[mode].url}/get/${encodeURIComponent(k("s"))}`, {
			headers: { Authorization: `Bearer ${TOKEN}` },
		});
		expect(await pathForm.json()).toEqual({ result: "text" });
	});

	itIf("runs multi-exec atomically while other clients write", async () => {
		const k = keys();
		const redis = client(mode);
		const other = client(mode);
		const counter = k("ctr");
		await redis.set(counter, 0);
		const tx = redis.multi();
		for (let i = 0; i < 300; i++) tx.incr(counter);
		// Competing writers keep going for as long as the transaction is in flight.
		let done = false;
		let competing = 0;
		const compete = async (write: () => Promise<unknown>) => {
			while (!done) {
				await write();
				competing++;
			}
		};
		const writers = [1, 2, 3].map(() => compete(() => other.incrby(counter, 1000)));
		if (mode === "redis") writers.push(compete(() => direct.incrby(counter, 1000)));
		const results = await tx.exec<number[]>();
		done = true;
		await Promise.all(writers);
		// Inside the transaction nothing else may run: the results are consecutive.
		const first = results[0] ?? Number.NaN;
		expect(results).toEqual(Array.from({ length: 300 }, (_, i) => first + i));
		expect(competing).toBeGreaterThan(0);
		expect(Number(await redis.get(counter))).toBe(300 + competing * 1000);
	});

	itIf(
		"supports EVALSHA with the NOSCRIPT fallback, SCRIPT LOAD and Upstash script flags",
		async () => {
			const k = keys();
			const redis = client(mode);
			const unique = `-- ${randomUUID()}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])`;
			const sha = createHash("sha1").update(unique).digest("hex");
			await expect(redis.evalsha(sha, [k("x")], [1])).rejects.toThrow(/NOSCRIPT/);
			expect(await redis.scriptExists(sha)).toEqual([0]);
			const script = redis.createScript<number>(unique);
			expect(await script.exec([k("x")], ["2"])).toBe(2);
			expect(await redis.scriptExists(sha)).toEqual([1]);
			expect(await redis.evalsha(sha, [k("x")], [3])).toBe(5);

			// @upstash/ratelimit's scripts declare a flag only Upstash knows about.
			const flagged = `#!lua flags=allow-key-locking\n-- ${randomUUID()}\nreturn tonumber(ARGV[1]) * 2`;
			const flaggedSha = await redis.scriptLoad(flagged);
			expect(flaggedSha).toBe(createHash("sha1").update(flagged).digest("hex"));
			expect(await redis.evalsha(flaggedSha, [], [21])).toBe(42);
			expect(await redis.eval(flagged, [], [4])).toBe(8);
		},
	);

	itIf("serves @upstash/lock: one winner, release hands over, leases expire", async () => {
		const k = keys();
		const id = k("lock");
		const settings = { id, lease: 5000, retry: { attempts: 1, delay: 10 } };
		const a = new Lock({ ...settings, redis: client(mode) });
		const b = new Lock({ ...settings, redis: client(mode) });
		const acquired = await Promise.all([a.acquire(), b.acquire()]);
		expect(acquired.filter(Boolean)).toHaveLength(1);
		const [winner, loser] = acquired[0] ? [a, b] : [b, a];
		expect(await winner.getStatus()).toBe("ACQUIRED");
		expect(await loser.acquire()).toBe(false);
		expect(await winner.release()).toBe(true);
		expect(await loser.acquire()).toBe(true);
		expect(await winner.release()).toBe(false);
		expect(await loser.release()).toBe(true);

		const redis = client(mode);
		const leaseId = k("lease");
		const short = new Lock({ id: leaseId, lease: 150, redis, retry: { attempts: 1, delay: 10 } });
		expect(await short.acquire()).toBe(true);
		const next = new Lock({ id: leaseId, lease: 5000, redis, retry: { attempts: 1, delay: 10 } });
		expect(await next.acquire()).toBe(false);
		// Poll the real condition (the key is gone) with a hard upper bound.
		const deadline = Date.now() + 5000;
		while ((await redis.exists(leaseId)) === 1 && Date.now() < deadline) {
			await new Promise((r) => setTimeout(r, 25));
		}
		expect(await redis.exists(leaseId)).toBe(0);
		expect(await next.acquire()).toBe(true);
		expect(await next.release()).toBe(true);
	});

	itIf("serves @upstash/ratelimit (sliding and fixed window)", async () => {
		const k = keys();
		const redis = client(mode);
		for (const limiter of [Ratelimit.slidingWindow(3, "30 s"), Ratelimit.fixedWindow(3, "30 s")]) {
			const ratelimit = new Ratelimit({
				redis,
				limiter,
				prefix: k(randomUUID()),
				analytics: false,
				ephemeralCache: false,
			});
			const outcomes: boolean[] = [];
			for (let i = 0; i < 5; i++) outcomes.push((await ratelimit.limit("user-1")).success);
			expect(outcomes).toEqual([true, true, true, false, false]);
			expect((await ratelimit.limit("user-2")).success).toBe(true);
			const remaining = await ratelimit.getRemaining("user-1");
			expect(remaining.remaining).toBe(0);
		}
	});
});

describe("Upstash bridge auth", () => {
	it("rejects a missing or wrong bearer token with 401", async () => {
		const attempts: Record<string, string>[] = [
			{},
			{ Authorization: "Bearer wrong" },
			{ Authorization: TOKEN },
			{ Authorization: `Bearer ${TOKEN}x` },
		];
		for (const headers of attempts) {
			const res = await fetch(bridges.embedded.url, {
				method: "POST",
				headers,
				body: JSON.stringify(["PING"]),
			});
			expect(res.status).toBe(401);
			expect(await res.json()).toEqual({ error: "Unauthorized" });
		}
		const wrong = new Redis({
			url: bridges.embedded.url,
			token: "nope",
			enableTelemetry: false,
			retry: false,
		});
		await expect(wrong.ping()).rejects.toThrow(/Unauthorized/);
		expect(await client("embedded").ping()).toBe("PONG");
	});
});

describe("Upstash bridge with Redis down", () => {
	it("refuses to start when Redis is unreachable", async () => {
		const port = await freePort();
		await expect(
			startUpstashBridge({ token: TOKEN, redisUrl: `redis://127.0.0.1:${port}` }),
		).rejects.toThrow(/cannot reach Redis/);
	});

	it.skipIf(!realRedis)("answers promptly with an error once Redis goes away", async () => {
		// A TCP relay in front of the real Redis stands in for a Redis that dies.
		const target = new URL(REDIS_URL);
		const sockets = new Set<Socket>();
		const relay: Server = createServer((inbound) => {
			const outbound = createConnection(Number(target.port || 6379), target.hostname);
			sockets.add(inbound).add(outbound);
			inbound.pipe(outbound).pipe(inbound);
			inbound.on("error", () => outbound.destroy());
			outbound.on("error", () => inbound.destroy());
		});
		await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
		const address = relay.address();
		const port = typeof address === "object" && address ? address.port : 0;
		const bridge = await startUpstashBridge({
			token: TOKEN,
			redisUrl: `redis://127.0.0.1:${port}`,
		});
		try {
			const redis = new Redis({
				url: bridge.url,
				token: TOKEN,
				enableTelemetry: false,
				retry: false,
			});
			expect(await redis.ping()).toBe("PONG");

			await new Promise<void>((resolve) => {
				relay.close(() => resolve());
				for (const socket of sockets) socket.destroy();
			});
			const started = Date.now();
			const res = await fetch(bridge.url, {
				method: "POST",
				headers: { Authorization: `Bearer ${TOKEN}` },
				body: JSON.stringify(["GET", "anything"]),
			});
			expect(res.status).toBe(503);
			expect(await res.json()).toEqual({ error: expect.stringMatching(/unavailable/) });
			await expect(redis.ping()).rejects.toThrow(/unavailable/);
			expect(Date.now() - started).toBeLessThan(3000);
		} finally {
			await bridge.close();
		}
	});
});
