/**
 * `OlmMachine.backup`: server-side key backup, sans-I/O. The caller sends the requests this hands
 * out (`prepareVersion`, `nextUpload`, `lookupRequests`) and hands back the server's answers; each
 * call is one machine step, saved in one transaction.
 */
import { PkDecryption } from "../../crypto/pk/index.ts";
import { wipe } from "../../crypto/primitives/index.ts";
import type { PendingEvents } from "../decryption/pending.ts";
import { keyArrived } from "../decryption/redecrypt.ts";
import type { DecryptedRoomEvent } from "../decryption/room-events.ts";
import type { Parts, RunStep } from "../machine-parts.ts";
import { IMPORT_BATCH_SIZE, importParsedRoomKey, prefetchImported } from "../room-keys/import.ts";
import { decodeKeySecret } from "../secret-storage/names.ts";
import { KeyBackupError } from "./errors.ts";
import type { BackupStopReason, KeyBackupStatus, VersionCheck } from "./key-backup.ts";
import type { BackupCreateVersionRequest, BackupLookupRequest, BackupUploadRequest } from "./requests.ts";
import {
  type BackupRecord,
  type BackupRecordsDecryptor,
  backupRecords,
  type DecryptedBackupRecord,
  decryptBackupRecord,
  decryptBackupRecordsWith,
  RESTORE_DECRYPT_CHUNK,
  type RestoreScope,
} from "./restore.ts";
import type { BackupTrust } from "./trust.ts";

export interface RestoreOptions extends RestoreScope {
  /** The version the answer came from. */
  readonly version: string;
  /** The version's private key, when it is not the one we hold. */
  readonly privateKey?: Uint8Array;
  /** Keys handled so far, of all in the answer. */
  readonly onProgress?: (done: number, total: number) => void;
  /**
   * Decrypts the records elsewhere (the Node client gives worker threads): used for an answer of
   * more than one step, whose records then decrypt while earlier steps import.
   */
  readonly decryptor?: BackupRecordsDecryptor;
}

export interface RestoreResult {
  /** Sessions new or better than what we held. */
  readonly imported: number;
  /** Sessions in the answer. */
  readonly total: number;
  /** Sessions that did not decrypt under the key (or were not room keys). */
  readonly failed: number;
  /** Events that waited for these keys, decrypted now. */
  readonly redecrypted: DecryptedRoomEvent[];
}

/**
 * `result`, after the backup keys our devices sent and the machine refused as not current are
 * judged again (the version in use may have changed: one that is its key now is taken), and our
 * open requests for the backup key are settled (cancelled at our other devices) if the key of the
 * version in use is held now: one our device sent, unchecked by the machine for want of a version,
 * was taken; a refused one is now current; or the user gave it meanwhile.
 */
async function settled<T>(p: Parts, result: T): Promise<T> {
  for (const secret of await p.secrets.rejudgeRefusedBackupKeys()) {
    let key: Uint8Array;
    try {
      key = decodeKeySecret(secret.name, secret.value);
    } catch {
      continue;
    }
    try {
      if (await p.backup.useKeyForVersionInUse(key)) break;
    } finally {
      wipe(key);
    }
  }
  await p.secrets.settleBackupKeyRequests();
  return result;
}

export class KeyBackupApi {
  readonly #run: RunStep;
  readonly #pending: PendingEvents;
  /** The machine's current parts (read without a step). */
  readonly #parts: () => Parts;

  constructor(run: RunStep, pending: PendingEvents, parts: () => Parts) {
    this.#run = run;
    this.#pending = pending;
    this.#parts = parts;
  }

  /**
   * Whether `lookupRequests` and `nextUpload` may hand out anything, from memory and without a
   * step (the client asks after every sync response): false only when they would not. A step
   * running meanwhile may queue some; the client asks again after its unit of work ends, as it
   * does after every sync response, so the answer as of now is enough (answering "yes" while any
   * step ran cost a busy client a unit of work and a step after nearly every response).
   */
  pendingWork(): { lookups: boolean; uploads: boolean } {
    return this.#parts().backup.pendingWork();
  }

  /** The version we use, its trust, and how many room keys are backed up. */
  status(): Promise<KeyBackupStatus> {
    return this.#run((p) => p.backup.status());
  }

  /**
   * A new version: the `POST /room_keys/version` request (its `auth_data` signed by this device
   * and our master key when we hold it) and the version's private key. The key is persisted now;
   * hand the server's answer to `versionCreated`.
   */
  prepareVersion(): Promise<{ request: BackupCreateVersionRequest; privateKey: Uint8Array }> {
    return this.#run(async (p) => p.backup.prepareVersion());
  }

