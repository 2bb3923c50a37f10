import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/log.ts";
import { refreshAccessToken } from "../../src/oauth/service.ts";
import { createServices } from "../../src/services.ts";
import { Timing } from "../../src/timing.ts";

const testEnv = env as unknown as Record<string, string>;
const TOKEN_URL = "https://discord.com/api/oauth2/token";
// Something a provider might echo back in a refusal: it must never reach a log line.
const ECHOED = "personal-data-4711 refresh=opaque-rt-value";

afterEach(() => vi.restoreAllMocks());

describe("provider refusals in the log", () => {
	it("carry the status and the OAuth error fields, never the raw body", async () => {
		const realFetch = globalThis.fetch;
		vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => {
			const url = input instanceof Request ? input.url : String(input);
			if (url.startsWith(TOKEN_URL)) {
				return Promise.resolve(
					Response.json(
						{
							error: "invalid_grant",
							error_description: "The refresh token is no longer valid",
							debug: ECHOED,
						},
						{ status: 400 },
					),
				);
			}
			return realFetch(input, init);
		});
		const lines: string[] = [];
		for (const m of ["log", "warn", "error"] as const) {
			vi.spyOn(console, m).mockImplementation((line: string) => {
				lines.push(String(line));
			});
		}
		const config = loadConfig({
			...testEnv,
			OAUTH_DISCORD_CLIENT_ID: "client-id",
			OAUTH_DISCORD_CLIENT_SECRET: "client-secret-value",
		} as unknown as Parameters<typeof loadConfig>[0]);
		const { services, dispose } = createServices(config, createLogger("info"), new Timing());
		try {
			await expect(refreshAccessToken(services, "discord", "rt-value")).rejects.toMatchObject({
				code: "reconnect_required",
			});
		} finally {
			await dispose();
		}
		const refusal = lines
			.map((l) => JSON.parse(l) as Record<string, unknown>)
			.find((r) => r.msg === "oauth provider refused");
		expect(refusal).toMatchObject({
			provider: "discord",
			stage: "refresh",
			status: 400,
			error: "invalid_grant",
			error_description: "The refresh token is no longer valid",
		});
		expect(refusal).not.toHaveProperty("body");
		expect(lines.join("\n")).not.toContain("personal-data-4711");
		expect(lines.join("\n")).not.toContain("opaque-rt-value");
	});
});
