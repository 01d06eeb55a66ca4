/**
 * Encryption at rest. Each store has a random 32-byte store key; values are sealed with
 * AES-256-CTR then HMAC-SHA-256 (encrypt-then-MAC), with separate encryption and MAC keys derived
 * from the store key by HKDF-SHA-256. The MAC also covers "associated data" naming where the value
 * lives (table and lookup key), so a ciphertext moved to another row does not authenticate.
 *
 * The store key itself is kept wrapped (sealed the same way) by a wrapping key that is
 * - derived from the user's passphrase with PBKDF2-SHA-512 (`STORE_KDF_ITERATIONS`), or
 * - a 32-byte key the caller supplies (e.g. from an OS keychain), or
 * - a random key in a key file beside a SQLite store (`key-file.ts`), or
 * - a non-extractable Web Crypto key kept beside an IndexedDB store (`"webcrypto"`, the browser
 *   default without a passphrase): script can use it but nobody can read its bytes, or
 * - nothing: `"none"` keeps the store key in clear next to the data (IndexedDB without a
 *   passphrase). That protects nothing against someone who can read the database; it exists so
 *   the on-disk format is the same and a passphrase can be required later by the application.
 *
 * Creating and unlocking are asynchronous: PBKDF2 runs off the calling thread
 * (`pbkdf2Sha512Async`), so opening a passphrase-protected store does not freeze a page.
 */
import {
  aes256Ctr,
  constantTimeEqual,
  decodeBase64,
  encodeBase64,
  hkdfSha256,
  hmacSha256,
  openWithCryptoKey,
  pbkdf2Sha512Async,
  randomBytes,
  sealWithCryptoKey,
  utf8Decode,
  utf8Encode,
  wipe,
} from "../../crypto/primitives/symmetric.ts";
import { StoreError, StoreKeyError } from "../errors.ts";
import type { JsonValue } from "../json.ts";
import type { Pickle, StoreIdentity } from "../records.ts";

/** What gets sealed: JSON, pickles (JSON-safe records of the crypto layer), or objects holding them. */
export type Sealable = JsonValue | Pickle | { readonly [key: string]: Sealable };

/** PBKDF2-SHA-512 iterations for new passphrase-protected stores (OWASP 2023 guidance: 210 000). */
export const STORE_KDF_ITERATIONS = 210_000;
/** Largest iteration count accepted from a stored header (bounds the work a corrupted file can cause). */
export const MAX_STORE_KDF_ITERATIONS = 10_000_000;
export const STORE_KEY_LENGTH = 32;
const SALT_LENGTH = 32;
const IV_LENGTH = 16;
const MAC_LENGTH = 32;
const FORMAT_VERSION = 1;
const HKDF_SALT = new Uint8Array(32);
const INFO_ENC = utf8Encode("keyroom store cipher v1: aes-256-ctr");
const INFO_MAC = utf8Encode("keyroom store cipher v1: hmac-sha-256");
const WRAP_AD = "keyroom store key";

/** Associated data binding a ciphertext to where it is stored (kind of record and its lookup key). */
export const rowAd = (...parts: readonly (string | number)[]): string => JSON.stringify(parts);

/**
 * Associated data of the account: it names the store's identity, kept in clear beside it, so an
 * identity rewritten in the file (another device ID for `restoreDeviceId` to log in as) leaves
 * the account unreadable (`TAMPERED`) rather than used under it.
 */
export const accountAd = (identity: StoreIdentity): string =>
  rowAd("account", identity.userId, identity.deviceId);

/**
 * Opens the sealed account of the store with `identity`. An account last written before it was
 * bound to the identity (`rowAd("account")`) still opens; the next save binds it.
 */
export function openAccount(cipher: StoreCipher, sealed: unknown, identity: StoreIdentity): unknown {
  try {
    return cipher.decrypt(sealed, accountAd(identity));
  } catch (e) {
    try {
      return cipher.decrypt(sealed, rowAd("account"));
    } catch {
      throw e;
    }
  }
}

