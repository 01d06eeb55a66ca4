/**
 * An Olm session: one double ratchet between two devices, identified by the public keys it was
 * built from (spec: session ID = SHA-256(identity key A || base key A || one-time key B)).
 */
import { encodeBase64, sha256, utf8Encode } from "../../primitives/index.ts";
import { bytesEqual, decodeCurve25519Key } from "../keys.ts";
import { type DecodedMessage, decodeMessage } from "../message/message.ts";
import {
  decodeOlmMessageBody,
  MESSAGE_TYPE_NORMAL,
  MESSAGE_TYPE_PRE_KEY,
  type OlmMessage,
} from "../message/olm-message.ts";
import { decodePreKeyMessage } from "../message/prekey-message.ts";
import { pickleBoolean, pickleBytes, pickleObject, pickleVersion } from "../pickle.ts";
import { DoubleRatchet, type DoubleRatchetPickle } from "./double-ratchet.ts";

/** The three public keys that name a session (spec: I_A, E_A, E_B). */
export interface SessionKeys {
  /** The initiator's Curve25519 identity key. */
  readonly identityKey: Uint8Array;
  /** The initiator's ephemeral base key. */
  readonly baseKey: Uint8Array;
  /** The responder's one-time (or fallback) key. */
  readonly oneTimeKey: Uint8Array;
}

export interface SessionPickle {
  readonly version: 1;
  readonly identityKey: string;
  readonly baseKey: string;
  readonly oneTimeKey: string;
  readonly receivedMessage: boolean;
  readonly ratchet: DoubleRatchetPickle;
}

const INSPECT = Symbol.for("nodejs.util.inspect.custom");

/**
 * @internal Known-answer tests only (not re-exported by the package): encrypts with a fixed
 * secret for the ratchet key, used if this message starts a new sending chain.
 */
export let encryptWithRatchetSecret: (
  session: Session,
  plaintext: string | Uint8Array,
  ratchetSecret: Uint8Array | null,
) => OlmMessage;

export class Session {
  readonly #keys: SessionKeys;
  #ratchet: DoubleRatchet;
  #receivedMessage: boolean;
  #sessionId: string | undefined;

  /** @internal Sessions come from `Account.createOutboundSession` / `createInboundSession` or `fromPickle`. */
  constructor(keys: SessionKeys, ratchet: DoubleRatchet, receivedMessage: boolean) {
    this.#keys = keys;
    this.#ratchet = ratchet;
    this.#receivedMessage = receivedMessage;
  }

  /** Unpadded base64 of SHA-256(identity key || base key || one-time key), as libolm. */
  get sessionId(): string {
    this.#sessionId ??= encodeBase64(
      sha256(concat3(this.#keys.identityKey, this.#keys.baseKey, this.#keys.oneTimeKey)),
    );
    return this.#sessionId;
  }

  /** Whether any message from the peer has decrypted; until then we send pre-key messages. */
  get hasReceivedMessage(): boolean {
    return this.#receivedMessage;
  }

  /**
   * Encrypts `plaintext` (UTF-8 if a string): a pre-key message (type 0) until a message from the
   * peer has decrypted on this session, a normal message (type 1) after.
   */
  encrypt(plaintext: string | Uint8Array): OlmMessage {
    return this.#encrypt(plaintext, undefined);
  }

  static {
    encryptWithRatchetSecret = (session, plaintext, ratchetSecret) =>
      session.#encrypt(plaintext, ratchetSecret === null ? undefined : ratchetSecret.slice());
  }

  #encrypt(plaintext: string | Uint8Array, ratchetSecret: Uint8Array | undefined): OlmMessage {
    const bytes = typeof plaintext === "string" ? utf8Encode(plaintext) : plaintext;
    const wrap = this.#receivedMessage ? null : this.#keys;
    const body = encodeBase64(this.#ratchet.encrypt(bytes, wrap, ratchetSecret));
    return { type: wrap === null ? MESSAGE_TYPE_NORMAL : MESSAGE_TYPE_PRE_KEY, body };
  }

  /** Decrypts a pre-key or normal message. On any failure the session is left exactly as it was. */
  decrypt(message: OlmMessage): Uint8Array {
    const bytes = decodeOlmMessageBody(message);
    const inner = message.type === MESSAGE_TYPE_PRE_KEY ? decodePreKeyMessage(bytes).message : bytes;
    return this.decryptDecoded(decodeMessage(inner));
  }

  /** @internal Decrypts a decoded normal message (the inner message of a pre-key message). */
  decryptDecoded(message: DecodedMessage): Uint8Array {
    const plaintext = this.#ratchet.decrypt(message);
    this.#receivedMessage = true;
    return plaintext;
  }

  /**
   * Whether a pre-key message was built for this session: its identity key, base key and one-time
   * key are the ones this session was created from, and its identity key is `theirIdentityKey`.
   * Normal messages never match. Throws `OlmError` for a malformed message or key.
   */
  matchesInboundSession(theirIdentityKey: string, message: OlmMessage): boolean {
    const expected = decodeCurve25519Key(theirIdentityKey, "their identity key");
    const bytes = decodeOlmMessageBody(message);
    if (message.type !== MESSAGE_TYPE_PRE_KEY) return false;
    const m = decodePreKeyMessage(bytes);
    const k = this.#keys;
    return (
      bytesEqual(m.identityKey, expected) &&
      bytesEqual(m.identityKey, k.identityKey) &&
      bytesEqual(m.baseKey, k.baseKey) &&
      bytesEqual(m.oneTimeKey, k.oneTimeKey)
    );
  }

  toPickle(): SessionPickle {
    return {
      version: 1,
      identityKey: encodeBase64(this.#keys.identityKey),
      baseKey: encodeBase64(this.#keys.baseKey),
      oneTimeKey: encodeBase64(this.#keys.oneTimeKey),
      receivedMessage: this.#receivedMessage,
      ratchet: this.#ratchet.toPickle(),
    };
  }

  static fromPickle(pickle: SessionPickle): Session {
    // Read back from storage: validated field by field, whatever arrives.
    const p = pickleObject(pickle as unknown, "session");
    pickleVersion(p, 1, "session");
    const keys: SessionKeys = {
      identityKey: pickleBytes(p.identityKey, 32, "identityKey"),
      baseKey: pickleBytes(p.baseKey, 32, "baseKey"),
      oneTimeKey: pickleBytes(p.oneTimeKey, 32, "oneTimeKey"),
    };
    return new Session(
      keys,
      DoubleRatchet.fromPickle(p.ratchet, "ratchet"),
      pickleBoolean(p.receivedMessage, "receivedMessage"),
    );
  }

  /** Overwrites the session's secrets; the object is unusable afterwards. */
  wipe(): void {
    this.#ratchet.wipe();
  }

  toJSON(): { sessionId: string; hasReceivedMessage: boolean } {
    return { sessionId: this.sessionId, hasReceivedMessage: this.#receivedMessage };
  }

  [INSPECT](): string {
    return `Session { sessionId: ${this.sessionId}, hasReceivedMessage: ${this.#receivedMessage} }`;
  }

  toString(): string {
    return `Session(${this.sessionId})`;
  }
}

function concat3(a: Uint8Array, b: Uint8Array, c: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length + c.length);
  out.set(a, 0);
  out.set(b, a.length);
  out.set(c, a.length + b.length);
  return out;
}
