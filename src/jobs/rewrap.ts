/**
 * Moves sealed rows onto the active encryption key after a rotation by re-wrapping their data
 * keys (the secrets themselves are not re-encrypted). Once it reports a retired key unused, the
 * operator can drop that key from LATCHKEY_ENCRYPTION_KEYS. It also re-seals credentials still
 * under the legacy AAD (version 1, which does not bind provider and host) under the current one.
 * See docs/security.md, "Encryption".
 */
import { and, asc, count, gt, inArray, lt, notInArray, type SQL, sql } from "drizzle-orm";
import {
	CREDENTIAL_AAD_VERSION,
	type CredentialAadFields,
	credentialAadOf,
	credentialAadV2,
	getKeyRing,
	type KeyRing,
	open,
	rewrap,
	type Sealed,
	seal,
} from "../crypto/envelope.ts";
import { credentials, managedProviderConfigs, oauthProviders, webhooks } from "../db/schema.ts";
import type { Services } from "../services.ts";
import type { Job } from "./job.ts";

/** The tables with sealed columns, by their SQL names. */
export type SealedTableName =
	| "credentials"
	| "oauth_providers"
	| "managed_provider_configs"
	| "webhooks";

// Providers (OAuth, then generic provisioners) first: they are few, so a run that spends its
// batch budget on a large credentials table still finishes them.
const TABLES = {
	oauth_providers: oauthProviders,
	managed_provider_configs: managedProviderConfigs,
	// Webhook signing secrets: as few as the providers.
	webhooks,
	credentials,
} as const;

export interface SealedRowSnapshot extends Sealed {
	id: string;
}

export interface RewrapOptions {
	/** Rows read and written per statement. */
	batchSize?: number;
	/** Upper bound on batches per run, so one cron invocation stays well inside the CPU limit. */
	maxBatches?: number;
}

export interface BatchOutcome {
	rewrapped: number;
	/** Rows whose data key could not be unwrapped (unknown key id, altered bytes); left as they are. */
	failed: number;
	/** Rows changed by someone else between read and write; left to their writer and the next run. */
	conflicts: number;
}

export interface RewrapResult extends BatchOutcome {
	[counter: string]: number;
	/** Credentials moved from the legacy AAD to the current one (and onto the active key). */
	resealed: number;
	/** Credentials still under the legacy AAD after this run (failed ones included). */
	legacy_aad_remaining: number;
	batches: number;
	/** Rows still not under the active key after this run (failed ones included). */
	remaining: number;
	/** Distinct non-active key ids that rows still use, configured or not. */
	old_keys_in_use: number;
	/** Configured non-active keys that no row uses any more: safe to drop from the ring. */
	droppable_keys: number;
}

export const DEFAULT_BATCH_SIZE = 200;
export const DEFAULT_MAX_BATCHES = 10;

export const rewrapJob: Job = {
	name: "rewrap-data-keys",
	run: (services) => rewrapDataKeys(services),
};

