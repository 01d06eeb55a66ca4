/** Why a primitive refused its input. */
export type CryptoPrimitiveErrorCode =
  /** A key, IV, nonce, seed or output length is not what the primitive requires. */
  | "BAD_LENGTH"
  /** AES-CBC ciphertext whose PKCS#7 padding does not check out. */
  | "BAD_PADDING"
  /** An AEAD (ChaCha20-Poly1305) tag that does not check out: wrong key or altered data. */
  | "BAD_TAG"
  /** A string that is not (unpadded or padded) base64 of the expected alphabet. */
  | "BAD_BASE64"
  /** Bytes that are not valid UTF-8. */
  | "BAD_UTF8"
  /** A key that is not usable, e.g. not a valid curve point. */
  | "BAD_KEY"
  /**
   * X25519 produced the all-zero shared secret: the peer's public key is a low-order point and
   * contributed nothing. Honest peers never send such keys; vodozemac refuses them the same way.
   */
  | "NON_CONTRIBUTORY_KEY"
  /** A numeric argument (length, iteration count) out of range, or a non-Uint8Array input. */
  | "BAD_ARGUMENT"
  /** The runtime lacks what the call needs (Web Crypto outside a secure context). */
  | "UNSUPPORTED";

/** The one error type thrown by `src/crypto/primitives`. Messages never contain key material. */
export class CryptoPrimitiveError extends Error {
  override readonly name = "CryptoPrimitiveError";
  readonly code: CryptoPrimitiveErrorCode;

  constructor(code: CryptoPrimitiveErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** Throws unless `value` is a Uint8Array (typed arrays of other kinds would be read bytewise wrong). */
export function assertBytes(value: unknown, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new CryptoPrimitiveError("BAD_ARGUMENT", `${what} must be a Uint8Array`);
  }
}

/** Throws `BAD_LENGTH` unless `value` is a Uint8Array of exactly `expected` bytes. */
export function assertLength(value: unknown, expected: number, what: string): asserts value is Uint8Array {
  assertBytes(value, what);
  if (value.length !== expected) {
    throw new CryptoPrimitiveError("BAD_LENGTH", `${what} must be ${expected} bytes, got ${value.length}`);
  }
}

/** Throws `BAD_ARGUMENT` unless `n` is an integer in [min, max]. */
export function assertInteger(n: unknown, min: number, max: number, what: string): asserts n is number {
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    throw new CryptoPrimitiveError("BAD_ARGUMENT", `${what} must be an integer in [${min}, ${max}]`);
  }
}
