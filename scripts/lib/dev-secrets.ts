import { randomBytes } from "node:crypto";
import { exportJWK, generateKeyPair } from "jose";

export interface DevSecrets {
	LATCHKEY_ADMIN_TOKEN: string;
	LATCHKEY_ENCRYPTION_KEYS: string;
	LATCHKEY_ENCRYPTION_ACTIVE_KEY: string;
	LATCHKEY_JWT_SIGNING_KEYS: string;
	LATCHKEY_HMAC_SECRET: string;
	UPSTASH_REDIS_REST_TOKEN: string;
}

function randomBase64url(bytes: number): string {
	return randomBytes(bytes).toString("base64url");
}

/**
 * Key ids carry the creation date so a rotated-in key is distinguishable from the one it
 * replaces when both sit in the key set.
 */
function dateKeyId(prefix: string, now: Date): string {
	return `${prefix}${now.toISOString().slice(0, 10).replaceAll("-", "")}`;
}

/** A fresh, complete secret set for local development. Nothing here is fit for production. */
export async function generateDevSecrets(): Promise<DevSecrets> {
	const now = new Date();
	const encryptionKeyId = dateKeyId("k", now);
	const { privateKey } = await generateKeyPair("EdDSA", { extractable: true, crv: "Ed25519" });
	const jwk = await exportJWK(privateKey);
	const signingKey = { ...jwk, kid: dateKeyId("sig-", now), alg: "EdDSA", use: "sig" };
	return {
		LATCHKEY_ADMIN_TOKEN: `lka_${randomBase64url(32)}`,
		LATCHKEY_ENCRYPTION_KEYS: JSON.stringify({
			[encryptionKeyId]: randomBytes(32).toString("base64"),
		}),
		LATCHKEY_ENCRYPTION_ACTIVE_KEY: encryptionKeyId,
		LATCHKEY_JWT_SIGNING_KEYS: JSON.stringify({ keys: [signingKey] }),
		LATCHKEY_HMAC_SECRET: randomBase64url(32),
		UPSTASH_REDIS_REST_TOKEN: randomBase64url(32),
	};
}

const ASSIGNMENT = /^\s*(?:export\s+)?([\w.-]+)(?:\s*=|:\s)\s*(.*)$/;

/** Index of the first `quote` after the opening one that is not escaped by a backslash. */
function closingQuote(text: string, quote: string): number {
	for (let i = 1; i < text.length; i++) {
		if (text[i] === quote && text[i - 1] !== "\\") return i;
	}
	return -1;
}

/**
 * Reads KEY=value files the way wrangler's dotenv does, so a value means the same thing here
 * and inside `wrangler dev`: single quotes and backticks are literal, double quotes turn
 * `\n`/`\r` into line breaks, quoted values may span lines, and `#` ends an unquoted value.
 */
export function parseDotenv(text: string): Record<string, string> {
	const out: Record<string, string> = {};
	const lines = text.replace(/\r\n?/g, "\n").split("\n");
	for (let i = 0; i < lines.length; i++) {
		const match = ASSIGNMENT.exec(lines[i] ?? "");
		if (!match) continue;
		const key = match[1] as string;
		const first = (match[2] ?? "").trim();
		const quote = first[0];
		if (quote === '"' || quote === "'" || quote === "`") {
			let value = first;
			let end = i;
			let close = closingQuote(value, quote);
			while (close === -1 && end + 1 < lines.length) {
				end++;
				value += `\n${lines[end]}`;
				close = closingQuote(value, quote);
			}
			if (close !== -1) {
				i = end;
				const inner = value.slice(1, close);
				out[key] = quote === '"' ? inner.replaceAll("\\n", "\n").replaceAll("\\r", "\r") : inner;
				continue;
			}
		}
		const hash = first.indexOf("#");
		out[key] = (hash === -1 ? first : first.slice(0, hash)).trim();
	}
	return out;
}

const BARE = /^[\w\-.:/+=@,%~]*$/;

/**
 * Writes values so that both `parseDotenv` and wrangler read back exactly what went in. JSON
 * values go in single quotes: dotenv keeps those literal, whereas inside double quotes it
 * would leave `\"` escapes in place and the worker could not parse the JSON.
 */
export function formatDotenv(vars: Record<string, string>): string {
	const lines = Object.entries(vars).map(([key, value]) => {
		if (!/^[\w.-]+$/.test(key)) throw new Error(`invalid variable name: ${JSON.stringify(key)}`);
		return `${key}=${quoteValue(key, value)}`;
	});
	return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

function quoteValue(key: string, value: string): string {
	if (BARE.test(value)) return value;
	// A trailing backslash would escape the closing quote.
	const trailingBackslash = value.endsWith("\\");
	if (!value.includes("'") && !trailingBackslash) return `'${value}'`;
	if (!/["\\\r]/.test(value)) return `"${value.replaceAll("\n", "\\n")}"`;
	if (!value.includes("`") && !trailingBackslash) return `\`${value}\``;
	// Unquoted works too as long as nothing in it reads as a comment, a quote or a line end.
	if (!/[#\r\n]/.test(value) && value.trim() === value && !/^['"`]/.test(value)) return value;
	throw new Error(`${key}: this value cannot be written to a .env file unambiguously`);
}
