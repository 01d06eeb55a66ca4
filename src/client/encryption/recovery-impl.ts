// The code behind `client.crypto.recovery` (recovery.ts, which says what it does), loaded on its
// first use. Every incomplete state names the call that repairs it (see
// src/e2ee/secret-storage/recovery-status.ts); each call either completes or fails with a typed
// error naming the secret at fault and the way out.
import { decodeBase64, encodeBase64, wipe } from "../../crypto/primitives/index.ts";
import { SecretStorageError } from "../../crypto/secret-storage/index.ts";
import {
  BACKUP_SECRET,
  CROSS_SIGNING_MASTER_SECRET,
  CROSS_SIGNING_SELF_SIGNING_SECRET,
  CROSS_SIGNING_USER_SIGNING_SECRET,
  type CrossSigningStatus,
  decodeKeySecret,
  KEY_SECRETS,
  publicKeyOfSecret,
  RECOVERY_SECRETS,
  type RecoveryStatus,
  readSecret,
  recoveryStatus,
  secretStorageStatus,
  type UnlockedSecretStorageKey,
} from "../../e2ee/index.ts";
import { jsonObjectSchema } from "../../wire/index.ts";
import { MatrixError } from "../errors.ts";
import { path } from "../http.ts";
import { RecoveryError } from "./recovery-error.ts";
import type {
  EnableRecoveryOptions,
  NewRecoveryKeyOptions,
  RecoverOptions,
  RecoverResult,
  RecoveryHost,
  RecoveryKeyResult,
} from "./recovery-types.ts";
import type { SecretStorageUnlock } from "./secret-storage-types.ts";

const CROSS_SIGNING: readonly (readonly [string, "master" | "selfSigning" | "userSigning"])[] = [
  [CROSS_SIGNING_MASTER_SECRET, "master"],
  [CROSS_SIGNING_SELF_SIGNING_SECRET, "selfSigning"],
  [CROSS_SIGNING_USER_SIGNING_SECRET, "userSigning"],
];

/**
 * A key whose description has no key check (older clients wrote none) passes any key: the stored
 * secrets are the test. One that opens none of them (each stored one fails its MAC) is refused as
 * the wrong key before `recover` writes this device's copies under it, which would replace the
 * entries the real key opens.
 */
function assertKeyOpensStorage(view: ReadonlyMap<string, unknown>, key: UnlockedSecretStorageKey): void {
  if (key.check !== "unverifiable") return;
  let failed = false;
  for (const name of RECOVERY_SECRETS) {
    try {
      readSecret(view, name, key);
      return;
    } catch (e) {
      if (!(e instanceof SecretStorageError)) throw e;
      if (e.code === "BAD_MAC") failed = true;
    }
  }
  if (failed) {
    throw new SecretStorageError(
      "WRONG_KEY",
      "this recovery key or passphrase opens none of the stored secrets",
    );
  }
}

/**
 * The user turned key backup off in account data (`m.key_backup`, or the legacy
 * `m.org.matrix.custom.backup_disabled`): recovery makes no backup version on its own then.
 */
function backupOff(status: { readonly enabledInAccountData?: boolean | undefined }): boolean {
  return status.enabledInAccountData === false;
}

/** `Recovery`'s code, loaded on first use; its methods are documented there (`recovery.ts`). */
export class RecoveryImpl {
  readonly #host: RecoveryHost;

  constructor(host: RecoveryHost) {
    this.#host = host;
  }

  async status(unlock?: SecretStorageUnlock): Promise<RecoveryStatus> {
    const ss = this.#host.secretStorage;
    // Opened (a slow passphrase derivation included) before taking the store's lease.
    const key = unlock === undefined ? undefined : await ss.unlock(unlock);
    try {
      return await this.#host.exclusive(async () => {
        const cs = await this.#refreshOwnIdentity();
        const { held, off } = await this.#held(cs);
        const server = await this.#serverBackup();
        const storage = secretStorageStatus(await ss.view(), {
          ...(key === undefined
            ? {}
            : { key: key.key, publicKeys: await this.#publicKeys(server?.publicKey) }),
        });
        return recoveryStatus(storage, {
          held,
          identityPublished: cs.masterKey !== undefined,
          backupVersion: server !== undefined,
          backupOff: off,
        });
      });
    } finally {
      key?.wipe();
    }
  }

