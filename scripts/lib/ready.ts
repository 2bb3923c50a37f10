import type { ChildProcess } from "node:child_process";

/**
 * What answered on /health/ready: Latchkey ready, Latchkey up but a dependency unavailable
 * (`detail` is its message), something that is not Latchkey (another program on the port, or
 * an error page instead of the worker), or nothing yet.
 */
export type ReadyProbe =
	| { kind: "ready" }
	| { kind: "unavailable"; detail: string }
	| { kind: "foreign"; detail: string }
	| { kind: "no-answer"; detail: string };

const STATES = new Set(["ok", "unavailable"]);

/**
 * Asks `${base}/health/ready` once. Latchkey's own answer carries an X-Request-Id and is JSON:
 * {"status","postgres","redis"} when ready, its error shape {"error":{"code",…}} when not.
 */
export async function probeReady(base: string, timeoutMs = 5000): Promise<ReadyProbe> {
	let res: Response;
	try {
		res = await fetch(`${base}/health/ready`, { signal: AbortSignal.timeout(timeoutMs) });
	} catch (err) {
		const cause = (err as { cause?: { code?: string } }).cause?.code;
		return { kind: "no-answer", detail: cause ?? (err as Error).message };
	}
	const text = await res.text().catch(() => "");
	const described = `HTTP ${res.status}, ${res.headers.get("content-type") ?? "no content-type"}`;
	let body: Record<string, unknown> | undefined;
	try {
		const parsed: unknown = JSON.parse(text);
		if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
			body = parsed as Record<string, unknown>;
		}
	} catch {
		// Not JSON: not Latchkey.
	}
	if (!res.headers.get("x-request-id") || !body) return { kind: "foreign", detail: described };
	if (
		res.status === 200 &&
		body.status === "ok" &&
		STATES.has(String(body.postgres)) &&
		STATES.has(String(body.redis))
	) {
		return { kind: "ready" };
	}
	const error = body.error as { code?: unknown; message?: unknown } | undefined;
	if (res.status >= 500 && error && typeof error.code === "string") {
		return {
			kind: "unavailable",
			detail: `${error.code}: ${typeof error.message === "string" ? error.message : ""}`.trim(),
		};
	}
	return { kind: "foreign", detail: described };
}

export type WaitOutcome = ReadyProbe | { kind: "exited"; detail: string };

/**
 * Polls until Latchkey itself is ready, something else answers, the child exits, or the bounds
 * pass: `startMs` for the first answer of any kind, `readyMs` for a Latchkey that answers but
 * is not ready (a dependency it cannot reach) to become ready.
 */
export async function waitForLatchkey(
	base: string,
	child: ChildProcess,
	bounds: { startMs?: number; readyMs?: number } = {},
): Promise<WaitOutcome> {
	const startBy = Date.now() + (bounds.startMs ?? 90_000);
	let readyBy = Number.POSITIVE_INFINITY;
	let last: ReadyProbe = { kind: "no-answer", detail: "not polled yet" };
	const exited = () =>
		child.exitCode !== null || child.signalCode !== null
			? { kind: "exited" as const, detail: `exited (${child.signalCode ?? child.exitCode})` }
			: undefined;
	for (;;) {
		const gone = exited();
		if (gone) return gone;
		last = await probeReady(base);
		if (last.kind === "ready" || last.kind === "foreign") return last;
		if (last.kind === "unavailable" && readyBy === Number.POSITIVE_INFINITY) {
			readyBy = Date.now() + (bounds.readyMs ?? 20_000);
		}
		if (Date.now() > Math.min(startBy, readyBy)) return exited() ?? last;
		await new Promise((r) => setTimeout(r, 200));
	}
}
