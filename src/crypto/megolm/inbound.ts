/**
 * The receiving side of a Megolm session. It keeps the ratchet at the first known index (so any
 * later message stays decryptable, as libolm does) and a cached copy at the highest index
 * decrypted so far, so that messages arriving in order cost one ratchet step each.
 */
import {
  aes256CbcDecrypt,
  aes256CbcDecryptAsync,
  CryptoPrimitiveError,
  constantTimeEqual,
  constantTimeEqualAt,
  decodeBase64,
  decodeBase64Scratch,
  ED25519_PUBLIC_KEY_LENGTH,
  ed25519Verify,
  ed25519VerifyAsync,
  encodeBase64,
  hmacSha256Into,
  wipe,
} from "../primitives/index.ts";
import { deriveMessageKeys, deriveMessageKeysAsync, type MessageKeys } from "./cipher.ts";
import { MegolmError } from "./errors.ts";
import { decryptLibolmPickle, parseLibolmInboundPickle, pickleKeyBytes } from "./libolm-pickle.ts";
import { decodeMegolmMessage, MEGOLM_MAC_LENGTH } from "./message.ts";
import { pickleBoolean, pickleBytes, pickleInteger, pickleObject } from "./pickle.ts";
import { MAX_MESSAGE_INDEX, RATCHET_LENGTH, Ratchet } from "./ratchet.ts";
import {
  type DecodedSessionKey,
  decodeExportedKey,
  decodeSessionKey,
  encodeExportedKey,
} from "./session-key.ts";

export interface InboundGroupSessionPickle {
  readonly version: 1;
  /** The ratchet at the first known index, unpadded base64 of 128 bytes. */
  readonly ratchet: string;
  readonly firstKnownIndex: number;
  /** The session's Ed25519 public key (its ID). */
  readonly signingKey: string;
  readonly signingKeyVerified: boolean;
}

export interface MegolmDecryptResult {
  readonly plaintext: Uint8Array;
  /** The message's index: callers detect replays by remembering (index → event) pairs. */
  readonly messageIndex: number;
}

/**
 * How one inbound session relates to another with the same ID: `better` means this one can
 * decrypt more (a lower first known index), `unconnected` that their ratchets differ (a forgery
 * or a different session under the same key).
 */
export type SessionOrdering = "equal" | "better" | "worse" | "unconnected";

const INSPECT = Symbol.for("nodejs.util.inspect.custom");

/**
 * Where `decrypt` decodes a message's base64 (up to 768 bytes; longer ones get an array of their
 * own): it reads the bytes only until it returns, and is synchronous, so one buffer serves every
 * session. `decryptAsync` awaits in between and decodes into arrays of its own.
 */
const MESSAGE_SCRATCH = new Uint8Array(768);

/**
 * A message's bytes (`BAD_MESSAGE_FORMAT` unless a string of valid base64). With `scratch`, they
 * may be a view of it.
 */
function messageBytes(message: string, scratch?: Uint8Array): Uint8Array {
  if (typeof message !== "string") throw new MegolmError("BAD_MESSAGE_FORMAT", "message must be a string");
  try {
    return scratch === undefined ? decodeBase64(message) : decodeBase64Scratch(message, scratch);
  } catch (e) {
    if (e instanceof CryptoPrimitiveError)
      throw new MegolmError("BAD_MESSAGE_FORMAT", "message is not valid base64");
    throw e;
  }
}

function badSignature(): MegolmError {
  return new MegolmError("BAD_SIGNATURE", "the message's signature does not verify with this session's key");
}

/** The computed MAC of a message, wiped after each check (synchronous, so one serves every session). */
const MAC_SCRATCH = new Uint8Array(32);

/** The truncated MAC at `macOffset` against HMAC(macKey, bytes[0..macOffset)), in constant time. */
function checkMac(macKey: Uint8Array, bytes: Uint8Array, macOffset: number): void {
  hmacSha256Into(MAC_SCRATCH, macKey, bytes.subarray(0, macOffset));
  const same = constantTimeEqualAt(MAC_SCRATCH, bytes, macOffset, MEGOLM_MAC_LENGTH);
  wipe(MAC_SCRATCH);
  if (!same) throw new MegolmError("BAD_MAC", "the message's MAC does not match");
}

