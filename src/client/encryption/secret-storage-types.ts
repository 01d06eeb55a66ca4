// The types of `SecretStorage` (secret-storage.ts), shared with its code loaded on first use
// (secret-storage-impl.ts).
import type { UnlockedSecretStorageKey } from "../../e2ee/index.ts";
import type { JsonObject } from "../../wire/index.ts";
import type { HttpClient } from "../http.ts";

/**
 * How to open a secret storage key: the recovery key, the passphrase, the raw 32 bytes, or a
 * string that is either (read as a recovery key when it is one, else as the key's passphrase).
 */
export type SecretStorageUnlock =
  | string
  | { readonly recoveryKey: string }
  | { readonly passphrase: string; readonly onProgress?: (fraction: number) => void }
  | { readonly key: Uint8Array };

export interface CreateSecretStorageKeyOptions {
  /** Derive the key from this passphrase (`m.pbkdf2`); without it the key is random. */
  readonly passphrase?: string;
  /** Derivation progress, 0 to 1 (the derivation then runs in steps, yielding between them). */
  readonly onProgress?: (fraction: number) => void;
  /** PBKDF2 iterations (default and least 500 000, what Element and the rust-sdk use). */
  readonly passphraseIterations?: number;
  /** A display name for the key. */
  readonly name?: string;
  /** Make it the default key (default true). Set it later with `setDefaultKey` once secrets are stored. */
  readonly setDefault?: boolean;
}

export interface CreatedSecretStorageKey {
  readonly keyId: string;
  /** The recovery key to show the user once (also works when a passphrase was used). */
  readonly recoveryKey: string;
  /** The opened key, to store secrets with. */
  readonly key: UnlockedSecretStorageKey;
}

export interface SecretStorageHost {
  readonly http: HttpClient;
  readonly userId: string;
  /** Uploads global account data (and keeps the client's copy current). */
  setAccountData(type: string, content: JsonObject): Promise<void>;
  /** After `createKey` made a new default key (dehydration moves to it). Never throws. */
  defaultKeyCreated?(key: UnlockedSecretStorageKey): Promise<void>;
  /**
   * Before `setDefaultKey` (or `createKey` with `setDefault`) points the default at `keyId` (`key`:
   * the opened key, when given): the dehydration key is stored under it too. Its error is thrown,
   * and the default stays.
   */
  defaultKeyChanging?(keyId: string, key: UnlockedSecretStorageKey | undefined): Promise<void>;
}
