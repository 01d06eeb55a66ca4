/**
 * The normal Olm message (spec: "Olm Message"). Layout, byte for byte as libolm and vodozemac:
 *
 *   0x03 | 0x0A len ratchet-key | 0x10 varint chain-index | 0x22 len ciphertext | 8-byte MAC
 *
 * The MAC is HMAC-SHA-256 over everything before it, truncated to 8 bytes.
 */
import { OlmError } from "../errors.ts";
import {
  bytesFieldLength,
  readFields,
  varintLength,
  WIRE_BYTES,
  WIRE_VARINT,
  writeBytesField,
  writeVarint,
} from "./protobuf-varint.ts";

export const OLM_MESSAGE_VERSION = 3;
/** libolm truncates the HMAC-SHA-256 of Olm messages to its first 8 bytes. */
export const MESSAGE_MAC_LENGTH = 8;
export const CURVE25519_KEY_LENGTH = 32;

const FIELD_RATCHET_KEY = 1;
const FIELD_CHAIN_INDEX = 2;
const FIELD_CIPHERTEXT = 4;
const TAG_RATCHET_KEY = (FIELD_RATCHET_KEY << 3) | WIRE_BYTES;
const TAG_CHAIN_INDEX = (FIELD_CHAIN_INDEX << 3) | WIRE_VARINT;
const TAG_CIPHERTEXT = (FIELD_CIPHERTEXT << 3) | WIRE_BYTES;

/** A decoded normal message. All byte fields are subarrays of the decoded input. */
export interface DecodedMessage {
  readonly ratchetKey: Uint8Array;
  readonly chainIndex: number;
  readonly ciphertext: Uint8Array;
  /** The bytes the MAC covers (version byte through the ciphertext). */
  readonly macInput: Uint8Array;
  readonly mac: Uint8Array;
}

/** Total encoded length (including the MAC) of a message with these field sizes. */
export function messageLength(chainIndex: number, ciphertextLength: number): number {
  return (
    1 +
    bytesFieldLength(CURVE25519_KEY_LENGTH) +
    1 +
    varintLength(chainIndex) +
    bytesFieldLength(ciphertextLength) +
    MESSAGE_MAC_LENGTH
  );
}

/**
 * Writes the message body (without the MAC) at `offset` in `out`; returns the offset where the
 * MAC goes. `out` must have `messageLength(...)` bytes from `offset`.
 */
export function writeMessageBody(
  out: Uint8Array,
  offset: number,
  ratchetKey: Uint8Array,
  chainIndex: number,
  ciphertext: Uint8Array,
): number {
  out[offset] = OLM_MESSAGE_VERSION;
  let o = writeBytesField(out, offset + 1, TAG_RATCHET_KEY, ratchetKey);
  out[o] = TAG_CHAIN_INDEX;
  o = writeVarint(out, o + 1, chainIndex);
  return writeBytesField(out, o, TAG_CIPHERTEXT, ciphertext);
}

/**
 * Decodes a normal message. Unknown protobuf fields are skipped (as protobuf readers do);
 * known fields must appear once with the right wire type, and the ratchet key must be 32 bytes.
 */
export function decodeMessage(bytes: Uint8Array): DecodedMessage {
  const version = bytes[0];
  if (version === undefined) throw new OlmError("BAD_MESSAGE_FORMAT", "empty message");
  if (version !== OLM_MESSAGE_VERSION) {
    throw new OlmError("BAD_MESSAGE_VERSION", `unsupported Olm message version ${version}`);
  }
  if (bytes.length < 1 + MESSAGE_MAC_LENGTH) {
    throw new OlmError("BAD_MESSAGE_FORMAT", "message too short for its MAC");
  }
  const bodyEnd = bytes.length - MESSAGE_MAC_LENGTH;
  let ratchetKey: Uint8Array | undefined;
  let chainIndex: number | undefined;
  let ciphertext: Uint8Array | undefined;
  readFields(bytes.subarray(1, bodyEnd), (field) => {
    switch (field.fieldNumber) {
      case FIELD_RATCHET_KEY:
        if (field.wireType !== WIRE_BYTES || ratchetKey !== undefined) throw badField("ratchet key");
        ratchetKey = field.bytes;
        break;
      case FIELD_CHAIN_INDEX:
        if (field.wireType !== WIRE_VARINT || chainIndex !== undefined) throw badField("chain index");
        chainIndex = field.value;
        break;
      case FIELD_CIPHERTEXT:
        if (field.wireType !== WIRE_BYTES || ciphertext !== undefined) throw badField("ciphertext");
        ciphertext = field.bytes;
        break;
    }
  });
  if (ratchetKey === undefined || chainIndex === undefined || ciphertext === undefined) {
    throw new OlmError("BAD_MESSAGE_FORMAT", "message lacks a ratchet key, chain index or ciphertext");
  }
  if (ratchetKey.length !== CURVE25519_KEY_LENGTH) {
    throw new OlmError("BAD_MESSAGE_FORMAT", "ratchet key is not 32 bytes");
  }
  return {
    ratchetKey,
    chainIndex,
    ciphertext,
    macInput: bytes.subarray(0, bodyEnd),
    mac: bytes.subarray(bodyEnd),
  };
}

function badField(name: string): OlmError {
  return new OlmError("BAD_MESSAGE_FORMAT", `duplicate or mistyped ${name} field`);
}