  enable(options: EnableRecoveryOptions = {}): Promise<RecoveryKeyResult> {
    return this.#host.exclusive(async () => {
      const cs = await this.#refreshOwnIdentity();
      if (cs.masterKey === undefined) {
        await this.#host.bootstrapCrossSigning(options.auth === undefined ? {} : { auth: options.auth });
      }
      return this.#newKey(options);
    });
  }

  changeRecoveryKey(options: NewRecoveryKeyOptions = {}): Promise<RecoveryKeyResult> {
    return this.#host.exclusive(() => this.#newKey(options));
  }

  resetIdentity(options: EnableRecoveryOptions = {}): Promise<RecoveryKeyResult> {
    return this.#host.exclusive(async () => {
      await this.#refreshOwnIdentity();
      await this.#host.bootstrapCrossSigning({
        reset: true,
        ...(options.auth === undefined ? {} : { auth: options.auth }),
      });
      // A new backup too, unless the user turned backup off (as the rust-sdk's reset checks).
      if (!backupOff(await this.#host.backup.status())) await this.#host.backup.createVersion();
      return this.#newKey(options, true);
    });
  }

  async recover(unlock: SecretStorageUnlock, options: RecoverOptions = {}): Promise<RecoverResult> {
    // The key is opened (a slow passphrase derivation included) before taking the store's lease.
    const key = await this.#host.secretStorage.unlock(unlock);
    try {
      return await this.#host.exclusive(() => this.#recover(key, options));
    } finally {
      key.wipe();
    }
  }

  async #recover(key: UnlockedSecretStorageKey, options: RecoverOptions): Promise<RecoverResult> {
    const cs = await this.#refreshOwnIdentity();
    if (cs.masterKey === undefined) {
      throw new RecoveryError("IDENTITY_NOT_HELD", "the account has no cross-signing identity to recover", {
        secret: CROSS_SIGNING_MASTER_SECRET,
        repair: "resetIdentity",
      });
    }
    const view = await this.#host.secretStorage.view();
    assertKeyOpensStorage(view, key);
    const published = await this.#publicKeys(undefined);
    const local = await this.#host.machine.exportCrossSigningKeys();
    // Read every cross-signing secret before changing anything: a failure leaves the device as it was.
    const found: { master?: string; selfSigning?: string; userSigning?: string } = {};
    const rewrite: string[] = [];
    for (const [name, field] of CROSS_SIGNING) {
      const mine = local[field];
      const heldCurrent = mine !== undefined && publicKeyOfSecret(name, mine) === published[name];
      let value: string;
      try {
        value = readSecret(view, name, key);
        decodeKeySecret(name, value);
      } catch (e) {
        if (!(e instanceof SecretStorageError) || e.code === "WRONG_KEY") throw e;
        if (heldCurrent) {
          rewrite.push(name);
          continue;
        }
        throw new SecretStorageError(e.code, `${e.message}; resetIdentity() replaces it`);
      }
      if (publicKeyOfSecret(name, value) !== published[name]) {
        if (heldCurrent) {
          rewrite.push(name);
          continue;
        }
        throw new RecoveryError(
          "SECRET_STALE",
          `${name} in secret storage is not the account's current key`,
          {
            secret: name,
            repair: "resetIdentity",
          },
        );
      }
      found[field] = value;
    }
    await this.#host.machine.importCrossSigningKeys(found);
    const status = await this.#crossSignThisDevice();

    const backup = await this.#recoverBackup(view, key, rewrite);
    let restored = 0;
    let restoreDownload: RecoverResult["restoreDownload"];
    let restoreRoomsTooLarge: readonly string[] = [];
    if (backup !== undefined && options.restore !== false) {
      const result = await this.#host.backup.restore(
        options.onRestoreProgress === undefined ? {} : { onProgress: options.onRestoreProgress },
      );
      restored = result.imported;
      restoreDownload = result.download;
      restoreRoomsTooLarge = result.roomsTooLarge;
    }
    // Write back what storage lacked (this device's copies) under the key just used, unless its
    // passphrase parameters are weak: nothing new goes under such a key (changeRecoveryKey moves
    // the secrets to a new one; status() still names what is missing).
    const repaired = key.weakPassphrase ? [] : rewrite;
    const values = await this.#values();
    for (const name of repaired) {
      const value = values.get(name);
      if (value !== undefined) await this.#host.secretStorage.store(name, value, [key]);
    }
    return {
      crossSigned: status.deviceCrossSigned,
      backupVersion: backup,
      restored,
      restoreDownload,
      restoreRoomsTooLarge,
      repaired,
    };
  }

  /**
   * The backup key from storage, used with the server's version. When it is missing, broken or
   * stale: this device's key if it holds the current one (written back), else a new version (its
   * key written). Returns the version in use, or undefined when there is no backup and none needed.
   */
  async #recoverBackup(
    view: ReadonlyMap<string, unknown>,
    key: UnlockedSecretStorageKey,
    rewrite: string[],
  ): Promise<string | undefined> {
    const server = await this.#serverBackup();
    let stored: string | undefined;
    let storedPublicKey: string | undefined;
    try {
      stored = readSecret(view, BACKUP_SECRET, key);
      // A value that is not a key (BAD_SECRET) is broken like a corrupt one: repaired below.
      storedPublicKey = publicKeyOfSecret(BACKUP_SECRET, stored);
    } catch (e) {
      if (!(e instanceof SecretStorageError) || e.code === "WRONG_KEY") throw e;
    }
    if (
      stored !== undefined &&
      storedPublicKey !== undefined &&
      server !== undefined &&
      storedPublicKey === server.publicKey
    ) {
      const bytes = decodeBase64(stored);
      try {
        await this.#host.backup.useKey(bytes);
      } finally {
        wipe(bytes);
      }
      return server.version;
    }
    const mine = await this.#host.backup.status();
    if (server !== undefined && mine.hasKey && mine.version === server.version) {
      rewrite.push(BACKUP_SECRET);
      return server.version;
    }
    // Backup turned off in account data (here or by another client): none is made behind the
    // user's back, and none is missing.
    if (backupOff(mine)) return undefined;
    // The key is held nowhere (or there is no backup): a new version, its key stored.
    const created = await this.#host.backup.createVersion();
    wipe(created.privateKey);
    rewrite.push(BACKUP_SECRET);
    return created.version;
  }

  /** A new default key with every secret this device holds (the backup recreated if its key is lost). */
  async #newKey(options: NewRecoveryKeyOptions, identityReset = false): Promise<RecoveryKeyResult> {
    const cs = await this.#refreshOwnIdentity();
    const { master, selfSigning, userSigning } = cs.privateKeys;
    if (cs.masterKey === undefined || !master || !selfSigning || !userSigning) {
      const stored = (await this.#host.secretStorage.view()).size > 0;
      throw new RecoveryError(
        "IDENTITY_NOT_HELD",
        "this device does not hold the account's cross-signing keys",
        { repair: stored ? "recover" : "resetIdentity" },
      );
    }
    const ss = this.#host.secretStorage;
    // The current key (a slow passphrase derivation included) is opened once, before anything changes.
    const current = options.current === undefined ? undefined : await ss.unlock(options.current);
    let values: Map<string, string>;
    try {
      const server = await this.#serverBackup();
      let mine = await this.#host.backup.status();
      const off = backupOff(mine);
      if (
        !off &&
        current !== undefined &&
        server !== undefined &&
        (!mine.hasKey || mine.version !== server.version) &&
        (await this.#useStoredBackupKey(current, server.publicKey))
      ) {
        mine = await this.#host.backup.status();
      }
      const heldCurrent = server !== undefined && mine.hasKey && mine.version === server.version;
      if (!heldCurrent && !off) {
        const created = await this.#host.backup.createVersion();
        wipe(created.privateKey);
      }
      values = await this.#values();
      // Backup turned off: no version made, and a key held here of a version the server no longer
      // has is not stored (a stale secret); the stored one, if any, is carried over as it is.
      if (off && !heldCurrent) values.delete(BACKUP_SECRET);
      if (current !== undefined) await this.#carryOver(current, values);
    } finally {
      current?.wipe();
    }
    const created = await ss.createKey({
      setDefault: false,
      ...(options.passphrase === undefined ? {} : { passphrase: options.passphrase }),
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
      ...(options.passphraseIterations === undefined
        ? {}
        : { passphraseIterations: options.passphraseIterations }),
    });
    try {
      // Only the new key opens them: a key changed because it leaked must stop opening them.
      for (const [name, value] of values) await ss.store(name, value, [created.key], { replace: true });
      // Last: until now the old default key (and its secrets) stayed in place. The opened key: a
      // dehydration schedule's key is stored under it too before it becomes the default.
      await ss.setDefaultKey(created.key);
      // A running dehydration schedule moves to the new key (and self-signing key) at once.
      await this.#host.keysReplaced?.({ secretStorageKey: created.key, identityReset });
    } finally {
      created.key.wipe();
    }
    return { recoveryKey: created.recoveryKey, keyId: created.keyId };
  }

  /**
   * The backup key stored under `key`, used with the server's version when it is that version's
   * key (this device lacks it: the backup was replaced elsewhere): true when it was.
   */
  async #useStoredBackupKey(key: UnlockedSecretStorageKey, publicKey: string | undefined): Promise<boolean> {
    let stored: string;
    try {
      stored = readSecret(await this.#host.secretStorage.view([BACKUP_SECRET]), BACKUP_SECRET, key);
      if (publicKey === undefined || publicKeyOfSecret(BACKUP_SECRET, stored) !== publicKey) return false;
    } catch (e) {
      if (e instanceof SecretStorageError) return false;
      throw e;
    }
    const bytes = decodeBase64(stored);
    try {
      await this.#host.backup.useKey(bytes);
    } finally {
      wipe(bytes);
    }
    return true;
  }

  /** Adds the stored secrets readable with `key` that `values` lacks (the dehydration key). */
  async #carryOver(key: UnlockedSecretStorageKey, values: Map<string, string>): Promise<void> {
    const wanted = KEY_SECRETS.filter((name) => !values.has(name));
    const view = await this.#host.secretStorage.view(wanted);
    for (const name of wanted) {
      try {
        values.set(name, readSecret(view, name, key));
      } catch (e) {
        if (!(e instanceof SecretStorageError)) throw e;
      }
    }
  }

  /** Every secret this device holds itself: the cross-signing keys and the backup key. */
  async #values(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const local = await this.#host.machine.exportCrossSigningKeys();
    for (const [name, field] of CROSS_SIGNING) {
      const value = local[field];
      if (value !== undefined) out.set(name, value);
    }
    const backupKey = await this.#host.backup.privateKey();
    if (backupKey !== undefined) {
      out.set(BACKUP_SECRET, encodeBase64(backupKey));
      wipe(backupKey);
    }
    return out;
  }

  /** Names of the recovery secrets this device holds (current ones), and whether backup is turned off. */
  async #held(cs: CrossSigningStatus): Promise<{ held: Set<string>; off: boolean }> {
    const held = new Set<string>();
    if (cs.privateKeys.master) held.add(CROSS_SIGNING_MASTER_SECRET);
    if (cs.privateKeys.selfSigning) held.add(CROSS_SIGNING_SELF_SIGNING_SECRET);
    if (cs.privateKeys.userSigning) held.add(CROSS_SIGNING_USER_SIGNING_SECRET);
    const backup = await this.#host.backup.status();
    if (backup.hasKey) held.add(BACKUP_SECRET);
    return { held, off: backupOff(backup) };
  }

  /** The public keys the account uses now, by secret name (to tell a stale secret). */
  async #publicKeys(backupPublicKey: string | undefined): Promise<Record<string, string>> {
    const identity = await this.#host.getUserIdentity(this.#host.userId);
    const out: Record<string, string> = {};
    if (identity !== undefined) {
      out[CROSS_SIGNING_MASTER_SECRET] = identity.masterKey;
      if (identity.selfSigningKey !== undefined)
        out[CROSS_SIGNING_SELF_SIGNING_SECRET] = identity.selfSigningKey;
      if (identity.userSigningKey !== undefined)
        out[CROSS_SIGNING_USER_SIGNING_SECRET] = identity.userSigningKey;
    }
    if (backupPublicKey !== undefined) out[BACKUP_SECRET] = backupPublicKey;
    return out;
  }

  /** Our published identity asked for again (another device may have just changed it). */
  async #refreshOwnIdentity(): Promise<CrossSigningStatus> {
    await this.#host.machine.receiveKeysChanges([this.#host.userId], []);
    return this.#host.crossSigningStatus();
  }

  /** After importing the keys: the query that makes the engine sign this device, and its upload. */
  async #crossSignThisDevice(): Promise<CrossSigningStatus> {
    let status = await this.#refreshOwnIdentity();
    for (let i = 0; i < 3 && !status.deviceCrossSigned; i++) {
      await this.#host.flush();
      status = await this.#refreshOwnIdentity();
    }
    return status;
  }

  /** The server's current backup version and its public key, or undefined when it has none. */
  async #serverBackup(): Promise<{ version: string; publicKey: string | undefined } | undefined> {
    let body: Record<string, unknown>;
    try {
      body = await this.#host.http.request({
        method: "GET",
        path: path`/_matrix/client/v3/room_keys/version`,
        schema: jsonObjectSchema,
      });
    } catch (e) {
      if (e instanceof MatrixError && e.errcode === "M_NOT_FOUND") return undefined;
      throw e;
    }
    if (typeof body.version !== "string") return undefined;
    const auth = body.auth_data as { public_key?: unknown } | undefined;
    return {
      version: body.version,
      publicKey: typeof auth?.public_key === "string" ? auth.public_key : undefined,
    };
  }

  toJSON(): Record<string, string> {
    return { type: "Recovery", userId: this.#host.userId };
  }
}
