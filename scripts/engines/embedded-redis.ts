import { createHash, randomUUID } from "node:crypto";
import { exists as isRedisCommand } from "@ioredis/commands";
import RedisMock from "ioredis-mock";

/** A RESP2 reply as the bridge sees it. Errors appear only nested, e.g. inside a Lua table. */
export type Reply = null | number | string | Buffer | Error | Reply[];

/** Redis answered with an error reply (as opposed to Redis being unreachable). */
export class CommandError extends Error {
	override name = "CommandError";
}

export const NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL.";

export function sha1(text: string): string {
	return createHash("sha1").update(text).digest("hex");
}

/**
 * Redis 7 reads `#!lua flags=…` as script metadata; an engine that does not understand it sees
 * a syntax error. Blanking the line rather than deleting it keeps Lua error line numbers right.
 */
export function stripShebang(script: string): string {
	if (!script.startsWith("#!")) return script;
	const end = script.indexOf("\n");
	return end === -1 ? "" : script.slice(end);
}

type MockMethod = (...args: unknown[]) => unknown;

/**
 * The mock keeps values as JavaScript strings, so lengths, ranges and ordering would count
 * UTF-16 units. Handing it one character per byte (latin1) makes STRLEN, GETRANGE, APPEND and
 * lexicographic ordering byte-based like Redis, and lets any byte sequence round-trip.
 */
function toByteString(text: string): string {
	return Buffer.from(text, "utf8").toString("latin1");
}

function fromByteString(value: string): Buffer {
	return Buffer.from(value, "latin1");
}

const INTEGER = /^-?(0|[1-9]\d*)$/;
const NOT_INTEGER = "ERR value is not an integer or out of range";
const NOT_FLOAT = "ERR value is not a valid float";
const WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value";

function isInteger(value: string): boolean {
	return INTEGER.test(value) && Number.isSafeInteger(Number(value));
}

function isFloat(value: string): boolean {
	return value.trim() === value && value !== "" && !Number.isNaN(Number(value));
}

// The mock matches option keywords in upper case only, while clients (the Upstash one included)
// send them in lower case. Arguments before `from` are keys and values and stay untouched.
const KEYWORD_ARGS: Record<string, { from: number; words?: RegExp }> = {
	set: { from: 2 },
	getex: { from: 1 },
	zadd: { from: 1, words: /^(nx|xx|gt|lt|ch|incr)$/i },
};

const SCRIPT_COMMANDS = new Set(["eval", "eval_ro", "evalsha", "evalsha_ro"]);

/**
 * ioredis-mock reports some failures the way JavaScript would rather than the way Redis does
 * (messages without an error code, NaN for a failed INCR). Clients branch on the code, so give
 * every failure one.
 */
function toCommandError(err: unknown): CommandError {
	if (err instanceof CommandError) return err;
	const message = err instanceof Error ? err.message : String(err);
	if (/does not contain a|wrong kind of value/i.test(message)) return new CommandError(WRONGTYPE);
	if (/^[A-Z][A-Z_]+ /.test(message)) return new CommandError(message);
	return new CommandError(`ERR ${message}`);
}

/** Brings the mock's JavaScript-shaped replies back to what a RESP2 server would have sent. */
function normalize(value: unknown): Reply {
	if (value === null || value === undefined) return null;
	if (typeof value === "string") return fromByteString(value);
	if (Buffer.isBuffer(value)) return value;
	if (typeof value === "number") {
		if (Number.isNaN(value)) throw new CommandError(NOT_INTEGER);
		return value;
	}
	if (typeof value === "boolean") return value ? 1 : null;
	if (value instanceof Error) return toCommandError(value);
	if (Array.isArray(value)) return value.map(normalize);
	// HGETALL and friends come back as objects; on the wire they are flat field/value arrays.
	if (typeof value === "object") {
		return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => [
			fromByteString(k),
			normalize(v),
		]);
	}
	return String(value);
}

/** Redis converts Lua numbers to integers and Lua booleans to 1/nil; the mock passes them through. */
function fromLua(value: unknown): unknown {
	if (typeof value === "number") return Number.isNaN(value) ? value : Math.trunc(value);
	if (value === true) return 1;
	if (value === false) return null;
	if (Array.isArray(value)) return value.map(fromLua);
	return value;
}

/**
 * An in-process Redis for machines without one: ioredis-mock (Lua via fengari) behind a
 * RESP-shaped facade that papers over the mock's known departures from Redis. The bridge is its
 * only client, so serialising every call here is what makes MULTI/EXEC atomic, and the script
 * cache lives here because the mock has no SCRIPT command.
 */
export class EmbeddedRedis {
	// A unique host keeps this instance's keyspace apart: the mock shares data between
	// instances created with the same host and port.
	private readonly mock = new RedisMock({
		host: `embedded-${randomUUID()}`,
		port: 6379,
		lazyConnect: true,
	}) as unknown as Record<string, unknown>;
	private readonly scripts = new Map<string, string>();
	private tail: Promise<unknown> = Promise.resolve();

	call(args: string[]): Promise<Reply> {
		return this.exclusive(() => this.run(args));
	}

