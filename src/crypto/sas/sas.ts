/**
 * The SAS primitive behind `m.sas.v1` verification: an ephemeral X25519 key pair, the shared
 * secret with the other side's key, HKDF-SHA-256 bytes from it (empty salt, caller's info), and
 * MACs keyed by HKDF(secret, info) to 32 bytes, as libolm's OlmSAS and vodozemac's Sas compute them.
 */
import {
  CryptoPrimitiveError,
  constantTimeEqual,
  decodeBase64,
  encodeBase64,
  HKDF_SHA256_MAX_LENGTH,
  hkdfSha256,
  hmacSha256,
  randomBytes,
  utf8Encode,
  wipe,
  X25519_KEY_LENGTH,
  x25519,
  x25519PublicKey,
} from "../primitives/index.ts";
import { SasError } from "./errors.ts";
import { libolmInPlaceBase64 } from "./libolm-base64.ts";

/**
 * `hkdf-hmac-sha256.v2`: the MAC in correct base64 (current). `hkdf-hmac-sha256`: the same MAC
 * in libolm's broken in-place base64 (legacy, still offered by older clients).
 */
export type SasMacMethod = "hkdf-hmac-sha256.v2" | "hkdf-hmac-sha256";
export const SAS_MAC_METHODS: readonly SasMacMethod[] = ["hkdf-hmac-sha256.v2", "hkdf-hmac-sha256"];

const EMPTY = new Uint8Array(0);
const INSPECT = Symbol.for("nodejs.util.inspect.custom");

function text(value: unknown, what: string): Uint8Array {
  if (typeof value !== "string") throw new SasError("BAD_ARGUMENT", `${what} must be a string`);
  try {
    return utf8Encode(value);
  } catch (e) {
    if (e instanceof CryptoPrimitiveError) throw new SasError("BAD_ARGUMENT", `${what} has no UTF-8 form`);
    throw e;
  }
}

/**
 * @internal Known-answer tests only (not re-exported by the package): a SAS with a chosen
 * secret key, so that its outputs can be compared with libolm's from the same bytes.
 */
export let sasFromSecret: (secretKey: Uint8Array) => Sas;

export class Sas {
  readonly #secretKey: Uint8Array;
  readonly #publicKey: string;
  #theirPublicKey: string | undefined;
  #sharedSecret: Uint8Array | undefined;

  private constructor(secretKey: Uint8Array) {
    this.#secretKey = secretKey;
    this.#publicKey = encodeBase64(x25519PublicKey(secretKey));
  }

  static {
    sasFromSecret = (secretKey) => {
      if (!(secretKey instanceof Uint8Array) || secretKey.length !== X25519_KEY_LENGTH) {
        throw new SasError("BAD_ARGUMENT", "secret key must be 32 bytes");
      }
      return new Sas(secretKey.slice());
    };
  }

  /** A fresh ephemeral key pair for one verification. */
  static create(): Sas {
    return new Sas(randomBytes(X25519_KEY_LENGTH));
  }

  /** Our ephemeral public key, unpadded base64 (the `key` of `m.key.verification.key`). */
  get publicKey(): string {
    return this.#publicKey;
  }

  /** The other side's key once set. */
  get theirPublicKey(): string | undefined {
    return this.#theirPublicKey;
  }

  /** Completes the agreement with the other side's `m.key.verification.key`. Once only. */
  setTheirPublicKey(key: string): void {
    if (this.#sharedSecret !== undefined) {
      throw new SasError("THEIR_KEY_ALREADY_SET", "the other side's key is already set");
    }
    if (typeof key !== "string") throw new SasError("BAD_KEY", "their public key must be a string");
    let bytes: Uint8Array;
    try {
      bytes = decodeBase64(key);
    } catch (e) {
      if (e instanceof CryptoPrimitiveError)
        throw new SasError("BAD_KEY", "their public key is not valid base64");
      throw e;
    }
    if (bytes.length !== X25519_KEY_LENGTH) throw new SasError("BAD_KEY", "their public key is not 32 bytes");
    try {
      this.#sharedSecret = x25519(this.#secretKey, bytes);
    } catch (e) {
      if (e instanceof CryptoPrimitiveError) {
        throw new SasError(
          e.code === "NON_CONTRIBUTORY_KEY" ? "NON_CONTRIBUTORY_KEY" : "BAD_KEY",
          "Curve25519 key agreement refused their key",
        );
      }
      throw e;
    }
    // The ephemeral secret is not needed any more.
    wipe(this.#secretKey);
    this.#theirPublicKey = encodeBase64(bytes);
  }

  #secret(): Uint8Array {
    if (this.#sharedSecret === undefined) {
      throw new SasError("THEIR_KEY_NOT_SET", "call setTheirPublicKey before deriving bytes or MACs");
    }
    return this.#sharedSecret;
  }

  /** HKDF-SHA-256(shared secret, salt = empty, info) to `count` bytes: the SAS bytes. */
  generateBytes(info: string, count: number): Uint8Array {
    const infoBytes = text(info, "info");
    if (
      typeof count !== "number" ||
      !Number.isInteger(count) ||
      count < 1 ||
      count > HKDF_SHA256_MAX_LENGTH
    ) {
      throw new SasError("BAD_ARGUMENT", `count must be an integer in [1, ${HKDF_SHA256_MAX_LENGTH}]`);
    }
    return hkdfSha256(this.#secret(), EMPTY, infoBytes, count);
  }

  #mac(input: string, info: string): Uint8Array {
    const inputBytes = text(input, "input");
    const key = hkdfSha256(this.#secret(), EMPTY, text(info, "info"), 32);
    const mac = hmacSha256(key, inputBytes);
    wipe(key);
    return mac;
  }

  /** The `hkdf-hmac-sha256.v2` MAC: HMAC-SHA-256 under HKDF(secret, info), unpadded base64. */
  calculateMac(input: string, info: string): string {
    return encodeBase64(this.#mac(input, info));
  }

  /** The legacy `hkdf-hmac-sha256` MAC: the same HMAC in libolm's in-place base64 (43 characters). */
  calculateMacLegacy(input: string, info: string): string {
    return libolmInPlaceBase64(this.#mac(input, info));
  }

  /** The MAC for whichever method the verification agreed on. */
  calculateMacWith(method: SasMacMethod, input: string, info: string): string {
    if (method === "hkdf-hmac-sha256.v2") return this.calculateMac(input, info);
    if (method === "hkdf-hmac-sha256") return this.calculateMacLegacy(input, info);
    throw new SasError("BAD_ARGUMENT", "unknown SAS MAC method");
  }

  /** Checks a received MAC in constant time; false for any mismatch or malformed value. */
  verifyMac(method: SasMacMethod, input: string, info: string, mac: string): boolean {
    if (typeof mac !== "string") return false;
    const expected = utf8Encode(this.calculateMacWith(method, input, info));
    // Both are ASCII base64; compare them as bytes so the time does not depend on the content.
    let received: Uint8Array;
    try {
      received = utf8Encode(mac);
    } catch {
      return false;
    }
    return constantTimeEqual(expected, received);
  }

  /** Public parts only. */
  toJSON(): { publicKey: string; theirPublicKey: string | undefined } {
    return { publicKey: this.#publicKey, theirPublicKey: this.#theirPublicKey };
  }

  [INSPECT](): string {
    return `Sas { publicKey: ${this.#publicKey}, theirPublicKey: ${this.#theirPublicKey ?? "(not set)"} }`;
  }

  toString(): string {
    return this[INSPECT]();
  }
}
