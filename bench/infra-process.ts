/**
 * The bridges and engines of `startInfra`, in a process of their own: in production Neon's and
 * Upstash's endpoints are other machines, so the stand-ins must not share an event loop with
 * the load generator, whose work would otherwise be billed to every round trip.
 * Speaks to its parent over the IPC channel: it sends `{ready, infra}` once up, answers
 * `"stats"` with the SQL bridge's counters and exits on `"close"`.
 */
import { engineChoice, startInfra } from "../scripts/lib/infra.ts";

// Benches keep to a Redis database of their own, never the developer's 0 nor the test suite's
// 15 (whose teardown empties it); a TEST_REDIS_URL given (the soak's own server) is used as is.
process.env.TEST_REDIS_URL ??= "redis://127.0.0.1:6379/14";

const infra = await startInfra({ engines: engineChoice(), label: "bench" });
const send = (message: unknown) => process.send?.(message);
send({
	ready: true,
	infra: {
		bindings: infra.bindings,
		postgres: infra.postgres,
		redis: infra.redis,
		databaseUrl: infra.databaseUrl,
	},
});
process.on("message", async (message) => {
	if (message === "stats") send({ stats: infra.sqlBridge.stats() });
	if (message === "close") {
		await infra.close();
		process.exit(0);
	}
});
process.on("disconnect", async () => {
	await infra.close();
	process.exit(0);
});
