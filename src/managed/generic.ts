import { and, asc, eq, sql } from "drizzle-orm";
import { toHex } from "../crypto/encoding.ts";
import { getKeyRing, open, seal } from "../crypto/envelope.ts";
import { hmacSha256Bytes } from "../crypto/hash.ts";
import {
	type CredentialRow,
	credentials,
	type ManagedProviderConfigRow,
	managedProviderConfigs,
	managedProvisionings,
	oauthProviders,
} from "../db/schema.ts";
import { LatchkeyError } from "../errors.ts";
import {
	assertOutboundUrl,
	describeOutboundFailure,
	type OutboundResponse,
	outboundFetch,
} from "../http/outbound.ts";
import { builtinProvider } from "../oauth/providers.ts";
import type { Services } from "../services.ts";
import {
	type DeprovisionOutcome,
	type ManagedProvider,
	ManagedProviderError,
	type ManagedUser,
	type ProvisionContext,
	type Provisioned,
} from "./provider.ts";

/**
 * The generic HTTP provisioner: an admin points Latchkey at a platform's own backend, which
 * mints a per-user API key. The wire format (docs/managed.md, "Generic provisioner"):
 *
 *   POST <provision_url>     {"event":"provision","provider","client_id","user":{"id","email"},"resources"}
 *     → 200/201 {"api_key": "...", "resources"?: {"<name>": "<id>", ...}, "title"?: "..."}
 *   DELETE <deprovision_url> {"event":"deprovision","provider","client_id","user":{"id"},"resources"}
 *     → 200/204 deleted; 404 already gone; 409 the resources are not this client id's
 *
 * Every request carries `Idempotency-Key: <client_id>` (the same for every retry for this
 * user, so a backend that saw the request before answers with what it made then) and
 * `Latchkey-Signature: t=<unix seconds>,v2=<hex HMAC-SHA256(secret, signedString)>`, where the
 * signed string joins the timestamp, method, path (with query), Idempotency-Key and raw body
 * with newlines: a captured request verifies only as itself, never against another path,
 * method or user.
 */

export const SIGNATURE_HEADER = "Latchkey-Signature";
const CALL_TIMEOUT_MS = 8_000;
/** The provisioner's answer holds a key and a few ids; anything near this is not one. */
const MAX_ANSWER_BYTES = 64 * 1024;
const MAX_RESOURCES = 20;

/** AAD of a generic provisioner's HMAC secret; the tag keeps it apart from other sealed values. */
export const provisionerAad = (id: string) => JSON.stringify(["managed_provider", id]);

/** The idempotency key of a user's provisioning with provider `id`. */
export const genericClientId = (providerId: string, userId: string) =>
	`latchkey-${providerId}-${userId}`;

/** What a request's signature covers (docs/managed.md, "Verifying a request"). */
export interface SignedRequest {
	method: string;
	/** The URL's path and query as sent, e.g. `/hooks/provision?tenant=a`. */
	path: string;
	idempotencyKey: string;
	body: string;
}

export const signedString = (unixSeconds: number, r: SignedRequest) =>
	`${unixSeconds}\n${r.method.toUpperCase()}\n${r.path}\n${r.idempotencyKey}\n${r.body}`;

/** The signature header value for a request sent at `unixSeconds`. */
export async function signatureFor(
	secret: string,
	unixSeconds: number,
	request: SignedRequest,
): Promise<string> {
	const mac = await hmacSha256Bytes(secret, signedString(unixSeconds, request));
	return `t=${unixSeconds},v2=${toHex(mac)}`;
}

async function openSecretOf(services: Services, row: ManagedProviderConfigRow): Promise<string> {
	const ring = await getKeyRing(services.config);
	return open(ring, row, provisionerAad(row.id), `managed provider ${row.id}`);
}

export async function sealProvisionerSecret(services: Services, id: string, secret: string) {
	return seal(await getKeyRing(services.config), secret, provisionerAad(id));
}

async function send(
	services: Services,
	row: ManagedProviderConfigRow,
	method: "POST" | "DELETE",
	url: string,
	payload: Record<string, unknown>,
	clientId: string,
): Promise<OutboundResponse> {
	const body = JSON.stringify(payload);
	const now = Math.floor(services.now().getTime() / 1000);
	let path: string;
	try {
		const parsed = new URL(url);
		path = `${parsed.pathname}${parsed.search}`;
	} catch {
		throw new ManagedProviderError(`Provisioner ${row.id} has an invalid ${method} URL.`);
	}
	const signature = await signatureFor(await openSecretOf(services, row), now, {
		method,
		path,
		idempotencyKey: clientId,
		body,
	});
	try {
		return await outboundFetch(services.config, url, {
			method,
			headers: {
				"content-type": "application/json",
				accept: "application/json",
				"idempotency-key": clientId,
				[SIGNATURE_HEADER]: signature,
			},
			body,
			timeoutMs: CALL_TIMEOUT_MS,
			maxBytes: MAX_ANSWER_BYTES,
		});
	} catch (err) {
		const described = describeOutboundFailure(err, `provisioner ${row.id}`, method);
		if (described === null) throw err;
		throw new ManagedProviderError(described);
	}
}

