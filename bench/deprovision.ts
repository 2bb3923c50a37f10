import { readdirSync, readFileSync } from "node:fs";
import { startAgentMail } from "../test/setup/agentmail.ts";
import { startOAuthServer } from "../test/setup/oauth-server.ts";
import { apiClient, benchUser, startInfraProcess, startWorker } from "./lib.ts";

/**
 * `npx tsx bench/deprovision.ts`: how many deleted users one scheduled run gets through.
 *
 * The real worker on `npm start`'s runtime (`--dev`: `wrangler dev`) against real Postgres and Redis (embedded stand-ins when
 * absent, said loudly), the AgentMail fake and the oidc-provider test server as the upstreams.
 * Each user has an AgentMail pod (provisioned by listing credentials, as in production) and one
 * OAuth credential; all of them are deleted, then `POST /v1/admin/maintenance/run` (the cron's
 * work, whole) is called until every user is purged. Per run: wall time, the workerd process
 * tree's CPU time (from /proc, so Linux only), jobs finished and users purged.
 *
 * The upstream fakes answer in about a millisecond; real AgentMail and OAuth servers take tens
 * to hundreds. The run's claim loop stops claiming after its time budget (20 s), so with slow
 * upstreams a run finishes fewer jobs: see the estimate printed at the end.
 */
const USERS = Number(process.env.BENCH_DEPROVISION_USERS ?? 300);
const PROVIDER = "benchidp";

/** CPU seconds (user + system) of every `workerd` process below this one. */
function workerdCpuSeconds(): number {
	const ticksPerSecond = 100;
	const parent = new Map<number, number>();
	const stats = new Map<number, { name: string; ticks: number }>();
	for (const entry of readdirSync("/proc")) {
		const pid = Number(entry);
		if (!Number.isInteger(pid)) continue;
		let stat: string;
		try {
			stat = readFileSync(`/proc/${pid}/stat`, "utf8");
		} catch {
			continue;
		}
		// The name sits in parentheses and may contain spaces; the fields after it are fixed.
		const close = stat.lastIndexOf(")");
		const name = stat.slice(stat.indexOf("(") + 1, close);
		const fields = stat.slice(close + 2).split(" ");
		parent.set(pid, Number(fields[1]));
		stats.set(pid, { name, ticks: Number(fields[11]) + Number(fields[12]) });
	}
	const isMine = (pid: number) => {
		for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) {
			if (p === process.pid) return true;
		}
		return false;
	};
	let ticks = 0;
	for (const [pid, s] of stats) if (s.name.startsWith("workerd") && isMine(pid)) ticks += s.ticks;
	return ticks / ticksPerSecond;
}

const infra = await startInfraProcess();
const agentmail = await startAgentMail();
const oauth = await startOAuthServer({ redirectUris: ["http://127.0.0.1/callback"] });
const orgKey = `am_org_bench_${Date.now()}`;
console.log(`postgres: ${infra.postgres}, redis: ${infra.redis}, users: ${USERS}`);
const worker = await startWorker({
	...infra.bindings,
	AGENTMAIL_API_KEY: orgKey,
	AGENTMAIL_BASE_URL: agentmail.url,
}).catch(async (err) => {
	await Promise.all([infra.close(), agentmail.close(), oauth.close()]);
	throw err;
});
const admin = infra.bindings.LATCHKEY_ADMIN_TOKEN as string;

const api = apiClient(worker.url);

interface Summary {
	duration_ms: number;
	jobs: { name: string; ok: boolean; duration_ms: number; result?: Record<string, number> }[];
}

