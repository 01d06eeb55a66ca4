/** Decrypting backup payloads with the backup's private key (the recovery key's content). */
import {
  aes256CbcDecrypt,
  CryptoPrimitiveError,
  constantTimeEqual,
  decodeBase64,
  encodeBase64,
  randomBytes,
  utf8Decode,
  wipe,
  X25519_KEY_LENGTH,
  x25519PublicKey,
} from "../primitives/index.ts";
import { agree, decodePublicKey, deriveKeys, PK_MAC_LENGTH } from "./cipher.ts";
import { PkError } from "./errors.ts";
import type { PkMessage } from "./pk-encryption.ts";

export interface PkDecryptionPickle {
  readonly version: 1;
  /** The Curve25519 private key, unpadded base64 of 32 bytes. */
  readonly privateKey: string;
}

const INSPECT = Symbol.for("nodejs.util.inspect.custom");

function field(message: unknown, name: "ciphertext" | "mac"): Uint8Array {
  const value = (message as Record<string, unknown>)[name];
  if (typeof value !== "string") throw new PkError("BAD_MESSAGE_FORMAT", `${name} must be a string`);
  try {
    return decodeBase64(value);
  } catch (e) {
    if (e instanceof CryptoPrimitiveError)
      throw new PkError("BAD_MESSAGE_FORMAT", `${name} is not valid base64`);
    throw e;
  }
}

export class PkDecryption {
  readonly #privateKey: Uint8Array;
  readonly #publicKey: string;

  private constructor(privateKey: Uint8Array) {
    this.#privateKey = privateKey;
    this.#publicKey = encodeBase64(x25519PublicKey(privateKey));
  }

  /** A new random key pair. */
  static create(): PkDecryption {
    return new PkDecryption(randomBytes(X25519_KEY_LENGTH));
  }

  /** From a 32-byte private key (e.g. decoded from a recovery key or SSSS); the bytes are copied. */
  static fromPrivateKey(privateKey: Uint8Array): PkDecryption {
    if (!(privateKey instanceof Uint8Array) || privateKey.length !== X25519_KEY_LENGTH) {
      throw new PkError("BAD_KEY", "private key must be 32 bytes");
    }
    return new PkDecryption(privateKey.slice());
  }

  /** The Curve25519 public key, unpadded base64 (the backup's `auth_data.public_key`). */
  get publicKey(): string {
    return this.#publicKey;
  }

  /** A copy of the private key, for storing it in SSSS or showing a recovery key. Wipe it after use. */
  exportPrivateKey(): Uint8Array {
    return this.#privateKey.slice();
  }

  /** Decrypts one payload; throws `PkError` for anything that does not check out. */
  decrypt(message: PkMessage): Uint8Array {
    if (typeof message !== "object" || message === null) {
      throw new PkError("BAD_MESSAGE_FORMAT", "message must be an object");
    }
    const ephemeral = decodePublicKey((message as { ephemeral?: unknown }).ephemeral, "ephemeral key");
    const mac = field(message, "mac");
    const ciphertext = field(message, "ciphertext");
    if (mac.length !== PK_MAC_LENGTH)
      throw new PkError("BAD_MESSAGE_FORMAT", `mac must be ${PK_MAC_LENGTH} bytes`);
    const keys = deriveKeys(agree(this.#privateKey, ephemeral));
    try {
      if (!constantTimeEqual(keys.mac, mac)) throw new PkError("BAD_MAC", "the MAC does not match this key");
      try {
        return aes256CbcDecrypt(keys.aesKey, keys.iv, ciphertext);
      } catch (e) {
        if (e instanceof CryptoPrimitiveError)
          throw new PkError("DECRYPTION_FAILED", "the ciphertext does not decrypt");
        throw e;
      }
    } finally {
      wipe(keys.all);
    }
  }

  /** `decrypt`, then UTF-8 decoding (backup `session_data` is JSON). */
  decryptString(message: PkMessage): string {
    const bytes = this.decrypt(message);
    try {
      return utf8Decode(bytes);
    } catch (e) {
      if (e instanceof CryptoPrimitiveError) throw new PkError("BAD_PLAINTEXT", "the plaintext is not UTF-8");
      throw e;
    } finally {
      wipe(bytes);
    }
  }

  toPickle(): PkDecryptionPickle {
    return { version: 1, privateKey: encodeBase64(this.#privateKey) };
  }

  static fromPickle(pickle: PkDecryptionPickle): PkDecryption {
    const p = pickle as unknown;
    if (typeof p !== "object" || p === null || (p as { version?: unknown }).version !== 1) {
      throw new PkError("BAD_PICKLE", "unsupported PkDecryption pickle");
    }
    const value = (p as { privateKey?: unknown }).privateKey;
    let key: Uint8Array | undefined;
    if (typeof value === "string") {
      try {
        key = decodeBase64(value);
      } catch {
        key = undefined;
      }
    }
    if (key === undefined || key.length !== X25519_KEY_LENGTH) {
      throw new PkError("BAD_PICKLE", "pickle field privateKey is missing or malformed");
    }
    return new PkDecryption(key);
  }

  /** Public parts only. */
  toJSON(): { publicKey: string } {
    return { publicKey: this.#publicKey };
  }

  [INSPECT](): string {
    return `PkDecryption { publicKey: ${this.#publicKey} }`;
  }

  toString(): string {
    return this[INSPECT]();
  }
}
