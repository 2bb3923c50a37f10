import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { hasFlag } from "@ioredis/commands";
import { Redis, ReplyError } from "ioredis";
import { CommandError, EmbeddedRedis, type Reply, sha1 } from "../engines/embedded-redis.ts";
import { listen, type RunningServer, redactedAddress } from "../lib/net.ts";

const MAX_BODY_BYTES = 16 * 1024 * 1024;
// As the Neon bridge's: workerd keeps idle sockets for reuse, and a request it sends on a socket
// the bridge is closing at that moment fails.
const KEEP_ALIVE_MS = 30_000;

/**
 * Commands that change the state of a connection. Every caller of the bridge shares one
 * connection, so letting one request open a MULTI or SUBSCRIBE would break everyone else.
 * Upstash refuses most of these over REST as well.
 */
const CONNECTION_STATE_COMMANDS = new Set([
	"multi",
	"exec",
	"discard",
	"watch",
	"unwatch",
	"subscribe",
	"psubscribe",
	"ssubscribe",
	"unsubscribe",
	"punsubscribe",
	"sunsubscribe",
	"monitor",
	"select",
	"swapdb",
	"hello",
	"auth",
	"reset",
	"quit",
	"client",
	"sync",
	"psync",
	"replconf",
]);

/** Redis is unreachable or timed out: the request may be fine, the backend is not. */
class UnavailableError extends Error {
	override name = "UnavailableError";
}

interface Engine {
	call(args: string[]): Promise<Reply>;
	transaction(commands: string[][]): Promise<Array<Reply | CommandError>>;
	close(): Promise<void>;
}

function classify(err: unknown): CommandError | UnavailableError {
	if (err instanceof CommandError || err instanceof UnavailableError) return err;
	if (err instanceof ReplyError) return new CommandError((err as Error).message);
	const message = err instanceof Error ? err.message : String(err);
	return new UnavailableError(`ERR redis unavailable: ${message}`);
}

// Flags Redis 7.0 accepts in a script shebang. Upstash adds its own (allow-key-locking, used by
// @upstash/ratelimit), which stock Redis rejects outright, so those are dropped on the way in.
const KNOWN_SCRIPT_FLAGS = new Set([
	"no-writes",
	"allow-oom",
	"allow-stale",
	"no-cluster",
	"allow-cross-slot-keys",
]);

function adaptScript(script: string, redisMajor: number): string {
	if (!script.startsWith("#!")) return script;
	const end = script.indexOf("\n");
	const line = end === -1 ? script : script.slice(0, end);
	const body = end === -1 ? "" : script.slice(end);
	if (redisMajor < 7) return body;
	const [engine = "#!lua", ...options] = line.split(/\s+/);
	const kept = options.map((option) => {
		if (!option.startsWith("flags=")) return option;
		const flags = option
			.slice("flags=".length)
			.split(",")
			.filter((f) => KNOWN_SCRIPT_FLAGS.has(f));
		return `flags=${flags.join(",")}`;
	});
	return [engine, ...kept].join(" ") + body;
}

/**
 * ioredis reshapes some replies by lower-case command name (HGETALL becomes an object).
 * Redis does not care about case, so sending the name upper-cased keeps the reply raw.
 */
function wireName(name: string): string {
	return name.toUpperCase();
}

/**
 * A real Redis through ioredis. Requests fail fast while Redis is down (no offline queue, no
 * per-request retries) because a caller waiting on a lock or rate limit is better served by a
 * prompt error than by a hang.
 */
class RedisEngine implements Engine {
	// Client-side SHA of an Upstash-flavoured script → the script as this Redis accepts it.
	// EVALSHA with the client's SHA is answered by EVAL of the adapted text.
	private readonly adapted = new Map<string, string>();

	private constructor(
		private readonly redis: Redis,
		private readonly redisMajor: number,
	) {}

