import { CryptoPrimitiveError, utf8Encode, utf8EncodeInto } from "../primitives/index.ts";
import { MegolmError } from "./errors.ts";

/** Strings up to this many UTF-16 code units are encoded into one buffer allocated once. */
export const PLAINTEXT_SCRATCH_UNITS = 2048;
// 3 bytes per code unit, the worst case. A new array per message (every event a client sends) was
// an allocation off V8's heap each time, and garbage; encryption is synchronous, so one shared
// buffer serves every session.
const SCRATCH = new Uint8Array(3 * PLAINTEXT_SCRATCH_UNITS);

/**
 * The bytes to encrypt: the caller's bytes as they are, or the UTF-8 of a string. For a string
 * the result may be a view of a buffer shared by all calls, valid until the next call: the
 * caller wipes it once done (it is never the caller's own array then).
 */
export function plaintextBytes(plaintext: string | Uint8Array): Uint8Array {
  if (plaintext instanceof Uint8Array) return plaintext;
  if (typeof plaintext !== "string")
    throw new MegolmError("BAD_ARGUMENT", "plaintext must be a string or bytes");
  try {
    return plaintext.length <= PLAINTEXT_SCRATCH_UNITS
      ? SCRATCH.subarray(0, utf8EncodeInto(plaintext, SCRATCH))
      : utf8Encode(plaintext);
  } catch (e) {
    if (e instanceof CryptoPrimitiveError)
      throw new MegolmError("BAD_ARGUMENT", "plaintext has no UTF-8 form");
    throw e;
  }
}
