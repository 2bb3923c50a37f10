import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import pg from "pg";
import { listen, type RunningServer } from "../lib/net.ts";
import { isLoopbackHost } from "./neon-ws.ts";

const MAX_BODY_BYTES = 16 * 1024 * 1024;
const DEFAULT_MAX_PER_DATABASE = 10;
// Long enough that a benchmark's fetch keeps reusing its sockets between bursts; the driver opens
// one HTTP request per statement or batch, so a fresh TCP handshake each time would skew timings.
const KEEP_ALIVE_MS = 30_000;

/**
 * Every value goes back as Postgres's own text output so that the driver's type parsers, which
 * run on the client exactly as they do against Neon, are the only ones that ever see it.
 * pg-types declares overloads for binary parsers too, which an identity function cannot match.
 */
const RAW_TEXT = {
	getTypeParser: () => (value: string) => value,
} as unknown as pg.CustomTypesConfig;

// The header values are Neon's (and the driver's) spelling, not SQL's.
const ISOLATION_LEVELS = new Map([
	["ReadUncommitted", "READ UNCOMMITTED"],
	["ReadCommitted", "READ COMMITTED"],
	["RepeatableRead", "REPEATABLE READ"],
	["Serializable", "SERIALIZABLE"],
]);

/**
 * Connection-string parameters about TLS. They describe the client's hop to Neon, which here is
 * plain HTTP on loopback; Neon's proxy likewise dials the compute on its own terms. pg would
 * also read the files sslcert/sslkey/sslrootcert name, letting any caller make the bridge open
 * a path of its choosing.
 */
const DROPPED_PARAMS = [
	"ssl",
	"sslmode",
	"sslcert",
	"sslkey",
	"sslrootcert",
	"sslnegotiation",
	"channel_binding",
	"uselibpqcompat",
];

export interface NeonHttpBridgeOptions {
	port?: number;
	/** Connections per distinct connection string. */
	maxPerDatabase?: number;
	/** Called once per request counted in `stats().requests`, with how many statements it sent. */
	onQuery?: (count: number) => void;
}

export interface NeonHttpStats {
	/** Well-formed requests for a loopback database: one per single statement or batch. */
	requests: number;
	/** Statements sent on the caller's behalf, failed ones included; BEGIN/COMMIT are not. */
	statements: number;
}

export interface NeonHttpBridge extends RunningServer {
	/** statements served so far */
	stats(): NeonHttpStats;
	resetStats(): void;
}

/** A refusal of the request itself; `json` bodies reach the driver's error as its message. */
class HttpError extends Error {
	constructor(
		readonly status: number,
		message: string,
		readonly json = false,
	) {
		super(message);
	}
}

function badRequest(message: string): HttpError {
	// The driver JSON-parses every 400 and copies `message` onto its NeonDbError; a text body
	// would surface as a JSON syntax error instead of the reason.
	return new HttpError(400, message, true);
}

interface Statement {
	query: string;
	params: (string | null)[];
	arrayMode?: boolean;
}

interface Batch {
	/** As the header spells it: ReadUncommitted, ReadCommitted, RepeatableRead, Serializable. */
	isolation?: string;
	readOnly: boolean;
	deferrable: boolean;
}

type StatementResult = {
	fields: {
		name: string;
		dataTypeID: number;
		tableID: number;
		columnID: number;
		dataTypeSize: number;
		dataTypeModifier: number;
		format: "text";
	}[];
	rows: (string | null)[][] | Record<string, string | null>[];
	command: string;
	rowCount: number | null;
	rowAsArray: boolean;
};

function header(req: IncomingMessage, name: string): string | undefined {
	const value = req.headers[name];
	return Array.isArray(value) ? value[0] : value;
}

function describe(err: unknown): string {
	// A refused dial to a name with several addresses is an AggregateError with an empty message.
	if (err instanceof AggregateError && err.errors.length > 0)
		return err.errors.map((e) => describe(e)).join("; ");
	if (err instanceof Error) return err.message || (err as NodeJS.ErrnoException).code || err.name;
	return String(err);
}

/**
 * Neon takes any JSON value as a parameter and sends Postgres its text form (an array as an
 * array literal). The driver only ever sends strings and nulls; other clients may not.
 */
function toPgText(value: unknown): string | null {
	if (value === null || value === undefined) return null;
	if (typeof value === "string") return value;
	if (Array.isArray(value)) return toPgArray(value);
	return JSON.stringify(value);
}

