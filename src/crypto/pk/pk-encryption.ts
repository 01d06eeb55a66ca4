/** Encrypting to a backup key (`m.megolm_backup.v1.curve25519-aes-sha2` `session_data`). */
import {
  aes256CbcEncrypt,
  CryptoPrimitiveError,
  encodeBase64,
  randomBytes,
  utf8Encode,
  wipe,
  X25519_KEY_LENGTH,
  x25519PublicKey,
} from "../primitives/index.ts";
import { agree, decodePublicKey, deriveKeys } from "./cipher.ts";
import { PkError } from "./errors.ts";

/** The three unpadded-base64 strings of an encrypted backup payload. */
export interface PkMessage {
  readonly ciphertext: string;
  readonly mac: string;
  readonly ephemeral: string;
}

function plaintextBytes(plaintext: string | Uint8Array): Uint8Array {
  if (plaintext instanceof Uint8Array) return plaintext;
  if (typeof plaintext !== "string") throw new PkError("BAD_ARGUMENT", "plaintext must be a string or bytes");
  try {
    return utf8Encode(plaintext);
  } catch (e) {
    if (e instanceof CryptoPrimitiveError) throw new PkError("BAD_ARGUMENT", "plaintext has no UTF-8 form");
    throw e;
  }
}

/**
 * @internal Known-answer tests only (not re-exported by the package): encryption with a chosen
 * ephemeral secret, so that output can be compared byte for byte with libolm's.
 */
export function encryptWithEphemeral(
  recipient: Uint8Array,
  ephemeralSecret: Uint8Array,
  plaintext: string | Uint8Array,
): PkMessage {
  const input = plaintextBytes(plaintext);
  const keys = deriveKeys(agree(ephemeralSecret, recipient));
  try {
    return {
      ciphertext: encodeBase64(aes256CbcEncrypt(keys.aesKey, keys.iv, input)),
      mac: encodeBase64(keys.mac),
      ephemeral: encodeBase64(x25519PublicKey(ephemeralSecret)),
    };
  } finally {
    wipe(keys.all);
  }
}

export class PkEncryption {
  readonly #recipient: Uint8Array;

  /** `publicKey`: the backup's `auth_data.public_key` (unpadded base64 Curve25519). */
  constructor(publicKey: string) {
    this.#recipient = decodePublicKey(publicKey, "recipient public key");
  }

  get publicKey(): string {
    return encodeBase64(this.#recipient);
  }

  /** Encrypts with a fresh ephemeral key; each call gives an unrelated message. */
  encrypt(plaintext: string | Uint8Array): PkMessage {
    const ephemeral = randomBytes(X25519_KEY_LENGTH);
    try {
      return encryptWithEphemeral(this.#recipient, ephemeral, plaintext);
    } finally {
      wipe(ephemeral);
    }
  }
}
