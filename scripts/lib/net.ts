import { createConnection, createServer } from "node:net";

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