function toPgArray(value: unknown): string {
	if (value === null || value === undefined) return "NULL";
	if (Array.isArray(value)) return `{${value.map(toPgArray).join(",")}}`;
	const text = typeof value === "string" ? value : JSON.stringify(value);
	return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

function parseStatement(raw: unknown): Statement {
	if (typeof raw !== "object" || raw === null) throw badRequest("each query must be an object");
	const { query, params, arrayMode } = raw as Record<string, unknown>;
	if (typeof query !== "string") throw badRequest("query must be a string");
	if (params !== undefined && !Array.isArray(params)) throw badRequest("params must be an array");
	if (arrayMode !== undefined && typeof arrayMode !== "boolean")
		throw badRequest("arrayMode must be a boolean");
	return { query, params: (params ?? []).map(toPgText), arrayMode };
}

function parseBody(body: Buffer): Statement | Statement[] {
	let payload: unknown;
	try {
		payload = JSON.parse(body.toString("utf8"));
	} catch {
		throw badRequest("request body is not JSON");
	}
	if (typeof payload !== "object" || payload === null)
		throw badRequest("request body must be {query, params} or {queries}");
	const { query, queries } = payload as Record<string, unknown>;
	if (query !== undefined) return parseStatement(payload);
	if (Array.isArray(queries)) return queries.map(parseStatement);
	throw badRequest("request body must be {query, params} or {queries}");
}

/**
 * Returns the connection string pg will be given, refusing it unless every way pg could resolve
 * the host (URL authority, `?host=`, PGHOST) lands on loopback.
 */
// Every request of a run names the same database; parsing its connection string (a pg.Client
// is built to read it) once per distinct string keeps that work off the per-query path.
const resolvedTargets = new Map<string, { connectionString: string; address: string }>();

function resolveTarget(raw: string | undefined): { connectionString: string; address: string } {
	if (!raw) throw badRequest("Neon-Connection-String header is required");
	const known = resolvedTargets.get(raw);
	if (known) return known;
	const target = parseTarget(raw);
	if (resolvedTargets.size >= 64) resolvedTargets.clear();
	resolvedTargets.set(raw, target);
	return target;
}

function parseTarget(raw: string): { connectionString: string; address: string } {
	let url: URL;
	try {
		url = new URL(raw);
	} catch {
		throw badRequest("Neon-Connection-String is not a valid URL");
	}
	if (url.protocol !== "postgres:" && url.protocol !== "postgresql:")
		throw badRequest("Neon-Connection-String must be a postgres:// URL");
	for (const name of DROPPED_PARAMS) url.searchParams.delete(name);
	const connectionString = url.toString();
	// Constructing a client parses the string exactly as the pool will, without connecting.
	let probe: pg.Client;
	try {
		probe = new pg.Client({ connectionString });
	} catch {
		throw badRequest("Neon-Connection-String cannot be parsed");
	}
	const address = `${probe.host}:${probe.port}`;
	if (!isLoopbackHost(probe.host))
		throw new HttpError(403, `only loopback databases are allowed, not ${probe.host}`);
	return { connectionString, address };
}

function parseBatchHeaders(req: IncomingMessage): Batch {
	const isolation = header(req, "neon-batch-isolation-level");
	if (isolation !== undefined && !ISOLATION_LEVELS.has(isolation))
		throw badRequest("invalid isolation level");
	// Anything but exactly "true" is false, as at Neon.
	return {
		isolation,
		readOnly: header(req, "neon-batch-read-only") === "true",
		deferrable: header(req, "neon-batch-deferrable") === "true",
	};
}

function beginStatement(batch: Batch): string {
	const modes = [
		batch.isolation && `ISOLATION LEVEL ${ISOLATION_LEVELS.get(batch.isolation)}`,
		batch.readOnly && "READ ONLY",
		batch.deferrable && "DEFERRABLE",
	].filter(Boolean);
	return modes.length > 0 ? `BEGIN ${modes.join(", ")}` : "BEGIN";
}

function readBody(req: IncomingMessage): Promise<Buffer> {
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		let size = 0;
		req.on("data", (chunk: Buffer) => {
			size += chunk.length;
			if (size > MAX_BODY_BYTES) {
				// Drained rather than destroyed, so the 413 can still reach the caller.
				req.removeAllListeners("data");
				req.resume();
				reject(new HttpError(413, `request body exceeds ${MAX_BODY_BYTES} bytes`));
				return;
			}
			chunks.push(chunk);
		});
		req.on("end", () => resolve(Buffer.concat(chunks)));
		req.on("error", reject);
	});
}

