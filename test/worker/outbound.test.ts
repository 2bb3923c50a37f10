import { eq } from "drizzle-orm";
import { afterAll, describe, expect, inject, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { managedProviderConfigs } from "../../src/db/schema.ts";
import { LatchkeyError } from "../../src/errors.ts";
import {
	OUTBOUND_MAX_BYTES,
	outboundFailureOf,
	outboundFetch,
	outboundUrlProblem,
} from "../../src/http/outbound.ts";
import { redactSummary } from "../../src/jobs/routes.ts";
import { createLogger } from "../../src/log.ts";
import { agentmailClientId, agentmailProvider } from "../../src/managed/agentmail.ts";
import { sealProvisionerSecret, signatureFor } from "../../src/managed/generic.ts";
import { ManagedProviderError } from "../../src/managed/provider.ts";
import { findManagedProvider } from "../../src/managed/registry.ts";
import { createServices } from "../../src/services.ts";
import { Timing } from "../../src/timing.ts";
import { agentmailOrg, provisionerTenant } from "../setup/managed-control.ts";
import { admin, userWithKey } from "./fixtures.ts";
import { call, expectError, testDb, testEnv } from "./helpers.ts";
import { providerBody } from "./oauth-helpers.ts";

/**
 * The rules every outbound call follows (src/http/outbound.ts, docs/security.md "Outbound
 * calls"): safe URLs at registration and at call time, no redirects, bounded answers, timeouts,
 * signed provisioner requests that verify only as themselves, and job errors that say why.
 */

const LOCAL = { LATCHKEY_PUBLIC_URL: "http://latchkey.test" };
const DEPLOYED = { LATCHKEY_PUBLIC_URL: "https://latchkey.example.com" };
const db = testDb();
const disposers: (() => Promise<void>)[] = [];
afterAll(async () => {
	for (const d of disposers) await d();
	await db.end();
});

function servicesWith(env: Record<string, string> = {}) {
	const built = createServices(
		loadConfig({ ...testEnv, ...env }),
		createLogger("error"),
		new Timing(),
	);
	disposers.push(built.dispose);
	return built.services;
}

let counter = 0;
const freshId = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${++counter}`;

describe("outbound URL rules", () => {
	it("https to public hosts only; loopback (http too) only on a local deployment", () => {
		const allowedBoth = ["https://api.example.com/v0", "https://172.32.0.1/x", "https://8.8.8.8"];
		for (const url of allowedBoth) {
			expect(outboundUrlProblem(url, LOCAL), url).toBeNull();
			expect(outboundUrlProblem(url, DEPLOYED), url).toBeNull();
		}
		const loopback = [
			"http://127.0.0.1:8080/token",
			"https://localhost/x",
			"http://[::1]:9000/",
			"http://2130706433/", // 127.0.0.1 written as a number
			"http://0x7f.1/",
		];
		for (const url of loopback) {
			expect(outboundUrlProblem(url, LOCAL), url).toBeNull();
			expect(outboundUrlProblem(url, DEPLOYED), url).toMatch(/loopback/);
		}
		expect(outboundUrlProblem("http://api.example.com/", LOCAL)).toMatch(/https/);
		expect(outboundUrlProblem("http://api.example.com/", DEPLOYED)).toMatch(/https/);
		expect(outboundUrlProblem("ftp://api.example.com/", LOCAL)).toMatch(/https/);
		expect(outboundUrlProblem("not a url", LOCAL)).toMatch(/absolute URL/);
	});

	it("refuses private, link-local and metadata addresses and credentials in URLs, even locally", () => {
		const refused: [string, RegExp][] = [
			["https://10.1.2.3/", /private/],
			["https://172.16.0.1/", /private/],
			["https://172.31.255.254/", /private/],
			["https://192.168.1.10/", /private/],
			["https://[fc00::1]/", /private/],
			["https://[fd00:ec2::254]/", /private/],
			["https://[::ffff:10.0.0.1]/", /private/],
			["https://0.0.0.0/", /private/],
			["https://vault.internal/", /private/],
			["http://169.254.169.254/latest/meta-data/", /link-local/],
			["https://[fe80::1]/", /link-local/],
			["https://[::ffff:169.254.169.254]/", /link-local/],
			["http://metadata.google.internal/computeMetadata/v1/", /metadata/],
			["https://METADATA.google.internal./", /metadata/],
			["https://user:pass@api.example.com/", /credentials/],
			["https://token@api.example.com/", /credentials/],
		];
		for (const [url, why] of refused) {
			expect(outboundUrlProblem(url, LOCAL), url).toMatch(why);
			expect(outboundUrlProblem(url, DEPLOYED), url).toMatch(why);
		}
	});
});

describe("registration refuses unsafe URLs with 400 naming the field", () => {
	it("OAuth providers: each endpoint is checked, for custom and built-in ids", async () => {
		const id = freshId("unsafe-oauth");
		const cases: [Record<string, unknown>, string][] = [
			[{ token_url: "https://169.254.169.254/token" }, "token_url"],
			[{ authorize_url: "https://10.0.0.5/authorize" }, "authorize_url"],
			[{ revoke_url: "http://metadata.google.internal/revoke" }, "revoke_url"],
			[{ userinfo_url: "https://u:p@example.com/me" }, "userinfo_url"],
		];
		for (const [override, field] of cases) {
			const res = await call(`/v1/admin/providers/${id}`, {
				method: "PUT",
				token: admin(),
				json: providerBody(override),
			});
			const body = await expectError(res, 400, "invalid_request");
			expect(body.error.detail).toEqual([expect.objectContaining({ field, location: "json" })]);
		}
		const builtin = await call("/v1/admin/providers/github", {
			method: "PUT",
			token: admin(),
			json: {
				client_id: "x",
				client_secret: "y",
				token_url: "https://192.168.0.1/login/oauth/access_token",
			},
		});
		expect((await expectError(builtin, 400, "invalid_request")).error.detail).toEqual([
			expect.objectContaining({ field: "token_url" }),
		]);
		expect((await call(`/v1/providers`, { token: admin() })).status).toBe(200);
	});

	it("OAuth providers: the test server's loopback http URLs pass locally and are refused on an https deployment", async () => {
		const id = freshId("loopback-oauth");
		const local = await call(`/v1/admin/providers/${id}`, {
			method: "PUT",
			token: admin(),
			json: providerBody(),
		});
		expect(local.status).toBeLessThan(300);
		const deployed = await call(
			`/v1/admin/providers/${freshId("loopback-oauth")}`,
			{ method: "PUT", token: admin(), json: providerBody() },
			DEPLOYED,
		);
		const body = await expectError(deployed, 400, "invalid_request");
		const fields = (body.error.detail as { field: string }[]).map((d) => d.field).sort();
		expect(fields).toEqual(["authorize_url", "revoke_url", "token_url", "userinfo_url"]);
	});

	it("generic provisioners: provision_url and deprovision_url", async () => {
		const gp = await provisionerTenant(inject("provisioner").url);
		for (const [override, field] of [
			[{ provision_url: "https://192.168.1.1/provision" }, "provision_url"],
			[{ deprovision_url: "http://169.254.169.254/x" }, "deprovision_url"],
			[{ provision_url: "https://admin:pw@platform.example.com/p" }, "provision_url"],
		] as const) {
			const res = await call(`/v1/admin/managed-providers/${freshId("unsafe-gp")}`, {
				method: "PUT",
				token: admin(),
				json: {
					...({
						name: "Unsafe",
						provision_url: gp.provisionUrl,
						deprovision_url: gp.deprovisionUrl,
						hmac_secret: gp.secret,
						enabled: false,
					} as Record<string, unknown>),
					...override,
				},
			});
			const body = await expectError(res, 400, "invalid_request");
			expect(body.error.detail).toEqual([expect.objectContaining({ field })]);
		}
	});
});

describe("call time", () => {
	it("a provisioner URL written past the registration check is refused before any request", async () => {
		const services = servicesWith();
		const id = freshId("stored-unsafe");
		const sealed = await sealProvisionerSecret(services, id, "s".repeat(40));
		const now = new Date();
		await db.db.insert(managedProviderConfigs).values({
			id,
			name: "Stored unsafe",
			provisionUrl: "http://169.254.169.254/latest/meta-data/",
			deprovisionUrl: "http://169.254.169.254/latest/meta-data/",
			enabled: false,
			...sealed,
			createdAt: now,
			updatedAt: now,
		});
		const provider = await findManagedProvider(services, id);
		const user = await userWithKey();
		const attempt = provider?.deprovision(services, { id: user.id }, { account_id: "a" }, null);
		await expect(attempt).rejects.toThrow(ManagedProviderError);
		await expect(attempt).rejects.toThrow(/Latchkey refused the call to provisioner .*link-local/);
		await db.db.delete(managedProviderConfigs).where(eq(managedProviderConfigs.id, id));
	});

	it("outboundFetch refuses a disallowed URL as provider_unavailable, failure 'refused'", async () => {
		const config = loadConfig(testEnv);
		const err = await outboundFetch(config, "https://10.0.0.1/x").catch((e: unknown) => e);
		expect(err).toBeInstanceOf(LatchkeyError);
		expect((err as LatchkeyError).code).toBe("provider_unavailable");
		expect(outboundFailureOf(err)).toBe("refused");
	});

	it("a redirect is not followed: it is a provider error", async () => {
		const services = servicesWith();
		const user = await userWithKey();
		const gp = await provisionerTenant(inject("provisioner").url, [user.id]);
		const id = freshId("redirecting");
		const put = await call(`/v1/admin/managed-providers/${id}`, {
			method: "PUT",
			token: admin(),
			json: {
				name: "Redirecting",
				provision_url: gp.provisionUrl,
				deprovision_url: gp.deprovisionUrl,
				hmac_secret: gp.secret,
				enabled: false,
			},
		});
		expect(put.status).toBe(201);
		await gp.fail({ method: "DELETE", mode: "status", status: 302 });
		const provider = await findManagedProvider(services, id);
		await expect(
			provider?.deprovision(services, { id: user.id }, { account_id: "acct_x" }, null),
		).rejects.toThrow(/Latchkey refused the call to provisioner .*redirect \(302\)/);
		expect(
			(await call(`/v1/admin/managed-providers/${id}`, { method: "DELETE", token: admin() }))
				.status,
		).toBe(204);
	});

	it("an answer larger than the bound is not read: a provider error", async () => {
		const am = agentmailOrg(inject("agentmail").url);
		const services = servicesWith(am.env);
		const user = await userWithKey();
		const pod = await fetch(`${am.baseUrl}/_control/orgs/${encodeURIComponent(am.orgKey)}/pods`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({
				client_id: agentmailClientId(user.id),
				name: "x".repeat(OUTBOUND_MAX_BYTES + 10),
			}),
		}).then((r) => r.json() as Promise<{ pod_id: string }>);
		await expect(
			agentmailProvider.deprovision(services, { id: user.id }, { pod_id: pod.pod_id }, null),
		).rejects.toThrow(/Latchkey refused the call to AgentMail \(GET .*larger than 1048576 bytes/);
	});

	it("outboundFetch, which the OAuth calls use too, does not follow a redirect", async () => {
		const gp = await provisionerTenant(inject("provisioner").url);
		await gp.fail({ mode: "status", status: 307 });
		const err = await outboundFetch(loadConfig(testEnv), gp.provisionUrl, {
			method: "POST",
			body: "{}",
		}).catch((e: unknown) => e);
		expect(outboundFailureOf(err)).toBe("refused");
		expect((err as Error).message).toMatch(/redirect \(307\)/);
		expect((await gp.state()).calls).toHaveLength(1);
	});

	it("every call has a timeout: a peer that never answers is 'unreachable'", async () => {
		const am = agentmailOrg(inject("agentmail").url);
		await am.fail({ mode: "hang" });
		const started = Date.now();
		const err = await outboundFetch(loadConfig(testEnv), `${am.baseUrl}/v0/pods`, {
			headers: { authorization: `Bearer ${am.orgKey}` },
			timeoutMs: 300,
		}).catch((e: unknown) => e);
		expect(Date.now() - started).toBeLessThan(5000);
		expect(outboundFailureOf(err)).toBe("unreachable");
		expect((err as Error).message).toMatch(/no answer within 0.3 s/);
		await am.release();
	});
});

describe("generic provisioner signatures cover method, path, Idempotency-Key and body", () => {
	it("the signature changes with each of them, and the fake refuses a replay elsewhere", async () => {
		const user = await userWithKey();
		const gp = await provisionerTenant(inject("provisioner").url, [user.id]);
		const t = Math.floor(Date.now() / 1000);
		const clientId = `latchkey-gp-${user.id}`;
		const body = JSON.stringify({
			event: "provision",
			provider: "gp",
			client_id: clientId,
			user: { id: user.id, email: "x@example.com" },
			resources: {},
		});
		const path = `/t/${gp.name}/provision`;
		const base = { method: "POST", path, idempotencyKey: clientId, body };
		const signature = await signatureFor(gp.secret, t, base);
		expect(signature).toMatch(/^t=\d+,v2=[0-9a-f]{64}$/);
		for (const changed of [
			{ ...base, method: "DELETE" },
			{ ...base, path: `/t/${gp.name}/deprovision` },
			{ ...base, idempotencyKey: "latchkey-gp-usr_other" },
			{ ...base, body: `${body} ` },
		]) {
			expect(await signatureFor(gp.secret, t, changed)).not.toBe(signature);
		}
		const headers = {
			"content-type": "application/json",
			"idempotency-key": clientId,
			"latchkey-signature": signature,
		};
		const ok = await fetch(gp.provisionUrl, { method: "POST", headers, body });
		expect(ok.status).toBe(200);
		// The same captured request, sent to another path or with another method, does not verify.
		const otherPath = await fetch(`${gp.provisionUrl}?again=1`, { method: "POST", headers, body });
		expect(otherPath.status).toBe(401);
		const otherMethod = await fetch(gp.provisionUrl, { method: "PUT", headers, body });
		expect(otherMethod.status).toBe(401);
	});
});

describe("errors surfaced by routes", () => {
	it("the maintenance summary redacts job errors as the logs do", () => {
		const summary = redactSummary({
			started_at: new Date().toISOString(),
			duration_ms: 1,
			jobs: [
				{ name: "a", ok: true, duration_ms: 1, result: { done: 1 } },
				{
					name: "b",
					ok: false,
					duration_ms: 1,
					error: "upstream said Bearer abc.def.ghi and lk_live_0123456789abcdef",
				},
			],
		});
		expect(summary.jobs[0]).toEqual({ name: "a", ok: true, duration_ms: 1, result: { done: 1 } });
		expect(summary.jobs[1]?.error).not.toMatch(/abc\.def|0123456789abcdef/);
		expect(summary.jobs[1]?.error).toMatch(/\[REDACTED\]/);
	});

	it("AgentMail job errors say whether it was unreachable, refused, or answered an error status", async () => {
		const am = agentmailOrg(inject("agentmail").url);
		const user = await userWithKey();
		const resources = { pod_id: "pod_missing" };
		const unreachable = servicesWith({ ...am.env, AGENTMAIL_BASE_URL: "http://127.0.0.1:1" });
		await expect(
			agentmailProvider.deprovision(unreachable, { id: user.id }, resources, null),
		).rejects.toThrow(/^AgentMail was unreachable \(GET \/v0\/pods\/pod_missing: /);
		const refused = servicesWith({ ...am.env, AGENTMAIL_BASE_URL: "https://10.0.0.1" });
		await expect(
			agentmailProvider.deprovision(refused, { id: user.id }, resources, null),
		).rejects.toThrow(/^Latchkey refused the call to AgentMail \(GET .*private/);
		await am.fail({ mode: "status", status: 503 });
		await expect(
			agentmailProvider.deprovision(servicesWith(am.env), { id: user.id }, resources, null),
		).rejects.toThrow(/^AgentMail answered 503, an error status, to GET \/v0\/pods\/pod_missing/);
	});
});