/** How the store key is protected, as the caller states it when opening. */
export type KeyProtection =
  | { readonly kind: "passphrase"; readonly passphrase: string; readonly iterations?: number }
  | { readonly kind: "key"; readonly key: Uint8Array }
  | { readonly kind: "key-file"; readonly key: Uint8Array }
  | { readonly kind: "webcrypto"; readonly key: CryptoKey }
  | { readonly kind: "none" };

/** The persisted header (JSON-safe, no secrets in clear except for kind `"none"`). */
export type StoreKeyHeader =
  | {
      readonly version: 1;
      readonly kind: "passphrase";
      readonly salt: string;
      readonly iterations: number;
      readonly wrappedKey: string;
    }
  | { readonly version: 1; readonly kind: "key" | "key-file" | "webcrypto"; readonly wrappedKey: string }
  | { readonly version: 1; readonly kind: "none"; readonly storeKey: string };

const KIND_NAMES: Record<KeyProtection["kind"], string> = {
  passphrase: "a passphrase",
  key: "a caller-supplied key",
  "key-file": "a key file",
  webcrypto: "a Web Crypto key",
  none: "no passphrase or key",
};

const WRONG_KEY_MESSAGES: Record<Exclude<KeyProtection["kind"], "none">, string> = {
  passphrase: "wrong passphrase for this crypto store",
  key: "the key does not open this crypto store",
  "key-file": "the key file does not open this crypto store",
  webcrypto: "the Web Crypto key kept with this store does not open it",
};

interface SealKeys {
  readonly enc: Uint8Array;
  readonly mac: Uint8Array;
}

function splitKey(key: Uint8Array): SealKeys {
  return { enc: hkdfSha256(key, HKDF_SALT, INFO_ENC, 32), mac: hkdfSha256(key, HKDF_SALT, INFO_MAC, 32) };
}

/** Zeroes keys no longer needed (a wrapping key derived from a passphrase opens the store as well). */
function wipeKeys(keys: SealKeys): void {
  wipe(keys.enc);
  wipe(keys.mac);
}

/** MAC inputs up to this size are built in one buffer reused across calls (most sealed values). */
const MAC_SCRATCH_BYTES = 4096;
const macScratch = new Uint8Array(MAC_SCRATCH_BYTES);
const MAC_HEADER_LENGTH = 5;

/**
 * The MAC over the version, the associated data (its UTF-8 length, big-endian, then its bytes),
 * the IV and the ciphertext. Built in place rather than by concatenating new arrays: this runs
 * for every value read from or written to a store, and the copies cost more than the HMAC's
 * own work for a small value. Nothing secret passes through the buffer (public IV and
 * ciphertext, names of rows), so it is not wiped.
 */
function macOf(key: Uint8Array, ad: string, iv: Uint8Array, ct: Uint8Array): Uint8Array {
  const adBytes = utf8Encode(ad);
  const length = MAC_HEADER_LENGTH + adBytes.length + iv.length + ct.length;
  const buf = length <= MAC_SCRATCH_BYTES ? macScratch : new Uint8Array(length);
  buf[0] = FORMAT_VERSION;
  buf[1] = adBytes.length >>> 24;
  buf[2] = (adBytes.length >>> 16) & 0xff;
  buf[3] = (adBytes.length >>> 8) & 0xff;
  buf[4] = adBytes.length & 0xff;
  buf.set(adBytes, MAC_HEADER_LENGTH);
  buf.set(iv, MAC_HEADER_LENGTH + adBytes.length);
  buf.set(ct, MAC_HEADER_LENGTH + adBytes.length + iv.length);
  return hmacSha256(key, buf === macScratch ? buf.subarray(0, length) : buf);
}

/**
 * IVs are drawn from the system's CSPRNG in blocks of this many (they are public, so holding the
 * next few in memory reveals nothing): one `randomBytes` call per value cost as much as the MAC.
 */
const IV_POOL_SIZE = 64;
let ivPool: Uint8Array = new Uint8Array(0);
let ivPoolAt = 0;

