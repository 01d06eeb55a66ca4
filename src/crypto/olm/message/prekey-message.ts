/**
 * The Olm pre-key message (spec: "Olm PreKey Message"): sent until the sender has received a reply,
 * so that the recipient can build the session. Byte for byte as libolm and vodozemac:
 *
 *   0x03 | 0x0A len one-time-key | 0x12 len base-key | 0x1A len identity-key | 0x22 len message
 *
 * The inner message is a complete normal message (with its own MAC); the outer layer has no MAC.
 */
import { OlmError } from "../errors.ts";
import { CURVE25519_KEY_LENGTH, OLM_MESSAGE_VERSION } from "./message.ts";
import { bytesFieldLength, readFields, WIRE_BYTES, writeBytesField, writeVarint } from "./protobuf-varint.ts";

const FIELD_ONE_TIME_KEY = 1;
const FIELD_BASE_KEY = 2;
const FIELD_IDENTITY_KEY = 3;
const FIELD_MESSAGE = 4;
const TAG_ONE_TIME_KEY = (FIELD_ONE_TIME_KEY << 3) | WIRE_BYTES;
const TAG_BASE_KEY = (FIELD_BASE_KEY << 3) | WIRE_BYTES;
const TAG_IDENTITY_KEY = (FIELD_IDENTITY_KEY << 3) | WIRE_BYTES;
const TAG_MESSAGE = (FIELD_MESSAGE << 3) | WIRE_BYTES;

/** A decoded pre-key message. All fields are subarrays of the decoded input. */
export interface DecodedPreKeyMessage {
  /** The recipient's one-time (or fallback) key the sender used. */
  readonly oneTimeKey: Uint8Array;
  /** The sender's ephemeral base key. */
  readonly baseKey: Uint8Array;
  /** The sender's Curve25519 identity key. */
  readonly identityKey: Uint8Array;
  /** The encoded inner normal message. */
  readonly message: Uint8Array;
}

/** Total encoded length of a pre-key message wrapping an inner message of `innerLength` bytes. */
export function preKeyMessageLength(innerLength: number): number {
  return 1 + 3 * bytesFieldLength(CURVE25519_KEY_LENGTH) + bytesFieldLength(innerLength);
}

/**
 * Writes the pre-key header into `out` (sized by `preKeyMessageLength`) and returns the offset at
 * which the caller writes the `innerLength`-byte inner message.
 */
export function writePreKeyHeader(
  out: Uint8Array,
  oneTimeKey: Uint8Array,
  baseKey: Uint8Array,
  identityKey: Uint8Array,
  innerLength: number,
): number {
  out[0] = OLM_MESSAGE_VERSION;
  let o = writeBytesField(out, 1, TAG_ONE_TIME_KEY, oneTimeKey);
  o = writeBytesField(out, o, TAG_BASE_KEY, baseKey);
  o = writeBytesField(out, o, TAG_IDENTITY_KEY, identityKey);
  out[o] = TAG_MESSAGE;
  return writeVarint(out, o + 1, innerLength);
}

/**
 * Decodes the outer layer of a pre-key message; the inner message is returned undecoded.
 * Unknown protobuf fields are skipped; known ones must appear once with the right wire type, and
 * every key must be 32 bytes.
 */
export function decodePreKeyMessage(bytes: Uint8Array): DecodedPreKeyMessage {
  const version = bytes[0];
  if (version === undefined) throw new OlmError("BAD_MESSAGE_FORMAT", "empty pre-key message");
  if (version !== OLM_MESSAGE_VERSION) {
    throw new OlmError("BAD_MESSAGE_VERSION", `unsupported Olm message version ${version}`);
  }
  const found: (Uint8Array | undefined)[] = [undefined, undefined, undefined, undefined, undefined];
  readFields(bytes.subarray(1), (field) => {
    const n = field.fieldNumber;
    if (n < FIELD_ONE_TIME_KEY || n > FIELD_MESSAGE) return;
    if (field.wireType !== WIRE_BYTES || found[n] !== undefined) {
      throw new OlmError("BAD_MESSAGE_FORMAT", "duplicate or mistyped pre-key message field");
    }
    found[n] = field.bytes;
  });
  const oneTimeKey = requireKey(found[FIELD_ONE_TIME_KEY], "one-time key");
  const baseKey = requireKey(found[FIELD_BASE_KEY], "base key");
  const identityKey = requireKey(found[FIELD_IDENTITY_KEY], "identity key");
  const message = found[FIELD_MESSAGE];
  if (message === undefined)
    throw new OlmError("BAD_MESSAGE_FORMAT", "pre-key message lacks its inner message");
  return { oneTimeKey, baseKey, identityKey, message };
}

function requireKey(key: Uint8Array | undefined, name: string): Uint8Array {
  if (key === undefined) throw new OlmError("BAD_MESSAGE_FORMAT", `pre-key message lacks its ${name}`);
  if (key.length !== CURVE25519_KEY_LENGTH) {
    throw new OlmError("BAD_MESSAGE_FORMAT", `pre-key message ${name} is not 32 bytes`);
  }
  return key;
}
