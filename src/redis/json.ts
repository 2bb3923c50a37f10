import type { z } from "zod";

/**
 * A JSON value read back from Redis, checked against its schema. The REST client turns stored
 * JSON into an object by itself, and leaves other text a string: accept either form. Null when
 * it is not what the schema says (a corrupted or foreign value is treated as absent).
 */
export function parseStoredJson<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> | null {
	let data = value;
	if (typeof value === "string") {
		try {
			data = JSON.parse(value);
		} catch {
			return null;
		}
	}
	const parsed = schema.safeParse(data);
	return parsed.success ? parsed.data : null;
}
