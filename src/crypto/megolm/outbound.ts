/**
 * The sending side of a Megolm session (megolm.md "Initialisation", "Encryption"): a ratchet that
 * moves one step per message and an Ed25519 key pair whose public half is the session ID.
 */
import {
  aes256CbcEncrypt,
  ED25519_SEED_LENGTH,
  ed25519PublicKey,
  ed25519SignInto,
  encodeBase64,
  hmacSha256,
  randomBytes,
  wipe,
} from "../primitives/index.ts";
import { deriveMessageKeys } from "./cipher.ts";
import { MegolmError } from "./errors.ts";
import { MEGOLM_MAC_LENGTH, megolmMessageLength, writeMegolmMessage } from "./message.ts";
import { pickleBytes, pickleInteger, pickleObject } from "./pickle.ts";
import { plaintextBytes } from "./plaintext.ts";
import { MAX_MESSAGE_INDEX, RATCHET_LENGTH, Ratchet } from "./ratchet.ts";
import { decodeExportedKey, encodeSessionKey } from "./session-key.ts";

export interface OutboundGroupSessionPickle {
  readonly version: 1;
  /** R0..R3, unpadded base64 of 128 bytes. */
  readonly ratchet: string;
  /** The index the next message will carry. */
  readonly messageIndex: number;
  /** The Ed25519 seed (32 bytes, unpadded base64). */
  readonly signingSeed: string;
}

const INSPECT = Symbol.for("nodejs.util.inspect.custom");

/** Messages up to this many bytes are laid out in one buffer allocated once (about 4 KB of plaintext). */
const MESSAGE_SCRATCH_LENGTH = 4224;
// Each message is laid out, MAC'd, signed (libsodium writes the signature into it) and encoded to
// base64 here; only the base64 string leaves. Encryption is synchronous, so one buffer serves every
// session, and a new one per message was garbage off V8's heap.
const MESSAGE_SCRATCH = new Uint8Array(MESSAGE_SCRATCH_LENGTH);

/**
 * How many ratchet states past the current one `toPickleAt` keeps for the messages that follow
 * (128 bytes each, at most 8 KiB a session, dropped once used). A caller that saves the pickle
 * ahead (the E2EE engine, 32 messages at a time) had every state computed twice: once to reach
 * the pickle, once per message.
 */
export const LOOKAHEAD_STATES = 64;

export class OutboundGroupSession {
  readonly #ratchet: Ratchet;
  /** seed || public key, the layout `ed25519Sign` takes. */
  readonly #signingSecret: Uint8Array;
  readonly #sessionId: string;
  /**
   * States the ratchet will take next, computed by `toPickleAt`: slot i holds the state at index
   * `#lookaheadFrom + i`, for `#lookaheadLength` slots. Each is wiped once the ratchet moved to it.
   */
  #lookahead: Uint8Array | undefined;
  #lookaheadFrom = 0;
  #lookaheadLength = 0;

  private constructor(ratchet: Ratchet, seed: Uint8Array) {
    this.#ratchet = ratchet;
    this.#signingSecret = new Uint8Array(64);
    this.#signingSecret.set(seed, 0);
    this.#signingSecret.set(ed25519PublicKey(seed), 32);
    this.#sessionId = encodeBase64(this.#signingSecret.subarray(32));
  }

  /** A new session with a random ratchet at index 0 and a random signing key. */
  static create(): OutboundGroupSession {
    const seed = randomBytes(ED25519_SEED_LENGTH);
    const session = new OutboundGroupSession(new Ratchet(randomBytes(RATCHET_LENGTH), 0), seed);
    wipe(seed);
    return session;
  }

  /** The Ed25519 public key, unpadded base64: the `session_id` of `m.room_key` and events. */
  get sessionId(): string {
    return this.#sessionId;
  }

  /** The index the next encrypted message will carry. */
  get messageIndex(): number {
    return this.#ratchet.counter;
  }

