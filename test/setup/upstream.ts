import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { gzipSync } from "node:zlib";
import { PATTERN_PERIOD, type UpstreamState } from "./upstream-types.ts";

/**
 * A third-party API for the proxy tests (test/worker/proxy*.test.ts, bench/proxy.ts): a loopback
 * HTTP server that records what it received, per tenant, so that a test sees exactly which
 * headers, query and body bytes the proxy sent. Every tenant is private: `/t/<tenant>/…`.
 *
 * Under `/t/<tenant>`:
 *   ANY /echo…            records the request; 200 JSON {method, path, query, headers, body};
 *                         answers with headers an upstream may send that the proxy must not pass
 *                         on (set-cookie, CORS) or must keep (x-request-id, server-timing), and
 *                         echoes the credentials it got (x-echo-authorization, x-echo-api-key, x-echo-honeycomb-team,
 *                         x-echo-query) as a careless API might
 *   ANY /fast             200 {"ok":true}, nothing recorded (bench/proxy.ts)
 *   GET /gzip             a gzip-encoded JSON answer with its Content-Length
 *   ANY /status/<code>    answers <code>
 *   ANY /flaky/<n>        records the request; the first <n> attempts of each webhook-id answer
 *                         500, then 200
 *   GET /redirect?to=URL  302 to URL
 *   ANY /hang             never answers (until released, or the client goes)
 *   POST /upload          reads the body as it comes (progress visible to /wait), checks its
 *                         bytes are the pattern (byte i = i % 251); 200 {bytes, pattern_ok, …}
 *   GET /download?bytes=N&hold_at=M  sends N pattern bytes; after M of them it waits for
 *                         /release (or HOLD_LIMIT_MS, then goes on): `released_by` says which
 *   ANY /introspected…    a resource server: the bearer token must be active at the OAuth test
 *                         server (RFC 7662 introspection) and not distrusted here, else 401
 * Control (`/_control/<tenant>`): GET → {requests, upload, download}; GET /wait?received=N
 * answers once an upload has received N bytes (or after timeout_ms, reached: false); POST
 * /release lets held requests go on; POST /distrust {token} makes /introspected refuse a token
 * the authorization server still honours (an API that stopped accepting it: revoking an access
 * token at oidc-provider revokes its grant's refresh tokens too).
 */

/** A held download goes on by itself after this: a test that never releases it fails, not hangs. */
const HOLD_LIMIT_MS = 10_000;

interface Tenant extends UpstreamState {
	/** Tokens /introspected refuses whatever the authorization server says (as if it had revoked them). */
	distrusted: Set<string>;
	uploadWaiters: { bytes: number; wake: () => void }[];
	held: (() => void)[];
	/** A release that came before the request reached its hold lets it pass the hold at once. */
	released: boolean;
}

export interface IntrospectionClient {
	introspectionUrl: string;
	clientId: string;
	clientSecret: string;
}

function newTenant(): Tenant {
	return {
		requests: [],
		upload: { received: 0, done: false, pattern_ok: true },
		distrusted: new Set(),
		uploadWaiters: [],
		download: { sent: 0, released_by: null },
		held: [],
		released: false,
	};
}

const json = (
	res: ServerResponse,
	status: number,
	body: unknown,
	extra: Record<string, string> = {},
) => {
	res.writeHead(status, { "content-type": "application/json", ...extra }).end(JSON.stringify(body));
};

function headersOf(req: IncomingMessage): Record<string, string> {
	const out: Record<string, string> = {};
	for (const [name, value] of Object.entries(req.headers)) {
		if (value !== undefined) out[name] = Array.isArray(value) ? value.join(", ") : String(value);
	}
	return out;
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
	const chunks: Buffer[] = [];
	for await (const chunk of req) chunks.push(chunk as Buffer);
	return Buffer.concat(chunks);
}

/** `period` pattern bytes starting at stream offset `offset`. */
export function patternChunk(offset: number, length: number): Uint8Array {
	const out = new Uint8Array(length);
	for (let i = 0; i < length; i++) out[i] = (offset + i) % PATTERN_PERIOD;
	return out;
}

