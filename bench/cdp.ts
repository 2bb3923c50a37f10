import WebSocket from "ws";

/**
 * A minimal Chrome DevTools Protocol client for workerd's inspector (`inspectorPort`): one
 * WebSocket, calls matched to replies by id, events handed to `onEvent`.
 */
export async function connectInspector(
	port: number,
	onEvent: (method: string, params: Record<string, unknown>) => void = () => {},
) {
	const deadline = Date.now() + 15_000;
	let target: string | undefined;
	while (!target && Date.now() < deadline) {
		const list = (await fetch(`http://127.0.0.1:${port}/json/list`)
			.then((r) => r.json())
			.catch(() => [])) as Array<{ webSocketDebuggerUrl: string }>;
		target = list[0]?.webSocketDebuggerUrl;
		if (!target) await new Promise((r) => setTimeout(r, 100));
	}
	if (!target) throw new Error(`no inspector target on 127.0.0.1:${port}`);
	const ws = new WebSocket(target, { maxPayload: 1024 * 1024 * 1024 });
	await new Promise((resolve, reject) => {
		ws.once("open", resolve);
		ws.once("error", reject);
	});
	let nextId = 1;
	const pending = new Map<number, (message: { result?: unknown; error?: unknown }) => void>();
	ws.on("message", (data) => {
		const message = JSON.parse(String(data)) as {
			id?: number;
			method?: string;
			params?: Record<string, unknown>;
			result?: unknown;
			error?: unknown;
		};
		const waiting = message.id === undefined ? undefined : pending.get(message.id);
		if (waiting) {
			pending.delete(message.id as number);
			waiting(message);
			return;
		}
		// workerd answers some profiler calls as events named after the call, carrying `result`.
		if (message.method) onEvent(message.method, message.params ?? (message.result as never) ?? {});
	});
	const call = <T>(method: string, params: Record<string, unknown> = {}): Promise<T> =>
		new Promise((resolve, reject) => {
			const id = nextId++;
			const timer = setTimeout(() => {
				pending.delete(id);
				reject(new Error(`${method}: no answer from the inspector within 30 s`));
			}, 30_000);
			pending.set(id, (m) => {
				clearTimeout(timer);
				if (m.error) reject(new Error(`${method}: ${JSON.stringify(m.error)}`));
				else resolve(m.result as T);
			});
			ws.send(JSON.stringify({ id, method, params }));
		});
	/** Fire and forget: for calls workerd does not answer (Profiler.enable, Profiler.start). */
	const send = (method: string, params: Record<string, unknown> = {}) =>
		ws.send(JSON.stringify({ id: nextId++, method, params }));
	return { call, send, close: () => ws.close() };
}
