import { z } from "@hono/zod-openapi";
import type { CredentialRow } from "../db/schema.ts";

/** Names a credential's provider, and an OAuth provider alike (the two share the namespace). */
const PROVIDER_SLUG = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
export const ProviderSlug = z
	.string()
	.regex(PROVIDER_SLUG, `a lowercase slug: ${PROVIDER_SLUG.source}`);

/** The credential object of API.md, shared by every route that answers one. */
export const CredentialSchema = z
	.object({
		id: z.string(),
		provider: z.string(),
		type: z.enum(["oauth2", "api_key", "user_password", "host_scoped"]),
		title: z.string(),
		scopes: z.array(z.string()),
		username: z.string().nullable(),
		host: z.string().nullable(),
		status: z.enum(["active", "reconnect_required", "revoked"]),
		managed: z.boolean(),
		system: z.boolean(),
		metadata: z.record(z.string(), z.unknown()),
		version: z.number().int().openapi({
			description: "Grows with every change of the row; the ETag of responses holding it.",
		}),
		access_token_expires_at: z.string().nullable(),
		created_at: z.string(),
		updated_at: z.string(),
		last_used_at: z.string().nullable(),
	})
	.openapi("Credential", {
		description: "Metadata only: a credential object never carries a secret.",
	});

/** A credential's entity tag, the ETag of an answer holding one: its version, quoted (strong). */
export const etagOf = (row: Pick<CredentialRow, "version">) => `"${row.version}"`;
