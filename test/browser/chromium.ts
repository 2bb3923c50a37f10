import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { ROOT } from "../../scripts/lib/wrangler.ts";

/**
 * Debian's Chromium (`apt-get install chromium`), driven by playwright-core. `.ci/run` installs
 * it when missing; `LATCHKEY_CHROMIUM` points elsewhere.
 */
export const CHROMIUM_PATH = process.env.LATCHKEY_CHROMIUM ?? "/usr/bin/chromium";

/**
 * Whether the browser tests can run here. On CI a missing browser is a failure, never a skip
 * (the test file throws instead); on a developer's machine without Chromium they are skipped
 * with the reason printed, so `npm test` still passes on a machine with nothing installed.
 */
export function browserAvailable(): boolean {
	if (existsSync(CHROMIUM_PATH)) return true;
	if (process.env.CI) {
		throw new Error(
			`Chromium not found at ${CHROMIUM_PATH}; .ci/run installs it (apt-get install chromium)`,
		);
	}
	console.warn(`browser tests skipped: no Chromium at ${CHROMIUM_PATH} (apt-get install chromium)`);
	return false;
}

export function launchChromium(): Promise<Browser> {
	return chromium.launch({
		executablePath: CHROMIUM_PATH,
		headless: true,
		// Root in a container needs --no-sandbox; the rest keep Chromium from calling Google on a
		// machine with no internet (each refused connection slows its start).
		args: [
			"--no-sandbox",
			"--disable-gpu",
			"--disable-quic",
			"--no-first-run",
			"--disable-background-networking",
			"--disable-component-update",
			"--disable-sync",
			"--disable-dev-shm-usage",
		],
	});
}

/** Screenshots go under the test output (ignored by git); README embeds copies from docs/. */
export function screenshotPath(name: string): string {
	const dir = join(ROOT, "test-results", "screenshots");
	mkdirSync(dir, { recursive: true });
	return join(dir, `${name}.png`);
}
