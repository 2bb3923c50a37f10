import type { Env } from "../config.ts";
import type { Logger } from "../log.ts";
import type { Services } from "../services.ts";
import type { Timing } from "../timing.ts";

export type AppEnv = {
	Bindings: Env;
	Variables: {
		requestId: string;
		timing: Timing;
		logger: Logger;
		services: Services;
	};
};
