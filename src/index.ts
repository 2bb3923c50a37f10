import { createApp } from "./app.ts";
import { type Env, loadConfig } from "./config.ts";
import { runJobs } from "./jobs/index.ts";
import { createLogger } from "./log.ts";
import { createServices } from "./services.ts";
import { Timing } from "./timing.ts";

const app = createApp();

export default {
	fetch: app.fetch,

	async scheduled(controller, env, ctx) {
		const logger = createLogger("info", { cron: controller.cron });
		let config: ReturnType<typeof loadConfig>;
		try {
			config = loadConfig(env);
		} catch (err) {
			logger.error("scheduled run skipped: misconfigured", {
				error_message: (err as Error).message,
			});
			return;
		}
		const { services, dispose } = createServices(config, logger, new Timing());
		try {
			await runJobs(services);
		} finally {
			ctx.waitUntil(dispose());
		}
	},
} satisfies ExportedHandler<Env>;
