/** Sizes fixed by the algorithms, and the limits the primitives enforce on caller-chosen numbers. */
export const AES256_KEY_LENGTH = 32;
export const AES_BLOCK_LENGTH = 16;
export const X25519_KEY_LENGTH = 32;
export const ED25519_SEED_LENGTH = 32;
export const ED25519_PUBLIC_KEY_LENGTH = 32;
/** seed || public key, the libsodium layout. */
export const ED25519_SECRET_KEY_LENGTH = 64;
export const ED25519_SIGNATURE_LENGTH = 64;
export const SHA256_LENGTH = 32;
/** RFC 5869: at most 255 blocks of the hash output. */
export const HKDF_SHA256_MAX_LENGTH = 255 * SHA256_LENGTH;
/** Largest single `randomBytes` request (1 MiB); Matrix never needs more than a few hundred bytes. */
export const MAX_RANDOM_BYTES = 1 << 20;
/** PBKDF2 output cap; callers need 32-64 bytes (key export files, SSSS passphrases). */
export const PBKDF2_MAX_LENGTH = 1024;
/**
 * PBKDF2 iteration cap. Iteration counts arrive in untrusted key-export files and SSSS
 * `passphrase` records; 10 million bounds the work an attacker can make us do (~tens of seconds)
 * while staying far above the 500 000 that Element uses.
 */
export const PBKDF2_MAX_ITERATIONS = 10_000_000;
export const CHACHA20_POLY1305_KEY_LENGTH = 32;
export const CHACHA20_POLY1305_NONCE_LENGTH = 12;
export const CHACHA20_POLY1305_TAG_LENGTH = 16;
