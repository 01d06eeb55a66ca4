// Types for the part of sodium-native (libsodium bindings, no published types) that the Node back end uses.
declare module "sodium-native" {
  interface Sodium {
    crypto_scalarmult_base(q: Uint8Array, n: Uint8Array): void;
    /** Throws when the result is all zero (libsodium returns -1 for low-order points). */
    crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): void;
    crypto_sign_seed_keypair(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): void;
    crypto_sign_detached(sig: Uint8Array, m: Uint8Array, sk: Uint8Array): void;
    crypto_sign_verify_detached(sig: Uint8Array, m: Uint8Array, pk: Uint8Array): boolean;
    sodium_memzero(buf: Uint8Array): void;
    /** Fills `buf` from libsodium's generator (by default the operating system's). */
    randombytes_buf(buf: Uint8Array): void;
  }
  const sodium: Sodium;
  export default sodium;
}
