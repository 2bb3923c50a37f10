import { eq } from "drizzle-orm";
import type { Database } from "./db/client.ts";
import { type UserRow, users } from "./db/schema.ts";
import { LatchkeyError } from "./errors.ts";

/**
 * The rules of a user record that auth/ needs as much as users/: what an e-mail address and a
 * display name may be (an external identity provider's sign-in creates users too,
 * src/auth/external-users.ts), and whether an admin may still act on a user (issuing it keys).
 * Below both auth/ and users/, like src/user-status.ts, so that users/, which revokes keys and
 * sessions, can import auth/ and auth/ never imports users/.
 */

export const MAX_EMAIL_LENGTH = 254;
export const MAX_NAME_LENGTH = 200;

const EMAIL_PATTERN =
	/^[^\s@"(),:;<>[\\\]]{1,64}@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it rejects.
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/** 400 `invalid_request` naming the one field at fault. */
export function invalidUserField(field: string, message: string): LatchkeyError {
	return new LatchkeyError("invalid_request", `Invalid ${field}: ${message}.`, {
		detail: [{ field, message }],
	});
}

/** Lower-cased and trimmed, or null when it is not an address we accept. */
export function normaliseEmail(raw: string): string | null {
	const email = raw.trim().toLowerCase();
	if (email.length > MAX_EMAIL_LENGTH || !EMAIL_PATTERN.test(email)) return null;
	return email;
}

/** A display name trimmed to its text; null clears it. */
export function normaliseName(raw: string | null): string | null {
	if (raw === null) return null;
	const name = raw.trim();
	if (name.length === 0 || name.length > MAX_NAME_LENGTH || CONTROL_CHARS.test(name)) {
		throw invalidUserField("name", `must be 1–${MAX_NAME_LENGTH} printable characters, or null`);
	}
	return name;
}

export async function findUser(db: Database, id: string): Promise<UserRow | null> {
	const [row] = await db.select().from(users).where(eq(users.id, id)).limit(1);
	return row ?? null;
}

export function userNotFound(): LatchkeyError {
	return new LatchkeyError("not_found", "No such user.");
}

export async function getUser(db: Database, id: string): Promise<UserRow> {
	const row = await findUser(db, id);
	if (!row) throw userNotFound();
	return row;
}

export function beingDeleted(): LatchkeyError {
	return new LatchkeyError("conflict", "The user is being deleted and can no longer be changed.", {
		hint: "Deletion cannot be undone; create a new user if the account is needed again.",
	});
}

/**
 * A user an admin may still act on, e.g. issue keys to: one being deleted is refused as
 * adminUpdateUser refuses it, since whatever it got would be revoked and purged.
 */
export async function getChangeableUser(db: Database, id: string): Promise<UserRow> {
	const row = await getUser(db, id);
	if (row.status === "deleting") throw beingDeleted();
	return row;
}
