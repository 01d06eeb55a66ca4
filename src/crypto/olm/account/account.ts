/**
 * An Olm account: a device's long-term Curve25519 identity key and Ed25519 signing key, its
 * one-time and fallback keys, and the two ways of starting a session.
 */
import {
  concatBytes,
  ed25519PublicKey,
  ed25519Sign,
  encodeBase64,
  randomBytes,
  utf8Encode,
  wipe,
  x25519PublicKey,
} from "../../primitives/index.ts";
import { OlmError } from "../errors.ts";
import { bytesEqual, decodeCurve25519Key, diffieHellman } from "../keys.ts";
import { decodeMessage } from "../message/message.ts";
import { decodeOlmMessageBody, MESSAGE_TYPE_PRE_KEY, type OlmMessage } from "../message/olm-message.ts";
import { decodePreKeyMessage } from "../message/prekey-message.ts";
import { pickleBytes, pickleInteger, pickleObject, pickleVersion } from "../pickle.ts";
import { DoubleRatchet } from "../session/double-ratchet.ts";
import { Session } from "../session/session.ts";
import { FallbackKeys, type FallbackKeysPickle } from "./fallback-keys.ts";
import { MAX_KEY_ID, nextKeyId, skipKeyIds } from "./key-id.ts";
import {
  checkKeyCount,
  MAX_ONE_TIME_KEYS,
  makeCurveKey,
  ONE_TIME_KEYS_TO_PUBLISH,
  type OneTimeKey,
  type OneTimeKeyPickle,
  OneTimeKeyStore,
} from "./one-time-keys.ts";

export interface IdentityKeys {
  /** Unpadded base64 Curve25519 identity key. */
  readonly curve25519: string;
  /** Unpadded base64 Ed25519 signing key. */
  readonly ed25519: string;
}

export interface AccountPickle {
  readonly version: 1;
  readonly curve25519SecretKey: string;
  readonly ed25519Seed: string;
  /** The last key ID handed out (one-time and fallback keys share the counter). */
  readonly lastKeyId: number;
  readonly oneTimeKeys: readonly OneTimeKeyPickle[];
  readonly fallbackKeys: FallbackKeysPickle;
}

/** The private keys a dehydrated device carries (dehydrated-device.ts seals and opens them). */
export interface DehydratedAccountKeys {
  readonly curve25519Secret: Uint8Array;
  readonly ed25519Seed: Uint8Array;
  readonly oneTimeKeys: readonly Uint8Array[];
  readonly fallbackKey: Uint8Array | null;
}

export interface InboundSessionResult {
  readonly session: Session;
  readonly plaintext: Uint8Array;
}

const INSPECT = Symbol.for("nodejs.util.inspect.custom");

/**
 * @internal Known-answer tests only (not re-exported by the package): an outbound session from
 * fixed randomness, so that its messages can be compared byte for byte with libolm's.
 */
export let outboundSessionFromRandom: (
  account: Account,
  theirIdentityKey: string,
  theirOneTimeKey: string,
  random: Uint8Array,
) => Session;

/**
 * @internal For dehydrated-device.ts (not re-exported by the package): copies of the keys a
 * dehydrated device carries (the caller wipes them), and an account made of such keys. The
 * pickle's format and cipher live there, out of this file, so that the engine (which imports this
 * one) does not carry them: a browser bundle loads them only when dehydration is used.
 */
export let dehydratedKeysOf: (account: Account) => DehydratedAccountKeys;
export let accountFromDehydratedKeys: (keys: DehydratedAccountKeys) => Account;

export class Account {
  readonly #curveSecret: Uint8Array;
  readonly #curvePublic: Uint8Array;
  /** Ed25519 seed || public key (the layout `ed25519Sign` takes). */
  readonly #edSecret: Uint8Array;
  readonly #identityKeys: IdentityKeys;
  #oneTimeKeys: OneTimeKeyStore;
  #fallbackKeys: FallbackKeys;
  #lastKeyId: number;

