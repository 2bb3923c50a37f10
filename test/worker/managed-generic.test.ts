import { and, eq } from "drizzle-orm";
import { describe, expect, inject, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { openSecret } from "../../src/credentials/service.ts";
import { randomBase62, randomBytes, toBase64 } from "../../src/crypto/encoding.ts";
import { getKeyRing, open, seal } from "../../src/crypto/envelope.ts";
import {
	type CredentialRow,
	credentials,
	managedProviderConfigs,
	managedProvisionings,
} from "../../src/db/schema.ts";
import { rewrapDataKeys } from "../../src/jobs/rewrap.ts";
import { createLogger } from "../../src/log.ts";
import { provisionerAad } from "../../src/managed/generic.ts";
import { findManagedProvider, managedProviders } from "../../src/managed/registry.ts";
import { createServices } from "../../src/services.ts";
import { Timing } from "../../src/timing.ts";
import { type ProvisionerTenant, provisionerTenant } from "../setup/managed-control.ts";
import { admin, userWithKey } from "./fixtures.ts";
import { call, clockedApp, expectError, testDb, testEnv } from "./helpers.ts";

const services = () => createServices(loadConfig(testEnv), createLogger("error"), new Timing());

let counter = 0;
const freshId = () => `gp-${Date.now().toString(36)}-${++counter}`;

async function putProvider(id: string, gp: ProvisionerTenant, extra: Record<string, unknown> = {}) {
	return call(`/v1/admin/managed-providers/${id}`, {
		method: "PUT",
		token: admin(),
		json: {
			name: "Fake platform",
			provision_url: gp.provisionUrl,
			deprovision_url: gp.deprovisionUrl,
			hmac_secret: gp.secret,
			...extra,
		},
	});
}

/**
 * Every active user of the test run would be provisioned by an enabled provisioner, so each
 * test disables its own at the end (the fake refuses users it was not told about meanwhile).
 */
async function disable(id: string, gp: ProvisionerTenant) {
	const res = await call(`/v1/admin/managed-providers/${id}`, {
		method: "PUT",
		token: admin(),
		json: {
			name: "Fake platform",
			provision_url: gp.provisionUrl,
			deprovision_url: gp.deprovisionUrl,
			enabled: false,
		},
	});
	expect(res.status).toBe(200);
}

async function managedRow(userId: string, provider: string): Promise<CredentialRow | undefined> {
	const db = testDb();
	try {
		const [row] = await db.db
			.select()
			.from(credentials)
			.where(
				and(
					eq(credentials.userId, userId),
					eq(credentials.provider, provider),
					eq(credentials.managed, true),
				),
			);
		return row;
	} finally {
		await db.end();
	}
}

describe("generic HTTP provisioner", () => {
	it("end to end: admin registers it, a listing provisions through signed requests, deprovision checks ownership", async () => {
		const user = await userWithKey();
		const gp = await provisionerTenant(inject("provisioner").url, [user.id]);
		const id = freshId();
		try {
			const put = await putProvider(id, gp);
			expect(put.status).toBe(201);
			const putText = await put.text();
			expect(putText).not.toContain(gp.secret);
			expect(JSON.parse(putText)).toMatchObject({
				id,
				name: "Fake platform",
				provision_url: gp.provisionUrl,
				deprovision_url: gp.deprovisionUrl,
				enabled: true,
			});
			// The list pages by id like every list.
			let cursor: string | null = null;
			const seen: string[] = [];
			do {
				const page = (await (
					await call(`/v1/admin/managed-providers?limit=1${cursor ? `&cursor=${cursor}` : ""}`, {
						token: admin(),
					})
				).json()) as { data: { id: string }[]; next_cursor: string | null };
				seen.push(...page.data.map((p) => p.id));
				cursor = page.next_cursor;
			} while (cursor);
			expect(seen).toContain(id);
			expect(seen).toEqual([...seen].sort());
			const got = await call(`/v1/admin/managed-providers/${id}`, { token: admin() });
			expect(got.status).toBe(200);
			expect(await got.text()).not.toContain(gp.secret);
			// Stored sealed, never in clear.
			const db = testDb();
			try {
				const [row] = await db.db
					.select()
					.from(managedProviderConfigs)
					.where(eq(managedProviderConfigs.id, id));
				expect(JSON.stringify(row)).not.toContain(gp.secret);
			} finally {
				await db.end();
			}

			const providers = (await (
				await call("/v1/providers?limit=100", { token: user.key })
			).json()) as { data: { id: string; managed: boolean; name: string }[] };
			expect(providers.data.find((p) => p.id === id)).toMatchObject({
				managed: true,
				name: "Fake platform",
			});

			const listing = await call("/v1/credentials", { token: user.key });
			expect(listing.status).toBe(200);
			const body = (await listing.json()) as {
				data: {
					id: string;
					provider: string;
					managed: boolean;
					metadata: Record<string, string>;
				}[];
			};
			const mine = body.data.filter((c) => c.provider === id);
			expect(mine).toHaveLength(1);
			const state = await gp.state();
			expect(state.accounts).toHaveLength(1);
			const account = state.accounts[0];
			expect(mine[0]).toMatchObject({
				managed: true,
				metadata: { account_id: account?.account_id },
			});
			const provisionCalls = state.calls.filter((c) => c.method === "POST");
			expect(provisionCalls).toHaveLength(1);
			expect(provisionCalls[0]).toMatchObject({
				status: 200,
				signature_ok: true,
				idempotency_key: `latchkey-${id}-${user.id}`,
			});
			const row = (await managedRow(user.id, id)) as CredentialRow;
			const { services: s, dispose } = services();
			try {
				expect((await openSecret(s, row as CredentialRow & { type: "api_key" })).api_key).toBe(
					account?.api_key,
				);
				expect((await managedProviders(s)).map((p) => p.id)).toContain(id);

				const provider = await findManagedProvider(s, id);
				expect(provider).toBeDefined();
				const stranger = await userWithKey();
				const resources = { account_id: account?.account_id as string };
				expect(await provider?.deprovision(s, { id: stranger.id }, resources, null)).toMatchObject({
					status: "ownership_mismatch",
				});
				expect((await gp.state()).accounts[0]?.deleted).toBe(false);
				expect(await provider?.deprovision(s, { id: user.id }, resources, row)).toEqual({
					status: "deleted",
				});
				expect((await gp.state()).accounts[0]?.deleted).toBe(true);
				// Already gone: still "deleted", so a retried job finishes.
				expect(await provider?.deprovision(s, { id: user.id }, resources, row)).toEqual({
					status: "deleted",
				});
				expect((await gp.state()).calls.every((c) => c.signature_ok === true)).toBe(true);
			} finally {
				await dispose();
			}

			// Something was provisioned: the config cannot be deleted, only disabled.
			await expectError(
				await call(`/v1/admin/managed-providers/${id}`, { method: "DELETE", token: admin() }),
				409,
				"conflict",
			);
		} finally {
			await disable(id, gp);
		}
		const { services: s, dispose } = services();
		try {
			expect((await managedProviders(s)).map((p) => p.id)).not.toContain(id);
			// Disabled, yet still found for deprovisioning.
			expect(await findManagedProvider(s, id)).toBeDefined();
		} finally {
			await dispose();
		}
	});

	it("a wrong HMAC secret is refused by the backend: the listing still answers, nothing is stored", async () => {
		const user = await userWithKey();
		const gp = await provisionerTenant(inject("provisioner").url, [user.id]);
		const id = freshId();
		try {
			expect((await putProvider(id, gp, { hmac_secret: "x".repeat(40) })).status).toBe(201);
			expect((await call("/v1/credentials", { token: user.key })).status).toBe(200);
			expect(await managedRow(user.id, id)).toBeUndefined();
			const state = await gp.state();
			expect(state.accounts).toHaveLength(0);
			expect(state.calls[0]).toMatchObject({ status: 401, signature_ok: false });
			const db = testDb();
			try {
				const [intent] = await db.db
					.select()
					.from(managedProvisionings)
					.where(
						and(eq(managedProvisionings.userId, user.id), eq(managedProvisionings.provider, id)),
					);
				expect(intent).toMatchObject({ status: "failed" });
				expect(intent?.lastError).toContain("401");
			} finally {
				await db.end();
			}
		} finally {
			await disable(id, gp);
		}
		// Nothing was provisioned, so it can be deleted.
		const del = await call(`/v1/admin/managed-providers/${id}`, {
			method: "DELETE",
			token: admin(),
		});
		expect(del.status).toBe(204);
		await expectError(
			await call(`/v1/admin/managed-providers/${id}`, { token: admin() }),
			404,
			"not_found",
		);
	});

	it("a crash after the backend made the account: the retry gets the same account by its idempotency key", async () => {
		const user = await userWithKey();
		const gp = await provisionerTenant(inject("provisioner").url, [user.id]);
		const id = freshId();
		const clock = clockedApp();
		try {
			expect((await putProvider(id, gp)).status).toBe(201);
			await gp.fail({ method: "POST", mode: "drop_after" });
			expect((await clock.call("/v1/credentials", { token: user.key })).status).toBe(200);
			expect(await managedRow(user.id, id)).toBeUndefined();
			expect((await gp.state()).accounts).toHaveLength(1);
			clock.advance(6);
			expect((await clock.call("/v1/credentials", { token: user.key })).status).toBe(200);
			const state = await gp.state();
			expect(state.accounts).toHaveLength(1);
			const row = (await managedRow(user.id, id)) as CredentialRow;
			expect(row.metadata).toEqual({ account_id: state.accounts[0]?.account_id });
			const keys = new Set(
				state.calls.filter((c) => c.method === "POST").map((c) => c.idempotency_key),
			);
			expect(keys).toEqual(new Set([`latchkey-${id}-${user.id}`]));
		} finally {
			await disable(id, gp);
		}
	});

	it("admin input: built-in ids, a missing secret, bad URLs and non-admins are refused", async () => {
		const gp = await provisionerTenant(inject("provisioner").url);
		await expectError(await putProvider("agentmail", gp), 409, "conflict");
		await expectError(await putProvider("github", gp), 409, "conflict");
		await expectError(
			await putProvider(freshId(), gp, { hmac_secret: undefined }),
			400,
			"invalid_request",
		);
		await expectError(
			await putProvider(freshId(), gp, { provision_url: "ftp://example.com/x" }),
			400,
			"invalid_request",
		);
		await expectError(
			await putProvider(freshId(), gp, { hmac_secret: "short" }),
			400,
			"invalid_request",
		);
		const { key } = await userWithKey();
		await expectError(
			await call(`/v1/admin/managed-providers/${freshId()}`, {
				method: "PUT",
				token: key,
				json: {
					name: "x",
					provision_url: gp.provisionUrl,
					deprovision_url: gp.deprovisionUrl,
					hmac_secret: gp.secret,
				},
			}),
			403,
			"insufficient_scope",
		);
		await expectError(
			await call(`/v1/admin/managed-providers/${freshId()}`, { method: "DELETE", token: admin() }),
			404,
			"not_found",
		);
	});

	it("a key rotation re-wraps a provisioner's sealed secret onto the active key", async () => {
		const old = `mp-old-${randomBase62(8)}`;
		const active = testEnv.LATCHKEY_ENCRYPTION_ACTIVE_KEY as string;
		const keys = JSON.parse(testEnv.LATCHKEY_ENCRYPTION_KEYS as string) as Record<string, string>;
		const oldKey = toBase64(randomBytes(32));
		const envWith = (ring: Record<string, string>, act: string) => ({
			...testEnv,
			LATCHKEY_ENCRYPTION_KEYS: JSON.stringify(ring),
			LATCHKEY_ENCRYPTION_ACTIVE_KEY: act,
		});
		const id = freshId();
		const secret = `whsec_${randomBase62(40)}`;
		const sealed = await seal(
			await getKeyRing(loadConfig(envWith({ [old]: oldKey }, old))),
			secret,
			provisionerAad(id),
		);
		const db = testDb();
		try {
			// Disabled, so no listing of the run provisions through it.
			await db.db.insert(managedProviderConfigs).values({
				id,
				name: "Rotated",
				provisionUrl: "http://127.0.0.1:9/provision",
				deprovisionUrl: "http://127.0.0.1:9/deprovision",
				enabled: false,
				...sealed,
			});
			const rotated = createServices(
				loadConfig(envWith({ ...keys, [old]: oldKey }, active)),
				createLogger("error"),
				new Timing(),
			);
			try {
				await rewrapDataKeys(rotated.services);
			} finally {
				await rotated.dispose();
			}
			const [row] = await db.db
				.select()
				.from(managedProviderConfigs)
				.where(eq(managedProviderConfigs.id, id));
			expect(row?.keyId).toBe(active);
			// The suite's own ring, without the old key, opens it now.
			expect(
				await open(
					await getKeyRing(loadConfig(testEnv)),
					row as NonNullable<typeof row>,
					provisionerAad(id),
					"test",
				),
			).toBe(secret);
		} finally {
			await db.db.delete(managedProviderConfigs).where(eq(managedProviderConfigs.id, id));
			await db.end();
		}
	});
});

describe("deprovisioning answers: transient or permanent", () => {
	it("401, 403, 429 and 5xx are retried; 404 and 410 are already gone; another 4xx is permanent", async () => {
		const user = await userWithKey();
		const gp = await provisionerTenant(inject("provisioner").url, [user.id]);
		const id = freshId();
		try {
			expect((await putProvider(id, gp)).status).toBe(201);
			expect((await call("/v1/credentials", { token: user.key })).status).toBe(200);
			const account = (await gp.state()).accounts[0];
			const resources = { account_id: account?.account_id as string };
			const row = (await managedRow(user.id, id)) as CredentialRow;
			const { services: s, dispose } = services();
			try {
				const provider = await findManagedProvider(s, id);
				const answerOnce = async (status: number) => {
					await gp.fail({
						method: "DELETE",
						path: "/deprovision",
						mode: "status",
						status,
						times: 1,
					});
					return provider?.deprovision(s, { id: user.id }, resources, row).then(
						(outcome) => ({ outcome }),
						(err: unknown) => ({ permanent: (err as { permanent?: boolean }).permanent }),
					);
				};
				for (const status of [401, 403, 429, 500, 503]) {
					expect([status, await answerOnce(status)]).toEqual([status, { permanent: false }]);
				}
				expect(await answerOnce(400)).toEqual({ permanent: true });
				expect(await answerOnce(422)).toEqual({ permanent: true });
				for (const status of [404, 410]) {
					expect([status, await answerOnce(status)]).toEqual([
						status,
						{ outcome: { status: "deleted" } },
					]);
				}
				// None of the refusals deleted anything: the account is still there to delete.
				expect((await gp.state()).accounts[0]?.deleted).toBe(false);
			} finally {
				await dispose();
			}
		} finally {
			await disable(id, gp);
		}
	});
});
