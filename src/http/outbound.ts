import type { Config } from "../config.ts";
import { concat } from "../crypto/encoding.ts";
import { LatchkeyError } from "../errors.ts";

/**
 * Every request Latchkey makes to a URL an admin or operator chose (OAuth provider endpoints,
 * generic provisioners, AgentMail) goes through here, so that one set of rules bounds them all
 * (docs/security.md, "Outbound calls"):
 * - https only; plain http only to a loopback host, and only on a local deployment (one whose
 *   LATCHKEY_PUBLIC_URL is itself http: a real deployment is served over https);
 * - never to a private, link-local, loopback (outside local deployments) or cloud metadata
 *   address, nor with credentials in the URL, whose host a secret would otherwise be sent to;
 * - no redirects (a signed request or a bearer key must reach the configured host only), a
 *   timeout on every call, and an answer read to a bounded size.
 * The URL rules run when the URL is registered (400 naming the field) and again before every
 * call: a row written before the rules existed, or edited in the database, is refused too.
 */

export const OUTBOUND_TIMEOUT_MS = 10_000;
/** No provider answer Latchkey reads is anywhere near this; a bigger one is a broken or hostile peer. */
export const OUTBOUND_MAX_BYTES = 1024 * 1024;

/** Hosts that answer with instance credentials on some cloud, whatever address they resolve to. */
const METADATA_HOSTS = new Set([
	"metadata",
	"metadata.google.internal",
	"metadata.goog",
	"metadata.azure.com",
	"instance-data",
	"instance-data.ec2.internal",
]);
const LOOPBACK_NAMES = new Set(["localhost", "localhost.localdomain"]);

/** Whether a deployment is a local one, where loopback http endpoints (fakes, dev servers) are fine. */
export function isLocalDeployment(config: Pick<Config, "LATCHKEY_PUBLIC_URL">): boolean {
	return new URL(config.LATCHKEY_PUBLIC_URL).protocol === "http:";
}

function ipv4Parts(host: string): number[] | null {
	const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
	if (!m) return null;
	const parts = m.slice(1).map(Number);
	return parts.every((p) => p <= 255) ? parts : null;
}

type AddressClass = "public" | "loopback" | "private" | "link-local" | "metadata";

function classifyIpv4([a, b]: number[]): AddressClass {
	const [x = 0, y = 0] = [a, b];
	if (x === 127) return "loopback";
	if (x === 169 && y === 254) return "link-local"; // 169.254.169.254 is the metadata service
	if (x === 10 || (x === 172 && y >= 16 && y <= 31) || (x === 192 && y === 168)) return "private";
	// 0/8 reaches the host itself on Linux; 100.64/10 (carrier NAT) holds Alibaba's metadata.
	if (x === 0 || (x === 100 && y >= 64 && y <= 127)) return "private";
	return "public";
}

/** The 16-bit groups of an IPv6 literal as the URL parser writes it (compressed, lower case). */
function ipv6Groups(host: string): number[] | null {
	const inner = host.slice(1, -1);
	const [head = "", tail] = inner.split("::");
	const parse = (s: string) => (s === "" ? [] : s.split(":").map((g) => Number.parseInt(g, 16)));
	const left = parse(head);
	const right = tail === undefined ? [] : parse(tail);
	const fill = 8 - left.length - right.length;
	if (fill < 0 || left.concat(right).some((g) => Number.isNaN(g))) return null;
	return [...left, ...Array(tail === undefined ? 0 : fill).fill(0), ...right];
}

function classifyIpv6(groups: number[]): AddressClass {
	const [g0 = 0, , , , , g5 = 0, g6 = 0, g7 = 0] = groups;
	if (groups.every((g, i) => (i === 7 ? g === 1 : g === 0))) return "loopback";
	if (groups.every((g) => g === 0)) return "private";
	// IPv4-mapped (::ffff:a.b.c.d) reaches the IPv4 address it carries.
	if (groups.slice(0, 5).every((g) => g === 0) && g5 === 0xffff) {
		return classifyIpv4([g6 >> 8, g6 & 0xff, g7 >> 8, g7 & 0xff]);
	}
	if ((g0 & 0xfe00) === 0xfc00) return "private"; // fc00::/7, also AWS's fd00:ec2::254
	if ((g0 & 0xffc0) === 0xfe80) return "link-local"; // fe80::/10
	return "public";
}