export async function rewrapDataKeys(
	services: Services,
	options: RewrapOptions = {},
): Promise<RewrapResult> {
	const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
	const maxBatches = options.maxBatches ?? DEFAULT_MAX_BATCHES;
	const ring = await getKeyRing(services.config);
	const totals: BatchOutcome = { rewrapped: 0, failed: 0, conflicts: 0 };
	let batches = 0;

	// Re-sealing first: it also puts those rows under the active key, so the re-wrap below does
	// not spend its budget on rows that are about to be re-sealed anyway.
	let resealed = 0;
	let cursor = "";
	while (batches < maxBatches) {
		const rows = await services.db
			.select({
				id: credentials.id,
				userId: credentials.userId,
				type: credentials.type,
				provider: credentials.provider,
				host: credentials.host,
				aadVersion: credentials.aadVersion,
				version: credentials.version,
				ciphertext: credentials.ciphertext,
				dataKey: credentials.dataKey,
				keyId: credentials.keyId,
			})
			.from(credentials)
			.where(
				and(
					lt(credentials.aadVersion, CREDENTIAL_AAD_VERSION),
					inArray(credentials.keyId, [...ring.keyIds]),
					gt(credentials.id, cursor),
				),
			)
			.orderBy(asc(credentials.id))
			.limit(batchSize);
		if (rows.length === 0) break;
		batches += 1;
		const outcome = await resealRows(services, ring, rows);
		resealed += outcome.resealed;
		totals.failed += outcome.failed;
		totals.conflicts += outcome.conflicts;
		cursor = rows[rows.length - 1]?.id ?? cursor;
		if (rows.length < batchSize) break;
	}

	const retired = ring.keyIds.filter((id) => id !== ring.activeKeyId);
	for (const name of Object.keys(TABLES) as SealedTableName[]) {
		const table = TABLES[name];
		// Only rows under configured keys are read in batches: rows under a key the ring lacks can
		// never succeed, and if there are many they must not eat the budget of every run.
		// Keyset cursor: rows that fail or conflict stay under their old key and must not be read
		// again in the same run.
		cursor = "";
		while (retired.length > 0 && batches < maxBatches) {
			const rows = await services.db
				.select({
					id: table.id,
					ciphertext: table.ciphertext,
					dataKey: table.dataKey,
					keyId: table.keyId,
				})
				.from(table)
				.where(and(inArray(table.keyId, retired), gt(table.id, cursor)))
				.orderBy(asc(table.id))
				.limit(batchSize);
			if (rows.length === 0) break;
			batches += 1;
			const outcome = await rewrapRows(services, ring, name, rows.filter(isSealedRow));
			totals.rewrapped += outcome.rewrapped;
			totals.failed += outcome.failed;
			totals.conflicts += outcome.conflicts;
			cursor = rows[rows.length - 1]?.id ?? cursor;
			if (rows.length < batchSize) break;
		}

		// One batch of rows under unknown keys per run is enough to name them in the log.
		const orphans = await services.db
			.select({ id: table.id, keyId: table.keyId })
			.from(table)
			.where(and(notUnderKey(table, ring.activeKeyId), notInArray(table.keyId, [...ring.keyIds])))
			.orderBy(asc(table.id))
			.limit(batchSize);
		for (const { id, keyId } of orphans) {
			if (keyId === null) continue;
			totals.failed += 1;
			logFailure(services, name, { id, keyId }, "its key id is not in LATCHKEY_ENCRYPTION_KEYS");
		}
	}

	const usage = await oldKeyUsage(services, ring);
	let droppable = 0;
	for (const keyId of ring.keyIds) {
		if (keyId === ring.activeKeyId) continue;
		const rows = usage.get(keyId) ?? 0;
		if (rows === 0) {
			droppable += 1;
			services.logger.info(
				"encryption key no longer used by any row; it can be dropped from LATCHKEY_ENCRYPTION_KEYS",
				{ key_id: keyId },
			);
		} else {
			services.logger.info("encryption key still in use", { key_id: keyId, row_count: rows });
		}
	}
	for (const [keyId, rows] of usage) {
		if (!ring.keyIds.includes(keyId)) {
			services.logger.error("rows are sealed with a key that is not in LATCHKEY_ENCRYPTION_KEYS", {
				key_id: keyId,
				row_count: rows,
			});
		}
	}

	const [legacy] = await services.db
		.select({ rows: count() })
		.from(credentials)
		.where(lt(credentials.aadVersion, CREDENTIAL_AAD_VERSION));
	const result: RewrapResult = {
		...totals,
		resealed,
		legacy_aad_remaining: legacy?.rows ?? 0,
		batches,
		remaining: [...usage.values()].reduce((a, b) => a + b, 0),
		old_keys_in_use: usage.size,
		droppable_keys: droppable,
	};
	services.logger.info("data key re-wrap finished", { ...result });
	return result;
}

/**
 * Re-wraps rows read earlier and writes them back in one statement, each only if its `key_id`
 * and `data_key` are still what was read. Every seal draws a fresh data key, so an unchanged
 * `data_key` means no one re-sealed the row meanwhile; nothing else (`version`, `updated_at`)
 * is touched because the secret did not change.
 */
export async function rewrapRows(
	services: Services,
	ring: KeyRing,
	name: SealedTableName,
	rows: readonly SealedRowSnapshot[],
): Promise<BatchOutcome> {
	const table = TABLES[name];
	const updates: SQL[] = [];
	let failed = 0;
	for (const row of rows) {
		let next: Sealed | null;
		try {
			next = await rewrap(ring, row);
		} catch (err) {
			// One bad row must not stop the rest.
			failed += 1;
			logFailure(services, name, row, err instanceof Error ? err.message : String(err));
			continue;
		}
		if (!next) continue;
		updates.push(
			sql`(${row.id}::text, ${row.keyId}::text, ${row.dataKey}::text, ${next.keyId}::text, ${next.dataKey}::text)`,
		);
	}
	if (updates.length === 0) return { rewrapped: 0, failed, conflicts: 0 };

	const written = await services.db.execute<{ id: string }>(sql`
		update ${table}
		set ${sql.identifier(table.dataKey.name)} = v.new_data_key,
			${sql.identifier(table.keyId.name)} = v.new_key_id
		from (values ${sql.join(updates, sql`, `)}) as v(id, old_key_id, old_data_key, new_key_id, new_data_key)
		where ${table.id} = v.id
			and ${table.keyId} = v.old_key_id
			and ${table.dataKey} = v.old_data_key
		returning ${table.id}`);
	const rewrapped = written.rows.length;
	return { rewrapped, failed, conflicts: updates.length - rewrapped };
}

