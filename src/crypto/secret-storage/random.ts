/**
 * Random identifiers (secret storage key IDs, salts, secret request IDs). A file of its own so that
 * secret sharing, which the E2EE machine always runs, does not import the passphrase derivation.
 */
import { randomBytes } from "../primitives/symmetric.ts";

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A random alphanumeric string (key IDs, salts), unbiased by rejection sampling. */
export function randomAlphanumeric(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length)) {
      if (byte < 248 && out.length < length) out += ALPHANUMERIC[byte % 62];
    }
  }
  return out;
}
