import { concat } from "../crypto/encoding.ts";
import { LatchkeyError } from "../errors.ts";

/**
 * Request bodies of proxied calls stream to the upstream as they arrive: never held whole, so a
 * 100 MB upload costs the isolate a few chunks (docs/proxy.md, "Bodies"). The only exception is
 * a small body of an OAuth2 call, kept (up to REPLAY_LIMIT) so that the one retry after a forced
 * refresh can send it again.
 */

/** A body up to this size is kept for the retry of an OAuth2 call that met a 401. */
export const REPLAY_LIMIT = 64 * 1024;

export type PreparedBody =
	| { kind: "none" }
	/** Whole, in memory: small enough to send twice. */
	| { kind: "bytes"; bytes: Uint8Array }
	/** Streamed once; `length` when the caller declared it (kept as the upstream's Content-Length). */
	| { kind: "stream"; stream: ReadableStream<Uint8Array>; length: number | null };

export const payloadTooLarge = (max: number) =>
	new LatchkeyError("payload_too_large", `The request body exceeds ${max} bytes.`, {
		hint: `The proxy forwards request bodies of at most ${max} bytes (LATCHKEY_PROXY_MAX_REQUEST_BYTES).`,
	});

/** The declared Content-Length: null when absent; a malformed one is refused. */
export function declaredLength(headers: Headers): number | null {
	const raw = headers.get("content-length");
	if (raw === null) return null;
	if (!/^\d{1,15}$/.test(raw.trim())) {
		throw new LatchkeyError("invalid_request", "The Content-Length header is malformed.", {
			detail: [{ field: "content-length", location: "header", message: "must be a number" }],
		});
	}
	return Number(raw.trim());
}

/**
 * The body as it will be sent. With `replay`, a body that turns out to be at most REPLAY_LIMIT
 * bytes is read whole; a longer one (declared, or found while reading) is streamed, the part
 * already read first.
 */
export async function prepareBody(
	body: ReadableStream<Uint8Array> | null,
	length: number | null,
	replay: boolean,
	max: number,
): Promise<PreparedBody> {
	if (!body) return { kind: "none" };
	if (!replay || (length !== null && length > REPLAY_LIMIT)) {
		return { kind: "stream", stream: body, length };
	}
	const reader = body.getReader();
	const chunks: Uint8Array[] = [];
	let size = 0;
	for (;;) {
		const { done, value } = await reader.read();
		if (done) {
			if (size > max) throw payloadTooLarge(max);
			return { kind: "bytes", bytes: concat(...chunks) };
		}
		chunks.push(value);
		size += value.byteLength;
		if (size > REPLAY_LIMIT) break;
	}
	// Too big to keep: what was read goes first, then the rest as it comes.
	let next = 0;
	const stream = new ReadableStream<Uint8Array>({
		async pull(controller) {
			const held = chunks[next];
			if (held) {
				chunks[next++] = new Uint8Array(0);
				controller.enqueue(held);
				return;
			}
			const { done, value } = await reader.read();
			if (done) controller.close();
			else controller.enqueue(value);
		},
		cancel(reason) {
			return reader.cancel(reason);
		},
	});
	return { kind: "stream", stream, length };
}

/**
 * workerd's stream of a declared length (its output keeps the Content-Length); absent outside
 * workerd, where a declared length is simply not kept.
 */
type FixedLengthStreamClass = new (
	length: number,
) => { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> };
const FixedLength = (globalThis as unknown as { FixedLengthStream?: FixedLengthStreamClass })
	.FixedLengthStream;

/** A body on its way upstream, with what it saw. */
export interface Sending {
	body: BodyInit | null;
	/** The body went over the limit while streaming (the upload was cut). */
	tooLarge(): boolean;
}

/**
 * The fetch body of a prepared body. A stream passes a counting step that cuts it past `max`
 * and reports each chunk to `moved` (the proxy's time-out counts from the last byte sent); a
 * declared length is kept, so the upstream gets its Content-Length rather than a chunked body.
 */
export function sending(
	body: PreparedBody,
	max: number,
	moved: () => void,
	abort: () => void,
): Sending {
	if (body.kind === "none") return { body: null, tooLarge: () => false };
	if (body.kind === "bytes")
		return { body: body.bytes as unknown as BodyInit, tooLarge: () => false };
	let seen = 0;
	let over = false;
	const counted = body.stream.pipeThrough(
		new TransformStream<Uint8Array, Uint8Array>({
			transform(chunk, controller) {
				seen += chunk.byteLength;
				if (seen > max) {
					over = true;
					// Cut the upload itself (the fetch is aborted, which cancels this stream): the
					// upstream must not take what came as the whole body.
					abort();
					return;
				}
				moved();
				controller.enqueue(chunk);
			},
		}),
	);
	if (body.length === null || !FixedLength) return { body: counted, tooLarge: () => over };
	const fixed = new FixedLength(body.length);
	// A body that is shorter or longer than declared fails the upload; the fetch reports it.
	counted.pipeTo(fixed.writable).catch(() => {});
	return { body: fixed.readable, tooLarge: () => over };
}
