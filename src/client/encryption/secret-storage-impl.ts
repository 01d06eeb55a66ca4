// The code behind `SecretStorage` (secret-storage.ts), loaded on its first use. The formats and
// every check are in src/e2ee/secret-storage (sans-I/O); this file fetches the account data they
// read (always from the server: another device may have just changed it), runs the slow passphrase
// derivation with progress, and uploads what they build.
import { wipe } from "../../crypto/primitives/index.ts";
import { RecoveryKeyError } from "../../crypto/recovery-key/index.ts";
import {
  DEFAULT_PASSPHRASE_ITERATIONS,
  deriveKeyFromPassphrase,
  deriveKeyFromPassphraseWithProgress,
  newPassphraseInfo,
  SecretStorageError,
} from "../../crypto/secret-storage/index.ts";
import {
  type AccountDataView,
  assertPassphraseUsable,
  buildDefaultKey,
  buildSecretContent,
  DEFAULT_KEY_TYPE,
  keyDescription,
  keyType,
  newSecretStorageKey,
  RECOVERY_SECRETS,
  readSecret,
  type SecretStorageKeyDescription,
  type SecretStorageStatus,
  secretStorageStatus,
  type UnlockedSecretStorageKey,
  unlockWithKey,
  unlockWithRecoveryKey,
} from "../../e2ee/index.ts";
import { type JsonObject, jsonObjectSchema } from "../../wire/index.ts";
import { MatrixError } from "../errors.ts";
import { path } from "../http.ts";
import { yieldToEventLoop } from "../yield.ts";
import type {
  CreatedSecretStorageKey,
  CreateSecretStorageKeyOptions,
  SecretStorageHost,
  SecretStorageUnlock,
} from "./secret-storage-types.ts";

/** `SecretStorage`'s code, loaded on first use; its methods are documented there (`secret-storage.ts`). */
export class SecretStorageImpl {
  readonly #host: SecretStorageHost;

  constructor(host: SecretStorageHost) {
    this.#host = host;
  }