	static async connect(url: string): Promise<RedisEngine> {
		const redis = new Redis(url, {
			lazyConnect: true,
			enableOfflineQueue: false,
			maxRetriesPerRequest: 0,
			connectTimeout: 2000,
			commandTimeout: 10_000,
			retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
		});
		let lastError = "";
		redis.on("error", (err: Error) => {
			// ioredis reports every failed reconnect; say it once per outage, not every 2 s.
			if (err.message !== lastError) {
				lastError = err.message;
				console.warn(`[upstash-bridge] redis: ${err.message}`);
			}
		});
		redis.on("ready", () => {
			lastError = "";
		});
		try {
			await redis.connect();
			const info = String(await redis.info("server"));
			const major = Number(/redis_version:(\d+)/.exec(info)?.[1] ?? "7");
			return new RedisEngine(redis, major);
		} catch (err) {
			redis.disconnect();
			throw new Error(
				`cannot reach Redis at ${redactedAddress(url, "6379")}: ${(err as Error).message}`,
			);
		}
	}

	async call(args: string[]): Promise<Reply> {
		const { command, after } = this.prepare(args);
		try {
			if (hasFlag((args[0] ?? "").toLowerCase(), "blocking")) {
				return await this.callBlocking(command);
			}
			return after(await this.send(command));
		} catch (err) {
			throw classify(err);
		}
	}

	async transaction(commands: string[][]): Promise<Array<Reply | CommandError>> {
		const prepared = commands.map((c) => this.prepare(c));
		const multi = this.redis.multi();
		for (const { command } of prepared) {
			const [name = "", ...args] = command;
			multi.callBuffer(wireName(name), ...args);
		}
		let results: Array<[Error | null, unknown]> | null;
		try {
			results = await multi.exec();
		} catch (err) {
			const previous = (err as { previousErrors?: Error[] }).previousErrors ?? [];
			const detail = previous.map((e) => e.message).join("; ");
			const classified = classify(err);
			if (classified instanceof CommandError && detail) {
				throw new CommandError(`${classified.message} ${detail}`);
			}
			throw classified;
		}
		if (!results) throw new CommandError("EXECABORT Transaction discarded");
		return results.map(([err, value], i) => {
			if (err) return classify(err) as CommandError;
			return (prepared[i]?.after ?? ((r: Reply) => r))(value as Reply);
		});
	}

	async close(): Promise<void> {
		await this.redis.quit().catch(() => this.redis.disconnect());
	}

	private send(command: string[]): Promise<Reply> {
		const [name = "", ...args] = command;
		return this.redis.callBuffer(wireName(name), ...args) as Promise<Reply>;
	}

	/** A blocking command would stall every other caller on the shared connection. */
	private async callBlocking(command: string[]): Promise<Reply> {
		const dedicated = this.redis.duplicate({ commandTimeout: undefined, lazyConnect: true });
		dedicated.on("error", () => {});
		try {
			await dedicated.connect();
			const [name = "", ...args] = command;
			return (await dedicated.callBuffer(wireName(name), ...args)) as Reply;
		} finally {
			dedicated.disconnect();
		}
	}

	private prepare(args: string[]): { command: string[]; after: (reply: Reply) => Reply } {
		const identity = (reply: Reply) => reply;
		const [name = "", first = "", ...rest] = args;
		const lower = name.toLowerCase();
		if (lower === "eval" || lower === "eval_ro") {
			const script = this.adapt(first);
			return { command: [name, script, ...rest], after: identity };
		}
		if (lower === "evalsha" || lower === "evalsha_ro") {
			const script = this.adapted.get(first.toLowerCase());
			if (script === undefined) return { command: args, after: identity };
			return {
				command: [lower === "evalsha" ? "EVAL" : "EVAL_RO", script, ...rest],
				after: identity,
			};
		}
		if (lower === "script" && first.toLowerCase() === "load" && rest[0] !== undefined) {
			const original = rest[0];
			const script = this.adapt(original);
			// Redis answers with the SHA of what it was given; the client expects the SHA of
			// what it sent, since that is what it will pass to EVALSHA.
			return { command: [name, first, script], after: () => sha1(original) };
		}
		if (lower === "script" && first.toLowerCase() === "flush") this.adapted.clear();
		return { command: args, after: identity };
	}

