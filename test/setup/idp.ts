import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWK } from "jose";

/**
 * A stand-in external identity provider: serves a JWKS over real HTTP, and hands the private
 * keys to the tests so they can mint tokens as that provider would.
 */
export async function startIdentityProvider(): Promise<{
	jwksUrl: string;
	issuer: string;
	privateJwks: JWK[];
	close: () => Promise<void>;
}> {
	const keys: JWK[] = [];
	const publicKeys: JWK[] = [];
	for (const [alg, kid] of [
		["RS256", "idp-rsa"],
		["ES256", "idp-ec"],
	] as const) {
		const pair = await generateKeyPair(alg, { extractable: true });
		keys.push({ ...(await exportJWK(pair.privateKey)), alg, kid });
		publicKeys.push({ ...(await exportJWK(pair.publicKey)), alg, kid, use: "sig" });
	}
	const server = createServer((req, res) => {
		if (req.url === "/.well-known/jwks.json") {
			res.writeHead(200, { "content-type": "application/json" });
			res.end(JSON.stringify({ keys: publicKeys }));
			return;
		}
		res.writeHead(404).end();
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	return {
		jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`,
		issuer: `http://127.0.0.1:${port}`,
		privateJwks: keys,
		close: () => new Promise((resolve) => server.close(() => resolve())),
	};
}