function send(
	res: ServerResponse,
	status: number,
	body: string,
	contentType: string,
	extra: Record<string, string> = {},
): void {
	if (res.headersSent || res.destroyed) return;
	res
		.writeHead(status, {
			"Content-Type": contentType,
			"Content-Length": Buffer.byteLength(body),
			...extra,
		})
		.end(body);
}

/** The fields the driver copies from a 400 onto its NeonDbError, as Postgres reported them. */
function postgresError(err: pg.DatabaseError): string {
	return JSON.stringify({
		message: err.message,
		code: err.code ?? null,
		severity: err.severity ?? null,
		detail: err.detail ?? null,
		hint: err.hint ?? null,
		position: err.position ?? null,
		internalPosition: err.internalPosition ?? null,
		internalQuery: err.internalQuery ?? null,
		where: err.where ?? null,
		schema: err.schema ?? null,
		table: err.table ?? null,
		column: err.column ?? null,
		dataType: err.dataType ?? null,
		constraint: err.constraint ?? null,
		file: err.file ?? null,
		line: err.line ?? null,
		routine: err.routine ?? null,
	});
}

/**
 * Forcing the extended protocol matches Neon, which prepares every statement: two statements in
 * one query string fail there, and must fail here rather than quietly return one result.
 */
async function run(
	client: pg.PoolClient,
	stmt: Statement,
	defaultArrayMode: boolean,
): Promise<StatementResult> {
	const config: pg.QueryArrayConfig & { queryMode: "extended" } = {
		text: stmt.query,
		values: stmt.params,
		rowMode: "array",
		queryMode: "extended",
	};
	const result = await client.query<(string | null)[]>(config);
	const arrayMode = stmt.arrayMode ?? defaultArrayMode;
	const names = result.fields.map((f) => f.name);
	return {
		fields: result.fields.map((f) => ({
			name: f.name,
			dataTypeID: f.dataTypeID,
			tableID: f.tableID,
			columnID: f.columnID,
			dataTypeSize: f.dataTypeSize,
			dataTypeModifier: f.dataTypeModifier,
			format: "text",
		})),
		rows: arrayMode
			? result.rows
			: result.rows.map((row) => Object.fromEntries(row.map((v, i) => [names[i], v]))),
		command: result.command ?? "",
		rowCount: result.rowCount,
		rowAsArray: arrayMode,
	};
}

/**
 * Stand-in for Neon's SQL-over-HTTP endpoint (`POST /sql`, what `neonConfig.fetchEndpoint`
 * points at locally), answering from a real Postgres over pooled connections.
 */
