/**
 * The Upstash stand-in alone, in a process of its own (see bench/infra-process.ts): Neon and
 * Upstash are different services, so their stand-ins must not share one event loop either, or a
 * lease's Postgres and Redis requests, sent side by side, would be served one after the other.
 * Reads the token and the Redis URL from its environment, sends `{url}` once up, exits on
 * disconnect.
 */
import { startUpstashBridge } from "../scripts/bridges/upstash-rest.ts";

const bridge = await startUpstashBridge({
	token: process.env.BRIDGE_TOKEN as string,
	redisUrl: process.env.BRIDGE_REDIS_URL as string,
});
process.send?.({ url: bridge.url });
process.on("disconnect", async () => {
	await bridge.close();
	process.exit(0);
});
