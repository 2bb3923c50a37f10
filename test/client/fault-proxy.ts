import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A request the proxy saw, and what it answered. */
export interface Seen {
	method: string;
	path: string;
	/** `grant_type` of a `POST /v1/auth/token`. */
	grant?: string;
	status: number;
	/** True when the proxy answered itself (an injected fault). */
	injected: boolean;
	requestId: string | null;
}

export interface Fault {
	/** The requests it applies to. */
	match: (req: { method: string; path: string }) => boolean;
	status: number;
	headers?: Record<string, string>;
	/** JSON body; by default Latchkey's error shape for the status. */
	body?: unknown;
	/** The body's text as sent, instead of `body` (a truncated answer). */
	rawBody?: string;
	/** How many matching requests get it (default 1). */
	times?: number;
	/** Instead of answering, drop the connection (the answer is lost); `status` is then ignored. */
	drop?: boolean;
}

export interface FaultProxy {
	url: string;
	/** Every request so far, in the order their answers went out. */
	seen: Seen[];
	/** The refresh tokens `POST /v1/auth/token` handed out, oldest first. */
	refreshTokens: string[];
	/** Answers the next matching request(s) itself instead of forwarding them. */
	inject(fault: Fault): void;
	/** The requests seen that match. */
	count(match: (s: Seen) => boolean): number;
	close(): Promise<void>;
}

const HOP_BY_HOP = new Set([
	"connection",
	"keep-alive",
	"transfer-encoding",
	"upgrade",
	"host",
	"content-length",
	"content-encoding",
]);

/**
 * A transparent HTTP proxy in front of the worker under test: it forwards every request as it
 * came (method, path, headers, body) and the answer as it went, counts what passes, and answers
 * requests itself where a test injected a fault (a 503 with Retry-After, a 409).
 */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
	const seen: Seen[] = [];
	const refreshTokens: string[] = [];
	const faults: (Fault & { left: number })[] = [];

	const handle = async (req: IncomingMessage, res: ServerResponse) => {
		const chunks: Buffer[] = [];
		for await (const chunk of req) chunks.push(chunk as Buffer);
		const body = Buffer.concat(chunks);
		const method = req.method ?? "GET";
		const path = new URL(req.url ?? "/", "http://proxy").pathname;
		let grant: string | undefined;
		if (path === "/v1/auth/token") {
			try {
				grant = (JSON.parse(body.toString("utf8")) as { grant_type?: string }).grant_type;
			} catch {
				grant = undefined;
			}
		}
		const fault = faults.find((f) => f.left > 0 && f.match({ method, path }));
		if (fault) {
			fault.left--;
			if (fault.drop) {
				seen.push({ method, path, grant, status: 0, injected: true, requestId: null });
				req.socket.destroy();
				return;
			}
			const requestId = `proxy-${crypto.randomUUID()}`;
			const payload = fault.body ?? {
				error: {
					code: fault.status === 503 ? "dependency_unavailable" : `injected_${fault.status}`,
					message: "Injected by the test's fault proxy.",
					hint: "Try again.",
					request_id: requestId,
				},
			};
			res.writeHead(fault.status, {
				"content-type": "application/json",
				"x-request-id": requestId,
				...fault.headers,
			});
			res.end(fault.rawBody ?? JSON.stringify(payload));
			seen.push({ method, path, grant, status: fault.status, injected: true, requestId });
			return;
		}
		const headers = new Headers();
		for (const [name, value] of Object.entries(req.headers)) {
			if (HOP_BY_HOP.has(name) || value === undefined) continue;
			for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
		}
		const answer = await fetch(`${target}${req.url ?? "/"}`, {
			method,
			headers,
			...(body.length > 0 ? { body } : {}),
			redirect: "manual",
		});
		const out: Record<string, string> = {};
		answer.headers.forEach((value, name) => {
			if (!HOP_BY_HOP.has(name)) out[name] = value;
		});
		const bytes = Buffer.from(await answer.arrayBuffer());
		if (path === "/v1/auth/token" && answer.ok) {
			const pair = JSON.parse(bytes.toString("utf8")) as { refresh_token?: string };
			if (pair.refresh_token) refreshTokens.push(pair.refresh_token);
		}
		res.writeHead(answer.status, out);
		res.end(bytes);
		seen.push({
			method,
			path,
			grant,
			status: answer.status,
			injected: false,
			requestId: answer.headers.get("x-request-id"),
		});
	};

	const server = createServer((req, res) => {
		handle(req, res).catch((err: unknown) => {
			res.writeHead(502, { "content-type": "text/plain" });
			res.end(`fault proxy: ${(err as Error).message}`);
		});
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	return {
		url: `http://127.0.0.1:${port}`,
		seen,
		refreshTokens,
		inject: (fault) => faults.push({ ...fault, left: fault.times ?? 1 }),
		count: (match) => seen.filter(match).length,
		close: () =>
			new Promise<void>((resolve) => {
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	};
}
