import type { UserStatus } from "./db/schema.ts";
import { type ErrorCode, LatchkeyError } from "./errors.ts";

/**
 * May this user act now? Asked when a request authenticates (API key, access token, external
 * token), when a key or refresh token is exchanged, and when an OAuth connection that the user
 * started finishes. Every one of them gets the same answer, so a status means the same thing
 * whichever door the user comes through. A suspension can be lifted, so it is named (403, as
 * API.md asks); an account being deleted, or gone, is refused like any dead credential (401).
 * Below both auth/ and users/ because both ask.
 */

/** Null: no such user (deleted and purged). */
export type InactiveStatus = Exclude<UserStatus, "active"> | null;

const REFUSALS: Record<
	Exclude<UserStatus, "active"> | "gone",
	{ code: ErrorCode; message: string; hint: string }
> = {
	suspended: {
		code: "user_suspended",
		message: "This user is suspended.",
		hint: "Contact the platform admin.",
	},
	deleting: {
		code: "unauthorized",
		message: "This account is being deleted.",
		hint: "Deletion cannot be undone; ask the platform admin for a new account if one is needed.",
	},
	gone: {
		code: "unauthorized",
		message: "This account no longer exists.",
		hint: "Ask the platform admin for a new account if one is needed.",
	},
};

export function inactiveUserError(status: InactiveStatus): LatchkeyError {
	const { code, message, hint } = REFUSALS[status ?? "gone"];
	return new LatchkeyError(code, message, { hint });
}

export function assertUserActive(status: UserStatus | null): void {
	if (status !== "active") throw inactiveUserError(status);
}

/**
 * The same gate for an access token, whose session ends when its user is suspended or deleted
 * (API.md, token exchange): the token is dead, so 401 whatever the status, saying why.
 */
export function sessionEndedByUserError(status: InactiveStatus): LatchkeyError {
	const { message, hint } = REFUSALS[status ?? "gone"];
	return new LatchkeyError("unauthorized", `This session has ended: ${lowerFirst(message)}`, {
		hint,
	});
}

const lowerFirst = (text: string) => text.charAt(0).toLowerCase() + text.slice(1);