function failure(row: ManagedProviderConfigRow, method: string, status: number) {
	const transient = status >= 500 || [401, 403, 408, 429].includes(status);
	return new ManagedProviderError(
		`Provisioner ${row.id} answered ${status}, an error status, to ${method}.`,
		!transient,
		status,
	);
}

/** What a provisioner may answer: a key, and public ids of what it made (strings only). */
function parseProvisioned(row: ManagedProviderConfigRow, raw: unknown): Provisioned {
	const body = (raw ?? {}) as Record<string, unknown>;
	if (typeof body.api_key !== "string" || body.api_key === "" || body.api_key.length > 4096) {
		throw new ManagedProviderError(`Provisioner ${row.id} answered without an api_key.`, true);
	}
	const resources: Record<string, string> = {};
	const given = body.resources;
	if (
		given !== undefined &&
		(typeof given !== "object" || given === null || Array.isArray(given))
	) {
		throw new ManagedProviderError(
			`Provisioner ${row.id} answered resources that are not an object.`,
			true,
		);
	}
	for (const [name, value] of Object.entries((given ?? {}) as Record<string, unknown>)) {
		if (
			Object.keys(resources).length >= MAX_RESOURCES ||
			!/^[a-z][a-z0-9_]{0,63}$/.test(name) ||
			typeof value !== "string" ||
			value.length > 256
		) {
			throw new ManagedProviderError(
				`Provisioner ${row.id} answered resources outside the format (≤ ${MAX_RESOURCES} snake_case names, string ids ≤ 256 characters).`,
				true,
			);
		}
		resources[name] = value;
	}
	const title =
		typeof body.title === "string" && body.title.trim() !== ""
			? body.title.trim().slice(0, 200)
			: row.name;
	return { title, apiKey: body.api_key, resources };
}

export function genericProvider(row: ManagedProviderConfigRow): ManagedProvider {
	return {
		id: row.id,
		name: row.name,
		clientIdFor: (userId) => genericClientId(row.id, userId),
		available: () => row.enabled,

		async provision(
			services: Services,
			user: ManagedUser,
			ctx: ProvisionContext,
		): Promise<Provisioned> {
			const res = await send(
				services,
				row,
				"POST",
				row.provisionUrl,
				{
					event: "provision",
					provider: row.id,
					client_id: ctx.clientId,
					user: { id: user.id, email: user.email },
					resources: ctx.resources,
				},
				ctx.clientId,
			);
			if (!res.ok) throw failure(row, "POST", res.status);
			let raw: unknown;
			try {
				raw = JSON.parse(res.text);
			} catch {
				throw new ManagedProviderError(`Provisioner ${row.id} answered with no JSON body.`, true);
			}
			const provisioned = parseProvisioned(row, raw);
			// Recorded before the key is stored, so a crash from here on leaves ids to deprovision.
			if (Object.keys(provisioned.resources).length > 0) await ctx.record(provisioned.resources);
			return provisioned;
		},

		async deprovision(
			services: Services,
			user: { id: string },
			resources: Record<string, string>,
			_credential: CredentialRow | null,
		): Promise<DeprovisionOutcome> {
			// The backend made the resources, so only it can tell whose they are: it must answer
			// 409 when they are not this client id's (the contract in docs/managed.md).
			const clientId = genericClientId(row.id, user.id);
			const res = await send(
				services,
				row,
				"DELETE",
				row.deprovisionUrl,
				{
					event: "deprovision",
					provider: row.id,
					client_id: clientId,
					user: { id: user.id },
					resources,
				},
				clientId,
			);
			if (res.ok || res.status === 404 || res.status === 410) return { status: "deleted" };
			if (res.status === 409) {
				return {
					status: "ownership_mismatch",
					detail: `Provisioner ${row.id} says the resources are not client id ${clientId}'s.`,
				};
			}
			throw failure(row, "DELETE", res.status);
		},
	};
}

/** Every configured provisioner, enabled or not, ordered by id. */
export async function listProvisionerConfigs(
	services: Services,
): Promise<ManagedProviderConfigRow[]> {
	return services.db.select().from(managedProviderConfigs).orderBy(asc(managedProviderConfigs.id));
}

export async function findProvisionerConfig(
	services: Services,
	id: string,
): Promise<ManagedProviderConfigRow | undefined> {
	const [row] = await services.db
		.select()
		.from(managedProviderConfigs)
		.where(eq(managedProviderConfigs.id, id))
		.limit(1);
	return row;
}

