import { createServer, type IncomingMessage, STATUS_CODES } from "node:http";
import { createConnection, isIPv4, isIPv6, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import { listen, type RunningServer } from "../lib/net.ts";

// Above this many bytes queued for the WebSocket client we stop reading from the database;
// a large result set would otherwise pile up in memory.
const HIGH_WATER = 1 << 20;
const LOW_WATER = 1 << 18;

/**
 * The bridge is for reaching databases on this machine only. Letting it dial arbitrary hosts
 * would turn every dev box running it into an open relay for whoever can reach the port.
 */
export function isLoopbackHost(host: string): boolean {
	const h = host.toLowerCase();
	if (h === "localhost" || h.endsWith(".localhost")) return true;
	if (isIPv4(h)) return h.startsWith("127.");
	if (isIPv6(h)) return h === "::1" || /^(0{0,4}:){7}0{0,3}1$/.test(h) || /^::ffff:127\./.test(h);
	return false;
}

/** Parses Neon's `address=host:port`, accepting a bracketed or bare IPv6 host. */
export function parseAddress(raw: string | null): { host: string; port: number } | undefined {
	if (!raw) return undefined;
	const cut = raw.lastIndexOf(":");
	if (cut <= 0) return undefined;
	let host = raw.slice(0, cut);
	const portText = raw.slice(cut + 1);
	if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
	if (!/^\d{1,5}$/.test(portText)) return undefined;
	const port = Number(portText);
	if (port < 1 || port > 65535 || host === "") return undefined;
	return { host, port };
}

function refuse(socket: Duplex, status: number, detail: string): void {
	socket.end(
		`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(detail)}\r\n\r\n${detail}`,
	);
}

function toBuffer(data: RawData): Buffer {
	if (Buffer.isBuffer(data)) return data;
	if (Array.isArray(data)) return Buffer.concat(data);
	return Buffer.from(data);
}

/**
 * Pipes one WebSocket to one TCP connection. The TCP socket starts paused, so bytes the server
 * sends before the upgrade completes wait in the socket instead of being dropped; writes from
 * the WebSocket side are buffered by Node while the TCP connect is still in flight.
 */
function bridge(ws: WebSocket, tcp: Socket, failedEarly: () => boolean): void {
	if (failedEarly()) {
		ws.close(1011, "upstream connection failed");
		return;
	}
	let tcpPausedForWs = false;

	tcp.on("data", (chunk: Buffer) => {
		if (ws.readyState !== WebSocket.OPEN) return;
		ws.send(chunk, { binary: true }, () => {
			if (tcpPausedForWs && ws.bufferedAmount < LOW_WATER) {
				tcpPausedForWs = false;
				tcp.resume();
			}
		});
		if (ws.bufferedAmount > HIGH_WATER) {
			tcpPausedForWs = true;
			tcp.pause();
		}
	});
	tcp.on("drain", () => ws.resume());
	tcp.on("close", () => {
		if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
	});
	tcp.on("error", () => {
		// 'close' follows; the error itself has nowhere more useful to go than the ws close code.
		if (ws.readyState === WebSocket.OPEN) ws.close(1011, "upstream error");
	});

	ws.on("message", (data) => {
		if (!tcp.write(toBuffer(data))) ws.pause();
	});
	ws.on("close", () => tcp.end());
	ws.on("error", () => tcp.destroy());

	tcp.resume();
}

/**
 * WebSocket→TCP bridge speaking the shape Neon's driver expects from a `wsProxy`:
 * `ws://host:port/v1?address=<db-host>:<db-port>`, one binary stream per socket.
 */
export async function startWsProxy(
	opts: { port?: number; host?: string } = {},
): Promise<RunningServer> {
	const host = opts.host ?? "127.0.0.1";
	const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
	const upstreams = new Set<Socket>();
	const server = createServer((_req, res) => {
		res.writeHead(426, { "Content-Type": "text/plain" }).end("WebSocket upgrade required");
	});

	server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
		socket.on("error", () => {});
		const url = new URL(req.url ?? "/", "http://bridge");
		if (url.pathname !== "/v1") return refuse(socket, 404, "only /v1 is served");
		const target = parseAddress(url.searchParams.get("address"));
		if (!target) return refuse(socket, 400, "address=host:port is required");
		if (!isLoopbackHost(target.host))
			return refuse(socket, 403, "only loopback targets are allowed");

		const tcp = createConnection({ host: target.host, port: target.port });
		tcp.setNoDelay(true);
		tcp.pause();
		upstreams.add(tcp);
		let failed = false;
		let bridged = false;
		tcp.on("error", () => {
			failed = true;
		});
		tcp.once("close", () => upstreams.delete(tcp));
		// A client that drops mid-handshake never reaches the upgrade callback; without this the
		// paused upstream connection would linger until the database times it out.
		socket.once("close", () => {
			if (!bridged) tcp.destroy();
		});

		wss.handleUpgrade(req, socket, head, (ws) => {
			bridged = true;
			bridge(ws, tcp, () => failed || tcp.destroyed);
		});
	});

	const port = await listen(server, opts.port, host);
	return {
		port,
		url: `ws://${host}:${port}/v1`,
		close: async () => {
			for (const client of wss.clients) client.terminate();
			for (const tcp of upstreams) tcp.destroy();
			server.closeAllConnections();
			await new Promise<void>((done) => wss.close(() => done()));
			await new Promise<void>((done) => server.close(() => done()));
		},
	};
}
