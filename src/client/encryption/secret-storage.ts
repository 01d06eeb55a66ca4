// Secret storage for the client (spec "Secrets"): keys and encrypted secrets in global account
// data. Its code (secret-storage-impl.ts, with the passphrase derivation and the secret formats of
// src/e2ee/secret-storage) is loaded on first use: a dynamic import, a chunk of its own in a
// browser bundle, so a client that never opens secret storage does not carry it.
import type {
  AccountDataView,
  SecretStorageKeyDescription,
  SecretStorageStatus,
  UnlockedSecretStorageKey,
} from "../../e2ee/index.ts";
import { Lazy } from "./lazy.ts";
import type { SecretStorageImpl } from "./secret-storage-impl.ts";
import type {
  CreatedSecretStorageKey,
  CreateSecretStorageKeyOptions,
  SecretStorageHost,
  SecretStorageUnlock,
} from "./secret-storage-types.ts";

export class SecretStorage {
  readonly #host: SecretStorageHost;
  readonly #impl: Lazy<SecretStorageImpl>;

  constructor(host: SecretStorageHost) {
    this.#host = host;
    this.#impl = new Lazy(async () => new (await import("./secret-storage-impl.ts")).SecretStorageImpl(host));
  }

  /**
   * The account data secret storage needs, fresh from the server: the default key pointer, the
   * descriptions of the default key and of `keyIds`, and the `secrets` asked for (default: the
   * secrets recovery keeps).
   */
  async view(secrets?: readonly string[], keyIds?: readonly string[]): Promise<AccountDataView> {
    return (await this.#impl.get()).view(secrets, keyIds);
  }

  /** The default key's ID, or undefined when none is set. */
  async defaultKeyId(): Promise<string | undefined> {
    return (await this.#impl.get()).defaultKeyId();
  }

  /** A key's description (default: the default key). `KEY_MISSING` when there is none. */
  async describeKey(keyId?: string): Promise<SecretStorageKeyDescription> {
    return (await this.#impl.get()).describeKey(keyId);
  }

  /**
   * Creates a key (random, or from a passphrase) and uploads its description; with `setDefault`
   * (the default) it becomes the default key. Several keys may exist at once: secrets can be
   * encrypted for any of them. A new default key while dehydration runs: a fresh dehydrated
   * device, its key stored under the new key (`DehydratedDevices.keysReplaced`).
   */
  async createKey(options: CreateSecretStorageKeyOptions = {}): Promise<CreatedSecretStorageKey> {
    const created = await (await this.#impl.get()).createKey(options);
    if (options.setDefault !== false) await this.#host.defaultKeyCreated?.(created.key);
    return created;
  }

  /**
   * Points `m.secret_storage.default_key` at a key, given by ID or opened (its description must
   * exist). While dehydration runs with its key in secret storage, give the opened key: the
   * dehydration key is stored under it too before the default moves, so a new login that opens
   * the new default key rehydrates (`DehydratedDevices.defaultKeyChanging`). A key ID alone is then
   * refused, `SecretStorageError("BAD_ARGUMENT")`, and the default stays as it was.
   */
  async setDefaultKey(key: string | UnlockedSecretStorageKey): Promise<void> {
    const keyId = typeof key === "string" ? key : key.keyId;
    const opened = typeof key === "string" ? undefined : key;
    return (await this.#impl.get()).setDefaultKey(keyId, async () => {
      await this.#host.defaultKeyChanging?.(keyId, opened);
    });
  }

  /**
   * Opens a key (default: the default key) and checks it against its description. Typos in a
   * recovery key are `RecoveryKeyError`s; a well-formed key that is not this one is
   * `SecretStorageError("WRONG_KEY")`; a passphrase for a key made without one is `NO_PASSPHRASE`.
   */
  async unlock(input: SecretStorageUnlock, keyId?: string): Promise<UnlockedSecretStorageKey> {
    return (await this.#impl.get()).unlock(input, keyId);
  }

  /**
   * Stores `value` under `name`, encrypted for each of `keys`. Entries for other keys are kept, so a
   * secret can be readable with several keys at once, unless `replace` (the other keys no longer
   * open it: a retired key, perhaps leaked, must not).
   */
  async store(
    name: string,
    value: string,
    keys: readonly UnlockedSecretStorageKey[],
    options: { replace?: boolean } = {},
  ): Promise<void> {
    return (await this.#impl.get()).store(name, value, keys, options);
  }

  /**
   * Reads and decrypts secret `name` with `key`: `SECRET_MISSING` when it is not stored,
   * `SECRET_NOT_ENCRYPTED_FOR_KEY` when stored for other keys only, `BAD_MAC` when corrupt,
   * `BAD_ENCRYPTED_SECRET` when its record is malformed.
   */
  async get(name: string, key: UnlockedSecretStorageKey): Promise<string> {
    return (await this.#impl.get()).get(name, key);
  }

  /**
   * What is set up and what is missing or broken, piece by piece (see `secretStorageStatus`).
   * With `key`, every secret is also decrypted and, given `publicKeys`, compared with the keys
   * the account uses now.
   */
  async status(
    options: {
      readonly key?: UnlockedSecretStorageKey;
      readonly secrets?: readonly string[];
      readonly publicKeys?: Readonly<Record<string, string>>;
    } = {},
  ): Promise<SecretStorageStatus> {
    return (await this.#impl.get()).status(options);
  }

  toJSON(): Record<string, string> {
    return { type: "SecretStorage", userId: this.#host.userId };
  }
}
