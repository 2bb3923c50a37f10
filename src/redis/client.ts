import { Redis } from "@upstash/redis/cloudflare";
import { measureInRequest } from "../timing.ts";

interface RequesterLike {
	request: (req: unknown) => Promise<unknown>;
}

const clients = new Map<string, Redis>();

/**
 * One REST client per isolate and endpoint. The client holds no connection (each command is a
 * `fetch`), but building one defines a closure per Redis command, which cost more CPU than the
 * rest of a lease's Redis work when it was done per request. Its time shows in the running
 * request's Server-Timing through `requestTiming`. Retries are few and short: a lock or
 * rate-limit check that waits seconds for a dead Redis is worse than a prompt 503.
 */
export function createRedis(url: string, token: string, options: { raw?: boolean } = {}): Redis {
	const key = `${url}\n${token}\n${options.raw ? "raw" : "json"}`;
	let redis = clients.get(key);
	if (!redis) {
		redis = new Redis({
			url,
			token,
			enableTelemetry: false,
			// Every value Latchkey stores is ASCII (ids, numbers, base64, JSON with escapes), so
			// the base64 wrapping of replies, made for binary values, is only decoding work.
			responseEncoding: false,
			// `raw`: replies stay as Redis sent them. The lease scripts answer plain strings, and
			// the client's JSON decoding tries (and fails, throwing) on each of them.
			automaticDeserialization: !options.raw,
			retry: { retries: 2, backoff: (n) => 25 * 2 ** n },
		});
		// The REST client exposes no hook, so time the one method every command goes through.
		const client = (redis as unknown as { client: RequesterLike }).client;
		const request = client.request.bind(client);
		client.request = (req) => measureInRequest("redis", () => request(req));
		// Rotating the token leaves one stale client behind; bound the map all the same.
		if (clients.size >= 8) clients.clear();
		clients.set(key, redis);
	}
	return redis;
}