try {
	await api(`/v1/admin/providers/${PROVIDER}`, {
		method: "PUT",
		token: admin,
		json: {
			name: "Bench IdP",
			authorize_url: oauth.authorizeUrl,
			token_url: oauth.tokenUrl,
			revoke_url: oauth.revokeUrl,
			default_scopes: ["openid"],
			scope_separator: " ",
			pkce: true,
			client_auth: "basic",
			authorize_params: {},
			client_id: oauth.clientId,
			client_secret: oauth.clientSecret,
		},
	});

	// Users in parallel batches: setup is not what is measured.
	const setupStart = performance.now();
	for (let start = 0; start < USERS; start += 20) {
		await Promise.all(
			Array.from({ length: Math.min(20, USERS - start) }, async (_, k) => {
				const i = start + k;
				const { key } = await benchUser(api, admin, `deprovision-${i}`);
				await api("/v1/credentials", {
					method: "POST",
					token: key,
					json: {
						provider: PROVIDER,
						type: "oauth2",
						access_token: `at-${crypto.randomUUID()}`,
						refresh_token: `rt-${crypto.randomUUID()}`,
					},
				});
				// Listing provisions the AgentMail pod (waiting up to 2 s); list until it is there.
				for (let tries = 0; tries < 10; tries++) {
					const list = await api<{ data: { managed: boolean }[] }>("/v1/credentials", {
						token: key,
					});
					if (list.data.some((c) => c.managed)) break;
				}
				await api("/v1/me", { method: "DELETE", token: key });
			}),
		);
	}
	const pods = async () =>
		(
			(await (
				await fetch(`${agentmail.url}/_control/orgs/${encodeURIComponent(orgKey)}`)
			).json()) as { pods: unknown[] }
		).pods.length;
	console.log(
		`setup: ${USERS} users, ${await pods()} AgentMail pods, all deleted (${((performance.now() - setupStart) / 1000).toFixed(1)} s)`,
	);

	const rows: Record<string, string | number>[] = [];
	let purged = 0;
	let totalCpu = 0;
	let totalWall = 0;
	let totalJobs = 0;
	for (let run = 1; purged < USERS && run <= 50; run++) {
		const cpu0 = workerdCpuSeconds();
		const t0 = performance.now();
		const summary = await api<Summary>("/v1/admin/maintenance/run", {
			method: "POST",
			token: admin,
		});
		const wall = (performance.now() - t0) / 1000;
		const cpu = workerdCpuSeconds() - cpu0;
		const deletion = summary.jobs.find((j) => j.name === "account-deletion");
		const r = deletion?.result ?? {};
		const finished = (r.done ?? 0) + (r.failed ?? 0);
		purged += r.purged_users ?? 0;
		totalCpu += cpu;
		totalWall += wall;
		totalJobs += finished;
		rows.push({
			run,
			"wall s": wall.toFixed(2),
			"deletion s": ((deletion?.duration_ms ?? 0) / 1000).toFixed(2),
			"workerd CPU s": cpu.toFixed(2),
			claimed: r.claimed ?? 0,
			done: r.done ?? 0,
			retried: r.retried ?? 0,
			failed: r.failed ?? 0,
			"users purged": r.purged_users ?? 0,
			"due left": r.due_remaining ?? 0,
		});
		if (!deletion?.ok) {
			console.error("account-deletion failed:", deletion);
			break;
		}
	}
	console.table(rows);
	const jobsPerSecond = totalJobs / Math.max(0.001, totalWall);
	console.log(
		`purged ${purged}/${USERS} users in ${rows.length} runs; ${totalJobs} jobs in ${totalWall.toFixed(1)} s wall, ${totalCpu.toFixed(1)} s workerd CPU: ${jobsPerSecond.toFixed(0)} jobs/s, ${(totalCpu / Math.max(1, totalJobs)) * 1000 < 1 ? "<1" : ((totalCpu / Math.max(1, totalJobs)) * 1000).toFixed(1)} ms CPU per job`,
	);
	console.log(`AgentMail pods left: ${await pods()}`);
	// A rough model, not a measurement: five jobs run at once, and a job makes ~6 AgentMail calls
	// or 2 revocations one after another; a run stops at 500 jobs or after 20 s.
	for (const latencyMs of [50, 200]) {
		const perJob = ((6 + 2) / 2) * latencyMs;
		const jobsPerRun = Math.min(500, Math.floor((20_000 / perJob) * 5));
		console.log(
			`estimate at ${latencyMs} ms per upstream call: ~${jobsPerRun} jobs (~${Math.floor(jobsPerRun / 2)} users) per run`,
		);
	}
} finally {
	await worker.stop();
	await Promise.all([infra.close(), agentmail.close(), oauth.close()]);
}