/** A fresh random IV (a copy: the caller may keep it). */
function nextIv(): Uint8Array {
  if (ivPoolAt === ivPool.length) {
    ivPool = randomBytes(IV_LENGTH * IV_POOL_SIZE);
    ivPoolAt = 0;
  }
  const iv = ivPool.slice(ivPoolAt, ivPoolAt + IV_LENGTH);
  ivPool.fill(0, ivPoolAt, ivPoolAt + IV_LENGTH); // used once, never again
  ivPoolAt += IV_LENGTH;
  return iv;
}

function seal(keys: SealKeys, plaintext: Uint8Array, ad: string): string {
  const iv = nextIv();
  return sealed(keys, iv, aes256Ctr(keys.enc, iv, plaintext), ad);
}

/**
 * Sealed values up to this size are laid out for their base64 encoding in one buffer reused across
 * calls (an import seals thousands of rows a step; each a new off-heap buffer cost ~0.6 µs in its
 * CPU profile). It holds only the public parts (version, IV, ciphertext, MAC), so it is not wiped.
 */
const SEALED_SCRATCH_BYTES = 4096;
const sealedScratch = new Uint8Array(SEALED_SCRATCH_BYTES);

/** The stored form of a ciphertext `ct` encrypted from counter block `iv`: version, IV, `ct`, MAC. */
function sealed(keys: SealKeys, iv: Uint8Array, ct: Uint8Array, ad: string): string {
  const mac = macOf(keys.mac, ad, iv, ct);
  const length = 1 + IV_LENGTH + ct.length + MAC_LENGTH;
  const out = length <= SEALED_SCRATCH_BYTES ? sealedScratch.subarray(0, length) : new Uint8Array(length);
  out[0] = FORMAT_VERSION;
  out.set(iv, 1);
  out.set(ct, 1 + IV_LENGTH);
  out.set(mac, 1 + IV_LENGTH + ct.length);
  return encodeBase64(out);
}

/** `iv` + `blocks` as 128-bit big-endian numbers, modulo 2^128 (AES-CTR's counter arithmetic). */
export function addToCounter(iv: Uint8Array, blocks: number): Uint8Array {
  const out = iv.slice();
  let carry = blocks;
  for (let i = IV_LENGTH - 1; i >= 0 && carry > 0; i--) {
    const sum = (out[i] ?? 0) + (carry % 256);
    out[i] = sum & 0xff;
    carry = Math.floor(carry / 256) + (sum >> 8);
  }
  return out;
}

/**
 * Seals many values in one AES-CTR pass (one cipher set-up instead of one per value), in the
 * format `seal` writes: each value starts on a fresh counter block and its stored IV is the counter
 * block it starts from, so it opens on its own exactly as before. The batch's counter blocks are
 * consecutive from one random IV, never overlapping (the keystream between two values, up to the
 * next block, is discarded): the counter blocks used are as distinct as with one random IV each.
 */
function sealMany(
  keys: SealKeys,
  values: readonly { readonly value: Sealable; readonly ad: string }[],
): string[] {
  // JSON.stringify's output is well-formed UTF-16 (lone surrogates come out escaped), so it is
  // encoded straight into the batch's buffer, each value from a block boundary; ASCII JSON (every
  // pickle) fits the first guess, anything longer gets the worst case (3 bytes a UTF-16 unit).
  const texts = values.map(({ value }) => JSON.stringify(value));
  let capacity = 0;
  for (const t of texts) capacity += t.length + IV_LENGTH;
  let joined = new Uint8Array(capacity);
  let ends = layOut(texts, joined);
  if (ends === undefined) {
    joined = new Uint8Array(capacity * 3);
    ends = layOut(texts, joined) as number[];
  }
  const iv = nextIv();
  const used = Math.ceil((ends[ends.length - 1] ?? 0) / IV_LENGTH) * IV_LENGTH;
  const stream = aes256Ctr(keys.enc, iv, joined.subarray(0, used));
  wipe(joined);
  const out: string[] = [];
  let at = 0;
  for (const [i, { ad }] of values.entries()) {
    const end = ends[i] as number;
    out.push(sealed(keys, addToCounter(iv, at / IV_LENGTH), stream.subarray(at, end), ad));
    at = Math.ceil(end / IV_LENGTH) * IV_LENGTH;
  }
  return out;
}