function classifyHost(hostname: string): AddressClass {
	const host = hostname.toLowerCase().replace(/\.$/, "");
	if (METADATA_HOSTS.has(host)) return "metadata";
	if (LOOPBACK_NAMES.has(host) || host.endsWith(".localhost")) return "loopback";
	const v4 = ipv4Parts(host);
	if (v4) return classifyIpv4(v4);
	if (host.startsWith("[")) {
		const groups = ipv6Groups(host);
		return groups ? classifyIpv6(groups) : "private";
	}
	// Names reserved for internal networks never lead anywhere public.
	if (host.endsWith(".internal") || host.endsWith(".local")) return "private";
	return "public";
}

/**
 * Why Latchkey will not call `raw`, or null when it may. A hostname is judged as written: the
 * Workers runtime resolves names itself, so only literal addresses and known names are caught
 * here (Cloudflare's egress does not reach private networks in any case).
 */
export function outboundUrlProblem(
	raw: string,
	config: Pick<Config, "LATCHKEY_PUBLIC_URL">,
): string | null {
	let url: URL;
	try {
		url = new URL(raw);
	} catch {
		return "must be an absolute URL";
	}
	if (url.username !== "" || url.password !== "") {
		return "must not carry credentials (user:password@)";
	}
	if (url.protocol !== "https:" && url.protocol !== "http:") return "must be an https URL";
	const kind = classifyHost(url.hostname);
	const local = isLocalDeployment(config);
	switch (kind) {
		case "metadata":
			return "must not point at a cloud metadata address";
		case "link-local":
			return "must not point at a link-local address (169.254.0.0/16, fe80::/10)";
		case "private":
			return "must not point at a private or internal address";
		case "loopback":
			return local ? null : "must not point at a loopback address";
		default:
			if (url.protocol === "http:") {
				return local
					? "must be https (plain http only to a loopback host on a local deployment)"
					: "must be an https URL";
			}
			return null;
	}
}

/** Throws 400 invalid_request naming `field` when `raw` is not a URL Latchkey will call. */
export function assertOutboundUrl(
	raw: string | null | undefined,
	field: string,
	config: Pick<Config, "LATCHKEY_PUBLIC_URL">,
): void {
	if (raw === null || raw === undefined) return;
	const problem = outboundUrlProblem(raw, config);
	if (problem === null) return;
	throw new LatchkeyError("invalid_request", `The ${field} is not a URL Latchkey will call.`, {
		hint: "Use an https URL on a public host (docs/security.md, 'Outbound calls').",
		detail: [{ field, location: "json", message: problem }],
	});
}

/**
 * Why an outbound call failed: the peer could not be reached (network, timeout), Latchkey
 * refused to make or finish the call (a disallowed URL, a redirect, an oversized answer), or
 * the peer answered an error status (left to the caller, which reads the status).
 */
export type OutboundFailure = "unreachable" | "refused";

/**
 * The error `outboundFetch` throws: provider_unavailable (502 should it reach a response), with
 * the failure kind in `detail`; the message names the cause, never a URL's query or any body.
 */
function callFailed(failure: OutboundFailure, message: string): LatchkeyError {
	return new LatchkeyError("provider_unavailable", message, { detail: { failure } });
}

/** The failure kind of an error `outboundFetch` threw, or null for any other error. */
export function outboundFailureOf(err: unknown): OutboundFailure | null {
	if (!(err instanceof LatchkeyError) || err.code !== "provider_unavailable") return null;
	const failure = (err.detail as { failure?: unknown } | undefined)?.failure;
	return failure === "unreachable" || failure === "refused" ? failure : null;
}

/**
 * A job-error sentence for a failed outbound call: "<peer> was unreachable (<what>: <cause>)."
 * or "Latchkey refused the call to <peer> (…)."; null for an error that is not an outbound
 * failure (the caller rethrows it).
 */
