import { createConnection, createServer, type Server } from "node:net";

/** What every local bridge hands back: where it listens and how to stop it. */
export interface RunningServer {
	port: number;
	url: string;
	close(): Promise<void>;
}

/**
 * Asks the OS for a free port by binding port 0 and releasing it. Another process can grab the
 * port before the caller binds it, so prefer binding port 0 directly where the server allows it.
 */
export function freePort(host = "127.0.0.1"): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.unref();
		server.once("error", reject);
		server.listen(0, host, () => {
			const address = server.address();
			const port = typeof address === "object" && address ? address.port : 0;
			server.close((err) => (err ? reject(err) : resolve(port)));
		});
	});
}

/** True when something accepts a TCP connection on host:port within the timeout. */
export function canConnect(host: string, port: number, timeoutMs = 500): Promise<boolean> {
	return new Promise((resolve) => {
		const socket = createConnection({ host, port });
		const done = (ok: boolean) => {
			socket.removeAllListeners();
			socket.on("error", () => {});
			socket.destroy();
			resolve(ok);
		};
		socket.setTimeout(timeoutMs, () => done(false));
		socket.once("connect", () => done(true));
		socket.once("error", () => done(false));
	});
}

/**
 * Starts `server` on host:port (0 for any free port) and resolves with the port it got; a bind
 * failure (port taken) rejects instead of surfacing later as an unhandled error event.
 */
export function listen(server: Server, port = 0, host = "127.0.0.1"): Promise<number> {
	return new Promise((resolve, reject) => {
		server.once("error", reject);
		server.listen(port, host, () => {
			server.off("error", reject);
			const address = server.address();
			resolve(typeof address === "object" && address ? address.port : 0);
		});
	});
}

/** host:port of a service URL, for messages: leaves out the password it may carry. */
export function redactedAddress(url: string, defaultPort = "default port"): string {
	try {
		const parsed = new URL(url);
		return `${parsed.hostname}:${parsed.port || defaultPort}`;
	} catch {
		return "(unparseable URL)";
	}
}

/**
 * Binds host:port and releases it: undefined when the port is free, else why not ("in use").
 * Binding first turns "taken" into advice before any engine has started.
 */
export function checkPortFree(host: string, port: number): Promise<string | undefined> {
	return new Promise((done) => {
		const probe = createServer();
		probe.once("error", (err: NodeJS.ErrnoException) =>
			done(err.code === "EADDRINUSE" ? "in use" : err.message),
		);
		probe.listen(port, host, () => probe.close(() => done(undefined)));
	});
}

/** What to tell someone whose port is taken; `command` is what they ran (`npm start`). */
export function portAdvice(host: string, port: number, why: string, command: string): string {
	const other = port === 8788 ? 8789 : 8788;
	return (
		`cannot listen on ${host}:${port} (${why}). Stop what is using it ` +
		`(\`ss -ltnp 'sport = :${port}'\` shows it) or choose another port: PORT=${other} ${command}`
	);
}
