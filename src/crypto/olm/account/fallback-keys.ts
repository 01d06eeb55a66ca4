/**
 * Fallback keys: a one-time key that stays usable after use, for when the one-time keys run out.
 * As libolm: generating a new one keeps the previous one until `forgetOld()`, so messages sent to
 * it while the new key propagates still decrypt.
 */
import { encodeBase64, wipe } from "../../primitives/index.ts";
import { pickleBoolean, pickleBytes, pickleInteger, pickleObject } from "../pickle.ts";
import { MAX_KEY_ID } from "./key-id.ts";
import { makeCurveKey, type OneTimeKey, type OneTimeKeyPickle } from "./one-time-keys.ts";

export interface FallbackKeysPickle {
  readonly current: OneTimeKeyPickle | null;
  readonly previous: OneTimeKeyPickle | null;
}

export class FallbackKeys {
  #current: OneTimeKey | null;
  #previous: OneTimeKey | null;

  constructor(current: OneTimeKey | null = null, previous: OneTimeKey | null = null) {
    this.#current = current;
    this.#previous = previous;
  }

  /** Makes `key` current; the current key becomes the previous one (an older previous is wiped). */
  rotate(key: OneTimeKey): void {
    if (this.#previous !== null) wipe(this.#previous.secretKey);
    this.#previous = this.#current;
    this.#current = key;
  }

  forgetOld(): void {
    if (this.#previous !== null) wipe(this.#previous.secretKey);
    this.#previous = null;
  }

  /** The current key as `{ keyId: public key }` if not yet published, else `{}`. */
  unpublished(): Record<string, string> {
    const c = this.#current;
    return c !== null && !c.published ? { [c.keyId]: c.publicKeyBase64 } : {};
  }

  /**
   * Puts `key` in place of the current key if that one is unpublished (and wipes it), leaving the
   * previous key as it is; returns whether it did.
   */
  replaceUnpublished(key: OneTimeKey): boolean {
    const c = this.#current;
    if (c === null || c.published) return false;
    wipe(c.secretKey);
    this.#current = key;
    return true;
  }

  markPublished(): void {
    if (this.#current !== null) this.#current.published = true;
  }

  get(publicKeyBase64: string): OneTimeKey | undefined {
    if (this.#current?.publicKeyBase64 === publicKeyBase64) return this.#current;
    if (this.#previous?.publicKeyBase64 === publicKeyBase64) return this.#previous;
    return undefined;
  }

  /** A copy of the current key's secret, if any (the dehydrated-device pickle keeps only it). */
  currentSecretKey(): Uint8Array | null {
    return this.#current === null ? null : this.#current.secretKey.slice();
  }

  wipe(): void {
    if (this.#current !== null) wipe(this.#current.secretKey);
    this.forgetOld();
    this.#current = null;
  }

  toPickle(): FallbackKeysPickle {
    const enc = (k: OneTimeKey | null): OneTimeKeyPickle | null =>
      k === null ? null : { id: k.id, secretKey: encodeBase64(k.secretKey), published: k.published };
    return { current: enc(this.#current), previous: enc(this.#previous) };
  }

  static fromPickle(value: unknown, what: string): FallbackKeys {
    const p = pickleObject(value, what);
    const dec = (v: unknown, name: string): OneTimeKey | null => {
      if (v === null) return null;
      const k = pickleObject(v, name);
      return makeCurveKey(
        pickleInteger(k.id, MAX_KEY_ID, `${name}.id`),
        pickleBytes(k.secretKey, 32, `${name}.secretKey`),
        pickleBoolean(k.published, `${name}.published`),
      );
    };
    return new FallbackKeys(dec(p.current, `${what}.current`), dec(p.previous, `${what}.previous`));
  }
}