export async function startNeonHttpBridge(
	opts: NeonHttpBridgeOptions = {},
): Promise<NeonHttpBridge> {
	const host = "127.0.0.1";
	const maxPerDatabase = opts.maxPerDatabase ?? DEFAULT_MAX_PER_DATABASE;
	const pools = new Map<string, pg.Pool>();
	let closing = false;
	let requests = 0;
	let statements = 0;

	function poolFor(connectionString: string): pg.Pool {
		// A request that was reading its body while close() ended the pools must not start another.
		if (closing) throw new HttpError(503, "the bridge is shutting down");
		let pool = pools.get(connectionString);
		if (!pool) {
			pool = new pg.Pool({
				connectionString,
				max: maxPerDatabase,
				idleTimeoutMillis: 10_000,
				connectionTimeoutMillis: 10_000,
				ssl: false,
				types: RAW_TEXT,
			});
			// A connection dying (a restart, pg_terminate_backend, DROP DATABASE ... WITH (FORCE)) is
			// also emitted as an event: by the pool while idle, by the client while checked out, even
			// after its query has already failed. The failure reaches the request through the query;
			// unheard, the event would take the whole process down.
			pool.on("error", () => {});
			pool.on("connect", (client) => client.on("error", () => {}));
			pools.set(connectionString, pool);
		}
		return pool;
	}

	async function execute(
		pool: pg.Pool,
		address: string,
		work: Statement | Statement[],
		arrayMode: boolean,
		batch: Batch,
		sent: { count: number },
	): Promise<StatementResult | { results: StatementResult[] }> {
		let client: pg.PoolClient;
		try {
			client = await pool.connect();
		} catch (err) {
			if (err instanceof pg.DatabaseError) throw err;
			throw new HttpError(502, `cannot reach Postgres at ${address}: ${describe(err)}`);
		}
		// Neon pools a connection again only if it is idle and its statement did not fail, so a
		// lone BEGIN over HTTP cannot leave the next caller inside someone else's transaction.
		let discard = false;
		try {
			if (!Array.isArray(work)) {
				sent.count++;
				return await run(client, work, arrayMode);
			}
			await client.query(beginStatement(batch));
			try {
				const results: StatementResult[] = [];
				for (const stmt of work) {
					sent.count++;
					results.push(await run(client, stmt, arrayMode));
				}
				await client.query("COMMIT");
				return { results };
			} catch (err) {
				await client.query("ROLLBACK").catch(() => {
					discard = true;
				});
				throw err;
			}
		} catch (err) {
			// Neon drops the connection a failed single statement ran on; a batch's ROLLBACK has
			// already put its connection back in order.
			if (!Array.isArray(work)) discard = true;
			if (err instanceof pg.DatabaseError) throw err;
			discard = true;
			throw new HttpError(502, `lost the connection to Postgres at ${address}: ${describe(err)}`);
		} finally {
			client.release(discard || client.getTransactionStatus() !== "I");
		}
	}

	async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
		const url = new URL(req.url ?? "/", "http://bridge");
		if (url.pathname !== "/sql") return send(res, 404, "only /sql is served", "text/plain");
		if (req.method !== "POST")
			return send(res, 405, "only POST is allowed", "text/plain", { Allow: "POST" });
		if (closing) return send(res, 503, "the bridge is shutting down", "text/plain");

		// Headers are judged before the body is read, as at Neon.
		const target = resolveTarget(header(req, "neon-connection-string"));
		// The driver always asks for raw text; Neon's JSON-typed output for other clients is
		// not reproduced here.
		if (header(req, "neon-raw-text-output") !== "true")
			throw badRequest("this bridge only serves Neon-Raw-Text-Output: true");
		const arrayMode = header(req, "neon-array-mode") === "true";
		const batch = parseBatchHeaders(req);
		const work = parseBody(await readBody(req));

		// Counted before the response goes out, so a caller that has its answer sees the counts.
		const sent = { count: 0 };
		requests++;
		let body: string;
		try {
			body = JSON.stringify(
				await execute(
					poolFor(target.connectionString),
					target.address,
					work,
					arrayMode,
					batch,
					sent,
				),
			);
		} finally {
			statements += sent.count;
			opts.onQuery?.(sent.count);
		}
		// Neon echoes the transaction settings it applied to a batch.
		const echoed: Record<string, string> = {};
		if (Array.isArray(work)) {
			if (batch.isolation) echoed["Neon-Batch-Isolation-Level"] = batch.isolation;
			if (batch.readOnly) echoed["Neon-Batch-Read-Only"] = "true";
			if (batch.deferrable) echoed["Neon-Batch-Deferrable"] = "true";
		}
		send(res, 200, body, "application/json", echoed);
	}

	const server = createServer({ keepAlive: true }, (req, res) => {
		handle(req, res).catch((err: unknown) => {
			if (err instanceof pg.DatabaseError)
				return send(res, 400, postgresError(err), "application/json");
			if (err instanceof HttpError)
				return err.json
					? send(res, err.status, JSON.stringify({ message: err.message }), "application/json")
					: send(
							res,
							err.status,
							err.message,
							"text/plain",
							err.status === 413 ? { Connection: "close" } : {},
						);
			send(res, 500, `bridge error: ${describe(err)}`, "text/plain");
		});
	});
	server.keepAliveTimeout = KEEP_ALIVE_MS;

	const port = await listen(server, opts.port, host);
	return {
		port,
		url: `http://${host}:${port}/sql`,
		stats: () => ({ requests, statements }),
		resetStats: () => {
			requests = 0;
			statements = 0;
		},
		close: async () => {
			closing = true;
			server.closeAllConnections();
			await new Promise<void>((done) => server.close(() => done()));
			// Waits for connections still checked out by requests in flight to come back.
			await Promise.all([...pools.values()].map((pool) => pool.end()));
			pools.clear();
		},
	};
}
