/**
 * Keyroom's cryptographic primitives: the one module every protocol imports. The functions are
 * bound to the back end the package `imports` map selects for this runtime (`#primitives-backend`:
 * libsodium + node:crypto on Node, @noble/* elsewhere or with the `keyroom-noble` condition). The
 * symmetric ones come from symmetric.ts (re-exported here), which the stores and attachments
 * import directly so that a browser bundle's first chunks do not carry the curves. ChaCha20-Poly1305
 * is aead.ts, not re-exported here: only the dehydrated-device pickle, loaded on first use, needs it
 * (public.ts, `keyroom/crypto`'s `primitives`, has both).
 */
import { backend } from "#primitives-backend";

export * from "./symmetric.ts";

export const x25519PublicKey: (secretKey: Uint8Array) => Uint8Array = backend.x25519PublicKey;
/**
 * X25519 shared secret. Throws `NON_CONTRIBUTORY_KEY` when the peer's key is a low-order point, so
 * the "shared" secret would be all zeros and known to anyone. vodozemac refuses such keys the same
 * way (`NonContributoryKey` in session creation and ratchet steps); libolm does not check and
 * would derive keys from the zeros. Honest peers never produce these keys (a clamped secret
 * scalar times the base point is never low-order), so refusing them interoperates with both.
 */
export const x25519: (secretKey: Uint8Array, publicKey: Uint8Array) => Uint8Array = backend.x25519;
export const ed25519PublicKey: (seed: Uint8Array) => Uint8Array = backend.ed25519PublicKey;
/** `secretKey` is seed || public key (64 bytes). */
export const ed25519Sign: (secretKey: Uint8Array, message: Uint8Array) => Uint8Array = backend.ed25519Sign;
/** `ed25519Sign` into `out` (64 bytes, not overlapping `message`). */
export const ed25519SignInto: (out: Uint8Array, secretKey: Uint8Array, message: Uint8Array) => void =
  backend.ed25519SignInto;
export const ed25519Verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean =
  backend.ed25519Verify;
/** `ed25519Verify` through Web Crypto in browsers: the same verdicts (see web-ed25519.ts). */
export const ed25519VerifyAsync: (
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
) => Promise<boolean> = backend.ed25519VerifyAsync;