const encoder = new TextEncoder();

/**
 * Encodes `texts` into `buffer`, each from a block boundary; returns where each ends, or undefined
 * when they do not fit.
 */
function layOut(texts: readonly string[], buffer: Uint8Array): number[] | undefined {
  const ends: number[] = [];
  let at = 0;
  for (const t of texts) {
    const { read, written } = encoder.encodeInto(t, buffer.subarray(at));
    if (read !== t.length) return undefined;
    ends.push(at + written);
    at = Math.ceil((at + written) / IV_LENGTH) * IV_LENGTH;
  }
  return ends;
}

/** Returns the plaintext, or undefined when the MAC does not check (wrong key or tampering). */
function open(keys: SealKeys, sealed: string, ad: string): Uint8Array | undefined {
  let bytes: Uint8Array;
  try {
    bytes = decodeBase64(sealed);
  } catch {
    return undefined;
  }
  if (bytes.length < 1 + IV_LENGTH + MAC_LENGTH || bytes[0] !== FORMAT_VERSION) return undefined;
  const iv = bytes.subarray(1, 1 + IV_LENGTH);
  const ct = bytes.subarray(1 + IV_LENGTH, bytes.length - MAC_LENGTH);
  const mac = bytes.subarray(bytes.length - MAC_LENGTH);
  const expected = macOf(keys.mac, ad, iv, ct);
  if (!constantTimeEqual(mac, expected)) return undefined;
  return aes256Ctr(keys.enc, iv, ct);
}

async function wrappingKeys(
  protection: Exclude<KeyProtection, { kind: "webcrypto" | "none" }>,
  salt: Uint8Array,
  iterations: number,
): Promise<SealKeys> {
  switch (protection.kind) {
    case "passphrase": {
      const derived = await pbkdf2Sha512Async(utf8Encode(protection.passphrase), salt, iterations, 32);
      const keys = splitKey(derived);
      wipe(derived);
      return keys;
    }
    case "key":
    case "key-file":
      if (protection.key.length !== STORE_KEY_LENGTH) {
        throw new StoreKeyError("WRONG_KEY", `the store key must be ${STORE_KEY_LENGTH} bytes`);
      }
      return splitKey(protection.key);
  }
}

/** The store key wrapped under `protection` (kinds with a wrapping key), as stored in the header. */
async function wrapStoreKey(
  protection: Exclude<KeyProtection, { kind: "none" }>,
  storeKey: Uint8Array,
  salt: Uint8Array,
  iterations: number,
): Promise<string> {
  if (protection.kind === "webcrypto") {
    return encodeBase64(await sealWithCryptoKey(protection.key, storeKey));
  }
  const keys = await wrappingKeys(protection, salt, iterations);
  try {
    return seal(keys, storeKey, WRAP_AD);
  } finally {
    wipeKeys(keys);
  }
}

async function unwrapStoreKey(
  protection: Exclude<KeyProtection, { kind: "none" }>,
  wrappedKey: string,
  salt: Uint8Array,
  iterations: number,
): Promise<Uint8Array | undefined> {
  if (protection.kind === "webcrypto") {
    let sealed: Uint8Array;
    try {
      sealed = decodeBase64(wrappedKey);
    } catch {
      return undefined;
    }
    return openWithCryptoKey(protection.key, sealed);
  }
  const keys = await wrappingKeys(protection, salt, iterations);
  try {
    return open(keys, wrappedKey, WRAP_AD);
  } finally {
    wipeKeys(keys);
  }
}

function checkIterations(n: unknown): number {
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1 || n > MAX_STORE_KDF_ITERATIONS) {
    throw new StoreKeyError("BAD_KEY_PARAMETERS", "the stored PBKDF2 iteration count is out of range");
  }
  return n;
}

/** Seals and opens JSON values with one store's key. Never shows the key (toJSON, inspect). */
export class StoreCipher {
  readonly #keys: SealKeys;
  readonly kind: KeyProtection["kind"];

