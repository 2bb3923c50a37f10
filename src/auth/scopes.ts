export const SCOPES = [
	"credentials:read",
	"credentials:write",
	"credentials:use",
	"keys:write",
	"admin",
] as const;
export type Scope = (typeof SCOPES)[number];

/** What a key gets when its creator names no scopes; `admin` belongs to the admin token alone. */
export const USER_SCOPES: Scope[] = SCOPES.filter((s) => s !== "admin");

export function isScope(value: string): value is Scope {
	return (SCOPES as readonly string[]).includes(value);
}

/** Parses a space-separated scope claim, dropping anything unknown. */
export function parseScopeClaim(claim: unknown): Scope[] {
	if (typeof claim !== "string") return [];
	return claim.split(" ").filter(isScope);
}
