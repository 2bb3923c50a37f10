import type { Faults } from "./faults.ts";
import type { Phase, Recorder } from "./record.ts";

/** Past this a request is a hang, whatever it answers (API.md: 503 instead of a hang). */
export const HANG_MS = 10_000;
/** The client gives up this long after a route's bound; no answer by then is recorded as `none`. */
const CLIENT_GRACE_MS = 5_000;

export interface Answer {
	status: number;
	ms: number;
	body: unknown;
	text: string;
	headers: Headers;
	requestId: string;
	/** Faults active when the request was sent or answered. */
	faults: string;
}

export interface CallInit {
	method?: string;
	token?: string;
	json?: unknown;
	/** A request the soak must not count as workload (probes, setup, final checks). */
	record?: boolean;
	/**
	 * This route's own bound instead of HANG_MS: `POST /v1/admin/maintenance/run` runs the cron's
	 * jobs, each bounded by its own time budget (docs/operations.md), not by 10 s.
	 */
	hangMs?: number;
}

/**
 * The soak's HTTP client: every answer is checked against the rules of API.md that hold for
 * every route (error shape, no 500, 503 with Retry-After, an answer within 10 s), recorded per
 * operation and phase, and handed back for the operation's own expectations.
 */
export class SoakClient {
	/**
	 * Every lease Latchkey granted (a 201 from POST /v1/credentials/{id}/leases), with the
	 * faults around it: each must end up with exactly one `lease.granted` audit event.
	 */
	readonly granted = new Map<string, string>();

	constructor(
		private readonly baseUrl: string,
		private readonly rec: Recorder,
		private readonly faults: Faults,
		private readonly phase: () => Phase,
		/** Every secret planted so far, to search answers that must carry none. */
		private readonly secrets: () => Iterable<string>,
	) {}

	async call(op: string, path: string, init: CallInit = {}): Promise<Answer> {
		const headers = new Headers();
		if (init.token) headers.set("authorization", `Bearer ${init.token}`);
		if (init.json !== undefined) headers.set("content-type", "application/json");
		const hangMs = init.hangMs ?? HANG_MS;
		const faultsAtStart = this.faults.describe();
		const phase = this.phase();
		const t0 = performance.now();
		let res: Response;
		let text: string;
		try {
			res = await fetch(`${this.baseUrl}${path}`, {
				method: init.method ?? "GET",
				headers,
				body: init.json === undefined ? undefined : JSON.stringify(init.json),
				signal: AbortSignal.timeout(hangMs + CLIENT_GRACE_MS),
			});
			text = await res.text();
		} catch (err) {
			const ms = performance.now() - t0;
			const faults = joinFaults(faultsAtStart, this.faults.describe());
			if (init.record !== false) this.rec.samples.push({ op, phase, status: 0, ms });
			this.rec.fail({
				invariant: "an answer within 10 s (no hang)",
				op: `${init.method ?? "GET"} ${templ(path)} (${op})`,
				faults,
				expected: "an answer",
				actual: `no answer after ${ms.toFixed(0)} ms: ${String(err).slice(0, 200)}`,
			});
			return {
				status: 0,
				ms,
				body: null,
				text: "",
				headers: new Headers(),
				requestId: "",
				faults,
			};
		}
		const ms = performance.now() - t0;
		const faults = joinFaults(faultsAtStart, this.faults.describe());
		if (init.record !== false) this.rec.samples.push({ op, phase, status: res.status, ms });
		let body: unknown = null;
		try {
			body = text ? JSON.parse(text) : null;
		} catch {
			body = null;
		}
		const requestId = res.headers.get("x-request-id") ?? "";
		const leaseId = (body as { lease_id?: unknown } | null)?.lease_id;
		if (
			res.status === 201 &&
			init.method === "POST" &&
			/\/leases$/.test(path) &&
			typeof leaseId === "string"
		)
			this.granted.set(leaseId, faults);
		const where = `${init.method ?? "GET"} ${templ(path)} (${op})`;
		const excerpt = text.slice(0, 300);
		this.rec.expect(ms <= hangMs, {
			invariant: "an answer within 10 s (no hang)",
			op: where,
			faults,
			expected: `≤ ${hangMs} ms`,
			actual: `${ms.toFixed(0)} ms, ${res.status}`,
			requestId,
			excerpt,
		});
		this.rec.expect(res.status !== 500 && (res.status < 504 || res.status > 599), {
			invariant: "no 500",
			op: where,
			faults,
			expected: "no 500 (502/503 only as API.md says)",
			actual: String(res.status),
			requestId,
			excerpt,
		});
		if (res.status >= 400) {
			const e = (body as { error?: Record<string, unknown> } | null)?.error;
			const shaped =
				!!e &&
				typeof e.code === "string" &&
				typeof e.message === "string" &&
				typeof e.hint === "string" &&
				e.hint.length > 0 &&
				typeof e.request_id === "string";
			this.rec.expect(shaped, {
				invariant: "errors in API.md's shape",
				op: where,
				faults,
				expected: '{"error":{"code","message","hint","request_id"}}',
				actual: excerpt || "(empty body)",
				requestId,
			});
		}
		if (res.status === 503 || res.status === 429) {
			const retryAfter = res.headers.get("retry-after");
			this.rec.expect(!!retryAfter && /^\d+$/.test(retryAfter), {
				invariant: "503 with Retry-After",
				op: where,
				faults,
				expected: "Retry-After: <seconds>",
				actual: `Retry-After: ${retryAfter}`,
				requestId,
				excerpt,
			});
		}
		// Only a lease, a new key and a token pair may carry a secret (API.md); nothing else may.
		const mayCarry =
			res.status >= 200 &&
			res.status < 300 &&
			(/\/leases$/.test(path) || path === "/v1/auth/token" || /\/api-keys$/.test(path));
		if (!mayCarry && text) {
			let leaked = "";
			for (const secret of this.secrets())
				if (secret.length >= 8 && text.includes(secret)) {
					leaked = `${secret.slice(0, 6)}…`;
					break;
				}
			this.rec.expect(!leaked, {
				invariant: "no secret in an answer but a lease's or a new token's",
				op: where,
				faults,
				expected: "no planted secret",
				actual: `${res.status} carrying ${leaked}`,
				requestId,
			});
		}
		return { status: res.status, ms, body, text, headers: res.headers, requestId, faults };
	}
}

function joinFaults(a: string, b: string): string {
	if (a === b) return a;
	if (a === "none") return b;
	if (b === "none") return a;
	return `${a} → ${b}`;
}

/** A path with its ids replaced, so reports group by route. */
export function templ(path: string): string {
	return path.replace(/\/(cred|usr|lease)_[A-Za-z0-9_-]+/g, "/{$1}").replace(/\?.*$/, "");
}
