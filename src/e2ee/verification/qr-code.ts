/**
 * The QR code payload of key verification (client-server API, "QR code format"): `MATRIX`, the
 * version 0x02, the mode, a big-endian u16 length and the flow ID in UTF-8, two 32-byte keys, and
 * the shared secret (the rest; at least 8 bytes).
 */
import { decodeBase64, encodeBase64, utf8Decode, utf8Encode } from "../../crypto/primitives/index.ts";
import { MAX_ID_LENGTH } from "../limits.ts";
import { MAX_QR_CODE_LENGTH, MIN_QR_SECRET_LENGTH } from "./constants.ts";
import { VerificationError } from "./errors.ts";

/** 0x00: verifying another user; 0x01: own device, the shower trusts the master key; 0x02: it does not. */
export type QrMode = 0 | 1 | 2;

export interface QrCodeData {
  readonly mode: QrMode;
  readonly flowId: string;
  /** Unpadded base64 of the first and second 32-byte keys. */
  readonly key1: string;
  readonly key2: string;
  /** Unpadded base64 of the shared secret. */
  readonly secret: string;
}

const MAGIC = utf8Encode("MATRIX");
const VERSION = 0x02;
const KEY_LENGTH = 32;

function keyBytes(key: string, what: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = decodeBase64(key);
  } catch {
    throw new VerificationError("BAD_QR_CODE", `${what} is not base64`);
  }
  if (bytes.length !== KEY_LENGTH) throw new VerificationError("BAD_QR_CODE", `${what} is not 32 bytes`);
  return bytes;
}

export function encodeQrCode(data: QrCodeData): Uint8Array {
  const flow = utf8Encode(data.flowId);
  if (flow.length === 0 || flow.length > 0xffff) throw new VerificationError("BAD_QR_CODE", "bad flow ID");
  const secret = decodeBase64(data.secret);
  if (secret.length < MIN_QR_SECRET_LENGTH) throw new VerificationError("BAD_QR_CODE", "secret too short");
  const out = new Uint8Array(MAGIC.length + 4 + flow.length + 2 * KEY_LENGTH + secret.length);
  let at = 0;
  out.set(MAGIC, at);
  at += MAGIC.length;
  out[at++] = VERSION;
  out[at++] = data.mode;
  out[at++] = flow.length >> 8;
  out[at++] = flow.length & 0xff;
  out.set(flow, at);
  at += flow.length;
  out.set(keyBytes(data.key1, "key1"), at);
  at += KEY_LENGTH;
  out.set(keyBytes(data.key2, "key2"), at);
  at += KEY_LENGTH;
  out.set(secret, at);
  return out;
}

/** Decodes a scanned payload; throws `VerificationError("BAD_QR_CODE")` for anything malformed. */
export function decodeQrCode(bytes: Uint8Array): QrCodeData {
  const bad = (why: string) => new VerificationError("BAD_QR_CODE", why);
  if (!(bytes instanceof Uint8Array) || bytes.length > MAX_QR_CODE_LENGTH)
    throw bad("not a verification QR code");
  const header = MAGIC.length + 4;
  if (bytes.length < header) throw bad("too short");
  for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC[i]) throw bad("not a Matrix QR code");
  if (bytes[MAGIC.length] !== VERSION) throw bad("unsupported QR code version");
  const mode = bytes[MAGIC.length + 1] as number;
  if (mode !== 0 && mode !== 1 && mode !== 2) throw bad("unknown QR code mode");
  const flowLength = ((bytes[MAGIC.length + 2] as number) << 8) | (bytes[MAGIC.length + 3] as number);
  if (flowLength === 0 || flowLength > MAX_ID_LENGTH) throw bad("bad flow ID length");
  const secretAt = header + flowLength + 2 * KEY_LENGTH;
  if (bytes.length < secretAt + MIN_QR_SECRET_LENGTH) throw bad("too short");
  let flowId: string;
  try {
    flowId = utf8Decode(bytes.subarray(header, header + flowLength));
  } catch {
    throw bad("the flow ID is not UTF-8");
  }
  const k1 = header + flowLength;
  return {
    mode,
    flowId,
    key1: encodeBase64(bytes.subarray(k1, k1 + KEY_LENGTH)),
    key2: encodeBase64(bytes.subarray(k1 + KEY_LENGTH, secretAt)),
    secret: encodeBase64(bytes.subarray(secretAt)),
  };
}