/** A padding or length refusal from AES as Megolm's error; anything else as it is. */
function decryptionFailed(e: unknown): unknown {
  return e instanceof CryptoPrimitiveError
    ? new MegolmError("DECRYPTION_FAILED", "the ciphertext does not decrypt")
    : e;
}

export class InboundGroupSession {
  readonly #initial: Ratchet;
  #latest: Ratchet;
  /** Scratch ratchet for moving forward without allocating; wiped whenever it is not in use. */
  #spare: Ratchet | undefined;
  readonly #signingKey: Uint8Array;
  readonly #sessionId: string;
  readonly #signingKeyVerified: boolean;

  private constructor(decoded: DecodedSessionKey, signingKeyVerified: boolean) {
    this.#initial = decoded.ratchet;
    // The latest ratchet starts as the initial one itself, not a copy (most sessions are
    // imported, stored or received and never used here, e.g. each of an import's thousands):
    // neither is ever moved in place, and #settle never wipes the initial one (see there).
    this.#latest = decoded.ratchet;
    this.#signingKey = decoded.signingKey;
    this.#sessionId = encodeBase64(decoded.signingKey);
    this.#signingKeyVerified = signingKeyVerified;
  }

  /** From the signed v2 `session_key` of `m.room_key`; throws unless the signature verifies. */
  static fromSessionKey(sessionKey: string): InboundGroupSession {
    return new InboundGroupSession(decodeSessionKey(sessionKey), true);
  }

  /**
   * From a v1 exported key (`m.forwarded_room_key`, key-export files, backups). It carries no
   * signature, so `signingKeyVerified` is false: trust comes from whoever forwarded it.
   */
  static fromExport(exportedKey: string): InboundGroupSession {
    return new InboundGroupSession(decodeExportedKey(exportedKey), false);
  }

  get sessionId(): string {
    return this.#sessionId;
  }

  /** The lowest message index this session can decrypt. */
  get firstKnownIndex(): number {
    return this.#initial.counter;
  }

  /** True when the key came signed by the session's own key (v2), or was merged with such a copy. */
  get signingKeyVerified(): boolean {
    return this.#signingKeyVerified;
  }

