import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

/**
 * What the managed-provider fakes (agentmail.ts, provisioner.ts) share: a loopback HTTP server,
 * a per-tenant call log and per-tenant failure rules that tests switch on through control
 * endpoints. The rule format is documented in test/setup/managed-control.ts.
 */

export interface FailRule {
	method?: string;
	/** A regular expression matched against the request path (no query). */
	path?: string;
	/**
	 * `status`: answer `status` without doing anything; `drop_before`: close the connection
	 * without doing anything; `drop_after`: do the work, then close the connection without an
	 * answer (a crash between the provider's commit and our receipt); `hang`: hold the request
	 * until the tenant is released, then do it.
	 */
	mode: "status" | "drop_before" | "drop_after" | "hang";
	status?: number;
	/** How many matching requests the rule applies to (default 1). */
	times?: number;
}

export interface CallRecord {
	method: string;
	path: string;
	status: number | "dropped";
	at: string;
	[extra: string]: unknown;
}

export interface Tenant {
	calls: CallRecord[];
	rules: FailRule[];
	hung: (() => void)[];
}

export const rid = (prefix: string, bytes = 9) =>
	`${prefix}${randomBytes(bytes).toString("base64url").replace(/[-_]/g, "x")}`;

export function newTenant(): Tenant {
	return { calls: [], rules: [], hung: [] };
}

/** Consumes and returns the first rule matching the request, if any. */
export function takeRule(tenant: Tenant, method: string, path: string): FailRule | undefined {
	const index = tenant.rules.findIndex(
		(r) =>
			(r.method === undefined || r.method.toUpperCase() === method) &&
			(r.path === undefined || new RegExp(r.path).test(path)),
	);
	if (index < 0) return undefined;
	const rule = tenant.rules[index] as FailRule;
	const left = (rule.times ?? 1) - 1;
	if (left <= 0) tenant.rules.splice(index, 1);
	else rule.times = left;
	return rule;
}

export function release(tenant: Tenant): number {
	const waiting = tenant.hung.splice(0);
	for (const go of waiting) go();
	return waiting.length;
}

export async function readBody(req: IncomingMessage): Promise<string> {
	const chunks: Buffer[] = [];
	for await (const chunk of req) chunks.push(chunk as Buffer);
	return Buffer.concat(chunks).toString("utf8");
}

export function send(res: ServerResponse, status: number, body?: unknown): void {
	if (body === undefined) {
		res.writeHead(status).end();
		return;
	}
	res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

/** Starts a loopback server; `close` also destroys open sockets (hung requests included). */
export async function listen(
	handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
): Promise<{ url: string; close(): Promise<void> }> {
	const sockets = new Set<Socket>();
	const server = createServer((req, res) => {
		handler(req, res).catch((err: unknown) => {
			if (!res.headersSent) send(res, 500, { name: "FakeError", message: String(err) });
		});
	});
	server.on("connection", (socket) => {
		sockets.add(socket);
		socket.on("close", () => sockets.delete(socket));
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const address = server.address();
	const port = typeof address === "object" && address ? address.port : 0;
	return {
		url: `http://127.0.0.1:${port}`,
		close: () =>
			new Promise<void>((resolve) => {
				for (const socket of sockets) socket.destroy();
				server.close(() => resolve());
			}),
	};
}

/**
 * Runs `work` under the tenant's failure rules and logs the call. `work` answers through the
 * returned status and body; a drop closes the socket without an answer.
 */
export async function governed(
	tenant: Tenant,
	req: IncomingMessage,
	res: ServerResponse,
	path: string,
	work: () => Promise<{ status: number; body?: unknown; extra?: Record<string, unknown> }>,
): Promise<void> {
	const method = req.method ?? "GET";
	const rule = takeRule(tenant, method, path);
	const log = (status: CallRecord["status"], extra: Record<string, unknown> = {}) =>
		tenant.calls.push({ method, path, status, at: new Date().toISOString(), ...extra });
	if (rule?.mode === "status") {
		log(rule.status ?? 500);
		send(res, rule.status ?? 500, { name: "InjectedFailure", message: "injected by the test" });
		return;
	}
	if (rule?.mode === "drop_before") {
		log("dropped");
		req.socket.destroy();
		return;
	}
	if (rule?.mode === "hang") {
		await new Promise<void>((resolve) => tenant.hung.push(resolve));
		if (req.socket.destroyed) {
			log("dropped", { note: "client gave up while held" });
			return;
		}
	}
	const result = await work();
	if (rule?.mode === "drop_after") {
		log("dropped", { ...result.extra, note: "done, then dropped" });
		req.socket.destroy();
		return;
	}
	log(result.status, result.extra);
	send(res, result.status, result.body);
}