export function describeOutboundFailure(err: unknown, peer: string, what: string): string | null {
	const failure = outboundFailureOf(err);
	if (failure === null) return null;
	const cause = (err as Error).message;
	return failure === "unreachable"
		? `${peer} was unreachable (${what}: ${cause}).`
		: `Latchkey refused the call to ${peer} (${what}: ${cause}).`;
}

export interface OutboundInit extends Omit<RequestInit, "redirect" | "signal"> {
	timeoutMs?: number;
	maxBytes?: number;
	/**
	 * `"skip"`: a 2xx's body is not read (its text is ""); a webhook receiver's answer is not
	 * ours to read. Default `"read"`.
	 */
	okBody?: "read" | "skip";
	/**
	 * `"truncate"`: an answer over `maxBytes` (or cut off) gives what came, up to the bound,
	 * instead of failing; for callers that only quote it. Default `"refuse"`.
	 */
	overflow?: "refuse" | "truncate";
	/** A caller's own signal (oauth4webapi passes one); the timeout applies as well. */
	signal?: AbortSignal | null;
}

/** An answer read whole (within the bound): the body is text, already consumed. */
export interface OutboundResponse {
	status: number;
	ok: boolean;
	headers: Headers;
	text: string;
}

async function readBounded(res: Response, maxBytes: number, truncate: boolean): Promise<string> {
	const declared = Number(res.headers.get("content-length") ?? Number.NaN);
	if (declared > maxBytes && !truncate) {
		await res.body?.cancel();
		throw callFailed("refused", `the answer is larger than ${maxBytes} bytes`);
	}
	if (!res.body) return "";
	const reader = res.body.getReader();
	const chunks: Uint8Array[] = [];
	let size = 0;
	try {
		for (;;) {
			const { done, value } = await reader.read();
			if (done) break;
			if (size + value.byteLength > maxBytes) {
				await reader.cancel().catch(() => undefined);
				if (!truncate) throw callFailed("refused", `the answer is larger than ${maxBytes} bytes`);
				chunks.push(value.subarray(0, maxBytes - size));
				break;
			}
			size += value.byteLength;
			chunks.push(value);
		}
	} catch (err) {
		// Cut off or timed out: a caller that only quotes the answer keeps what came.
		if (!truncate || outboundFailureOf(err) !== null) throw err;
	}
	return new TextDecoder().decode(concat(...chunks));
}

/**
 * Calls `url` under the rules above. Throws (`callFailed`) when the call could not be made or
 * finished; any status that is not a redirect comes back for the caller to judge.
 */
export async function outboundFetch(
	config: Pick<Config, "LATCHKEY_PUBLIC_URL">,
	url: string,
	init: OutboundInit = {},
): Promise<OutboundResponse> {
	const problem = outboundUrlProblem(url, config);
	if (problem !== null) throw callFailed("refused", `the URL ${problem}`);
	const {
		timeoutMs = OUTBOUND_TIMEOUT_MS,
		maxBytes = OUTBOUND_MAX_BYTES,
		signal,
		okBody = "read",
		overflow = "refuse",
		...rest
	} = init;
	const timeout = AbortSignal.timeout(timeoutMs);
	let res: Response;
	try {
		res = await fetch(url, {
			...rest,
			signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
			redirect: "manual",
		});
	} catch {
		throw callFailed(
			"unreachable",
			timeout.aborted ? `no answer within ${timeoutMs / 1000} s` : "the connection failed",
		);
	}
	if (res.status >= 300 && res.status < 400) {
		await res.body?.cancel();
		throw callFailed("refused", `it answered a redirect (${res.status}), which is not followed`);
	}
	if (res.ok && okBody === "skip") {
		await res.body?.cancel().catch(() => undefined);
		return { status: res.status, ok: true, headers: res.headers, text: "" };
	}
	let text: string;
	try {
		text = await readBounded(res, maxBytes, overflow === "truncate");
	} catch (err) {
		if (outboundFailureOf(err) !== null) throw err;
		throw callFailed(
			"unreachable",
			timeout.aborted ? `no answer within ${timeoutMs / 1000} s` : "the answer was cut off",
		);
	}
	return { status: res.status, ok: res.ok, headers: res.headers, text };
}
