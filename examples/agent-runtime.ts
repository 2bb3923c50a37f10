/**
 * An agent run that calls a third-party API with a user's secret held in Latchkey, through the
 * typed client (`latchkey/client`, src/client/).
 *
 *     LATCHKEY_URL=http://127.0.0.1:8787 LATCHKEY_API_KEY=lk_… npx tsx examples/agent-runtime.ts
 *
 * The API key is the user's (README, Quick start, issues one). The example plays every part:
 *
 * 1. the third-party API: a tiny local HTTP server (a weather API) that answers only requests
 *    bearing the one token it issued the user;
 * 2. the platform, once, when the user connects that API: it stores the user's token in Latchkey
 *    as an `api_key` credential, and keeps only the credential's id;
 * 3. the agent run: `withCredential` leases the token just before use, calls the API with it,
 *    renews the lease while the run goes on, and releases it when the run ends, fails or is
 *    aborted;
 * 4. clean-up: the credential is deleted and the client's session ended.
 *
 * Nothing here prints a secret: not the token, not the API key, not an access token. The run
 * prints ids, times and the API's answers, and exits 1 if any step failed.
 */
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { isLatchkeyError, LatchkeyClient, secretHeaders } from "latchkey/client";

const LATCHKEY_URL = process.env.LATCHKEY_URL ?? "http://127.0.0.1:8787";
const LATCHKEY_API_KEY = process.env.LATCHKEY_API_KEY;
if (!LATCHKEY_API_KEY) {
	console.error("Set LATCHKEY_API_KEY to a Latchkey API key (lk_…); see README, Quick start.");
	process.exit(2);
}

// 1. The third-party API. Its token is a secret of the user's that only Latchkey will hold.
const userToken = `wx_${randomBytes(24).toString("hex")}`;
let authorizedCalls = 0;
const weatherApi = createServer((req, res) => {
	if (req.headers.authorization !== `Bearer ${userToken}`) {
		res.writeHead(401, { "content-type": "application/json" });
		res.end(JSON.stringify({ error: "invalid token" }));
		return;
	}
	authorizedCalls++;
	const city = new URL(req.url ?? "/", "http://weather").searchParams.get("city") ?? "?";
	res.writeHead(200, { "content-type": "application/json" });
	res.end(JSON.stringify({ city, forecast: city.length % 2 ? "sunny" : "rain", celsius: 21 }));
});
await new Promise<void>((resolve) => weatherApi.listen(0, "127.0.0.1", resolve));
const weatherUrl = `http://127.0.0.1:${(weatherApi.address() as AddressInfo).port}`;
console.log(`third-party API: listening on ${weatherUrl}`);

// One client per agent runtime: it exchanges the API key for an access token once, refreshes it
// before it expires, and retries 503/429 answers after their Retry-After.
const latchkey = new LatchkeyClient({ baseUrl: LATCHKEY_URL, apiKey: LATCHKEY_API_KEY });

let exitCode = 0;
let credentialId: string | undefined;
try {
	// 2. The platform stores the user's token once; the agent run only ever sees the id.
	const credential = await latchkey.post("/v1/credentials", {
		body: { provider: "weather-api", type: "api_key", title: "Weather API", api_key: userToken },
	});
	credentialId = credential.id;
	console.log(
		`platform: stored credential ${credential.id} (${credential.type}, v${credential.version})`,
	);

	// 3. The agent run. The whole run is bounded: aborting it releases the lease at once.
	const cities = ["Lisbon", "Oslo", "Nairobi"];
	const report = await latchkey.withCredential(
		credential.id,
		async (_secret, lease) => {
			console.log(`agent run: leased ${lease.id} until ${lease.expiresAt.toISOString()}`);
			const lines: string[] = [];
			for (const city of cities) {
				// `lease.secret` is the current lease's secret (a renewal Latchkey refused is followed
				// by a fresh lease), so read it at each use rather than keeping the first one.
				const res = await fetch(`${weatherUrl}/forecast?city=${encodeURIComponent(city)}`, {
					headers: secretHeaders(lease.secret),
					signal: lease.signal,
				});
				if (!res.ok) throw new Error(`the weather API answered ${res.status}`);
				const body = (await res.json()) as { city: string; forecast: string; celsius: number };
				lines.push(`${body.city}: ${body.forecast}, ${body.celsius} °C`);
			}
			return lines;
		},
		{
			ttlSeconds: 30,
			signal: AbortSignal.timeout(60_000),
			// Ids and times only: events never carry the secret.
			onEvent: (event) => console.log(`lease: ${event.type} ${event.leaseId}`),
		},
	);
	for (const line of report) console.log(`agent run: ${line}`);
	console.log(`agent run: done, ${authorizedCalls} authorized calls to the third-party API`);
} catch (err) {
	exitCode = 1;
	// A LatchkeyError carries Latchkey's code, hint and request id, and never a secret.
	if (isLatchkeyError(err))
		console.error(
			`Latchkey refused: ${err.status} ${err.code}: ${err.message} (${err.hint}) [${err.requestId}]`,
		);
	else console.error(`agent run failed: ${(err as Error).message}`);
} finally {
	// 4. Clean-up: this example's credential goes, and so does the client's session.
	if (credentialId) {
		await latchkey
			.delete("/v1/credentials/{id}", { params: { id: credentialId } })
			.then(() => console.log(`platform: deleted credential ${credentialId}`))
			.catch((err: unknown) => {
				exitCode = 1;
				console.error(`could not delete ${credentialId}: ${(err as Error).message}`);
			});
	}
	await latchkey.signOut().catch(() => {});
	await new Promise((resolve) => weatherApi.close(resolve));
}
process.exit(exitCode);
