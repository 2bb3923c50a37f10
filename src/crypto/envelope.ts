/**
 * Envelope encryption for stored secrets (credential secrets, OAuth client secrets).
 *
 * Each seal draws a fresh AES-256-GCM data key, encrypts the plaintext with it, and stores the
 * data key wrapped (AES-256-GCM) by a ring key from LATCHKEY_ENCRYPTION_KEYS. Rotating the ring
 * key therefore only rewrites 61-byte wrapped keys, never the secrets. Layout and rotation
 * procedure: docs/security.md, "Encryption".
 */
import type { Config } from "../config.ts";
import { LatchkeyError } from "../errors.ts";
import { type Bytes, concat, fromBase64, randomBytes, toBase64, utf8 } from "./encoding.ts";
import { sha256 } from "./hash.ts";

/** The three sealed columns of a row (`ciphertext`, `data_key`, `key_id`). */
export interface Sealed {
	ciphertext: string;
	dataKey: string;
	keyId: string;
}

export interface KeyRing {
	readonly activeKeyId: string;
	/** Every configured key id, the active one included. */
	readonly keyIds: readonly string[];
}

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const DATA_KEY_BYTES = 32;
const HEADER_BYTES = 1 + IV_BYTES;

// The CryptoKeys live here rather than on the ring so that logging or serialising a ring can
// never show more than its ids.
const ringKeys = new WeakMap<KeyRing, ReadonlyMap<string, CryptoKey>>();
const rings = new WeakMap<Config, Promise<KeyRing>>();

// Fatal so that bytes that are not UTF-8 fail loudly instead of decoding to U+FFFD; ignoreBOM
// so that a secret starting with U+FEFF comes back with it.
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

