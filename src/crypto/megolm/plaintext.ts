import { CryptoPrimitiveError, utf8Encode } from "../primitives/index.ts";
import { MegolmError } from "./errors.ts";

/** The bytes to encrypt: UTF-8 of a string, or the caller's bytes as they are. */
export function plaintextBytes(plaintext: string | Uint8Array): Uint8Array {
  if (plaintext instanceof Uint8Array) return plaintext;
  if (typeof plaintext !== "string")
    throw new MegolmError("BAD_ARGUMENT", "plaintext must be a string or bytes");
  try {
    return utf8Encode(plaintext);
  } catch (e) {
    if (e instanceof CryptoPrimitiveError)
      throw new MegolmError("BAD_ARGUMENT", "plaintext has no UTF-8 form");
    throw e;
  }
}