	/** Runs all commands with nothing in between; per-command errors land in the result array. */
	transaction(commands: string[][]): Promise<Array<Reply | CommandError>> {
		return this.exclusive(async () => {
			const unknown = commands.find((c) => !this.method(c[0] ?? ""));
			if (unknown) {
				throw new CommandError(
					`EXECABORT Transaction discarded because of previous errors. ERR unknown command '${unknown[0] ?? ""}'`,
				);
			}
			const results: Array<Reply | CommandError> = [];
			for (const command of commands) {
				results.push(await this.run(command).catch(toCommandError));
			}
			return results;
		});
	}

	async close(): Promise<void> {
		await this.tail;
		await this.raw("flushall");
		(this.mock.disconnect as () => void).call(this.mock);
	}

	private exclusive<T>(work: () => Promise<T>): Promise<T> {
		const run = this.tail.then(work, work);
		this.tail = run.catch(() => {});
		return run;
	}

	/**
	 * Only names Redis itself knows are looked up on the mock, so a request cannot reach the
	 * mock's own methods (connect, duplicate, …) by naming them as a command.
	 */
	private method(name: string): MockMethod | undefined {
		const lower = name.toLowerCase();
		if (!isRedisCommand(lower)) return undefined;
		const method = this.mock[lower];
		return typeof method === "function" ? (method as MockMethod) : undefined;
	}

	/** Calls the mock with byte-string arguments and returns what it returns, unconverted. */
	private async raw(name: string, ...args: string[]): Promise<unknown> {
		const method = this.method(name);
		if (!method) throw new CommandError(`ERR unknown command '${name}'`);
		try {
			return await method.apply(this.mock, args);
		} catch (err) {
			throw toCommandError(err);
		}
	}

	private async run(command: string[]): Promise<Reply> {
		const [name = "", ...rest] = command;
		const lower = name.toLowerCase();
		if (lower === "script") return this.scriptCommand(rest);
		if (SCRIPT_COMMANDS.has(lower)) return this.runScript(lower, rest);
		const args = rest.map(toByteString);
		const keywords = KEYWORD_ARGS[lower];
		if (keywords) {
			for (let i = keywords.from; i < args.length; i++) {
				const arg = args[i] as string;
				if (keywords.words && !keywords.words.test(arg)) break;
				args[i] = arg.toUpperCase();
			}
		}
		await this.guardArithmetic(lower, args);
		return normalize(await this.raw(lower, ...args));
	}

	/**
	 * The mock does arithmetic on whatever is stored and writes NaN back, corrupting the value,
	 * where Redis refuses with an error and leaves it alone. Check first.
	 */
	private async guardArithmetic(command: string, args: string[]): Promise<void> {
		const [key = "", second = "", third = ""] = args;
		const stringValue = async () => {
			const type = await this.raw("type", key);
			if (type === "none") return undefined;
			if (type !== "string") throw new CommandError(WRONGTYPE);
			return String(await this.raw("get", key));
		};
		const hashValue = async () => {
			const type = await this.raw("type", key);
			if (type === "none") return undefined;
			if (type !== "hash") throw new CommandError(WRONGTYPE);
			const value = await this.raw("hget", key, second);
			return value === null || value === undefined ? undefined : String(value);
		};
		switch (command) {
			case "incr":
			case "decr":
			case "incrby":
			case "decrby": {
				if (command.endsWith("by") && !isInteger(second)) throw new CommandError(NOT_INTEGER);
				const current = await stringValue();
				if (current !== undefined && !isInteger(current)) throw new CommandError(NOT_INTEGER);
				return;
			}
			case "incrbyfloat": {
				if (!isFloat(second)) throw new CommandError(NOT_FLOAT);
				const current = await stringValue();
				if (current !== undefined && !isFloat(current)) throw new CommandError(NOT_FLOAT);
				return;
			}
			case "hincrby": {
				if (!isInteger(third)) throw new CommandError(NOT_INTEGER);
				const current = await hashValue();
				if (current !== undefined && !isInteger(current)) {
					throw new CommandError("ERR hash value is not an integer");
				}
				return;
			}
			case "hincrbyfloat": {
				if (!isFloat(third)) throw new CommandError(NOT_FLOAT);
				const current = await hashValue();
				if (current !== undefined && !isFloat(current)) {
					throw new CommandError("ERR hash value is not a float");
				}
				return;
			}
		}
	}

	private async runScript(command: string, rest: string[]): Promise<Reply> {
		let [script = "", ...tail] = rest;
		if (command.startsWith("evalsha")) {
			const known = this.scripts.get(script.toLowerCase());
			if (known === undefined) throw new CommandError(NOSCRIPT);
			script = known;
		} else {
			this.scripts.set(sha1(script), script);
		}
		const result = await this.raw(
			"eval",
			toByteString(stripShebang(script)),
			...tail.map(toByteString),
		);
		return normalize(fromLua(result));
	}

	private scriptCommand(rest: string[]): Reply {
		const [sub = "", ...args] = rest;
		switch (sub.toLowerCase()) {
			case "load": {
				const script = args[0] ?? "";
				const digest = sha1(script);
				this.scripts.set(digest, script);
				return digest;
			}
			case "exists":
				return args.map((digest) => (this.scripts.has(digest.toLowerCase()) ? 1 : 0));
			case "flush":
				this.scripts.clear();
				return "OK";
			default:
				throw new CommandError(`ERR unknown subcommand '${sub}' for 'script'`);
		}
	}
}
