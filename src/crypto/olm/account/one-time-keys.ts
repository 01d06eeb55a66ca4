/**
 * The account's one-time Curve25519 keys: each is used by at most one inbound session, then
 * removed. At most `MAX_ONE_TIME_KEYS` are kept, the oldest dropped first (vodozemac's behaviour:
 * libolm kept 100, few enough that keys still on the server, or claimed by a peer whose pre-key
 * message has not arrived yet, were dropped as new ones were made, wedging those peers' sessions).
 */
import { encodeBase64, wipe, x25519PublicKey } from "../../primitives/index.ts";
import { OlmError } from "../errors.ts";
import {
  badPickle,
  pickleArray,
  pickleBoolean,
  pickleBytes,
  pickleInteger,
  pickleObject,
} from "../pickle.ts";
import { encodeKeyId, MAX_KEY_ID } from "./key-id.ts";

/**
 * One-time keys kept per account, published or not: 5 000, as vodozemac (`MAX_ONE_TIME_KEYS` in
 * olm/account/one_time_keys.rs, 100 × the 50 it publishes). Generating one more drops the oldest.
 * Also the most an account pickle or a dehydrated device may carry.
 */
export const MAX_ONE_TIME_KEYS = 5000;

/**
 * How many one-time keys to keep on the server: 50, vodozemac's `max_number_of_one_time_keys()`
 * and half of libolm's 100. Far fewer than the account keeps, so that keys claimed but not used
 * yet are not dropped while their replacements are made.
 */
export const ONE_TIME_KEYS_TO_PUBLISH = 50;

export interface OneTimeKey {
  readonly id: number;
  readonly keyId: string;
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
  /** Unpadded base64 of `publicKey`: the lookup key when a pre-key message names it. */
  readonly publicKeyBase64: string;
  published: boolean;
}

export interface OneTimeKeyPickle {
  readonly id: number;
  readonly secretKey: string;
  /**
   * The public key, so that loading thousands of keys costs no base-point multiplications (about
   * 20 µs each with sodium, 350 µs with the portable back end). Absent from older pickles (and
   * from fallback keys'): computed then.
   */
  readonly publicKey?: string;
  readonly published: boolean;
}

/**
 * Builds a key record: one X25519 base-point multiplication unless `publicKey` is given (read
 * back from our own pickle, which the store seals and authenticates).
 */
export function makeCurveKey(
  id: number,
  secretKey: Uint8Array,
  published: boolean,
  publicKey: Uint8Array = x25519PublicKey(secretKey),
): OneTimeKey {
  return {
    id,
    keyId: encodeKeyId(id),
    secretKey,
    publicKey,
    publicKeyBase64: encodeBase64(publicKey),
    published,
  };
}

export class OneTimeKeyStore {
  /** Insertion order is age order: the first entry is the oldest. Keyed by public key base64. */
  readonly #keys = new Map<string, OneTimeKey>();
  /**
   * How many of `#keys` are unpublished: the engine asks for them on every pass over its outgoing
   * requests, and scanning up to `MAX_ONE_TIME_KEYS` published keys each time was a bot's largest
   * cost per command after the cryptography and the network (bench/README.md, bots section).
   */
  #unpublished = 0;

  get size(): number {
    return this.#keys.size;
  }

  add(key: OneTimeKey): void {
    if (this.#keys.size >= MAX_ONE_TIME_KEYS) {
      const oldest = this.#keys.keys().next();
      if (oldest.done !== true) this.remove(oldest.value);
    }
    const replaced = this.#keys.get(key.publicKeyBase64);
    if (replaced !== undefined && !replaced.published) this.#unpublished--;
    this.#keys.set(key.publicKeyBase64, key);
    if (!key.published) this.#unpublished++;
  }

  get(publicKeyBase64: string): OneTimeKey | undefined {
    return this.#keys.get(publicKeyBase64);
  }

  remove(publicKeyBase64: string): void {
    const key = this.#keys.get(publicKeyBase64);
    if (key === undefined) return;
    wipe(key.secretKey);
    this.#keys.delete(publicKeyBase64);
    if (!key.published) this.#unpublished--;
  }

  /** Removes (and wipes) every unpublished key; returns how many there were. */
  removeUnpublished(): number {
    let removed = 0;
    for (const key of [...this.#keys.values()]) {
      if (key.published) continue;
      this.remove(key.publicKeyBase64);
      removed++;
    }
    return removed;
  }

  /** Unpublished keys as `{ keyId: public key base64 }`. */
  unpublished(): Record<string, string> {
    const out: Record<string, string> = {};
    if (this.#unpublished === 0) return out;
    for (const key of this.#keys.values()) if (!key.published) out[key.keyId] = key.publicKeyBase64;
    return out;
  }

  /** Copies of every secret key, oldest first (for the dehydrated-device pickle). */
  secretKeys(): Uint8Array[] {
    return [...this.#keys.values()].map((k) => k.secretKey.slice());
  }

  markAllPublished(): void {
    for (const key of this.#keys.values()) key.published = true;
    this.#unpublished = 0;
  }

  wipe(): void {
    for (const key of this.#keys.values()) wipe(key.secretKey);
    this.#keys.clear();
    this.#unpublished = 0;
  }

  toPickle(): OneTimeKeyPickle[] {
    return [...this.#keys.values()].map((k) => ({
      id: k.id,
      secretKey: encodeBase64(k.secretKey),
      publicKey: k.publicKeyBase64,
      published: k.published,
    }));
  }

  static fromPickle(value: unknown, what: string): OneTimeKeyStore {
    const store = new OneTimeKeyStore();
    pickleArray(value, what, MAX_ONE_TIME_KEYS).forEach((entry, i) => {
      const p = pickleObject(entry, `${what}[${i}]`);
      const key = makeCurveKey(
        pickleInteger(p.id, MAX_KEY_ID, `${what}[${i}].id`),
        pickleBytes(p.secretKey, 32, `${what}[${i}].secretKey`),
        pickleBoolean(p.published, `${what}[${i}].published`),
        p.publicKey === undefined ? undefined : pickleBytes(p.publicKey, 32, `${what}[${i}].publicKey`),
      );
      if (store.get(key.publicKeyBase64) !== undefined) throw badPickle(`${what}[${i}]`);
      store.add(key);
    });
    return store;
  }
}

/** Rejects key counts that are not non-negative integers. */
export function checkKeyCount(count: number): void {
  if (!Number.isInteger(count) || count < 0 || count > MAX_KEY_ID) {
    throw new OlmError("BAD_ARGUMENT", "one-time key count must be a non-negative integer");
  }
}
