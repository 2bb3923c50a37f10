import { rmSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../../scripts/lib/net.ts";
import { serveWorker } from "../../scripts/lib/serve.ts";
import { ROOT } from "../../scripts/lib/wrangler.ts";

/**
 * The real worker, bundled as `wrangler deploy` bundles it and served on workerd (as `npm start`
 * serves it), on the bindings the suite's global setup provides: the client tests call it over
 * HTTP as an agent runtime would.
 */
export async function startTestWorker(
	bindings: Record<string, string>,
): Promise<{ url: string; stop(): Promise<void> }> {
	const port = await freePort();
	const buildDir = join(ROOT, ".latchkey", `client-test-build-${port}`);
	try {
		const served = await serveWorker({
			bindings: { ...bindings, LATCHKEY_PUBLIC_URL: `http://127.0.0.1:${port}` },
			host: "127.0.0.1",
			port,
			buildDir,
			quietStdout: true,
		});
		return {
			url: served.url,
			stop: async () => {
				await served.dispose();
				rmSync(buildDir, { recursive: true, force: true });
			},
		};
	} catch (err) {
		rmSync(buildDir, { recursive: true, force: true });
		throw err;
	}
}
