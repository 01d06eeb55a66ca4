/**
 * What is wrong with secret storage, exactly: given the account data (and, when the user has
 * unlocked it, the key), list every missing or broken piece, so that recovery can name the call
 * that repairs each one instead of failing with a generic "incorrect key".
 */
import { passphraseWeakness, SecretStorageError } from "../../crypto/secret-storage/index.ts";
import { parseDefaultKey, parseKeyDescription, parseSecretContent } from "./account-data.ts";
import {
  BACKUP_SECRET,
  CROSS_SIGNING_MASTER_SECRET,
  CROSS_SIGNING_SELF_SIGNING_SECRET,
  CROSS_SIGNING_USER_SIGNING_SECRET,
  DEFAULT_KEY_TYPE,
  decodeKeySecret,
  KEY_SECRETS,
  KEY_TYPE_PREFIX,
  keyType,
  publicKeyOfSecret,
} from "./names.ts";
import { type AccountDataView, readSecret, unlockWithKey } from "./unlock.ts";

/** The secrets a complete recovery set-up holds: the three cross-signing keys and the backup key. */
export const RECOVERY_SECRETS: readonly string[] = [
  CROSS_SIGNING_MASTER_SECRET,
  CROSS_SIGNING_SELF_SIGNING_SECRET,
  CROSS_SIGNING_USER_SIGNING_SECRET,
  BACKUP_SECRET,
];

export type SecretStorageProblem =
  /** Keys or secrets exist but `m.secret_storage.default_key` does not. */
  | { readonly kind: "no_default_key" }
  | { readonly kind: "default_key_malformed" }
  /** The default key's description is absent. */
  | { readonly kind: "key_missing"; readonly keyId: string }
  /** The default key's description is malformed or of an unsupported algorithm. */
  | { readonly kind: "key_malformed"; readonly keyId: string; readonly code: SecretStorageError["code"] }
  /**
   * The default key's passphrase parameters are weak, but its key check vouches for them (a key
   * another client made): its secrets read, yet nothing new is written under it. (Without a check
   * the key is `key_malformed`, code `WEAK_PASSPHRASE_PARAMETERS`.)
   */
  | { readonly kind: "key_weak"; readonly keyId: string }
  /** The key given to the status check is not the default key. */
  | { readonly kind: "wrong_key"; readonly keyId: string }
  | { readonly kind: "secret_missing"; readonly secret: string }
  /** The secret's content has no valid `encrypted` map. */
  | { readonly kind: "secret_malformed"; readonly secret: string }
  | { readonly kind: "secret_not_encrypted_for_key"; readonly secret: string; readonly keyId: string }
  /** The record for the default key is malformed, or its MAC fails (corrupt), or it is not a key. */
  /** The secret decrypts to a key, but not the one the account uses now (stale after a reset). */
  | { readonly kind: "secret_mismatch"; readonly secret: string; readonly keyId: string }
  | {
      readonly kind: "secret_corrupt";
      readonly secret: string;
      readonly keyId: string;
      readonly code: SecretStorageError["code"];
    };

export interface SecretStorageStatus {
  /** disabled: nothing set up; enabled: all present (and, with a key, all decrypt); else incomplete. */
  readonly state: "disabled" | "enabled" | "incomplete";
  readonly defaultKeyId?: string;
  readonly problems: readonly SecretStorageProblem[];
  /** The account-data types that are missing or broken, for `keyroom recovery status`. */
  readonly missing: readonly string[];
}

/** The account-data type a problem is about. */
export function missingType(p: SecretStorageProblem): string {
  switch (p.kind) {
    case "no_default_key":
    case "default_key_malformed":
      return DEFAULT_KEY_TYPE;
    case "key_missing":
    case "key_malformed":
    case "key_weak":
    case "wrong_key":
      return keyType(p.keyId);
    default:
      return p.secret;
  }
}

function codeOf(e: unknown): SecretStorageError["code"] {
  if (e instanceof SecretStorageError) return e.code;
  throw e;
}