  /**
   * One global account-data event from the server, or undefined when absent. Empty content (`{}`)
   * counts as absent: that is how clients delete account data (the API has no delete).
   */
  async #fetch(type: string): Promise<unknown> {
    const userId = this.#host.userId;
    try {
      const content = await this.#host.http.request({
        method: "GET",
        path: path`/_matrix/client/v3/user/${userId}/account_data/${type}`,
        schema: jsonObjectSchema,
      });
      return Object.keys(content).length === 0 ? undefined : content;
    } catch (e) {
      if (e instanceof MatrixError && e.errcode === "M_NOT_FOUND") return undefined;
      throw e;
    }
  }

  async view(
    secrets: readonly string[] = RECOVERY_SECRETS,
    keyIds: readonly string[] = [],
  ): Promise<AccountDataView> {
    const view = new Map<string, unknown>();
    const put = async (type: string): Promise<void> => {
      if (view.has(type)) return;
      const content = await this.#fetch(type);
      if (content !== undefined) view.set(type, content);
    };
    await put(DEFAULT_KEY_TYPE);
    const ids = new Set(keyIds);
    // A malformed pointer is left for the status (or the unlock) to report.
    const pointer = (view.get(DEFAULT_KEY_TYPE) as { key?: unknown } | undefined)?.key;
    if (typeof pointer === "string") ids.add(pointer);
    for (const id of ids) await put(keyType(id));
    for (const name of secrets) await put(name);
    return view;
  }

  async defaultKeyId(): Promise<string | undefined> {
    const content = await this.#fetch(DEFAULT_KEY_TYPE);
    const key = (content as { key?: unknown } | undefined)?.key;
    return typeof key === "string" ? key : undefined;
  }

  async describeKey(keyId?: string): Promise<SecretStorageKeyDescription> {
    const id = keyId ?? (await this.defaultKeyId());
    if (id === undefined) throw new SecretStorageError("KEY_MISSING", "no default secret storage key is set");
    return keyDescription(await this.view([], [id]), id);
  }

  async createKey(options: CreateSecretStorageKeyOptions = {}): Promise<CreatedSecretStorageKey> {
    let created: ReturnType<typeof newSecretStorageKey>;
    if (options.passphrase === undefined) {
      created = newSecretStorageKey(options.name === undefined ? {} : { name: options.name });
    } else {
      const info = newPassphraseInfo(options.passphraseIterations ?? DEFAULT_PASSPHRASE_ITERATIONS);
      const key = await derivePassphraseKey(options.passphrase, info, options.onProgress);
      try {
        created = newSecretStorageKey({
          key,
          passphrase: info,
          ...(options.name === undefined ? {} : { name: options.name }),
        });
      } finally {
        wipe(key);
      }
    }
    await this.#host.setAccountData(keyType(created.keyId), created.content as JsonObject);
    const description = keyDescription(new Map([[keyType(created.keyId), created.content]]), created.keyId);
    const key = unlockWithKey(description, created.key);
    wipe(created.key);
    if (options.setDefault !== false) {
      try {
        // As `setDefaultKey` with the opened key: a dehydration schedule moves to it before the
        // default does, so the sync that shows the move finds the schedule there already.
        await this.setDefaultKey(created.keyId, async () => {
          await this.#host.defaultKeyChanging?.(created.keyId, key);
        });
      } catch (e) {
        key.wipe();
        throw e;
      }
    }
    return { keyId: created.keyId, recoveryKey: created.recoveryKey, key };
  }

  /** `beforeChange` runs once the key is found, before the pointer moves (its error leaves it). */
  async setDefaultKey(keyId: string, beforeChange?: () => Promise<void>): Promise<void> {
    await this.describeKey(keyId); // KEY_MISSING / BAD_KEY_DESCRIPTION before anything changes
    await beforeChange?.();
    await this.#host.setAccountData(DEFAULT_KEY_TYPE, buildDefaultKey(keyId));
  }

  async unlock(input: SecretStorageUnlock, keyId?: string): Promise<UnlockedSecretStorageKey> {
    return unlockDescription(await this.describeKey(keyId), input);
  }

  async store(
    name: string,
    value: string,
    keys: readonly UnlockedSecretStorageKey[],
    options: { replace?: boolean } = {},
  ): Promise<void> {
    const existing = options.replace === true ? undefined : await this.#fetch(name);
    let content: ReturnType<typeof buildSecretContent>;
    try {
      content = buildSecretContent(name, value, keys, existing);
    } catch (e) {
      // A malformed record left by another client is replaced rather than blocking the write.
      if (!(e instanceof SecretStorageError && e.code === "BAD_ENCRYPTED_SECRET")) throw e;
      content = buildSecretContent(name, value, keys);
    }
    await this.#host.setAccountData(name, content as unknown as JsonObject);
  }

  async get(name: string, key: UnlockedSecretStorageKey): Promise<string> {
    const content = await this.#fetch(name);
    return readSecret(content === undefined ? new Map() : new Map([[name, content]]), name, key);
  }

  async status(
    options: {
      readonly key?: UnlockedSecretStorageKey;
      readonly secrets?: readonly string[];
      readonly publicKeys?: Readonly<Record<string, string>>;
    } = {},
  ): Promise<SecretStorageStatus> {
    const view = await this.view(options.secrets ?? RECOVERY_SECRETS);
    return secretStorageStatus(view, {
      ...(options.secrets === undefined ? {} : { secrets: options.secrets }),
      ...(options.key === undefined ? {} : { key: options.key.key }),
      ...(options.publicKeys === undefined ? {} : { publicKeys: options.publicKeys }),
    });
  }

  toJSON(): Record<string, string> {
    return { type: "SecretStorage", userId: this.#host.userId };
  }
}

/** Opens the key `description` describes with a recovery key, a passphrase or raw bytes. */
export async function unlockDescription(
  description: SecretStorageKeyDescription,
  input: SecretStorageUnlock,
): Promise<UnlockedSecretStorageKey> {
  if (typeof input === "string") {
    try {
      return unlockWithRecoveryKey(description, input);
    } catch (e) {
      // Not a recovery key at all: the passphrase, if the key has one; else the typo stands.
      if (!(e instanceof RecoveryKeyError) || description.passphrase === undefined) throw e;
      return unlockDescription(description, { passphrase: input });
    }
  }
  if ("recoveryKey" in input) return unlockWithRecoveryKey(description, input.recoveryKey);
  if ("key" in input) return unlockWithKey(description, input.key);
  if (description.passphrase === undefined) {
    throw new SecretStorageError("NO_PASSPHRASE", "this key was made from a recovery key, not a passphrase");
  }
  assertPassphraseUsable(description); // WEAK_PASSPHRASE_PARAMETERS before the slow derivation
  const key = await derivePassphraseKey(input.passphrase, description.passphrase, input.onProgress);
  try {
    return unlockWithKey(description, key);
  } finally {
    wipe(key);
  }
}

/**
 * The secret storage key from a passphrase; with `onProgress`, in steps that let the event loop run
 * between them (a UI or a progress bar stays live, in browsers too).
 */
export async function derivePassphraseKey(
  passphrase: string,
  info: Parameters<typeof deriveKeyFromPassphrase>[1],
  onProgress: ((fraction: number) => void) | undefined,
): Promise<Uint8Array> {
  // One-shot is about 3x faster on Node (OpenSSL); the stepped form only when progress is wanted.
  if (onProgress === undefined) return deriveKeyFromPassphrase(passphrase, info);
  return deriveKeyFromPassphraseWithProgress(passphrase, info, {
    onProgress,
    yieldControl: yieldToEventLoop,
  });
}
