/**
 * The contract every cryptographic back end fulfils. Everything above this module (Olm, Megolm,
 * PK encryption, SAS, attachments, backups, stores) is written against this interface only.
 *
 * All functions are synchronous and pure apart from `randomBytes`, except the `…Async` ones:
 * `pbkdf2Sha512Async`, so that a deliberately slow derivation never blocks a UI thread, and the
 * per-message ones (`ed25519VerifyAsync`, `hkdfSha256Async`, `hmacSha256Async`,
 * `aes256CbcDecryptAsync`), which a JavaScript back end hands to the runtime's native Web Crypto.
 * They give the same results and the same refusals (as rejections) as their synchronous forms. Inputs are never mutated and
 * outputs are fresh arrays the caller owns (and may wipe).
 */
/** Incremental SHA-256: feed chunks with `update`, then `digest` once. */
export interface Sha256Hasher {
  update(data: Uint8Array): void;
  digest(): Uint8Array;
}

/**
 * The primitives every part of Keyroom uses, the stores and attachments included: hashes, MACs,
 * KDFs, AES and randomness. A module of their own (`#primitives-symmetric`), so that what a browser
 * bundle loads first (the stores) does not carry Curve25519 (docs/browser.md, "Size").
 */
export interface SymmetricBackend {
  /** Short name shown by benchmarks, e.g. "node" or "noble". */
  readonly name: string;

  /** Cryptographically secure random bytes. */
  randomBytes(length: number): Uint8Array;

  sha256(data: Uint8Array): Uint8Array;
  /** An incremental SHA-256, for data that arrives in chunks (streamed attachments). */
  createSha256(): Sha256Hasher;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  /**
   * HMAC into `out` (exactly 32 bytes; it may overlap `key` or `data`): for callers that hash per
   * message into a buffer of their own (the Megolm ratchet, the MAC check), without an array each time.
   */
  hmacSha256Into(out: Uint8Array, key: Uint8Array, data: Uint8Array): void;
  /** RFC 5869 HKDF with SHA-256. `length` is at most 255 * 32. */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  /**
   * HKDF into `out`, as many bytes as it holds (at most 255 * 32): for callers that derive keys
   * per message into a buffer of their own, without an allocation each time.
   */
  hkdfSha256Into(out: Uint8Array, ikm: Uint8Array, salt: Uint8Array, info: Uint8Array): void;
  /** PBKDF2 with HMAC-SHA-512 (key export files, SSSS passphrases). */
  pbkdf2Sha512(password: Uint8Array, salt: Uint8Array, iterations: number, length: number): Uint8Array;
  /**
   * The same PBKDF2, computed off the calling thread where the runtime can (Node's thread pool, the
   * browser's Web Crypto), for store passphrases: a page opening its store must not freeze.
   */
  pbkdf2Sha512Async(
    password: Uint8Array,
    salt: Uint8Array,
    iterations: number,
    length: number,
  ): Promise<Uint8Array>;
  /**
   * HMAC-SHA-512 under a fixed key, with the key's pads computed once: the building block of
   * PBKDF2 run in steps (pbkdf2-steps.ts). The returned function may be called any number of times.
   */
  createHmacSha512(key: Uint8Array): (data: Uint8Array) => Uint8Array;

  /** AES-256-CBC with PKCS#7 padding. `key` is 32 bytes, `iv` 16 bytes. */
  aes256CbcEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /** Throws `CryptoPrimitiveError` (code `BAD_PADDING` / `BAD_LENGTH`) on malformed input. */
  aes256CbcDecrypt(key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array): Uint8Array;
  /** AES-256-CTR keystream XOR with a 16-byte initial counter block (128-bit big-endian counter). */
  aes256Ctr(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array;

  /**
   * `hkdfSha256`, natively where the back end is JavaScript and the runtime has Web Crypto (same
   * results); the synchronous form elsewhere.
   */
  hkdfSha256Async(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Promise<Uint8Array>;
  /** `hmacSha256`, likewise. */
  hmacSha256Async(key: Uint8Array, data: Uint8Array): Promise<Uint8Array>;
  /** `aes256CbcDecrypt`, likewise; rejects with the same `CryptoPrimitiveError`. */
  aes256CbcDecryptAsync(key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array): Promise<Uint8Array>;
}

/**
 * ChaCha20-Poly1305, a module of its own (`#primitives-aead`): only dehydrated-device pickles use
 * it, and they are loaded on first use, so the engine's browser chunks do not carry it
 * (docs/browser.md, "Size").
 */
export interface AeadBackend {
  /**
   * ChaCha20-Poly1305 (RFC 8439) with a 32-byte key and 12-byte nonce: ciphertext || 16-byte tag.
   * Used for vodozemac-compatible dehydrated-device pickles (no `aad` there).
   */
  chacha20Poly1305Encrypt(
    key: Uint8Array,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    aad?: Uint8Array,
  ): Uint8Array;
  /** Throws `CryptoPrimitiveError` `BAD_TAG` when the tag does not check out, `BAD_LENGTH` on sizes. */
  chacha20Poly1305Decrypt(
    key: Uint8Array,
    nonce: Uint8Array,
    sealed: Uint8Array,
    aad?: Uint8Array,
  ): Uint8Array;
}

/**
 * The back end the engine imports (`#primitives-backend`): the symmetric primitives plus X25519
 * and Ed25519, which only the E2EE engine uses (Olm, signatures, cross-signing). ChaCha20-Poly1305
 * is `AeadBackend`, apart.
 */
export interface CryptoBackend extends SymmetricBackend {
  /** X25519 public key for a 32-byte secret scalar (clamped per RFC 7748). */
  x25519PublicKey(secretKey: Uint8Array): Uint8Array;
  /**
   * X25519 Diffie-Hellman: 32-byte shared secret. Throws `CryptoPrimitiveError`
   * `NON_CONTRIBUTORY_KEY` when the result is all zero (the peer sent a low-order point).
   */
  x25519(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array;

  /** Ed25519 public key for a 32-byte seed (RFC 8032 private key). */
  ed25519PublicKey(seed: Uint8Array): Uint8Array;
  /**
   * Ed25519 signature. `secretKey` is 64 bytes: the 32-byte seed followed by its public key
   * (the libsodium layout, which lets fast back ends skip re-deriving the public key). The
   * public half must be the one derived from the seed: libsodium hashes the stored half, noble
   * re-derives it, so a mismatched key gives invalid (and back-end-dependent) signatures.
   */
  ed25519Sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array;
  /**
   * `ed25519Sign` written into `out` (64 bytes, not overlapping `message`; `BAD_ARGUMENT` if it
   * does): for a caller that lays the signature into a buffer of its own, such as a message.
   */
  ed25519SignInto(out: Uint8Array, secretKey: Uint8Array, message: Uint8Array): void;
  /** False for any invalid key, signature or message; never throws on malformed input. */
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;

  /**
   * `ed25519Verify`, natively where the back end is JavaScript and the runtime has Web Crypto
   * (same verdicts); the synchronous verify elsewhere.
   */
  ed25519VerifyAsync(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
}