export interface LegacyCredentialSnapshot extends SealedRowSnapshot, CredentialAadFields {
	aadVersion: number;
	version: number;
}

export interface ResealOutcome {
	resealed: number;
	failed: number;
	conflicts: number;
}

/**
 * Re-seals credentials read earlier under the current AAD (and the active key), writing each
 * back only if the row is still exactly what was read: same `version` (no API write since), same
 * `data_key` (no re-seal since), same AAD version, provider and host (what the new AAD binds).
 * `version` and `updated_at` stay as they are: the secret did not change.
 */
export async function resealRows(
	services: Services,
	ring: KeyRing,
	rows: readonly LegacyCredentialSnapshot[],
): Promise<ResealOutcome> {
	const updates: SQL[] = [];
	let failed = 0;
	for (const row of rows) {
		let next: Sealed;
		try {
			const aad = credentialAadOf(row);
			if (aad === null) throw new Error(`its AAD version ${row.aadVersion} is unknown`);
			const plaintext = await open(ring, row, aad, `credential ${row.id}`);
			next = await seal(ring, plaintext, credentialAadV2(row));
		} catch (err) {
			failed += 1;
			services.logger.warn("secret could not be re-sealed under the current AAD", {
				table: "credentials",
				row_id: row.id,
				key_id: row.keyId,
				reason: err instanceof Error ? err.message : String(err),
			});
			continue;
		}
		updates.push(
			sql`(${row.id}::text, ${row.version}::int, ${row.aadVersion}::int, ${row.dataKey}::text, ${row.provider}::text, ${row.host}::text, ${next.ciphertext}::text, ${next.dataKey}::text, ${next.keyId}::text)`,
		);
	}
	if (updates.length === 0) return { resealed: 0, failed, conflicts: 0 };
	const written = await services.db.execute<{ id: string }>(sql`
		update ${credentials}
		set ciphertext = v.new_ciphertext,
			data_key = v.new_data_key,
			key_id = v.new_key_id,
			aad_version = ${CREDENTIAL_AAD_VERSION}::int
		from (values ${sql.join(updates, sql`, `)})
			as v(id, old_version, old_aad_version, old_data_key, provider, host, new_ciphertext, new_data_key, new_key_id)
		where ${credentials.id} = v.id
			and ${credentials.version} = v.old_version
			and ${credentials.aadVersion} = v.old_aad_version
			and ${credentials.dataKey} = v.old_data_key
			and ${credentials.provider} = v.provider
			and ${credentials.host} is not distinct from v.host
		returning ${credentials.id}`);
	const resealed = written.rows.length;
	return { resealed, failed, conflicts: updates.length - resealed };
}

// The id (never the row's contents) is what an operator needs to find the row.
/**
 * A row with a seal. Every credential and provisioner has one; an API-key-only provider has none
 * (no client secret), and `key_id in (…)` never selects it, but its columns are nullable.
 */
function isSealedRow(row: {
	id: string;
	ciphertext: string | null;
	dataKey: string | null;
	keyId: string | null;
}): row is SealedRowSnapshot {
	return row.ciphertext !== null && row.dataKey !== null && row.keyId !== null;
}

function logFailure(
	services: Services,
	table: SealedTableName,
	row: { id: string; keyId: string },
	reason: string,
): void {
	services.logger.warn("data key could not be re-wrapped", {
		table,
		row_id: row.id,
		key_id: row.keyId,
		reason,
	});
}

/**
 * `key_id <> active` spelled as two ranges so Postgres can answer it from the key_id index
 * instead of scanning the table once every rotation is done.
 */
function notUnderKey(table: (typeof TABLES)[SealedTableName], activeKeyId: string): SQL {
	return sql`(${table.keyId} < ${activeKeyId} or ${table.keyId} > ${activeKeyId})`;
}

async function oldKeyUsage(services: Services, ring: KeyRing): Promise<Map<string, number>> {
	const usage = new Map<string, number>();
	for (const table of Object.values(TABLES)) {
		const rows = await services.db
			.select({ keyId: table.keyId, rows: count() })
			.from(table)
			.where(notUnderKey(table, ring.activeKeyId))
			.groupBy(table.keyId);
		for (const row of rows) {
			if (row.keyId !== null) usage.set(row.keyId, (usage.get(row.keyId) ?? 0) + row.rows);
		}
	}
	return usage;
}