  private constructor(storeKey: Uint8Array, kind: KeyProtection["kind"]) {
    this.#keys = splitKey(storeKey);
    this.kind = kind;
  }

  /** A new random store key, wrapped under `protection`; persist the header with the store. */
  static async create(protection: KeyProtection): Promise<{ cipher: StoreCipher; header: StoreKeyHeader }> {
    const storeKey = randomBytes(STORE_KEY_LENGTH);
    try {
      const cipher = new StoreCipher(storeKey, protection.kind);
      if (protection.kind === "none") {
        return { cipher, header: { version: 1, kind: "none", storeKey: encodeBase64(storeKey) } };
      }
      if (protection.kind === "passphrase") {
        // "" is most often an unset setting (`STORE_PASSPHRASE=`), and it protects nothing: refused
        // for new stores (one made with it before still opens with it).
        if (protection.passphrase === "") {
          throw new StoreError("BAD_OPTION", "the store passphrase is empty; give a passphrase or none");
        }
        const iterations = checkIterations(protection.iterations ?? STORE_KDF_ITERATIONS);
        const salt = randomBytes(SALT_LENGTH);
        const wrappedKey = await wrapStoreKey(protection, storeKey, salt, iterations);
        return {
          cipher,
          header: { version: 1, kind: "passphrase", salt: encodeBase64(salt), iterations, wrappedKey },
        };
      }
      const wrappedKey = await wrapStoreKey(protection, storeKey, new Uint8Array(0), 0);
      return { cipher, header: { version: 1, kind: protection.kind, wrappedKey } };
    } finally {
      wipe(storeKey);
    }
  }

  /** The protection kind a stored `header` names, without checking the rest of it. */
  static kindOf(header: unknown): KeyProtection["kind"] {
    return parseHeader(header).kind;
  }

  /** Unwraps the store key described by a stored `header` (validated here). */
  static async unlock(header: unknown, protection: KeyProtection): Promise<StoreCipher> {
    const h = parseHeader(header);
    if (h.kind !== protection.kind) {
      throw new StoreKeyError(
        "KEY_KIND_MISMATCH",
        `this store is protected by ${KIND_NAMES[h.kind]} but was opened with ${KIND_NAMES[protection.kind]}`,
      );
    }
    let storeKey: Uint8Array | undefined;
    if (h.kind === "none" || protection.kind === "none") {
      storeKey = decodeKey(h.kind === "none" ? h.storeKey : undefined);
    } else {
      const salt = h.kind === "passphrase" ? decodeKey(h.salt, SALT_LENGTH) : new Uint8Array(0);
      const iterations = h.kind === "passphrase" ? h.iterations : 0;
      storeKey = await unwrapStoreKey(protection, h.wrappedKey, salt, iterations);
      if (storeKey === undefined || storeKey.length !== STORE_KEY_LENGTH) {
        throw new StoreKeyError("WRONG_KEY", WRONG_KEY_MESSAGES[protection.kind]);
      }
    }
    try {
      return new StoreCipher(storeKey, h.kind);
    } finally {
      wipe(storeKey);
    }
  }

