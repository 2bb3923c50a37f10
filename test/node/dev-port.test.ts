import type { ChildProcess } from "node:child_process";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, listen } from "../../scripts/lib/net.ts";
import { probeReady, waitForLatchkey } from "../../scripts/lib/ready.ts";
import { cleanEnv, runScript } from "./run-script.ts";

/**
 * `npm run dev` refuses a port it cannot have, and only a Latchkey /health/ready makes it say
 * "ready". Every case here fails before .dev.vars is read or any engine or wrangler starts.
 */
const DEADLINE_MS = 15_000;

/** Runs scripts/dev.ts to its exit (killed at the deadline). */
const runDev = (args: string[], env: Record<string, string>) =>
	runScript(["scripts/dev.ts", ...args], cleanEnv(env), { deadlineMs: DEADLINE_MS });

const servers: Server[] = [];
afterEach(async () => {
	for (const server of servers.splice(0)) {
		server.closeAllConnections?.();
		await new Promise((r) => server.close(r));
	}
});

/** A plain node HTTP server answering every path with `status` and `body`. */
async function httpServer(
	status: number,
	body: string,
	headers: Record<string, string> = {},
): Promise<number> {
	const server = createHttpServer((_req, res) => {
		res.writeHead(status, { "content-type": "application/json", ...headers });
		res.end(body);
	});
	servers.push(server);
	return listen(server);
}

describe("npm run dev and its port", () => {
	it("refuses PORT held by another program, with the advice, before starting anything", async () => {
		const port = await httpServer(200, '{"status":"ok","postgres":"ok","redis":"ok"}');
		const { code, output } = await runDev([], { PORT: String(port) });
		expect(code).not.toBe(0);
		expect(code).not.toBeNull();
		expect(output).toContain(`cannot listen on 127.0.0.1:${port} (in use)`);
		expect(output).toMatch(/PORT=\d+ npm run dev/);
		expect(output).not.toContain("ready in");
		expect(output).not.toContain("migrations applied");
	});

	it("refuses --port N when N is taken (the flag wins over PORT)", async () => {
		const blocker = createServer();
		servers.push(blocker as unknown as Server);
		const port = await listen(blocker);
		const free = await freePort();
		const { code, output } = await runDev(["--port", String(port)], { PORT: String(free) });
		expect(code).not.toBe(0);
		expect(output).toContain(`cannot listen on 127.0.0.1:${port}`);
		expect(output).toMatch(/PORT=\d+ npm run dev/);
		const eq = await runDev([`--port=${port}`], {});
		expect(eq.code).not.toBe(0);
		expect(eq.output).toContain(`cannot listen on 127.0.0.1:${port}`);
	});

	it("refuses a port that is not a port", async () => {
		for (const args of [["--port", "eighty"], ["--port", "70000"], ["--port"]]) {
			const { code, output } = await runDev(args, {});
			expect(code, args.join(" ")).not.toBe(0);
			expect(output).toContain("the port must be a number from 1 to 65535");
			expect(output).toContain("PORT=8788 npm run dev");
		}
	});
});

describe("the readiness poll (scripts/lib/ready.ts)", () => {
	const READY = '{"status":"ok","postgres":"ok","redis":"ok"}';

	it("takes only Latchkey's own answer for ready", async () => {
		// Another program's 200, even with the right body, is not Latchkey without X-Request-Id.
		const foreign = await httpServer(200, READY);
		expect((await probeReady(`http://127.0.0.1:${foreign}`)).kind).toBe("foreign");
		const html = await httpServer(200, "<html>hello</html>", {
			"content-type": "text/html",
			"x-request-id": "r1",
		});
		expect((await probeReady(`http://127.0.0.1:${html}`)).kind).toBe("foreign");
		const shape = await httpServer(200, '{"status":"ok"}', { "x-request-id": "r2" });
		expect((await probeReady(`http://127.0.0.1:${shape}`)).kind).toBe("foreign");
		const ours = await httpServer(200, READY, { "x-request-id": "req_1" });
		expect(await probeReady(`http://127.0.0.1:${ours}`)).toEqual({ kind: "ready" });
		const down = await httpServer(
			503,
			'{"error":{"code":"dependency_unavailable","message":"Unavailable: postgres."}}',
			{ "x-request-id": "req_2" },
		);
		expect(await probeReady(`http://127.0.0.1:${down}`)).toEqual({
			kind: "unavailable",
			detail: "dependency_unavailable: Unavailable: postgres.",
		});
		expect((await probeReady(`http://127.0.0.1:${await freePort()}`)).kind).toBe("no-answer");
	});

	it("stops waiting at a foreign answer, and at a Latchkey that stays unavailable", async () => {
		const alive = { exitCode: null, signalCode: null } as unknown as ChildProcess;
		const foreign = await httpServer(404, "not found", { "content-type": "text/plain" });
		const t0 = Date.now();
		expect((await waitForLatchkey(`http://127.0.0.1:${foreign}`, alive)).kind).toBe("foreign");
		const down = await httpServer(503, '{"error":{"code":"dependency_unavailable"}}', {
			"x-request-id": "req_3",
		});
		const outcome = await waitForLatchkey(`http://127.0.0.1:${down}`, alive, { readyMs: 500 });
		expect(outcome.kind).toBe("unavailable");
		expect(Date.now() - t0).toBeLessThan(DEADLINE_MS);
		const gone = { exitCode: 1, signalCode: null } as unknown as ChildProcess;
		expect((await waitForLatchkey(`http://127.0.0.1:${down}`, gone)).kind).toBe("exited");
	});
});
