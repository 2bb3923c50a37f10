import { and, eq, isNull, sql } from "drizzle-orm";
import type { JWTPayload } from "jose";
import { newId } from "../crypto/encoding.ts";
import type { Database } from "../db/client.ts";
import { users } from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import { normaliseEmail, normaliseName } from "../user-records.ts";
import { TtlCache } from "./cache.ts";

// Users created or linked on sign-in with an external identity provider's token (verified by
// ./external.ts). They obey the same record rules as any other user: those of src/user-records.ts,
// which users/ applies too.
const userBySubject = new TtlCache<string>();

const unauthorized = (message: string) => new LatchkeyError("unauthorized", message);

/**
 * Maps a verified external token to a Latchkey user, creating it on first sight. An existing
 * account with the same email is linked only on the provider's word that the email is verified.
 */
export async function resolveExternalUser(db: Database, payload: JWTPayload): Promise<string> {
	if (typeof payload.sub !== "string" || payload.sub === "") {
		throw unauthorized("The identity token has no 'sub' claim.");
	}
	const subject = `${payload.iss}|${payload.sub}`;
	const cached = userBySubject.get(subject);
	if (cached) return cached;

	const [existing] = await db
		.select({ id: users.id })
		.from(users)
		.where(eq(users.externalSubject, subject))
		.limit(1);
	if (existing) {
		userBySubject.set(subject, existing.id, existing.id);
		return existing.id;
	}
	if (typeof payload.email !== "string" || payload.email.trim() === "") {
		throw unauthorized("The identity token has no 'email' claim.");
	}
	const email = normaliseEmail(payload.email);
	if (!email) throw unauthorized("The identity token's 'email' claim is not an email address.");
	const verified = payload.email_verified === true;
	// A provider's display name is a courtesy: one this service would refuse is dropped, not fatal.
	let name: string | null = null;
	try {
		name = typeof payload.name === "string" ? normaliseName(payload.name) : null;
	} catch {
		name = null;
	}

	const [created] = await db
		.insert(users)
		.values({ id: newId("usr"), email, name, emailVerified: verified, externalSubject: subject })
		.onConflictDoNothing()
		.returning({ id: users.id });
	if (created) {
		userBySubject.set(subject, created.id, created.id);
		return created.id;
	}
	// Either the email belongs to another account, or a concurrent request created this one.
	const [bySubject] = await db
		.select({ id: users.id })
		.from(users)
		.where(eq(users.externalSubject, subject))
		.limit(1);
	if (bySubject) return bySubject.id;
	if (!verified) {
		throw new LatchkeyError("email_conflict", "An account with this email already exists.", {
			hint: "Sign in with a token that asserts email_verified, or ask the admin to link the accounts.",
		});
	}
	const [linked] = await db
		.update(users)
		.set({ externalSubject: subject, emailVerified: true, updatedAt: new Date() })
		.where(and(sql`lower(${users.email}) = ${email}`, isNull(users.externalSubject)))
		.returning({ id: users.id });
	if (!linked) {
		throw new LatchkeyError("email_conflict", "This email is linked to another identity already.");
	}
	userBySubject.set(subject, linked.id, linked.id);
	return linked.id;
}
