/**
 * ChaCha20-Poly1305, bound to the back end the package `imports` map selects for this runtime
 * (`#primitives-aead`: node:crypto on Node, @noble/ciphers elsewhere or with the `keyroom-noble`
 * condition). Not re-exported by index.ts, which the whole engine imports: only the
 * dehydrated-device pickle uses it, and a browser bundle loads that on first use, so the engine's
 * chunks do not carry the cipher (test/package/browser-bundle.test.ts holds that).
 */
import { aeadBackend as backend } from "#primitives-aead";

export type { AeadBackend } from "./backend.ts";

export const chacha20Poly1305Encrypt: (
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad?: Uint8Array,
) => Uint8Array = backend.chacha20Poly1305Encrypt;
export const chacha20Poly1305Decrypt: (
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad?: Uint8Array,
) => Uint8Array = backend.chacha20Poly1305Decrypt;
