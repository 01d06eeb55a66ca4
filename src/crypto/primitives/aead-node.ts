/** The Node back end's ChaCha20-Poly1305 (`#primitives-aead`): node:crypto (OpenSSL). */
import * as crypto from "node:crypto";
import type { AeadBackend } from "./backend.ts";
import { CryptoPrimitiveError } from "./errors.ts";
import { own } from "./symmetric-node.ts";
import { checkChaCha20Poly1305 } from "./validate.ts";

function chacha20Poly1305Encrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad?: Uint8Array,
): Uint8Array {
  checkChaCha20Poly1305(key, nonce, plaintext, false, aad);
  const cipher = crypto.createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
  if (aad !== undefined) cipher.setAAD(aad, { plaintextLength: plaintext.length });
  const body = cipher.update(plaintext);
  const tail = cipher.final();
  const out = new Uint8Array(body.length + tail.length + 16);
  out.set(body, 0);
  out.set(tail, body.length);
  out.set(cipher.getAuthTag(), body.length + tail.length);
  return out;
}

function chacha20Poly1305Decrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad?: Uint8Array,
): Uint8Array {
  checkChaCha20Poly1305(key, nonce, sealed, true, aad);
  const decipher = crypto.createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
  if (aad !== undefined) decipher.setAAD(aad, { plaintextLength: sealed.length - 16 });
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  const body = decipher.update(sealed.subarray(0, sealed.length - 16));
  try {
    decipher.final();
  } catch {
    body.fill(0);
    throw new CryptoPrimitiveError("BAD_TAG", "ChaCha20-Poly1305 tag does not match");
  }
  return own(body);
}

export const aeadBackend: AeadBackend = { chacha20Poly1305Encrypt, chacha20Poly1305Decrypt };
