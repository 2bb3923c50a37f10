import { z } from "@hono/zod-openapi";
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from "../crypto/encoding.ts";
import type { CursorKey } from "../db/pagination.ts";
import { LatchkeyError } from "../errors.ts";

/**
 * Lists on the wire: the `limit` and `cursor` query parameters, and pages whose `next_cursor`
 * is an opaque encoding of a keyset position (src/db/pagination.ts).
 */

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 100;
const MAX_CURSOR_LENGTH = 512;
const CURSOR_VERSION = 1;
const ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

export const ListQuery = z.object({
	limit: z.coerce
		.number()
		.int()
		.min(1)
		.max(MAX_LIMIT)
		.default(DEFAULT_LIMIT)
		.openapi({ description: `Page size, 1–${MAX_LIMIT}.`, example: 20 }),
	cursor: z
		.string()
		.min(1)
		.max(MAX_CURSOR_LENGTH)
		.optional()
		.openapi({ description: "The `next_cursor` of the previous page; omit for the first page." }),
});

export type ListQueryInput = z.output<typeof ListQuery>;

export interface Page<T> {
	data: T[];
	next_cursor: string | null;
}

export function encodeCursor(key: CursorKey): string {
	const payload = { v: CURSOR_VERSION, t: key.createdAt.getTime(), i: key.id };
	return toBase64Url(utf8(JSON.stringify(payload)));
}

function badCursor(message: string): LatchkeyError {
	return new LatchkeyError("invalid_request", "The cursor is invalid.", {
		hint: "Pass back the next_cursor of the previous page unchanged, or omit it to start over.",
		detail: [{ field: "cursor", location: "query", message }],
	});
}

/** Throws `invalid_request` naming `cursor` for anything this service did not produce. */
export function decodeCursor(cursor: string): CursorKey {
	if (cursor.length > MAX_CURSOR_LENGTH || !BASE64URL.test(cursor)) {
		throw badCursor("not a cursor issued by this API");
	}
	let parsed: unknown;
	try {
		parsed = JSON.parse(fromUtf8(fromBase64Url(cursor)));
	} catch {
		throw badCursor("not a cursor issued by this API");
	}
	if (typeof parsed !== "object" || parsed === null)
		throw badCursor("not a cursor issued by this API");
	const { v, t, i } = parsed as Record<string, unknown>;
	if (v !== CURSOR_VERSION || typeof t !== "number" || !Number.isSafeInteger(t) || t < 0) {
		throw badCursor("not a cursor issued by this API");
	}
	if (typeof i !== "string" || !ID_PATTERN.test(i))
		throw badCursor("not a cursor issued by this API");
	const createdAt = new Date(t);
	if (Number.isNaN(createdAt.getTime())) throw badCursor("not a cursor issued by this API");
	const key = { createdAt, id: i };
	// Only the exact encoding we issue is accepted, so an edited cursor cannot alias a valid one.
	if (encodeCursor(key) !== cursor) throw badCursor("not a cursor issued by this API");
	return key;
}

/** Decodes an optional cursor query parameter. */
export function cursorFrom(query: { cursor?: string | undefined }): CursorKey | undefined {
	return query.cursor === undefined ? undefined : decodeCursor(query.cursor);
}

/**
 * Turns rows fetched with `limit + 1` (in keyset order) into a page: the extra row only says
 * that another page exists, and the cursor points at the last row shown.
 */
export function paginate<T extends CursorKey>(rows: T[], limit: number): Page<T> {
	if (rows.length <= limit) return { data: rows, next_cursor: null };
	const data = rows.slice(0, limit);
	const last = data[data.length - 1];
	return { data, next_cursor: last ? encodeCursor(last) : null };
}

export function mapPage<T, U>(page: Page<T>, fn: (item: T) => U): Page<U> {
	return { data: page.data.map(fn), next_cursor: page.next_cursor };
}