	private adapt(script: string): string {
		const adapted = adaptScript(script, this.redisMajor);
		if (adapted !== script) this.adapted.set(sha1(script), adapted);
		return adapted;
	}
}

class EmbeddedEngine implements Engine {
	private readonly redis = new EmbeddedRedis();
	async call(args: string[]): Promise<Reply> {
		return this.redis.call(args).catch((err) => {
			throw classify(err);
		});
	}
	transaction(commands: string[][]): Promise<Array<Reply | CommandError>> {
		return this.redis.transaction(commands).catch((err) => {
			throw classify(err);
		});
	}
	close(): Promise<void> {
		return this.redis.close();
	}
}

/**
 * Upstash's REST encoding: with `Upstash-Encoding: base64` every string in the result is
 * base64 so binary values survive JSON. The client leaves a top-level "OK" alone rather than
 * decoding it (that is how Upstash sends status replies), but base64-decodes every string
 * inside an array unconditionally, so only the top level may carry a bare "OK".
 */
export function encodeReply(reply: Reply, base64: boolean, topLevel = true): unknown {
	if (reply === null || typeof reply === "number") return reply;
	if (Array.isArray(reply)) return reply.map((r) => encodeReply(r, base64, false));
	const bytes =
		reply instanceof Error
			? Buffer.from(reply.message)
			: typeof reply === "string"
				? Buffer.from(reply)
				: reply;
	if (!base64) return bytes.toString("utf8");
	if (topLevel && bytes.length === 2 && bytes.toString("latin1") === "OK") return "OK";
	return bytes.toString("base64");
}

/** JSON scalars become Redis arguments the way the Upstash client serialises them. */
function toCommand(value: unknown): string[] | undefined {
	if (!Array.isArray(value) || value.length === 0) return undefined;
	const out: string[] = [];
	for (const item of value) {
		if (typeof item === "string") out.push(item);
		else if (typeof item === "number" || typeof item === "boolean") out.push(String(item));
		else return undefined;
	}
	return out;
}

function tokenMatches(header: string | undefined, expected: Buffer): boolean {
	const match = /^Bearer\s+(.+)$/i.exec(header ?? "");
	// Hashing first gives both sides the same length, which timingSafeEqual requires,
	// without leaking the token's length through an early return.
	const given = createHash("sha256")
		.update(match?.[1]?.trim() ?? "")
		.digest();
	return timingSafeEqual(given, expected) && match !== null;
}

function readBody(req: IncomingMessage): Promise<string> {
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		let size = 0;
		req.on("data", (chunk: Buffer) => {
			size += chunk.length;
			if (size > MAX_BODY_BYTES) {
				reject(new CommandError("ERR request body too large"));
				req.destroy();
				return;
			}
			chunks.push(chunk);
		});
		req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
		req.on("error", reject);
	});
}

function send(res: ServerResponse, status: number, body: unknown): void {
	const payload = JSON.stringify(body);
	res.writeHead(status, {
		"Content-Type": "application/json",
		"Content-Length": Buffer.byteLength(payload),
	});
	res.end(payload);
}

function statusOf(err: CommandError | UnavailableError): number {
	return err instanceof UnavailableError ? 503 : 400;
}

function checkAllowed(command: string[]): CommandError | undefined {
	const name = (command[0] ?? "").toLowerCase();
	if (CONNECTION_STATE_COMMANDS.has(name)) {
		return new CommandError(`ERR command '${command[0]}' is not supported over REST`);
	}
	return undefined;
}

/**
 * The Upstash REST protocol (what `@upstash/redis` speaks) in front of a real Redis or an
 * embedded one: `POST /` with a JSON command array, `POST /pipeline` and `POST /multi-exec`
 * with an array of them, and Upstash's `/<command>/<arg>/…` path form.
 */