  private constructor(
    curveSecret: Uint8Array,
    edSeed: Uint8Array,
    oneTimeKeys: OneTimeKeyStore,
    fallbackKeys: FallbackKeys,
    lastKeyId: number,
  ) {
    this.#curveSecret = curveSecret;
    this.#curvePublic = x25519PublicKey(curveSecret);
    const edPublic = ed25519PublicKey(edSeed);
    this.#edSecret = concatBytes(edSeed, edPublic);
    wipe(edSeed);
    this.#identityKeys = Object.freeze({
      curve25519: encodeBase64(this.#curvePublic),
      ed25519: encodeBase64(edPublic),
    });
    this.#oneTimeKeys = oneTimeKeys;
    this.#fallbackKeys = fallbackKeys;
    this.#lastKeyId = lastKeyId;
  }

  /** A new account with fresh identity keys and no one-time keys. */
  static create(): Account {
    return new Account(randomBytes(32), randomBytes(32), new OneTimeKeyStore(), new FallbackKeys(), 0);
  }

  get identityKeys(): IdentityKeys {
    return this.#identityKeys;
  }

  /** Ed25519 signature (unpadded base64) of `message` (UTF-8 if a string) with the account key. */
  sign(message: string | Uint8Array): string {
    const bytes = typeof message === "string" ? utf8Encode(message) : message;
    return encodeBase64(ed25519Sign(this.#edSecret, bytes));
  }

  /**
   * libolm's `max_number_of_one_time_keys()` (100), for callers that keep half of it on the server
   * as libolm advises: `ONE_TIME_KEYS_TO_PUBLISH` (50). The account itself keeps up to
   * `MAX_ONE_TIME_KEYS` (5 000), as vodozemac does, dropping the oldest beyond that.
   */
  get maxNumberOfOneTimeKeys(): number {
    return 2 * ONE_TIME_KEYS_TO_PUBLISH;
  }

  generateOneTimeKeys(count: number): void {
    checkKeyCount(count);
    for (let i = 0; i < count; i++) {
      this.#lastKeyId = nextKeyId(this.#lastKeyId);
      // Keys that the store would drop again within this same call are never worth creating.
      if (count - i > MAX_ONE_TIME_KEYS) continue;
      this.#oneTimeKeys.add(makeCurveKey(this.#lastKeyId, randomBytes(32), false));
    }
  }

  /** Unpublished one-time keys: `{ keyId: Curve25519 public key }`, unpadded base64. */
  oneTimeKeys(): Record<string, string> {
    return this.#oneTimeKeys.unpublished();
  }

  /** Marks every one-time key and the current fallback key as published. */
  markKeysAsPublished(): void {
    this.#oneTimeKeys.markAllPublished();
    this.#fallbackKeys.markPublished();
  }

  /** Replaces the fallback key; the previous one stays usable until `forgetOldFallbackKey()`. */
  generateFallbackKey(): void {
    this.#lastKeyId = nextKeyId(this.#lastKeyId);
    this.#fallbackKeys.rotate(makeCurveKey(this.#lastKeyId, randomBytes(32), false));
  }

  /** The current fallback key if not yet published: `{ keyId: public key }`, else `{}`. */
  fallbackKey(): Record<string, string> {
    return this.#fallbackKeys.unpublished();
  }

  forgetOldFallbackKey(): void {
    this.#fallbackKeys.forgetOld();
  }

  /**
   * For keys a server refused because it holds other keys under their IDs: a copy of this account
   * that got further made those (this one was restored from an older copy, so its counter is
   * behind). Moves the counter `skip` IDs on, then replaces every unpublished one-time key, and
   * the current fallback key too if `fallback` and it is unpublished, with new keys numbered from
   * there. The replaced keys were never published, so no one can have used them; published keys
   * stay. Returns how many one-time keys were replaced.
   */
  replaceUnpublishedKeys(skip: number, { fallback }: { fallback: boolean }): number {
    checkKeyCount(skip);
    this.#lastKeyId = skipKeyIds(this.#lastKeyId, skip);
    const count = this.#oneTimeKeys.removeUnpublished();
    this.generateOneTimeKeys(count);
    if (fallback && Object.keys(this.#fallbackKeys.unpublished()).length > 0) {
      this.#lastKeyId = nextKeyId(this.#lastKeyId);
      this.#fallbackKeys.replaceUnpublished(makeCurveKey(this.#lastKeyId, randomBytes(32), false));
    }
    return count;
  }

  /** Starts a session to a device from its identity key and one of its one-time (or fallback) keys. */
  createOutboundSession(theirIdentityKey: string, theirOneTimeKey: string): Session {
    return this.#createOutboundSession(theirIdentityKey, theirOneTimeKey, randomBytes(64));
  }

  static {
    outboundSessionFromRandom = (account, theirIdentityKey, theirOneTimeKey, random) => {
      if (random.length !== 64)
        throw new OlmError("BAD_ARGUMENT", "outbound session randomness must be 64 bytes");
      return account.#createOutboundSession(theirIdentityKey, theirOneTimeKey, random.slice());
    };
  }

  /** `random` is 64 bytes: the base key's secret, then the first ratchet key's (libolm's order). */
  #createOutboundSession(theirIdentityKey: string, theirOneTimeKey: string, random: Uint8Array): Session {
    const identityKey = decodeCurve25519Key(theirIdentityKey, "their identity key");
    const oneTimeKey = decodeCurve25519Key(theirOneTimeKey, "their one-time key");
    // Copies, not views: a view of a small array makes V8 move it off its heap (see root-key.ts).
    const baseSecret = random.slice(0, 32);
    const ratchetSecret = random.slice(32, 64);
    wipe(random);
    let shared: Uint8Array;
    try {
      shared = tripleDh(
        diffieHellman(this.#curveSecret, oneTimeKey),
        diffieHellman(baseSecret, identityKey),
        diffieHellman(baseSecret, oneTimeKey),
      );
    } catch (e) {
      wipe(baseSecret);
      wipe(ratchetSecret);
      throw e;
    }
    const basePublic = x25519PublicKey(baseSecret);
    wipe(baseSecret);
    let ratchet: DoubleRatchet;
    try {
      ratchet = DoubleRatchet.alice(shared, ratchetSecret, x25519PublicKey(ratchetSecret));
    } finally {
      wipe(shared);
    }
    const keys = { identityKey: this.#curvePublic.slice(), baseKey: basePublic, oneTimeKey };
    return new Session(keys, ratchet, false);
  }

  /**
   * Builds a session from a pre-key message sent by `theirIdentityKey` and decrypts it. The
   * one-time key it used is removed only once the message has decrypted, so forged messages
   * cannot burn keys; fallback keys stay usable.
   */
  createInboundSession(theirIdentityKey: string, message: OlmMessage): InboundSessionResult {
    const expectedIdentity = decodeCurve25519Key(theirIdentityKey, "their identity key");
    const preKey = decodePreKeyMessage(decodeOlmMessageBody(message, MESSAGE_TYPE_PRE_KEY));
    if (!bytesEqual(preKey.identityKey, expectedIdentity)) {
      throw new OlmError("MISMATCHED_IDENTITY_KEY", "pre-key message comes from a different identity key");
    }
    const inner = decodeMessage(preKey.message);
    const oneTimeKeyBase64 = encodeBase64(preKey.oneTimeKey);
    const ourKey: OneTimeKey | undefined =
      this.#oneTimeKeys.get(oneTimeKeyBase64) ?? this.#fallbackKeys.get(oneTimeKeyBase64);
    if (ourKey === undefined) {
      throw new OlmError("MISSING_ONE_TIME_KEY", "pre-key message names a key this account does not hold");
    }
    const shared = tripleDh(
      diffieHellman(ourKey.secretKey, preKey.identityKey),
      diffieHellman(this.#curveSecret, preKey.baseKey),
      diffieHellman(ourKey.secretKey, preKey.baseKey),
    );
    let ratchet: DoubleRatchet;
    try {
      ratchet = DoubleRatchet.bob(shared, inner.ratchetKey.slice());
    } finally {
      wipe(shared);
    }
    const session = new Session(
      {
        identityKey: preKey.identityKey.slice(),
        baseKey: preKey.baseKey.slice(),
        oneTimeKey: preKey.oneTimeKey.slice(),
      },
      ratchet,
      false,
    );
    let plaintext: Uint8Array;
    try {
      plaintext = session.decryptDecoded(inner);
    } catch (e) {
      session.wipe();
      throw e;
    }
    this.#oneTimeKeys.remove(oneTimeKeyBase64);
    return { session, plaintext };
  }

  toPickle(): AccountPickle {
    return {
      version: 1,
      curve25519SecretKey: encodeBase64(this.#curveSecret),
      ed25519Seed: encodeBase64(this.#edSecret.subarray(0, 32)),
      lastKeyId: this.#lastKeyId,
      oneTimeKeys: this.#oneTimeKeys.toPickle(),
      fallbackKeys: this.#fallbackKeys.toPickle(),
    };
  }

  static fromPickle(pickle: AccountPickle): Account {
    // Read back from storage: validated field by field, whatever arrives.
    const p = pickleObject(pickle as unknown, "account");
    pickleVersion(p, 1, "account");
    return new Account(
      pickleBytes(p.curve25519SecretKey, 32, "curve25519SecretKey"),
      pickleBytes(p.ed25519Seed, 32, "ed25519Seed"),
      OneTimeKeyStore.fromPickle(p.oneTimeKeys, "oneTimeKeys"),
      FallbackKeys.fromPickle(p.fallbackKeys, "fallbackKeys"),
      pickleInteger(p.lastKeyId, MAX_KEY_ID, "lastKeyId"),
    );
  }

  static {
    dehydratedKeysOf = (account) => ({
      curve25519Secret: account.#curveSecret.slice(),
      ed25519Seed: account.#edSecret.slice(0, 32),
      oneTimeKeys: account.#oneTimeKeys.secretKeys(),
      fallbackKey: account.#fallbackKeys.currentSecretKey(),
    });
    // Every key comes back as published; key IDs are renumbered from 1 (the format does not keep them).
    accountFromDehydratedKeys = (keys) => {
      const oneTimeKeys = new OneTimeKeyStore();
      let id = 0;
      for (const secret of keys.oneTimeKeys) {
        id = nextKeyId(id);
        const otk = makeCurveKey(id, secret, true);
        if (oneTimeKeys.get(otk.publicKeyBase64) !== undefined) {
          throw new OlmError("BAD_PICKLE", "dehydrated device: a one-time key appears twice");
        }
        oneTimeKeys.add(otk);
      }
      const fallbackKeys = new FallbackKeys();
      if (keys.fallbackKey !== null) {
        id = nextKeyId(id);
        fallbackKeys.rotate(makeCurveKey(id, keys.fallbackKey, true));
      }
      return new Account(keys.curve25519Secret, keys.ed25519Seed, oneTimeKeys, fallbackKeys, id);
    };
  }

  /** Overwrites every secret key; the account is unusable afterwards. */
  wipe(): void {
    wipe(this.#curveSecret);
    wipe(this.#edSecret);
    this.#oneTimeKeys.wipe();
    this.#fallbackKeys.wipe();
  }

  toJSON(): { identityKeys: IdentityKeys } {
    return { identityKeys: this.#identityKeys };
  }

  [INSPECT](): string {
    return `Account { curve25519: ${this.#identityKeys.curve25519}, ed25519: ${this.#identityKeys.ed25519} }`;
  }

  toString(): string {
    return `Account(${this.#identityKeys.curve25519})`;
  }
}

/**
 * The one buffer every session set-up's shared secret S is built in: set-up is synchronous and
 * wipes it right after the root HKDF. A fresh 96-byte array is allocated off V8's heap, which after
 * the curve operations measured about 2 µs (CPU time, alternating batches).
 */
const SHARED_SECRET = new Uint8Array(96);

/**
 * S = ECDH(I_A, E_B) || ECDH(E_A, I_B) || ECDH(E_A, E_B): 96 bytes in `SHARED_SECRET`, which the
 * caller wipes once the root key is derived; the parts are wiped here.
 */
function tripleDh(a: Uint8Array, b: Uint8Array, c: Uint8Array): Uint8Array {
  const out = SHARED_SECRET;
  out.set(a, 0);
  out.set(b, 32);
  out.set(c, 64);
  wipe(a);
  wipe(b);
  wipe(c);
  return out;
}