// Matches only unpaired surrogates: with the `u` flag a valid pair is one code point.
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * The key ring of a configuration. Keys are imported once per config object (Workers reuse the
 * config across an isolate's requests) and are non-extractable.
 */
export function getKeyRing(config: Config): Promise<KeyRing> {
	let ring = rings.get(config);
	if (!ring) {
		ring = importRing(config);
		rings.set(config, ring);
		// A failed import must not poison the cache for the isolate's lifetime.
		ring.catch(() => rings.delete(config));
	}
	return ring;
}

async function importRing(config: Config): Promise<KeyRing> {
	const entries = Object.entries(config.LATCHKEY_ENCRYPTION_KEYS);
	const keys = new Map<string, CryptoKey>();
	for (const [id, encoded] of entries) {
		const raw = fromBase64(encoded);
		try {
			keys.set(id, await importAesKey(raw));
		} catch (cause) {
			throw new LatchkeyError(
				"misconfigured",
				`Latchkey is misconfigured: LATCHKEY_ENCRYPTION_KEYS key "${id}" could not be imported.`,
				{ cause },
			);
		} finally {
			raw.fill(0);
		}
	}
	const ring: KeyRing = Object.freeze({
		activeKeyId: config.LATCHKEY_ENCRYPTION_ACTIVE_KEY,
		keyIds: Object.freeze([...keys.keys()]),
	});
	ringKeys.set(ring, keys);
	return ring;
}

function importAesKey(raw: Bytes): Promise<CryptoKey> {
	return crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
}

/** Encrypts `plaintext` under a fresh data key wrapped by the ring's active key. */
export async function seal(ring: KeyRing, plaintext: string, aad: string): Promise<Sealed> {
	if (LONE_SURROGATE.test(plaintext)) {
		// UTF-8 cannot carry it, so the secret would not survive the round trip unchanged.
		throw new TypeError("plaintext is not well-formed Unicode (unpaired surrogate)");
	}
	const keyId = ring.activeKeyId;
	const wrappingKey = activeWrappingKey(ring);
	const rawDataKey = randomBytes(DATA_KEY_BYTES);
	try {
		const dataKey = await importAesKey(rawDataKey);
		const ciphertext = await encryptFramed(dataKey, utf8(plaintext), contentAd(aad));
		const wrapped = await encryptFramed(wrappingKey, rawDataKey, await wrapAd(ciphertext, keyId));
		return { ciphertext: toBase64(ciphertext), dataKey: toBase64(wrapped), keyId };
	} finally {
		rawDataKey.fill(0);
	}
}

/**
 * Decrypts a sealed secret. Any failure (unknown key id, altered or moved bytes, wrong AAD,
 * malformed encoding) throws `decryption_failed` naming `label`; it never yields a partial or
 * empty secret, and the message carries neither key material nor ciphertext.
 */
export async function open(
	ring: KeyRing,
	sealed: Sealed,
	aad: string,
	label: string,
): Promise<string> {
	try {
		const ciphertext = decodeFramed(sealed.ciphertext, TAG_BYTES);
		let dataKey = cachedDataKey(ring, sealed);
		if (!dataKey) {
			const rawDataKey = await unwrapDataKey(ring, sealed, ciphertext);
			try {
				dataKey = await importAesKey(rawDataKey);
			} finally {
				rawDataKey.fill(0);
			}
			cacheDataKey(ring, sealed, dataKey);
		}
		const plaintext = await decryptFramed(dataKey, ciphertext, contentAd(aad));
		return strictUtf8.decode(plaintext);
	} catch (err) {
		throw decryptionFailed(`The stored secret of ${label}`, err);
	}
}

/**
 * Re-wraps the data key under the active ring key; the ciphertext is untouched. Null when the
 * row is already under the active key. Throws `decryption_failed` when the current wrap cannot
 * be opened (unknown key id, altered bytes).
 */
export async function rewrap(ring: KeyRing, sealed: Sealed): Promise<Sealed | null> {
	const keyId = ring.activeKeyId;
	if (sealed.keyId === keyId) return null;
	const wrappingKey = activeWrappingKey(ring);
	let rawDataKey: Bytes;
	let ciphertext: Bytes;
	try {
		ciphertext = decodeFramed(sealed.ciphertext, TAG_BYTES);
		rawDataKey = await unwrapDataKey(ring, sealed, ciphertext);
	} catch (err) {
		throw decryptionFailed("A data key", err);
	}
	// The old wrap is about to be replaced: it no longer opens anything from this isolate.
	forgetDataKey(ring, sealed);
	try {
		const wrapped = await encryptFramed(wrappingKey, rawDataKey, await wrapAd(ciphertext, keyId));
		return { ciphertext: sealed.ciphertext, dataKey: toBase64(wrapped), keyId };
	} finally {
		rawDataKey.fill(0);
	}
}

/**
 * Legacy (version 1) AAD of a credential secret: its id, its owner ("system" for the shared,
 * unowned ones) and its type. It leaves `provider` and `host` unbound, so rows still under it are
 * read but never written: every seal uses `credentialAadV2`, and the re-wrap job re-seals them.
 * JSON keeps the fields unambiguous whatever characters they contain.
 */
export function credentialAad(row: { id: string; userId: string | null; type: string }): string {
	return JSON.stringify(["credential", row.id, row.userId ?? "system", row.type]);
}

/** The AAD version every new credential seal uses (the row's `aad_version` column). */
export const CREDENTIAL_AAD_VERSION = 2;

/** What a credential's AAD binds: everything that decides where and how its secret is used. */
export interface CredentialAadFields {
	id: string;
	userId: string | null;
	type: string;
	provider: string;
	host: string | null;
}

/**
 * Version 2 AAD of a credential secret: id, owner, type, and also `provider` and `host`, so
 * pointing a host-scoped credential's headers at another host (or a token at another provider)
 * in the database makes the secret fail to open instead of leaking it there. The version inside
 * keeps it distinct from every version 1 AAD.
 */
export function credentialAadV2(row: CredentialAadFields): string {
	return JSON.stringify([
		"credential",
		CREDENTIAL_AAD_VERSION,
		row.id,
		row.userId ?? "system",
		row.type,
		row.provider,
		row.host,
	]);
}

/** The AAD a row was sealed under, by its `aad_version`; null for a version this code lacks. */
export function credentialAadOf(row: CredentialAadFields & { aadVersion: number }): string | null {
	if (row.aadVersion === 1) return credentialAad(row);
	if (row.aadVersion === CREDENTIAL_AAD_VERSION) return credentialAadV2(row);
	return null;
}

/** AAD of an OAuth provider's client secret; the tag keeps it apart from credential AADs. */
export function providerAad(providerId: string): string {
	return JSON.stringify(["oauth_provider", providerId]);
}

/**
 * Unwrapped data keys, per ring, so that a credential leased again and again is unwrapped once
 * a minute rather than on every lease (the unwrap is a SHA-256 of the ciphertext, an AES-GCM
 * decryption and a key import). Bounded in size and age; an entry is used only for the exact
 * ciphertext its wrap was bound to, so the cache skips work, never a check; a re-wrap drops the
 * old wrap's entry; a new configuration is a new ring with an empty cache. The keys are
 * non-extractable CryptoKeys. docs/security.md, "Data-key cache".
 */
export const DATA_KEY_CACHE = { maxEntries: 1024, maxAgeMs: 60_000 } as const;

interface CachedDataKey {
	key: CryptoKey;
	ciphertext: string;
	at: number;
}

const dataKeys = new WeakMap<KeyRing, Map<string, CachedDataKey>>();

const dataKeyId = (sealed: Sealed) => `${sealed.keyId}\n${sealed.dataKey}`;

function cachedDataKey(ring: KeyRing, sealed: Sealed): CryptoKey | undefined {
	const cache = dataKeys.get(ring);
	const id = dataKeyId(sealed);
	const entry = cache?.get(id);
	if (!entry) return undefined;
	if (Date.now() - entry.at > DATA_KEY_CACHE.maxAgeMs || entry.ciphertext !== sealed.ciphertext) {
		cache?.delete(id);
		return undefined;
	}
	return entry.key;
}

function cacheDataKey(ring: KeyRing, sealed: Sealed, key: CryptoKey): void {
	let cache = dataKeys.get(ring);
	if (!cache) {
		cache = new Map();
		dataKeys.set(ring, cache);
	}
	if (cache.size >= DATA_KEY_CACHE.maxEntries) {
		// Insertion order: the first entry is the oldest.
		const oldest = cache.keys().next().value;
		if (oldest !== undefined) cache.delete(oldest);
	}
	cache.set(dataKeyId(sealed), { key, ciphertext: sealed.ciphertext, at: Date.now() });
}

function forgetDataKey(ring: KeyRing, sealed: Sealed): void {
	dataKeys.get(ring)?.delete(dataKeyId(sealed));
}

/** How many unwrapped data keys this isolate holds for `ring` (tests). */
export function cachedDataKeyCount(ring: KeyRing): number {
	return dataKeys.get(ring)?.size ?? 0;
}

/** Why a sealed value did not open, without any of its bytes. */
class Unopenable extends Error {}

function ringKey(ring: KeyRing, keyId: string): CryptoKey | undefined {
	return ringKeys.get(ring)?.get(keyId);
}

function activeWrappingKey(ring: KeyRing): CryptoKey {
	const key = ringKey(ring, ring.activeKeyId);
	if (!key) {
		throw new LatchkeyError(
			"misconfigured",
			"Latchkey is misconfigured: LATCHKEY_ENCRYPTION_ACTIVE_KEY names no key of the ring.",
		);
	}
	return key;
}

async function unwrapDataKey(ring: KeyRing, sealed: Sealed, ciphertext: Bytes): Promise<Bytes> {
	const wrappingKey = ringKey(ring, sealed.keyId);
	if (!wrappingKey) throw new Unopenable("its key id is not in LATCHKEY_ENCRYPTION_KEYS");
	const wrapped = decodeFramed(sealed.dataKey, TAG_BYTES);
	if (wrapped.length !== HEADER_BYTES + DATA_KEY_BYTES + TAG_BYTES) {
		throw new Unopenable("it is malformed");
	}
	return decryptFramed(wrappingKey, wrapped, await wrapAd(ciphertext, sealed.keyId));
}

// Every additional data starts with the format version, so bytes sealed under one version can
// never authenticate under another.
function contentAd(aad: string): Bytes {
	return concat(Uint8Array.of(VERSION), utf8(aad));
}

/**
 * The wrap is bound to the key id (a relabelled row fails even if two ids share key bytes) and
 * to the exact ciphertext it belongs to, which is itself bound to the row's AAD: a wrapped key
 * moved to another row fails at unwrap. Binding the ciphertext rather than the AAD lets
 * `rewrap` work from the sealed columns alone.
 */
async function wrapAd(ciphertext: Bytes, keyId: string): Promise<Bytes> {
	return concat(Uint8Array.of(VERSION), await sha256(ciphertext), utf8(keyId));
}

async function encryptFramed(key: CryptoKey, plaintext: Bytes, ad: Bytes): Promise<Bytes> {
	const iv = randomBytes(IV_BYTES);
	const sealed = await crypto.subtle.encrypt(
		{ name: "AES-GCM", iv, additionalData: ad, tagLength: TAG_BYTES * 8 },
		key,
		plaintext,
	);
	return concat(Uint8Array.of(VERSION), iv, new Uint8Array(sealed));
}

async function decryptFramed(key: CryptoKey, framed: Bytes, ad: Bytes): Promise<Bytes> {
	try {
		const plain = await crypto.subtle.decrypt(
			{
				name: "AES-GCM",
				iv: framed.subarray(1, HEADER_BYTES),
				additionalData: ad,
				tagLength: TAG_BYTES * 8,
			},
			key,
			framed.subarray(HEADER_BYTES),
		);
		return new Uint8Array(plain);
	} catch {
		throw new Unopenable("it failed authentication");
	}
}

function decodeFramed(text: string, minBody: number): Bytes {
	let bytes: Bytes;
	try {
		bytes = fromBase64(text);
	} catch {
		throw new Unopenable("it is malformed");
	}
	if (bytes.length < HEADER_BYTES + minBody) throw new Unopenable("it is malformed");
	if (bytes[0] !== VERSION) throw new Unopenable("it has an unknown format version");
	return bytes;
}

function decryptionFailed(subject: string, err: unknown): LatchkeyError {
	// Only our own reasons are quoted: anything else (a TypeError from the platform) could in
	// principle echo input, so it is summarised.
	const reason = err instanceof Unopenable ? err.message : "it could not be processed";
	return new LatchkeyError("decryption_failed", `${subject} could not be decrypted: ${reason}.`, {
		hint: "The key it was sealed with may be missing from LATCHKEY_ENCRYPTION_KEYS, or the stored row was altered. Report the request_id.",
	});
}
