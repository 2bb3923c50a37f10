import { Redis } from "ioredis";
import type { TestProject } from "vitest/node";
import { engineChoice, startInfra } from "../../scripts/lib/infra.ts";
import { canConnect } from "../../scripts/lib/net.ts";
import { startAgentMail } from "./agentmail.ts";
import { startDropper } from "./dropper.ts";
import { startIdentityProvider } from "./idp.ts";
import { startOAuthServer } from "./oauth-server.ts";
import { startProvisioner } from "./provisioner.ts";
import { startUpstream } from "./upstream.ts";

const PUBLIC_URL = "http://latchkey.test";
/** A platform front end that receives OAuth redirects itself (POST /v1/oauth/callback). */
const FRONTEND_ORIGIN = "https://app.example.com";

/**
 * Brings up what the worker under test talks to (a fresh database per run, the bridges, a
 * stand-in identity provider). Real Postgres and Redis are required when CI is set, unless
 * LATCHKEY_ENGINES=embedded forces the embedded engines; elsewhere they stand in, loudly.
 */
/**
 * The suite's own Redis database: not the developer's database 0. Emptied (that index only)
 * after the run. TEST_REDIS_URL chooses another Redis or index, which is then left as it is.
 */
const TEST_REDIS_URL = "redis://127.0.0.1:6379/15";

export default async function setup(project: TestProject) {
	// Set here, the test processes (node-side tests, npm start's) inherit it too.
	const ownRedisDb = !process.env.TEST_REDIS_URL;
	if (ownRedisDb) process.env.TEST_REDIS_URL = TEST_REDIS_URL;
	const infra = await startInfra({ engines: engineChoice(), label: "test" });
	const idp = await startIdentityProvider().catch(async (err) => {
		await infra.close();
		throw err;
	});
	const oauth = await startOAuthServer({
		redirectUris: [`${PUBLIC_URL}/v1/oauth/callback`, `${FRONTEND_ORIGIN}/oauth/callback`],
	}).catch(async (err) => {
		await idp.close();
		await infra.close();
		throw err;
	});
	project.provide("bindings", {
		...infra.bindings,
		LATCHKEY_PUBLIC_URL: PUBLIC_URL,
		LATCHKEY_ALLOWED_ORIGINS: FRONTEND_ORIGIN,
		LATCHKEY_ALLOWED_REDIRECT_ORIGINS: FRONTEND_ORIGIN,
		LATCHKEY_LOG_LEVEL: "info",
		// Scheduled runs with the real clock (the cron tests) must not purge users that other test
		// files just deleted and still read; deletion tests move their own clock past this.
		LATCHKEY_PURGE_DELAY_SECONDS: "86400",
		// The proxy's test upstream (test/setup/upstream.ts) is a loopback server.
		LATCHKEY_PROXY_ALLOW_LOOPBACK: "true",
	});
	project.provide("infra", {
		databaseUrl: infra.databaseUrl,
		adminUrl: infra.adminUrl,
		postgres: infra.postgres,
		redis: infra.redis,
	});
	project.provide("idp", {
		jwksUrl: idp.jwksUrl,
		issuer: idp.issuer,
		privateJwks: idp.privateJwks,
	});
	const dropper = await startDropper();
	project.provide("dropperPort", dropper.port);
	// Managed-provider fakes; controls for tests in test/setup/managed-control.ts.
	const agentmail = await startAgentMail();
	project.provide("agentmail", { url: agentmail.url });
	const provisioner = await startProvisioner();
	project.provide("provisioner", { url: provisioner.url });
	const { close: closeOAuth, ...oauthDetails } = oauth;
	project.provide("oauth", oauthDetails);
	// The third-party API the proxy tests call through Latchkey.
	const upstream = await startUpstream({
		introspectionUrl: oauth.introspectionUrl,
		clientId: oauth.clientId,
		clientSecret: oauth.clientSecret,
	});
	project.provide("upstream", { url: upstream.url });
	console.log(
		`[test setup] postgres: ${infra.postgres}, redis: ${infra.redis}` +
			(infra.redis === "real" ? ` (${process.env.TEST_REDIS_URL})` : ""),
	);
	return async () => {
		await upstream.close();
		await provisioner.close();
		await agentmail.close();
		await dropper.close();
		await closeOAuth();
		await idp.close();
		await infra.close();
		// Node-side tests use a reachable Redis even when the worker runs on the embedded engine.
		if (ownRedisDb && (await canConnect("127.0.0.1", 6379, 1000)))
			await flushTestDb(TEST_REDIS_URL);
	};
}

/** FLUSHDB of the suite's own index: what the run left there, nothing of database 0. */
async function flushTestDb(url: string): Promise<void> {
	const redis = new Redis(url, {
		lazyConnect: true,
		maxRetriesPerRequest: 1,
		connectTimeout: 2000,
	});
	try {
		await redis.connect();
		const db = Number(new URL(url).pathname.slice(1));
		if (!(db > 0) || redis.options.db !== db) throw new Error(`not the test database: ${url}`);
		await redis.flushdb();
	} catch (err) {
		console.warn(`[test teardown] could not empty ${url}: ${(err as Error).message}`);
	} finally {
		redis.disconnect();
	}
}
