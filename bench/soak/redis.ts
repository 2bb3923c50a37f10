import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { canConnect, freePort } from "../../scripts/lib/net.ts";

/**
 * A `redis-server` of the soak's own, on a free loopback port, that the soak kills and starts
 * again (empty: no RDB, no AOF) to take Redis away from the worker for a few seconds.
 */
export interface KillableRedis {
	url: string;
	/** SIGKILL; resolves once the process is gone. */
	kill(): Promise<void>;
	/** Starts it again on the same port; resolves once it accepts connections (≤ 10 s). */
	start(): Promise<void>;
	close(): Promise<void>;
}

export function redisServerAvailable(): boolean {
	const probe = spawnSync("redis-server", ["--version"], { stdio: "ignore", timeout: 5000 });
	return probe.status === 0;
}

export async function startKillableRedis(): Promise<KillableRedis> {
	const port = await freePort();
	let child: ChildProcess | null = null;
	const start = async () => {
		if (child) return;
		const spawned = spawn(
			"redis-server",
			["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
			{ stdio: "ignore" },
		);
		child = spawned;
		spawned.once("exit", () => {
			if (child === spawned) child = null;
		});
		for (let i = 0; i < 200; i++) {
			if (await canConnect("127.0.0.1", port, 200)) return;
			if (spawned.exitCode !== null) break;
			await new Promise((r) => setTimeout(r, 50));
		}
		throw new Error(`redis-server did not start on port ${port}`);
	};
	const kill = async () => {
		const running = child;
		if (!running || running.exitCode !== null) return;
		const exited = new Promise<void>((resolve) => running.once("exit", () => resolve()));
		running.kill("SIGKILL");
		await exited;
	};
	await start();
	return { url: `redis://127.0.0.1:${port}`, kill, start, close: kill };
}