  /** The answer to `prepareVersion`'s request: the version becomes ours; every room key goes up to it. */
  versionCreated(id: string, response: unknown): Promise<string> {
    return this.#run(async (p) => settled(p, await p.backup.versionCreated(id, response)));
  }

  /**
   * Uses the server's current version (`GET /room_keys/version` body) with this private key (or
   * the one we hold). Throws `KEY_MISMATCH` if it is not the version's key. Returns its trust: an
   * untrusted version is kept for reading but never uploaded to.
   */
  useVersion(body: unknown, privateKey?: Uint8Array): Promise<BackupTrust> {
    return this.#run(async (p) => settled(p, await p.backup.useVersion(body, privateKey)));
  }

  /** The server's current version (`null`: none): checks trust again, or stops uploading if it changed. */
  checkVersion(body: unknown): Promise<VersionCheck> {
    return this.#run(async (p) => settled(p, await p.backup.checkVersion(body)));
  }

  /** We deleted this version on the server: forget it and its key. */
  forgetVersion(version: string): Promise<void> {
    return this.#run(async (p) => p.backup.forget(version));
  }

  /** The version's private key, when we hold it (for secret storage). */
  exportPrivateKey(): Promise<Uint8Array | undefined> {
    return this.#run(async (p) => p.backup.key?.exportPrivateKey());
  }

  // ---- uploads ----

  /** The next batch of room keys to upload, or undefined when everything is up (or uploads are off). */
  nextUpload(): Promise<BackupUploadRequest | undefined> {
    return this.#run((p) => p.backup.nextUpload(p.inbound));
  }

  /** The server stored the batch: its sessions are marked backed up. Returns how many. */
  uploaded(id: string): Promise<number> {
    return this.#run((p) => p.backup.uploaded(id));
  }

  /** The batch failed with this Matrix error code: returns why uploading stopped, if it did. */
  uploadFailed(id: string, errcode: string | undefined): Promise<BackupStopReason | undefined> {
    return this.#run(async (p) => p.backup.uploadFailed(id, errcode));
  }

  // ---- on-demand lookups ----

  /** Sessions undecryptable events lack, to look up in the backup before asking our devices. */
  lookupRequests(): Promise<BackupLookupRequest[]> {
    return this.#run(async (p) => p.backup.lookupRequests());
  }

  /**
   * The answer to a lookup (`undefined`: the backup does not have it, or the request failed).
   * A found key is imported and the events waiting for it are returned decrypted; otherwise a
   * key request goes to our other devices.
   */
  receiveLookup(id: string, body: unknown): Promise<DecryptedRoomEvent[]> {
    return this.#run(async (p) => {
      const lookup = p.backup.takeLookup(id);
      if (lookup === undefined) return [];
      const { roomId, sessionId, version } = lookup.request;
      const key = p.backup.key;
      const record =
        body === undefined || key === undefined
          ? undefined
          : decryptBackupRecord(key, { roomId, sessionId, data: body });
      const out: DecryptedRoomEvent[] = [];
      if (record === undefined || !(await this.#import(p, [record], version, out))) p.backup.fallBack(lookup);
      return out;
    });
  }

  // ---- restore ----

  /**
   * Imports an answer of `GET /room_keys/keys` (everything, one room with `roomId`, or one session
   * with both), in batches of `IMPORT_BATCH_SIZE`, each saved on its own. Keys restored from the
   * version we upload to are marked backed up (they are not uploaded again).
   */
  async restore(body: unknown, options: RestoreOptions): Promise<RestoreResult> {
    const records = backupRecords(body, options);
    let key: PkDecryption | undefined;
    if (options.privateKey !== undefined) {
      try {
        key = PkDecryption.fromPrivateKey(options.privateKey);
      } catch {
        throw new KeyBackupError("BAD_ARGUMENT", "a backup private key is 32 bytes");
      }
    } else {
      key = await this.#run(async (p) => p.backup.heldKey);
    }
    if (key === undefined) throw new KeyBackupError("NO_KEY", "no backup key is held; give one");
    const redecrypted: DecryptedRoomEvent[] = [];
    let imported = 0;
    let failed = 0;
    const ahead =
      options.decryptor !== undefined && records.length > IMPORT_BATCH_SIZE
        ? decryptAhead(options.decryptor, key, records)
        : undefined;
    try {
      for (let start = 0; start < records.length; start += IMPORT_BATCH_SIZE) {
        const batch: DecryptedBackupRecord[] = [];
        const slice = records.slice(start, start + IMPORT_BATCH_SIZE);
        const decrypted =
          ahead === undefined
            ? slice.map((record) => decryptBackupRecord(key, record))
            : await ahead.take(start, slice.length);
        for (const d of decrypted) {
          if (d === undefined) failed++;
          else batch.push(d);
        }
        imported += await this.#run((p) => this.#import(p, batch, options.version, redecrypted));
        options.onProgress?.(Math.min(start + IMPORT_BATCH_SIZE, records.length), records.length);
      }
    } finally {
      ahead?.done();
    }
    return { imported, total: records.length, failed, redecrypted };
  }

