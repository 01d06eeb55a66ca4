// `client.crypto.recovery`: one API over secret storage, cross-signing and key backup, like the
// rust-sdk's recovery module, with no dead ends: every incomplete state names the call that
// repairs it (see src/e2ee/secret-storage/recovery-status.ts), and each call either completes or
// fails with a typed error naming the secret at fault and the way out. Its code
// (recovery-impl.ts) is loaded on first use: a dynamic import, a chunk of its own in a browser
// bundle, so a client that never sets up or uses recovery does not carry it.
import type { RecoveryStatus } from "../../e2ee/index.ts";
import { Lazy } from "./lazy.ts";
import type { RecoveryImpl } from "./recovery-impl.ts";
import type {
  EnableRecoveryOptions,
  NewRecoveryKeyOptions,
  RecoverOptions,
  RecoverResult,
  RecoveryHost,
  RecoveryKeyResult,
} from "./recovery-types.ts";
import type { SecretStorageUnlock } from "./secret-storage-types.ts";

export class Recovery {
  readonly #host: RecoveryHost;
  readonly #impl: Lazy<RecoveryImpl>;

  constructor(host: RecoveryHost) {
    this.#host = host;
    this.#impl = new Lazy(async () => new (await import("./recovery-impl.ts")).RecoveryImpl(host));
  }

  /**
   * disabled / enabled / incomplete, with every missing or broken piece and the call that repairs
   * it. Without `unlock` only presence and form are checked; with it every secret is decrypted and
   * compared with the keys the account uses now.
   */
  async status(unlock?: SecretStorageUnlock): Promise<RecoveryStatus> {
    return (await this.#impl.get()).status(unlock);
  }

  /**
   * Sets recovery up: cross-signing (created if the account has none: `auth` answers the server's
   * User-Interactive Auth), a key backup (created unless this device holds the current one's key,
   * or the user turned backup off in account data: `m.key_backup`, or the legacy
   * `m.org.matrix.custom.backup_disabled`; `backup.createVersion()` turns it on),
   * a new secret storage key made the default, and every secret stored under it. Returns the
   * recovery key, once. Throws `RecoveryError("IDENTITY_NOT_HELD")` when the account has an
   * identity this device holds no keys of (then `recover`, or `resetIdentity`).
   */
  async enable(options: EnableRecoveryOptions = {}): Promise<RecoveryKeyResult> {
    return (await this.#impl.get()).enable(options);
  }

  /**
   * A new secret storage key (the old one forgotten or compromised) with every secret this device
   * holds stored under it, made the default. A backup whose key nobody holds is replaced by a new
   * version (unless backup is turned off). Needs this device to hold the cross-signing keys
   * (`recover` first).
   */
  async changeRecoveryKey(options: NewRecoveryKeyOptions = {}): Promise<RecoveryKeyResult> {
    return (await this.#impl.get()).changeRecoveryKey(options);
  }

  /**
   * Starts over: new cross-signing keys (the server asks for `auth`; other users see the identity
   * change), a new key backup (unless backup is turned off), a new secret storage key with every
   * secret. For when a secret is
   * lost everywhere. Returns the new recovery key.
   */
  async resetIdentity(options: EnableRecoveryOptions = {}): Promise<RecoveryKeyResult> {
    return (await this.#impl.get()).resetIdentity(options);
  }

  /**
   * On a new device: opens secret storage with the recovery key or passphrase, takes the
   * cross-signing keys (this device gets signed and trusts our identity), takes the backup key and
   * restores the backup. Secrets this device holds that storage lacks are written back; a backup
   * whose key is lost everywhere is replaced by a new version (unless backup is turned off). Errors: `RecoveryKeyError` (typo),
   * `SecretStorageError` `WRONG_KEY` (another key: nothing changes), `SECRET_MISSING`, `BAD_MAC`
   * (corrupt), `SECRET_NOT_ENCRYPTED_FOR_KEY`, and `RecoveryError("SECRET_STALE")`, each naming
   * the secret and the repair.
   */
  async recover(unlock: SecretStorageUnlock, options: RecoverOptions = {}): Promise<RecoverResult> {
    return (await this.#impl.get()).recover(unlock, options);
  }

  toJSON(): Record<string, string> {
    return { type: "Recovery", userId: this.#host.userId };
  }
}