/**
 * The status of secret storage for `secrets` (default {@link RECOVERY_SECRETS}). Without `key`
 * only presence and form are checked; with the 32 key bytes, every secret is also decrypted, and
 * compared with `publicKeys` (secret name → the public key the account uses now) where given.
 */
export function secretStorageStatus(
  accountData: AccountDataView,
  options: {
    readonly secrets?: readonly string[];
    readonly key?: Uint8Array;
    readonly publicKeys?: Readonly<Record<string, string>>;
  } = {},
): SecretStorageStatus {
  const secrets = options.secrets ?? RECOVERY_SECRETS;
  if (options.key !== undefined && (!(options.key instanceof Uint8Array) || options.key.length !== 32)) {
    throw new SecretStorageError("BAD_ARGUMENT", "a secret storage key is 32 bytes");
  }
  const problems: SecretStorageProblem[] = [];
  const present = (type: string) => accountData.get(type) !== undefined && accountData.get(type) !== null;
  const anything =
    present(DEFAULT_KEY_TYPE) ||
    secrets.some(present) ||
    [...accountData.keys()].some((t) => t.startsWith(KEY_TYPE_PREFIX));
  if (!anything) return { state: "disabled", problems, missing: [] };

  let keyId: string | undefined;
  let keyUsable = false;
  if (!present(DEFAULT_KEY_TYPE)) {
    problems.push({ kind: "no_default_key" });
  } else {
    try {
      keyId = parseDefaultKey(accountData.get(DEFAULT_KEY_TYPE));
    } catch {
      problems.push({ kind: "default_key_malformed" });
    }
  }
  if (keyId !== undefined) {
    if (!present(keyType(keyId))) {
      problems.push({ kind: "key_missing", keyId });
    } else {
      try {
        const description = parseKeyDescription(keyId, accountData.get(keyType(keyId)));
        keyUsable = true;
        if (
          description.passphrase !== undefined &&
          passphraseWeakness(description.passphrase) !== undefined
        ) {
          problems.push({ kind: "key_weak", keyId });
        }
        if (options.key !== undefined) {
          try {
            unlockWithKey(description, options.key);
          } catch (e) {
            if (codeOf(e) !== "WRONG_KEY") throw e;
            problems.push({ kind: "wrong_key", keyId });
            keyUsable = false;
          }
        }
      } catch (e) {
        problems.push({ kind: "key_malformed", keyId, code: codeOf(e) });
      }
    }
  }

  for (const secret of secrets) {
    if (!present(secret)) {
      problems.push({ kind: "secret_missing", secret });
      continue;
    }
    let parsed: ReturnType<typeof parseSecretContent>;
    try {
      parsed = parseSecretContent(accountData.get(secret));
    } catch {
      problems.push({ kind: "secret_malformed", secret });
      continue;
    }
    if (keyId === undefined) continue;
    const broken = parsed.malformed.get(keyId);
    if (broken !== undefined) {
      problems.push({ kind: "secret_corrupt", secret, keyId, code: broken.code });
      continue;
    }
    if (!parsed.encrypted.has(keyId)) {
      problems.push({ kind: "secret_not_encrypted_for_key", secret, keyId });
      continue;
    }
    if (options.key !== undefined && keyUsable) {
      try {
        const value = readSecret(accountData, secret, { keyId, key: options.key });
        if (KEY_SECRETS.includes(secret)) decodeKeySecret(secret, value);
        const expected = options.publicKeys?.[secret];
        if (expected !== undefined && publicKeyOfSecret(secret, value) !== expected) {
          problems.push({ kind: "secret_mismatch", secret, keyId });
        }
      } catch (e) {
        problems.push({ kind: "secret_corrupt", secret, keyId, code: codeOf(e) });
      }
    }
  }

  return {
    state: problems.length === 0 ? "enabled" : "incomplete",
    ...(keyId === undefined ? {} : { defaultKeyId: keyId }),
    problems,
    missing: [...new Set(problems.map(missingType))],
  };
}