export async function startUpstream(
	introspection: IntrospectionClient,
): Promise<{ url: string; port: number; close(): Promise<void> }> {
	const tenants = new Map<string, Tenant>();
	const tenantOf = (name: string) => {
		let t = tenants.get(name);
		if (!t) {
			t = newTenant();
			tenants.set(name, t);
		}
		return t;
	};
	let served = 0;

	async function active(token: string): Promise<boolean> {
		const res = await fetch(introspection.introspectionUrl, {
			method: "POST",
			headers: {
				authorization: `Basic ${Buffer.from(`${introspection.clientId}:${introspection.clientSecret}`).toString("base64")}`,
				"content-type": "application/x-www-form-urlencoded",
			},
			body: new URLSearchParams({ token }),
		});
		return ((await res.json()) as { active?: boolean }).active === true;
	}

	async function control(
		tenant: Tenant,
		rest: string,
		url: URL,
		req: IncomingMessage,
		res: ServerResponse,
	) {
		if (rest === "" && req.method === "GET") {
			json(res, 200, {
				requests: tenant.requests,
				upload: tenant.upload,
				download: tenant.download,
			});
			return;
		}
		if (rest === "/wait") {
			const bytes = Number(url.searchParams.get("received") ?? 0);
			const timeout = Number(url.searchParams.get("timeout_ms") ?? 10_000);
			if (tenant.upload.received < bytes) {
				await new Promise<void>((resolve) => {
					const timer = setTimeout(resolve, timeout);
					tenant.uploadWaiters.push({
						bytes,
						wake: () => {
							clearTimeout(timer);
							resolve();
						},
					});
				});
			}
			json(res, 200, {
				reached: tenant.upload.received >= bytes,
				received: tenant.upload.received,
			});
			return;
		}
		if (rest === "/distrust" && req.method === "POST") {
			const body = JSON.parse((await readAll(req)).toString("utf8") || "{}") as { token?: string };
			if (body.token) tenant.distrusted.add(body.token);
			json(res, 200, { distrusted: tenant.distrusted.size });
			return;
		}
		if (rest === "/release" && req.method === "POST") {
			tenant.released = true;
			const waiting = tenant.held.splice(0);
			for (const go of waiting) go();
			json(res, 200, { released: waiting.length });
			return;
		}
		json(res, 404, { error: "no such control" });
	}

	async function api(
		tenant: Tenant,
		rest: string,
		url: URL,
		req: IncomingMessage,
		res: ServerResponse,
	) {
		const method = req.method ?? "GET";
		const record = (status: number, bodyBytes: number, body: string | null) =>
			tenant.requests.push({
				method,
				path: `${url.pathname}`,
				query: url.search,
				headers: headersOf(req),
				body_bytes: bodyBytes,
				body,
				status,
			});

		if (rest === "/fast") {
			// For the bench: a small answer, nothing recorded (thousands of calls).
			await readAll(req);
			json(res, 200, { ok: true });
			return;
		}
		if (rest === "/gzip") {
			await readAll(req);
			record(200, 0, null);
			const body = gzipSync(JSON.stringify({ compressed: true, filler: "x".repeat(4096) }));
			res
				.writeHead(200, {
					"content-type": "application/json",
					"content-encoding": "gzip",
					"content-length": String(body.length),
				})
				.end(body);
			return;
		}
		if (rest.startsWith("/echo")) {
			const body = await readAll(req);
			const text = body.length <= 64 * 1024 ? body.toString("utf8") : null;
			record(200, body.length, text);
			const echoed: Record<string, string> = {};
			for (const name of ["authorization", "x-api-key", "x-stored-token", "x-honeycomb-team"]) {
				const value = req.headers[name];
				if (typeof value === "string") echoed[`x-echo-${name.replace(/^x-/, "")}`] = value;
			}
			if (url.search) echoed["x-echo-query"] = url.search;
			json(
				res,
				200,
				{ method, path: url.pathname, query: url.search, headers: headersOf(req), body: text },
				{
					"x-request-id": `upstream-${++served}`,
					"server-timing": "app;dur=1.5",
					"set-cookie": "upstream_session=abc; Path=/; HttpOnly",
					"access-control-allow-origin": "*",
					"x-upstream": "yes",
					...echoed,
				},
			);
			return;
		}
		const flaky = /^\/flaky\/(\d{1,2})$/.exec(rest);
		if (flaky) {
			// A webhook receiver that fails: the first <n> attempts of each message (webhook-id) answer
			// 500, the rest 200; each is recorded with its headers and body (test/worker/webhooks.test.ts).
			const body = await readAll(req);
			const message = req.headers["webhook-id"];
			const seen = tenant.requests.filter(
				(r) => r.path === url.pathname && r.headers["webhook-id"] === message,
			).length;
			const code = seen < Number(flaky[1]) ? 500 : 200;
			record(code, body.length, body.toString("utf8"));
			json(res, code, { ok: code === 200 });
			return;
		}
		const status = /^\/status\/(\d{3})$/.exec(rest);
		if (status) {
			await readAll(req);
			const code = Number(status[1]);
			record(code, 0, null);
			json(res, code, { status: code });
			return;
		}
		if (rest === "/redirect") {
			record(302, 0, null);
			res.writeHead(302, { location: url.searchParams.get("to") ?? "/" }).end();
			return;
		}
		if (rest === "/hang") {
			record(0, 0, null);
			tenant.released = false;
			await new Promise<void>((resolve) => {
				tenant.held.push(resolve);
				req.socket.once("close", () => resolve());
			});
			if (!res.destroyed) json(res, 200, { released: true });
			return;
		}
		if (rest === "/upload") {
			tenant.upload = { received: 0, done: false, pattern_ok: true };
			for await (const chunk of req) {
				const bytes = chunk as Buffer;
				if (tenant.upload.pattern_ok) {
					const start = tenant.upload.received;
					for (let i = 0; i < bytes.length; i++) {
						if (bytes[i] !== (start + i) % PATTERN_PERIOD) {
							tenant.upload.pattern_ok = false;
							break;
						}
					}
				}
				tenant.upload.received += bytes.length;
				const ready = tenant.uploadWaiters.filter((w) => w.bytes <= tenant.upload.received);
				tenant.uploadWaiters = tenant.uploadWaiters.filter((w) => w.bytes > tenant.upload.received);
				for (const w of ready) w.wake();
			}
			tenant.upload.done = true;
			for (const w of tenant.uploadWaiters.splice(0)) w.wake();
			record(200, tenant.upload.received, null);
			json(res, 200, {
				bytes: tenant.upload.received,
				pattern_ok: tenant.upload.pattern_ok,
				content_length: req.headers["content-length"] ?? null,
				transfer_encoding: req.headers["transfer-encoding"] ?? null,
			});
			return;
		}
		if (rest === "/download") {
			const total = Number(url.searchParams.get("bytes") ?? 0);
			const holdAt = Number(url.searchParams.get("hold_at") ?? -1);
			record(200, 0, null);
			tenant.download = { sent: 0, released_by: null };
			tenant.released = false;
			res.writeHead(200, {
				"content-type": "application/octet-stream",
				"content-length": String(total),
			});
			const CHUNK = 64 * 1024;
			let sent = 0;
			while (sent < total) {
				if (holdAt >= 0 && sent >= holdAt && tenant.download.released_by === null) {
					tenant.download.released_by = await new Promise<"control" | "timeout">((resolve) => {
						if (tenant.released) {
							resolve("control");
							return;
						}
						const timer = setTimeout(() => resolve("timeout"), HOLD_LIMIT_MS);
						tenant.held.push(() => {
							clearTimeout(timer);
							resolve("control");
						});
					});
				}
				const n = Math.min(CHUNK, total - sent, holdAt > sent ? holdAt - sent : CHUNK);
				const ok = res.write(patternChunk(sent, n));
				sent += n;
				tenant.download.sent = sent;
				if (!ok) await new Promise((resolve) => res.once("drain", resolve));
				if (res.destroyed) return;
			}
			res.end();
			return;
		}
		if (rest.startsWith("/introspected")) {
			await readAll(req);
			const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "")?.[1];
			const ok = token !== undefined && !tenant.distrusted.has(token) && (await active(token));
			record(ok ? 200 : 401, 0, null);
			if (ok) json(res, 200, { ok: true });
			else
				json(
					res,
					401,
					{ error: "invalid_token" },
					{ "www-authenticate": 'Bearer error="invalid_token"' },
				);
			return;
		}
		record(404, 0, null);
		json(res, 404, { error: "no such upstream route" });
	}

	const sockets = new Set<Socket>();
	const server = createServer((req, res) => {
		const url = new URL(req.url ?? "/", "http://upstream.test");
		const match = /^\/(t|_control)\/([A-Za-z0-9_-]+)(\/.*)?$/.exec(url.pathname);
		if (!match) {
			json(res, 404, { error: "no tenant" });
			return;
		}
		const [, kind, name, rest = ""] = match as unknown as [string, string, string, string?];
		const tenant = tenantOf(name);
		const work =
			kind === "t" ? api(tenant, rest, url, req, res) : control(tenant, rest, url, req, res);
		work.catch((err: unknown) => {
			if (!res.headersSent) json(res, 500, { error: String(err) });
			else res.destroy();
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
		port,
		close: () =>
			new Promise<void>((resolve) => {
				for (const socket of sockets) socket.destroy();
				server.close(() => resolve());
			}),
	};
}
