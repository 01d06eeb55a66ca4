/**
 * The portable back end's ChaCha20-Poly1305 (`#primitives-aead`), from @noble/ciphers. A module of
 * its own: only dehydrated-device pickles use it, and a browser bundle loads them on first use.
 */
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import type { AeadBackend } from "./backend.ts";
import { CryptoPrimitiveError } from "./errors.ts";
import { checkChaCha20Poly1305 } from "./validate.ts";

function chacha20Poly1305Encrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad?: Uint8Array,
): Uint8Array {
  checkChaCha20Poly1305(key, nonce, plaintext, false, aad);
  return chacha20poly1305(key, nonce, aad).encrypt(plaintext);
}

function chacha20Poly1305Decrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad?: Uint8Array,
): Uint8Array {
  checkChaCha20Poly1305(key, nonce, sealed, true, aad);
  try {
    return chacha20poly1305(key, nonce, aad).decrypt(sealed);
  } catch {
    throw new CryptoPrimitiveError("BAD_TAG", "ChaCha20-Poly1305 tag does not match");
  }
}

export const aeadBackend: AeadBackend = { chacha20Poly1305Encrypt, chacha20Poly1305Decrypt };
