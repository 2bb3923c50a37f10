import { NeonDbError } from "@neondatabase/serverless";
import { DrizzleQueryError } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import {
	isTransportFailure,
	postgresErrorOf,
	violatedUniqueConstraint,
} from "../../src/db/errors.ts";

const pgError = (code: string, message: string, constraint?: string) =>
	Object.assign(new NeonDbError(message), { code, constraint });
const wrapped = (cause: unknown) =>
	new DrizzleQueryError("select * from t where secret = $1", ["hunter2-secret"], cause as Error);

describe("database error classification (through drizzle's wrapper)", () => {
	it("finds Postgres's code and message under DrizzleQueryError, never the parameters", () => {
		const err = wrapped(pgError("42P01", 'relation "t" does not exist'));
		const pg = postgresErrorOf(err);
		expect(pg).toEqual({ code: "42P01", message: 'relation "t" does not exist' });
		expect(JSON.stringify(pg)).not.toContain("hunter2");
	});

	it("names the unique constraint a statement violated", () => {
		expect(
			violatedUniqueConstraint(wrapped(pgError("23505", "dup", "users_email_lower_idx"))),
		).toBe("users_email_lower_idx");
		expect(violatedUniqueConstraint(wrapped(pgError("23503", "fk", "x")))).toBeNull();
	});

	it("calls a statement Postgres rejected a bug, not an outage", () => {
		expect(isTransportFailure(wrapped(pgError("42601", "syntax error")))).toBe(false);
		expect(isTransportFailure(wrapped(pgError("23505", "duplicate key")))).toBe(false);
		// The statement text quoted by the wrapper must not decide anything.
		const quoting = new DrizzleQueryError("select 'connection refused'", [], new Error("boom"));
		expect(isTransportFailure(quoting)).toBe(false);
		expect(isTransportFailure(new Error("boom"))).toBe(false);
	});

	it("calls a lost or refused connection an outage, however deep it is wrapped", () => {
		// Connection exception class, shutdown, too many connections.
		for (const code of ["08006", "08001", "57P01", "57P03", "53300"]) {
			expect(isTransportFailure(wrapped(pgError(code, "x"))), code).toBe(true);
		}
		// Neon's HTTP path: fetch failed before any answer.
		const fetchFailed = Object.assign(new NeonDbError("Error connecting to database: TypeError"), {
			sourceError: new TypeError("fetch failed"),
		});
		expect(isTransportFailure(wrapped(fetchFailed))).toBe(true);
		// Neon's HTTP path: the endpoint answered 5xx.
		expect(isTransportFailure(wrapped(new NeonDbError("Server error (HTTP status 503): x")))).toBe(
			true,
		);
		// The WebSocket path: the socket closed mid-query.
		expect(isTransportFailure(wrapped(new Error("Connection terminated unexpectedly")))).toBe(true);
		expect(isTransportFailure(new Error("x", { cause: new Error("read ECONNRESET") }))).toBe(true);
	});
});