  /**
   * The signed v2 session key at the current index (the `session_key` of `m.room_key`): whoever
   * holds it can decrypt this and every later message, none before.
   */
  sessionKey(): string {
    return encodeSessionKey(this.#ratchet, this.#signingSecret);
  }

  /**
   * The signed v2 session key for `exported`, a v1 export of this same session at an earlier index
   * (an inbound copy's `exportAt`): a room key given again from the index a device first got, so
   * the messages it missed since decrypt too. An export of another session is refused
   * (`BAD_SESSION_KEY`): this session's signature would vouch for a ratchet that is not its own.
   */
  sessionKeyFrom(exported: string): string {
    const { ratchet, signingKey } = decodeExportedKey(exported);
    try {
      if (encodeBase64(signingKey) !== this.#sessionId) {
        throw new MegolmError("BAD_SESSION_KEY", "the export is of another Megolm session");
      }
      return encodeSessionKey(ratchet, this.#signingSecret);
    } finally {
      ratchet.destroy();
    }
  }

  /**
   * A copy of the ratchet the next message is encrypted with (index `messageIndex`): what an
   * inbound copy of this session must hold at that index for `InboundGroupSession.holdsRatchet`
   * (the sender's own echo, see e2ee/decryption/own-echoes.ts). The caller wipes it when done.
   */
  ratchetCopy(): Uint8Array {
    return this.#ratchet.bytes.slice();
  }

  /** Encrypts one message at the current index, then advances the ratchet. Returns base64. */
  encrypt(plaintext: string | Uint8Array): string {
    // The last counter value is never used, so that an index is never repeated by wrapping.
    if (this.#ratchet.counter >= MAX_MESSAGE_INDEX) {
      throw new MegolmError("SESSION_EXHAUSTED", "this Megolm session has used every message index");
    }
    const keys = deriveMessageKeys(this.#ratchet.bytes);
    let input: Uint8Array | undefined;
    let message: string;
    try {
      // Inside the try: a string's UTF-8 goes to a shared buffer, wiped below whatever happens.
      input = plaintextBytes(plaintext);
      const ciphertext = aes256CbcEncrypt(keys.aesKey, keys.iv, input);
      const length = megolmMessageLength(this.#ratchet.counter, ciphertext.length);
      const bytes =
        length <= MESSAGE_SCRATCH_LENGTH ? MESSAGE_SCRATCH.subarray(0, length) : new Uint8Array(length);
      const macOffset = writeMegolmMessage(bytes, this.#ratchet.counter, ciphertext);
      const mac = hmacSha256(keys.macKey, bytes.subarray(0, macOffset));
      for (let i = 0; i < MEGOLM_MAC_LENGTH; i++) bytes[macOffset + i] = mac[i]!;
      const signedEnd = macOffset + MEGOLM_MAC_LENGTH;
      ed25519SignInto(bytes.subarray(signedEnd), this.#signingSecret, bytes.subarray(0, signedEnd));
      message = encodeBase64(bytes);
    } finally {
      wipe(keys.all);
      // A string's bytes are ours (a shared buffer): not left behind. The caller's bytes are theirs.
      if (input !== undefined && input !== plaintext) wipe(input);
    }
    this.#advance();
    return message;
  }

  /** One ratchet step: the state `toPickleAt` computed ahead when there is one, else hashed. */
  #advance(): void {
    const next = this.#ratchet.counter + 1;
    const slot = next - this.#lookaheadFrom;
    const lookahead = this.#lookahead;
    if (lookahead === undefined || slot < 0 || slot >= this.#lookaheadLength) {
      this.#ratchet.advance();
      return;
    }
    const state = lookahead.subarray(slot * RATCHET_LENGTH, (slot + 1) * RATCHET_LENGTH);
    this.#ratchet.bytes.set(state);
    this.#ratchet.counter = next;
    wipe(state);
    if (slot === this.#lookaheadLength - 1) this.#dropLookahead();
  }

  #dropLookahead(): void {
    if (this.#lookahead !== undefined) wipe(this.#lookahead);
    this.#lookahead = undefined;
    this.#lookaheadLength = 0;
  }

  toPickle(): OutboundGroupSessionPickle {
    return {
      version: 1,
      ratchet: encodeBase64(this.#ratchet.bytes),
      messageIndex: this.#ratchet.counter,
      signingSeed: encodeBase64(this.#signingSecret.subarray(0, 32)),
    };
  }

  /**
   * The pickle of this session as it will be at `index` (not below the current one), the session
   * itself unchanged: saved ahead, it lets the messages below `index` be sent without saving each.
   */
  toPickleAt(index: number): OutboundGroupSessionPickle {
    if (!Number.isSafeInteger(index) || index < this.#ratchet.counter || index > MAX_MESSAGE_INDEX) {
      throw new MegolmError("BAD_ARGUMENT", "a pickle ahead needs an index from the current one to the last");
    }
    const ahead = this.#ratchet.clone();
    if (index > ahead.counter && index - ahead.counter <= LOOKAHEAD_STATES) {
      // One step at a time (as many hashes as advanceTo's), keeping each state for #advance.
      // Any states still kept are of the same chain, from the same next index: replaced.
      this.#dropLookahead();
      const lookahead = new Uint8Array((index - ahead.counter) * RATCHET_LENGTH);
      this.#lookahead = lookahead;
      this.#lookaheadFrom = ahead.counter + 1;
      this.#lookaheadLength = index - ahead.counter;
      for (let slot = 0; ahead.counter < index; slot++) {
        ahead.advance();
        lookahead.set(ahead.bytes, slot * RATCHET_LENGTH);
      }
    } else {
      ahead.advanceTo(index);
    }
    const pickle: OutboundGroupSessionPickle = {
      version: 1,
      ratchet: encodeBase64(ahead.bytes),
      messageIndex: ahead.counter,
      signingSeed: encodeBase64(this.#signingSecret.subarray(0, 32)),
    };
    wipe(ahead.bytes);
    return pickle;
  }

  static fromPickle(pickle: OutboundGroupSessionPickle): OutboundGroupSession {
    const p = pickleObject(pickle, 1, "OutboundGroupSession");
    const ratchet = pickleBytes(p.ratchet, RATCHET_LENGTH, "ratchet");
    const messageIndex = pickleInteger(p.messageIndex, MAX_MESSAGE_INDEX, "messageIndex");
    const seed = pickleBytes(p.signingSeed, ED25519_SEED_LENGTH, "signingSeed");
    const session = new OutboundGroupSession(new Ratchet(ratchet, messageIndex), seed);
    wipe(seed);
    return session;
  }

  /** Public parts only. */
  toJSON(): { sessionId: string; messageIndex: number } {
    return { sessionId: this.#sessionId, messageIndex: this.messageIndex };
  }

  [INSPECT](): string {
    return `OutboundGroupSession { sessionId: ${this.#sessionId}, messageIndex: ${this.messageIndex} }`;
  }

  toString(): string {
    return this[INSPECT]();
  }
}
