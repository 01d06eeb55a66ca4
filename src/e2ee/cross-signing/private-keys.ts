/**
 * Our own cross-signing private keys: three Ed25519 seeds. Stored as secrets (encrypted at rest by
 * the store) under the names secret storage also uses, as unpadded base64 of the 32-byte seed.
 */
import { type Signatures, signJson } from "../../crypto/json/index.ts";
import {
  concatBytes,
  decodeBase64,
  ed25519PublicKey,
  ed25519Sign,
  encodeBase64,
  randomBytes,
} from "../../crypto/primitives/index.ts";
import type { CrossSigningUsage, KeyJson } from "./keys.ts";

export const SECRET_NAME: Readonly<Record<CrossSigningUsage, string>> = {
  master: "m.cross_signing.master",
  self_signing: "m.cross_signing.self_signing",
  user_signing: "m.cross_signing.user_signing",
};

export const CROSS_SIGNING_USAGES: readonly CrossSigningUsage[] = ["master", "self_signing", "user_signing"];

/** One Ed25519 signing key; only its public half is ever shown. */
export class SigningKey {
  readonly #secret: Uint8Array;
  readonly publicKey: string;

  private constructor(seed: Uint8Array) {
    const pub = ed25519PublicKey(seed);
    this.#secret = concatBytes(seed, pub);
    this.publicKey = encodeBase64(pub);
  }

  static generate(): SigningKey {
    return new SigningKey(randomBytes(32));
  }

  /** From the stored (or gossiped) secret; undefined when it is not a 32-byte base64 seed. */
  static fromSecret(secret: string): SigningKey | undefined {
    try {
      const seed = decodeBase64(secret);
      return seed.length === 32 ? new SigningKey(seed) : undefined;
    } catch {
      return undefined;
    }
  }

  /** The seed as the secret's value (unpadded base64). */
  toSecret(): string {
    return encodeBase64(this.#secret.subarray(0, 32));
  }

  get keyId(): string {
    return `ed25519:${this.publicKey}`;
  }

  sign(message: Uint8Array): string {
    return encodeBase64(ed25519Sign(this.#secret, message));
  }

  /** `obj` with this key's signature added under `signatures[userId]["ed25519:<pub>"]`. */
  signObject<T extends Record<string, unknown>>(userId: string, obj: T): T & { signatures: Signatures } {
    return signJson(obj, userId, this.keyId, (bytes) => this.sign(bytes));
  }

  /** The public key object for upload, unsigned. */
  publicObject(userId: string, usage: CrossSigningUsage): KeyJson {
    return { user_id: userId, usage: [usage], keys: { [this.keyId]: this.publicKey } };
  }

  toJSON(): Record<string, string> {
    return { publicKey: this.publicKey };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `SigningKey(${this.publicKey})`;
  }
}

/** The private keys we hold (any of them may be missing: e.g. only the self-signing key was shared to us). */
export interface PrivateCrossSigningKeys {
  readonly master: SigningKey | undefined;
  readonly self_signing: SigningKey | undefined;
  readonly user_signing: SigningKey | undefined;
}

export function generatePrivateKeys(): {
  master: SigningKey;
  self_signing: SigningKey;
  user_signing: SigningKey;
} {
  return {
    master: SigningKey.generate(),
    self_signing: SigningKey.generate(),
    user_signing: SigningKey.generate(),
  };
}