export interface ProvisionerInput {
	name: string;
	provisionUrl: string;
	deprovisionUrl: string;
	enabled: boolean;
	/** Required when the provisioner is new; left out, the stored secret is kept. */
	hmacSecret?: string;
}

/**
 * Registers or replaces a generic provisioner. Its id becomes the `provider` of the credentials
 * it provisions, so it may not be a built-in managed provider's or an OAuth provider's id.
 */
export async function putProvisionerConfig(
	services: Services,
	id: string,
	input: ProvisionerInput,
	reservedIds: ReadonlySet<string>,
): Promise<{ row: ManagedProviderConfigRow; created: boolean }> {
	assertOutboundUrl(input.provisionUrl, "provision_url", services.config);
	assertOutboundUrl(input.deprovisionUrl, "deprovision_url", services.config);
	if (reservedIds.has(id) || builtinProvider(id)) {
		throw new LatchkeyError("conflict", `The id '${id}' belongs to a built-in provider.`, {
			hint: "Choose another id for the provisioner.",
		});
	}
	const [oauth, existing] = await services.db.batch([
		services.db
			.select({ id: oauthProviders.id })
			.from(oauthProviders)
			.where(eq(oauthProviders.id, id))
			.limit(1),
		services.db
			.select({ id: managedProviderConfigs.id })
			.from(managedProviderConfigs)
			.where(eq(managedProviderConfigs.id, id))
			.limit(1),
	]);
	if (oauth.length > 0) {
		throw new LatchkeyError("conflict", `The id '${id}' is an OAuth provider's.`, {
			hint: "Choose another id for the provisioner.",
		});
	}
	if (existing.length === 0 && input.hmacSecret === undefined) {
		throw new LatchkeyError("invalid_request", "A new provisioner needs its hmac_secret.", {
			detail: [
				{ field: "hmac_secret", location: "json", message: "required for a new provisioner" },
			],
		});
	}
	const now = services.now();
	const common = {
		name: input.name,
		provisionUrl: input.provisionUrl,
		deprovisionUrl: input.deprovisionUrl,
		enabled: input.enabled,
		updatedAt: now,
	};
	let row: ManagedProviderConfigRow | undefined;
	if (input.hmacSecret === undefined) {
		// Keeps the stored secret: an update only (an insert would need one).
		[row] = await services.db
			.update(managedProviderConfigs)
			.set(common)
			.where(eq(managedProviderConfigs.id, id))
			.returning();
		if (!row) throw new LatchkeyError("not_found", `No managed provider '${id}'.`);
	} else {
		const sealed = await sealProvisionerSecret(services, id, input.hmacSecret);
		[row] = await services.db
			.insert(managedProviderConfigs)
			.values({ id, ...common, ...sealed, createdAt: now })
			.onConflictDoUpdate({ target: managedProviderConfigs.id, set: { ...common, ...sealed } })
			.returning();
	}
	if (!row) throw new Error("putProvisionerConfig: no row returned");
	return { row, created: existing.length === 0 };
}

/**
 * Deletes a provisioner that has provisioned nothing still present. One with credentials or
 * recorded resources is refused: deprovisioning needs its URL and secret, so it is disabled
 * instead (or deleted after its users are gone).
 */
export async function deleteProvisionerConfig(services: Services, id: string): Promise<void> {
	const { db } = services;
	const [inUse, deleted] = await db.batch([
		db
			.select({ n: sql<number>`count(*)::int` })
			.from(managedProvisionings)
			.where(
				and(
					eq(managedProvisionings.provider, id),
					sql`${managedProvisionings.resources} <> '{}'::jsonb`,
				),
			),
		db
			.delete(managedProviderConfigs)
			.where(
				and(
					eq(managedProviderConfigs.id, id),
					sql`not exists (select 1 from ${credentials} where ${credentials.provider} = ${id} and ${credentials.managed})`,
					sql`not exists (select 1 from ${managedProvisionings} where ${managedProvisionings.provider} = ${id} and ${managedProvisionings.resources} <> '{}'::jsonb)`,
				),
			)
			.returning({ id: managedProviderConfigs.id }),
	]);
	if (deleted.length > 0) return;
	if (!(await findProvisionerConfig(services, id))) {
		throw new LatchkeyError("not_found", `No managed provider '${id}'.`);
	}
	throw new LatchkeyError(
		"conflict",
		`Managed provider '${id}' still has provisioned credentials or resources${(inUse[0]?.n ?? 0) > 0 ? ` (${inUse[0]?.n} users)` : ""}.`,
		{
			hint: "Disable it with enabled: false; delete it once its users' resources are deprovisioned.",
		},
	);
}
