import { Redis } from "@upstash/redis/cloudflare";
import type { Timing } from "../timing.ts";

interface RequesterLike {
	request: (req: unknown) => Promise<unknown>;
}

/**
 * REST calls are stateless, so one client per request costs nothing but an object. Retries
 * are few and short: a lock or rate-limit check that waits seconds for a dead Redis is worse
 * than a prompt 503.
 */
export function createRedis(url: string, token: string, timing?: Timing): Redis {
	const redis = new Redis({
		url,
		token,
		enableTelemetry: false,
		retry: { retries: 2, backoff: (n) => 25 * 2 ** n },
	});
	if (timing) {
		// The REST client exposes no hook, so time the one method every command goes through.
		const client = (redis as unknown as { client: RequesterLike }).client;
		const request = client.request.bind(client);
		client.request = (req) => timing.measure("redis", () => request(req));
	}
	return redis;
}
