import { DrizzleQueryError } from "drizzle-orm";

/**
 * What a failed statement was, read from the cause chain: drizzle wraps every driver error in a
 * `DrizzleQueryError` whose own message carries the SQL and its parameters, so the wrapper is
 * never what gets logged or classified; the driver's error underneath is.
 */

/** The fields of a Postgres error that are safe to log: never the statement's parameters. */
export interface PostgresError {
	code: string;
	message: string;
	constraint?: string;
}

const SQLSTATE = /^[0-9A-Z]{5}$/;
const MAX_DEPTH = 8;

function* causes(err: unknown): Generator<unknown> {
	let current = err;
	for (let depth = 0; current !== undefined && current !== null && depth < MAX_DEPTH; depth++) {
		yield current;
		current = (current as { cause?: unknown }).cause;
	}
}

/** The first error in the chain that Postgres raised (it carries a SQLSTATE), if any. */
export function postgresErrorOf(err: unknown): PostgresError | null {
	for (const e of causes(err)) {
		const { code, message, constraint } = e as {
			code?: unknown;
			message?: unknown;
			constraint?: unknown;
		};
		if (typeof code === "string" && SQLSTATE.test(code)) {
			return {
				code,
				message: typeof message === "string" ? message : "",
				...(typeof constraint === "string" ? { constraint } : {}),
			};
		}
	}
	return null;
}

/** The unique constraint a statement violated, or null when it failed otherwise. */
export function violatedUniqueConstraint(err: unknown): string | null {
	const pg = postgresErrorOf(err);
	return pg?.code === "23505" ? (pg.constraint ?? "") : null;
}

// SQLSTATEs that say the server cannot serve now, not that the statement was wrong: class 08
// (connection exception), 53 (insufficient resources, e.g. too many connections), 57P01-57P03
// (shutdown, crash recovery, cannot connect now).
const UNAVAILABLE_SQLSTATE = /^(08|53|57P0[1-3])/;

// How the drivers report a transport failure when no SQLSTATE exists: Neon's HTTP path throws
// "Error connecting to database: …" (with `sourceError`) or "Server error (HTTP status 5xx)",
// the WebSocket path reports a closed or refused socket (and its pg client, once the connection
// broke, refuses every later query of the transaction as "not queryable"), fetch reports a
// network failure.
const TRANSPORT_MESSAGE =
	/(and is not queryable|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|connection (terminated|refused|closed|lost)|Connection terminated|timeout exceeded when trying to connect|Error connecting to database|Server error \(HTTP status 5\d\d\)|websocket|network connection lost|fetch failed|failed to fetch|socket hang up)/i;

/**
 * True when the chain shows the database (or the path to it) failing, as opposed to a statement
 * the database rejected: the first answers 503 with Retry-After, the second is a bug (500).
 */
export function isTransportFailure(err: unknown): boolean {
	for (const e of causes(err)) {
		if (typeof Event !== "undefined" && e instanceof Event) return true; // a WebSocket ErrorEvent
		const { code, sourceError } = e as { code?: unknown; sourceError?: unknown };
		if (typeof code === "string" && SQLSTATE.test(code)) return UNAVAILABLE_SQLSTATE.test(code);
		if (sourceError !== undefined) return true;
		const message = e instanceof Error ? `${e.name} ${e.message}` : String(e);
		// drizzle's wrapper quotes the statement, which could match by accident; skip its text.
		if (!(e instanceof DrizzleQueryError) && TRANSPORT_MESSAGE.test(message)) return true;
	}
	return false;
}