  /**
   * The passphrase header `header` re-wrapped under `newPassphrase` with a fresh salt (the same
   * KDF and iteration policy as `create`, off the calling thread); the store key is unchanged, so
   * nothing sealed under it needs re-encrypting. Checks everything before returning (the caller
   * writes the result in one go): an empty new passphrase is `StoreError("BAD_OPTION")`, a header
   * of another kind `KEY_KIND_MISMATCH`, a wrong `oldPassphrase` `WRONG_KEY`.
   */
  static async changePassphrase(
    header: unknown,
    oldPassphrase: string,
    newPassphrase: string,
    iterations: number = STORE_KDF_ITERATIONS,
  ): Promise<StoreKeyHeader> {
    if (newPassphrase === "") {
      throw new StoreError("BAD_OPTION", "the new store passphrase is empty; give a passphrase");
    }
    const h = parseHeader(header);
    if (h.kind !== "passphrase") {
      throw new StoreKeyError(
        "KEY_KIND_MISMATCH",
        `this store is protected by ${KIND_NAMES[h.kind]}, not a passphrase; it has no passphrase to change`,
      );
    }
    const rounds = checkIterations(iterations);
    const old: KeyProtection = { kind: "passphrase", passphrase: oldPassphrase };
    const storeKey = await unwrapStoreKey(old, h.wrappedKey, decodeKey(h.salt, SALT_LENGTH), h.iterations);
    if (storeKey === undefined || storeKey.length !== STORE_KEY_LENGTH) {
      throw new StoreKeyError("WRONG_KEY", WRONG_KEY_MESSAGES.passphrase);
    }
    try {
      const salt = randomBytes(SALT_LENGTH);
      const fresh: KeyProtection = { kind: "passphrase", passphrase: newPassphrase };
      const wrappedKey = await wrapStoreKey(fresh, storeKey, salt, rounds);
      return { version: 1, kind: "passphrase", salt: encodeBase64(salt), iterations: rounds, wrappedKey };
    } finally {
      wipe(storeKey);
    }
  }

  /** Seals a JSON value; `ad` names where it will be stored (it must be given again to open it). */
  encrypt(value: Sealable, ad: string): string {
    const plain = utf8Encode(JSON.stringify(value));
    try {
      return seal(this.#keys, plain, ad);
    } finally {
      wipe(plain);
    }
  }

  /**
   * `encrypt` for many values at once, each bound to its own `ad` (the same format: each opens on
   * its own with `decrypt`); for a transaction writing many rows.
   */
  encryptMany(values: readonly { readonly value: Sealable; readonly ad: string }[]): string[] {
    if (values.length <= 1) return values.map(({ value, ad }) => this.encrypt(value, ad));
    return sealMany(this.#keys, values);
  }

  /** Opens a sealed value; throws `StoreKeyError("TAMPERED")` if it does not authenticate. */
  decrypt(sealed: unknown, ad: string): unknown {
    const plain = typeof sealed === "string" ? open(this.#keys, sealed, ad) : undefined;
    if (plain === undefined) {
      throw new StoreKeyError(
        "TAMPERED",
        "a stored value failed authentication (corrupted or tampered store)",
      );
    }
    try {
      return JSON.parse(utf8Decode(plain));
    } catch {
      throw new StoreKeyError("TAMPERED", "a stored value decrypted to malformed JSON");
    } finally {
      wipe(plain);
    }
  }

  toJSON(): { kind: string } {
    return { kind: this.kind };
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `StoreCipher { kind: ${this.kind} }`;
  }
}

function decodeKey(text: unknown, length = STORE_KEY_LENGTH): Uint8Array {
  try {
    if (typeof text === "string") {
      const bytes = decodeBase64(text);
      if (bytes.length === length) return bytes;
    }
  } catch {
    // fall through to the typed error
  }
  throw new StoreKeyError("BAD_KEY_PARAMETERS", "the stored key header is malformed");
}

function parseHeader(v: unknown): StoreKeyHeader {
  const bad = (): StoreKeyError =>
    new StoreKeyError("BAD_KEY_PARAMETERS", "the stored key header is malformed");
  if (typeof v !== "object" || v === null) throw bad();
  const o = v as { readonly [key: string]: unknown };
  if (o.version !== 1) throw bad();
  switch (o.kind) {
    case "passphrase":
      if (typeof o.salt !== "string" || typeof o.wrappedKey !== "string") throw bad();
      return {
        version: 1,
        kind: "passphrase",
        salt: o.salt,
        iterations: checkIterations(o.iterations),
        wrappedKey: o.wrappedKey,
      };
    case "key":
    case "key-file":
    case "webcrypto":
      if (typeof o.wrappedKey !== "string") throw bad();
      return { version: 1, kind: o.kind, wrappedKey: o.wrappedKey };
    case "none":
      if (typeof o.storeKey !== "string") throw bad();
      return { version: 1, kind: "none", storeKey: o.storeKey };
    default:
      throw bad();
  }
}
