import type { TestProject } from "vitest/node";
import { startInfra } from "../../scripts/lib/infra.ts";
import { startIdentityProvider } from "./idp.ts";

/**
 * Brings up what the worker under test talks to (a fresh database per run, the bridges, a
 * stand-in identity provider). Real Postgres and Redis are required when CI is set; elsewhere
 * the embedded engines stand in, loudly.
 */
export default async function setup(project: TestProject) {
	const infra = await startInfra({ requireReal: Boolean(process.env.CI), label: "test" });
	const idp = await startIdentityProvider().catch(async (err) => {
		await infra.close();
		throw err;
	});
	project.provide("bindings", {
		...infra.bindings,
		LATCHKEY_PUBLIC_URL: "http://latchkey.test",
		LATCHKEY_ALLOWED_ORIGINS: "https://app.example.com",
		LATCHKEY_LOG_LEVEL: "info",
	});
	project.provide("infra", {
		databaseUrl: infra.databaseUrl,
		postgres: infra.postgres,
		redis: infra.redis,
	});
	project.provide("idp", {
		jwksUrl: idp.jwksUrl,
		issuer: idp.issuer,
		privateJwks: idp.privateJwks,
	});
	console.log(`[test setup] postgres: ${infra.postgres}, redis: ${infra.redis}`);
	return async () => {
		await idp.close();
		await infra.close();
	};
}