  /** Imports decrypted records in the current step; returns how many improved what we held. */
  async #import(
    p: Parts,
    records: readonly DecryptedBackupRecord[],
    version: string,
    out: DecryptedRoomEvent[],
  ): Promise<number> {
    const state = p.backup.state;
    const current = state !== undefined && state.version === version && state.stopped === undefined;
    let count = 0;
    // One store read for the whole batch's existing copies, not one per key.
    await prefetchImported(
      p.inbound,
      records.map((r) => r.entry),
    );
    try {
      for (const { entry, firstMessageIndex } of records) {
        // Restoring the version we upload to: a copy written here goes in marked as backed up
        // when the backup holds it as well as we do (one row write, not a write and an update).
        // Parsed as it was decrypted (decryptBackupRecord): not parsed again.
        const update = await importParsedRoomKey(p.inbound, entry, current ? firstMessageIndex : undefined);
        if (update !== undefined) {
          count++;
          await keyArrived(p, this.#pending, update, out);
        }
        if (!current || update !== undefined) continue;
        // Ours was kept: when the backup's copy is as good, nothing to upload for this session.
        const held = await p.inbound.record(entry.room_id, entry.session_id);
        if (held !== undefined && held.firstKnownIndex >= firstMessageIndex) {
          p.backup.markBackedUp(entry.room_id, entry.session_id);
        }
      }
    } finally {
      p.inbound.dropPrefetched();
    }
    return count;
  }
}

/**
 * Records decrypted ahead of the step being imported, at most: one step, so the decryptor's
 * threads work while this one imports, and never the whole answer's keys in memory at once.
 */
export const RESTORE_DECRYPT_AHEAD = IMPORT_BATCH_SIZE;

/**
 * The chunks of `records` handed to `decryptor` up to `RESTORE_DECRYPT_AHEAD` records beyond the
 * step being imported, so that they decrypt (elsewhere) while the steps before them import; `take`
 * waits for the chunks of one step (and hands out the next ones). A chunk the decryptor fails on
 * is decrypted here instead. The key's copy is wiped once every chunk sent has settled.
 */
function decryptAhead(
  decryptor: BackupRecordsDecryptor,
  key: PkDecryption,
  records: readonly BackupRecord[],
): {
  take(start: number, count: number): Promise<(DecryptedBackupRecord | undefined)[]>;
  done(): void;
} {
  const privateKey = key.exportPrivateKey();
  // Chunk i holds records from i * RESTORE_DECRYPT_CHUNK; a taken one is dropped (its keys imported).
  const chunks = new Map<number, Promise<(DecryptedBackupRecord | undefined)[] | undefined>>();
  const sent: Promise<void>[] = [];
  let sentUpTo = 0;
  const sendUpTo = (end: number): void => {
    for (; sentUpTo < Math.min(end, records.length); sentUpTo += RESTORE_DECRYPT_CHUNK) {
      const chunk = records.slice(sentUpTo, sentUpTo + RESTORE_DECRYPT_CHUNK);
      const decrypted = decryptBackupRecordsWith(decryptor, privateKey, chunk).catch(() => undefined);
      chunks.set(sentUpTo / RESTORE_DECRYPT_CHUNK, decrypted);
      // Settled, not the keys: this list keeps none of them.
      sent.push(decrypted.then(() => undefined));
    }
  };
  return {
    async take(start, count) {
      sendUpTo(start + count + RESTORE_DECRYPT_AHEAD);
      const out: (DecryptedBackupRecord | undefined)[] = [];
      for (let at = start; at < start + count; at += RESTORE_DECRYPT_CHUNK) {
        const index = at / RESTORE_DECRYPT_CHUNK;
        const got = await chunks.get(index);
        chunks.delete(index);
        const chunk = records.slice(at, Math.min(at + RESTORE_DECRYPT_CHUNK, start + count));
        out.push(...(got ?? chunk.map((record) => decryptBackupRecord(key, record))));
      }
      return out;
    },
    done() {
      void Promise.allSettled(sent).then(() => privateKey.fill(0));
    },
  };
}
