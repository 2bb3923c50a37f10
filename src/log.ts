/**
 * Structured JSON logs. Every record passes through `redact` on its way out, so a secret that
 * slips into a log call (a header, a provider's error body, an exception message) is masked
 * by key name and by value shape before it reaches Workers Logs.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export const REDACTED = "[REDACTED]";

const SECRET_KEY =
	/(pass(word|wd)?|secret|token|api_?key|authorization|cookie|private_?key|signature|code_verifier|ciphertext|headers|^code$|^key$|^d$|^dek$)/i;
// Identifiers and timestamps named after secrets ("token_expires_at", "api_key_id") are not secrets.
const NOT_SECRET_KEY = /(_at|_id|_ids|_in|_count|_type|_url)$/i;

// Shapes of secrets Latchkey handles, so a secret embedded in free text is masked too.
const SECRET_VALUE_PATTERNS: [RegExp, string][] = [
	[/\blk[a-z]?_[A-Za-z0-9_-]{8,}/g, REDACTED], // Latchkey API keys, refresh and admin tokens
	[/\bsk-[A-Za-z0-9_-]{8,}/g, REDACTED], // legacy keys
	[/\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, REDACTED], // JWTs
	[/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, `$1 ${REDACTED}`],
	[/\b(gh[pousr]_[A-Za-z0-9]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|ya29\.[A-Za-z0-9_-]+)/g, REDACTED],
	// AgentMail API keys (the managed credentials Latchkey provisions).
	[/\bam_[A-Za-z0-9_]{16,}/g, REDACTED],
	[
		/([?&](code|state|connect_id|token|access_token|refresh_token|client_secret|api_key|password)=)[^&\s"]+/gi,
		`$1${REDACTED}`,
	],
	// A parked OAuth connection's one-time id, in the path that finishes it.
	[/(\/v1\/oauth\/connections\/)[^/?#\s"]+/g, `$1${REDACTED}`],
	[/\b((pass(word|wd)?|secret|token|api_?key)\s*[=:]\s*)[^\s&",;]+/gi, `$1${REDACTED}`],
	[
		/("(access_token|refresh_token|id_token|client_secret|password|api_key|secret)"\s*:\s*")[^"]*"/gi,
		`$1${REDACTED}"`,
	],
];

// A piece every SECRET_VALUE_PATTERNS match contains: most log strings (paths, ids, times) hold
// none, and one test of this is far cheaper than ten replaces. Keep it in step with the list.
const MAYBE_SECRET =
	/lk|sk-|eyJ|bearer|basic|gh[pousr]_|xox|ya29|am_|=|\/v1\/oauth\/connections\/|pass|secret|token|api_?key/i;

export function redactString(value: string): string {
	if (!MAYBE_SECRET.test(value)) return value;
	return redactAll(value);
}

/** Every pattern, without the pre-check (what redactString must always agree with). */
export function redactAll(value: string): string {
	let out = value;
	for (const [pattern, replacement] of SECRET_VALUE_PATTERNS)
		out = out.replace(pattern, replacement);
	return out;
}

function isSecretKey(key: string): boolean {
	return SECRET_KEY.test(key) && !NOT_SECRET_KEY.test(key);
}

export function redact(value: unknown, depth = 0): unknown {
	if (depth > 8) return "[TRUNCATED]";
	if (typeof value === "string") return redactString(value);
	if (value === null || typeof value !== "object") return value;
	if (value instanceof Error) {
		return { name: value.name, message: redactString(value.message) };
	}
	if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
	const out: Record<string, unknown> = {};
	for (const [k, v] of Object.entries(value)) {
		out[k] =
			isSecretKey(k) && v !== null && v !== undefined && typeof v !== "boolean"
				? REDACTED
				: redact(v, depth + 1);
	}
	return out;
}

export interface Logger {
	debug(msg: string, fields?: Record<string, unknown>): void;
	info(msg: string, fields?: Record<string, unknown>): void;
	warn(msg: string, fields?: Record<string, unknown>): void;
	error(msg: string, fields?: Record<string, unknown>): void;
	child(fields: Record<string, unknown>): Logger;
}

export function createLogger(level: LogLevel = "info", base: Record<string, unknown> = {}): Logger {
	const min = LEVELS[level];
	const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
		if (LEVELS[lvl] < min) return;
		const record = redact({ level: lvl, msg, time: new Date().toISOString(), ...base, ...fields });
		const line = JSON.stringify(record);
		if (lvl === "error") console.error(line);
		else if (lvl === "warn") console.warn(line);
		else console.log(line);
	};
	return {
		debug: (m, f) => emit("debug", m, f),
		info: (m, f) => emit("info", m, f),
		warn: (m, f) => emit("warn", m, f),
		error: (m, f) => emit("error", m, f),
		child: (fields) => createLogger(level, { ...base, ...fields }),
	};
}
