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
// Provider ids may contain dots.
const ID_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/;
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

/**
 * One cursor format for every list: base64url of `{"v":1,"t":<ms>,"i":"<id>"}`, the keyset
 * position of the last row shown. A list ordered by id alone (the providers) leaves out `t`.
 */
interface Position {
	t?: number | undefined;
	i: string;
}

function encodePosition({ t, i }: Position): string {
	const payload = t === undefined ? { v: CURSOR_VERSION, i } : { v: CURSOR_VERSION, t, i };
	return toBase64Url(utf8(JSON.stringify(payload)));
}

function badCursor(): LatchkeyError {
	return new LatchkeyError("invalid_request", "The cursor is invalid.", {
		hint: "Pass back the next_cursor of the previous page unchanged, or omit it to start over.",
		detail: [{ field: "cursor", location: "query", message: "not a cursor issued by this API" }],
	});
}

function decodePosition(cursor: string): Position {
	if (cursor.length > MAX_CURSOR_LENGTH || !BASE64URL.test(cursor)) throw badCursor();
	let parsed: unknown;
	try {
		parsed = JSON.parse(fromUtf8(fromBase64Url(cursor)));
	} catch {
		throw badCursor();
	}
	if (typeof parsed !== "object" || parsed === null) throw badCursor();
	const { v, t, i } = parsed as Record<string, unknown>;
	if (v !== CURSOR_VERSION) throw badCursor();
	if (t !== undefined && (typeof t !== "number" || !Number.isSafeInteger(t) || t < 0)) {
		throw badCursor();
	}
	if (typeof i !== "string" || !ID_PATTERN.test(i)) throw badCursor();
	const position = { t, i };
	// Only the exact encoding we issue is accepted, so an edited cursor cannot alias a valid one.
	if (encodePosition(position) !== cursor) throw badCursor();
	return position;
}

export function encodeCursor(key: CursorKey): string {
	return encodePosition({ t: key.createdAt.getTime(), i: key.id });
}

/** Throws `invalid_request` naming `cursor` for anything this service did not produce. */
export function decodeCursor(cursor: string): CursorKey {
	const { t, i } = decodePosition(cursor);
	const createdAt = new Date(t ?? Number.NaN);
	if (Number.isNaN(createdAt.getTime())) throw badCursor();
	return { createdAt, id: i };
}

/** For a list ordered by id alone: the cursor names the last id shown. */
export function encodeIdCursor(id: string): string {
	return encodePosition({ i: id });
}

export function decodeIdCursor(cursor: string): string {
	const { t, i } = decodePosition(cursor);
	if (t !== undefined) throw badCursor();
	return i;
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