export async function startUpstashBridge(opts: {
	token: string;
	port?: number;
	redisUrl?: string;
	embedded?: boolean;
}): Promise<RunningServer & { mode: "redis" | "embedded" }> {
	if (opts.embedded && opts.redisUrl) throw new Error("pass either redisUrl or embedded, not both");
	if (!opts.embedded && !opts.redisUrl) throw new Error("pass redisUrl, or embedded: true");
	if (!opts.token) throw new Error("token must not be empty");
	const engine: Engine = opts.embedded
		? new EmbeddedEngine()
		: await RedisEngine.connect(opts.redisUrl as string);
	const mode = opts.embedded ? "embedded" : "redis";
	const expected = createHash("sha256").update(opts.token).digest();

	async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
		if (!tokenMatches(req.headers.authorization, expected)) {
			return send(res, 401, { error: "Unauthorized" });
		}
		const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
		const url = new URL(req.url ?? "/", "http://bridge");
		const path = url.pathname.replace(/\/+$/, "");
		const raw = await readBody(req);
		let body: unknown;
		if (raw.trim() !== "" && (path === "" || path === "/pipeline" || path === "/multi-exec")) {
			try {
				body = JSON.parse(raw);
			} catch {
				return send(res, 400, { error: "ERR request body is not valid JSON" });
			}
		}

		if (path === "/pipeline" || path === "/multi-exec") {
			const commands = Array.isArray(body) ? body.map(toCommand) : [];
			if (commands.length === 0 || commands.some((c) => c === undefined)) {
				return send(res, 400, { error: "ERR expected a non-empty array of command arrays" });
			}
			const valid = commands as string[][];
			const refused = valid.map(checkAllowed).find((e) => e !== undefined);
			if (path === "/multi-exec") {
				if (refused) return send(res, 400, { error: refused.message });
				try {
					const results = await engine.transaction(valid);
					return send(
						res,
						200,
						results.map((r) =>
							r instanceof CommandError ? { error: r.message } : { result: encodeReply(r, base64) },
						),
					);
				} catch (err) {
					const e = classify(err);
					return send(res, statusOf(e), { error: e.message });
				}
			}
			const settled = await Promise.all(
				valid.map(async (command) => {
					const denied = checkAllowed(command);
					if (denied) return denied;
					return engine.call(command).catch((err: unknown) => classify(err));
				}),
			);
			const down = settled.find((r) => r instanceof UnavailableError);
			if (down) return send(res, 503, { error: (down as UnavailableError).message });
			return send(
				res,
				200,
				settled.map((r) =>
					r instanceof CommandError ? { error: r.message } : { result: encodeReply(r, base64) },
				),
			);
		}

		let command: string[] | undefined;
		if (path === "") {
			command = toCommand(body);
		} else {
			// Path form: /set/key/value, with a POST body (if any) as the final argument.
			command = path
				.slice(1)
				.split("/")
				.map((segment) => decodeURIComponent(segment));
			if (req.method === "POST" && raw !== "") command.push(raw);
		}
		if (!command || command.length === 0 || command[0] === "") {
			return send(res, 400, { error: 'ERR expected a command array such as ["PING"]' });
		}
		const denied = checkAllowed(command);
		if (denied) return send(res, 400, { error: denied.message });
		try {
			return send(res, 200, { result: encodeReply(await engine.call(command), base64) });
		} catch (err) {
			const e = classify(err);
			return send(res, statusOf(e), { error: e.message });
		}
	}

	const server = createServer({ keepAlive: true }, (req, res) => {
		handle(req, res).catch((err: unknown) => {
			if (res.headersSent) return res.destroy();
			const e = classify(err);
			send(res, e instanceof CommandError ? 400 : 500, { error: e.message });
		});
	});
	server.keepAliveTimeout = KEEP_ALIVE_MS;

	const port = await listen(server, opts.port).catch(async (err) => {
		await engine.close().catch(() => {});
		throw err;
	});
	return {
		port,
		url: `http://127.0.0.1:${port}`,
		mode,
		close: async () => {
			server.closeAllConnections();
			await new Promise<void>((done) => server.close(() => done()));
			await engine.close();
		},
	};
}