  /**
   * Decrypts a base64 Megolm message at any index from the first known one on. The signature is
   * checked first, then the MAC; the cached ratchet moves forward only once all checks passed, so
   * a failure leaves the session as it was.
   */
  decrypt(message: string): MegolmDecryptResult {
    const bytes = messageBytes(message, MESSAGE_SCRATCH);
    const decoded = decodeMegolmMessage(bytes);
    const signatureOffset = decoded.macOffset + MEGOLM_MAC_LENGTH;
    if (
      !ed25519Verify(this.#signingKey, bytes.subarray(0, signatureOffset), bytes.subarray(signatureOffset))
    ) {
      throw badSignature();
    }
    const ratchet = this.#ratchetFor(decoded.messageIndex);
    const keys = deriveMessageKeys(ratchet.bytes);
    let plaintext: Uint8Array;
    try {
      checkMac(keys.macKey, bytes, decoded.macOffset);
      try {
        plaintext = aes256CbcDecrypt(keys.aesKey, keys.iv, decoded.ciphertext);
      } catch (e) {
        throw decryptionFailed(e);
      }
    } catch (e) {
      if (ratchet !== this.#latest) this.#release(ratchet);
      throw e;
    } finally {
      wipe(keys.all);
    }
    if (ratchet !== this.#latest) this.#settle(ratchet);
    return { plaintext, messageIndex: decoded.messageIndex };
  }

  /**
   * `decrypt` through the asynchronous primitives (Web Crypto in browsers: the signature check
   * about ten times faster there than the JavaScript back end, the key derivation and AES faster
   * too; the MAC stays in JavaScript, cheaper there at these sizes): the same results, the same
   * errors in the same order, and no ratchet work before the signature verified. Calls may
   * overlap, also with `decrypt`: the ratchet is read and moved only between awaits (the
   * primitives copy their inputs when called).
   */
  async decryptAsync(message: string): Promise<MegolmDecryptResult> {
    const bytes = messageBytes(message);
    const decoded = decodeMegolmMessage(bytes);
    const signatureOffset = decoded.macOffset + MEGOLM_MAC_LENGTH;
    const signed = bytes.subarray(0, signatureOffset);
    if (!(await ed25519VerifyAsync(this.#signingKey, signed, bytes.subarray(signatureOffset)))) {
      throw badSignature();
    }
    const ratchet = this.#ratchetFor(decoded.messageIndex);
    const lent = ratchet !== this.#latest;
    let keys: MessageKeys | undefined;
    let plaintext: Uint8Array;
    try {
      keys = await deriveMessageKeysAsync(ratchet.bytes);
      // The MAC in JavaScript: for Megolm's sizes a few SHA-256 blocks cost less than the two
      // Web Crypto calls (key import and sign) that the native code needs.
      checkMac(keys.macKey, bytes, decoded.macOffset);
      try {
        plaintext = await aes256CbcDecryptAsync(keys.aesKey, keys.iv, decoded.ciphertext);
      } catch (e) {
        throw decryptionFailed(e);
      }
    } catch (e) {
      if (lent) this.#release(ratchet);
      throw e;
    } finally {
      if (keys !== undefined) wipe(keys.all);
    }
    if (lent) this.#settle(ratchet);
    return { plaintext, messageIndex: decoded.messageIndex };
  }

  /**
   * Whether this session's ratchet at `messageIndex` is `ratchet`, byte for byte (compared in
   * constant time). For a message this process encrypted itself at that index with that ratchet
   * and this session's signing key (its session ID), `decrypt` is then a function of what the
   * caller already holds: it would verify the signature and the MAC and return the plaintext that
   * was encrypted, at that index. On true the cached ratchet moves as a successful `decrypt` moves
   * it; false (also below the first known index) leaves the session as it was.
   */
  holdsRatchet(messageIndex: number, ratchet: Uint8Array): boolean {
    if (messageIndex < this.#initial.counter || ratchet.length !== RATCHET_LENGTH) return false;
    const ours = this.#ratchetFor(messageIndex);
    const same = constantTimeEqual(ours.bytes, ratchet);
    if (ours !== this.#latest) {
      if (same) this.#settle(ours);
      else this.#release(ours);
    }
    return same;
  }

  /**
   * After a successful decryption with a ratchet from #ratchetFor that was not the latest: it
   * becomes the latest when it is further on (the old latest, wiped, the spare), else it is released.
   */
  #settle(ratchet: Ratchet): void {
    if (ratchet.counter > this.#latest.counter) {
      const old = this.#latest;
      this.#latest = ratchet;
      // Until the first decryption past the first known index the latest is the initial ratchet
      // itself, which must stay as it is (exports, merges and earlier indexes start from it).
      if (old !== this.#initial) this.#release(old);
    } else {
      this.#release(ratchet);
    }
  }

  /**
   * The ratchet at `index`: the cached latest one when it matches, otherwise the spare, set to the
   * nearest stored ratchet at or below it and moved forward. Callers hand a result that is not
   * the latest back through #release once done with it, before asking for another.
   */
  #ratchetFor(index: number): Ratchet {
    if (index === this.#latest.counter) return this.#latest;
    let base: Ratchet;
    if (index > this.#latest.counter) base = this.#latest;
    else if (index >= this.#initial.counter) base = this.#initial;
    else {
      throw new MegolmError(
        "UNKNOWN_MESSAGE_INDEX",
        `message index ${index} is below the first known index ${this.#initial.counter}`,
      );
    }
    let copy = this.#spare;
    if (copy === undefined) copy = base.clone();
    else copy.copyFrom(base);
    this.#spare = undefined; // lent out until #release hands it back
    copy.advanceTo(index);
    return copy;
  }

  /** Takes back a ratchet from #ratchetFor that did not become the latest: wiped, kept for reuse. */
  #release(ratchet: Ratchet): void {
    ratchet.destroy();
    this.#spare = ratchet;
  }

  /** The v1 export at `index` (≥ the first known index): it decrypts that message and every later one. */
  exportAt(index: number): string {
    if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index > MAX_MESSAGE_INDEX) {
      throw new MegolmError("BAD_ARGUMENT", "index must be an integer in [0, 2^32 - 1]");
    }
    const ratchet = this.#ratchetFor(index);
    const key = encodeExportedKey(ratchet, this.#signingKey);
    if (ratchet !== this.#latest) this.#release(ratchet);
    return key;
  }

  exportAtFirstKnownIndex(): string {
    return encodeExportedKey(this.#initial, this.#signingKey);
  }

  /**
   * True when both sessions hold the same ratchet: same signing key, and moving the one with the
   * lower first index forward to the other's gives byte-identical state (compared in constant time).
   */
  connected(other: InboundGroupSession): boolean {
    if (!constantTimeEqual(this.#signingKey, other.#signingKey)) return false;
    const [low, high] = this.firstKnownIndex <= other.firstKnownIndex ? [this, other] : [other, this];
    const moved = low.#ratchetFor(high.firstKnownIndex);
    const same = constantTimeEqual(moved.bytes, high.#initial.bytes);
    if (moved !== low.#latest) low.#release(moved);
    return same;
  }

  /** Whether this session is the same one as `other`, and which can decrypt more of it. */
  compare(other: InboundGroupSession): SessionOrdering {
    if (!this.connected(other)) return "unconnected";
    if (this.firstKnownIndex < other.firstKnownIndex) return "better";
    if (this.firstKnownIndex > other.firstKnownIndex) return "worse";
    return "equal";
  }

  /**
   * The best of two copies of one session: the lower first known index, verified if either copy
   * was. Null when they are not connected (e.g. a forged forward under a real session ID).
   */
  merge(other: InboundGroupSession): InboundGroupSession | null {
    const order = this.compare(other);
    if (order === "unconnected") return null;
    const best = order === "worse" ? other : this;
    return new InboundGroupSession(
      { ratchet: best.#initial.clone(), signingKey: this.#signingKey.slice() },
      this.#signingKeyVerified || other.#signingKeyVerified,
    );
  }

  toPickle(): InboundGroupSessionPickle {
    return {
      version: 1,
      ratchet: encodeBase64(this.#initial.bytes),
      firstKnownIndex: this.#initial.counter,
      signingKey: this.#sessionId,
      signingKeyVerified: this.#signingKeyVerified,
    };
  }

  static fromPickle(pickle: InboundGroupSessionPickle): InboundGroupSession {
    const p = pickleObject(pickle, 1, "InboundGroupSession");
    const bytes = pickleBytes(p.ratchet, RATCHET_LENGTH, "ratchet");
    const counter = pickleInteger(p.firstKnownIndex, MAX_MESSAGE_INDEX, "firstKnownIndex");
    const signingKey = pickleBytes(p.signingKey, ED25519_PUBLIC_KEY_LENGTH, "signingKey");
    const verified = pickleBoolean(p.signingKeyVerified, "signingKeyVerified");
    return new InboundGroupSession({ ratchet: new Ratchet(bytes, counter), signingKey }, verified);
  }

  /**
   * Imports a session pickled by libolm (`olm_pickle_inbound_group_session`, version 2) under
   * `pickleKey` (a string is taken as UTF-8, as libolm's bindings do). Throws `BAD_PICKLE` for a
   * wrong key, a corrupted pickle or another version.
   */
  static fromLibolmPickle(pickle: string, pickleKey: string | Uint8Array): InboundGroupSession {
    if (typeof pickle !== "string") throw new MegolmError("BAD_PICKLE", "libolm pickle must be a string");
    const raw = decryptLibolmPickle(pickle, pickleKeyBytes(pickleKey));
    try {
      const p = parseLibolmInboundPickle(raw);
      return new InboundGroupSession(
        { ratchet: new Ratchet(p.ratchet, p.counter), signingKey: p.signingKey },
        p.signingKeyVerified,
      );
    } finally {
      wipe(raw);
    }
  }

  /** Public parts only. */
  toJSON(): { sessionId: string; firstKnownIndex: number; signingKeyVerified: boolean } {
    return {
      sessionId: this.#sessionId,
      firstKnownIndex: this.firstKnownIndex,
      signingKeyVerified: this.#signingKeyVerified,
    };
  }

  [INSPECT](): string {
    return `InboundGroupSession { sessionId: ${this.#sessionId}, firstKnownIndex: ${this.firstKnownIndex} }`;
  }

  toString(): string {
    return this[INSPECT]();
  }
}
