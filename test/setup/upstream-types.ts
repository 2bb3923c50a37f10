/** What the proxy tests' upstream (test/setup/upstream.ts) records and reports, per tenant. */

/** One request the upstream received. */
export interface UpstreamRecord {
	method: string;
	path: string;
	/** The raw query, `""` or starting with `?`. */
	query: string;
	/** Lower-case names; repeated headers joined with ", ". */
	headers: Record<string, string>;
	body_bytes: number;
	/** The body as text when at most 64 KiB, else null. */
	body: string | null;
	/** What the upstream answered (0 while a request is held). */
	status: number;
}

/** `GET /_control/<tenant>`. */
export interface UpstreamState {
	requests: UpstreamRecord[];
	/** The last upload: bytes so far, finished, and whether every byte was the pattern. */
	upload: { received: number; done: boolean; pattern_ok: boolean };
	/** The last download: bytes sent, and what let a held one go on. */
	download: { sent: number; released_by: "control" | "timeout" | null };
}

/** Byte i of every pattern body is i % PATTERN_PERIOD. */
export const PATTERN_PERIOD = 251;
