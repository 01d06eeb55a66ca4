/**
 * Server-side key backup in the machine (`m.megolm_backup.v1.curve25519-aes-sha2`): the version we
 * upload to and its trust, incremental upload batches marked only after the server's answer, and
 * the on-demand lookups of sessions an event lacks. Restores go through `restore.ts`.
 *
 * The version is persisted as the store's backup state; its private key is the store secret
 * `m.megolm_backup.v1` (unpadded base64, as in secret storage). A version being created keeps its
 * key under `PENDING_BACKUP_KEY_SECRET` until the server answers, so a crash in between loses
 * nothing: the next version check adopts the version if the server has it.
 */
import {
  type BackedUpRoomKey,
  BackupError,
  type BackupVersion,
  encryptKeyBackupData,
  type KeyBackupData,
  MEGOLM_BACKUP_V1_ALGORITHM,
  parseBackupVersion,
} from "../../crypto/backup/index.ts";
import { RUST_SHARED_HISTORY_FIELD } from "../../crypto/key-export/exported-room-key.ts";
import { PkDecryption, PkEncryption } from "../../crypto/pk/index.ts";
import { decodeBase64, encodeBase64 } from "../../crypto/primitives/index.ts";
import { isDamagedRecord } from "../../store/errors.ts";
import type { BackupStateRecord, InboundGroupSessionRecord, RoomSessionKey } from "../../store/records.ts";
import { storableWithin } from "../../wire/json.ts";
import { MAX_BACKUP_AUTH_DATA_BYTES, MAX_BACKUP_AUTH_DATA_DEPTH } from "../../wire/keys.ts";
import type { CrossSigning } from "../cross-signing/manager.ts";
import { MEGOLM_ALGORITHM } from "../devices/device.ts";
import type { DeviceManager } from "../devices/manager.ts";
import type { OwnDevice } from "../identity/own-device.ts";
import type { KeyRequests } from "../key-requests/manager.ts";
import { isId } from "../limits.ts";
import { type MachineContext, newRequestId } from "../machine-context.ts";
import { claimedKeysOf, sessionKeyAtFirstKnownIndex } from "../room-keys/import.ts";
import { signWithAccount } from "../signing.ts";
import { KeyBackupError } from "./errors.ts";
import type { BackupCreateVersionRequest, BackupLookupRequest, BackupUploadRequest } from "./requests.ts";
import { type BackupTrust, type BackupTrustSource, backupVersionTrust } from "./trust.ts";

/** Sessions per upload request: bounds the request body and the work lost to a failed request. */
export const BACKUP_UPLOAD_BATCH_SIZE = 200;
/** On-demand lookups waiting to be sent at most; beyond that, key requests go out directly. */
export const MAX_BACKUP_LOOKUPS = 256;
/** Sessions remembered as already looked up (not asked again in this process), oldest dropped first. */
export const MAX_LOOKED_UP_SESSIONS = 10_000;
/**
 * Damaged inbound session rows the backup passes over in this process, at most (each room and
 * session ID, about 200 bytes). They are not marked backed up: a row that looked damaged through a
 * bug reads again once it is fixed, and a new process meets it again (once) and backs it up. Past
 * this many, a further damaged row is marked backed up, as it once always was, so that the batches
 * still get past it.
 */
export const MAX_SKIPPED_DAMAGED_SESSIONS = 10_000;
/**
 * Damaged rows one backup step reads past at most (each a failed authentication): the step then
 * uploads the good sessions it found, and the next one goes on after them (they are skipped).
 */
export const MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP = 100;
/** The store secret holding the current version's private key (the secret-storage name). */
export const BACKUP_KEY_SECRET = "m.megolm_backup.v1";
/** The store secret holding the key of a version being created. */
export const PENDING_BACKUP_KEY_SECRET = "keyroom.megolm_backup.v1.pending";

/** Where damaged inbound session rows met on the way are reported (`InboundSessions`). */
export interface DamagedInboundReport {
  noteDamaged(keys: readonly RoomSessionKey[]): void;
}

/** Why uploads stopped. */
export type BackupStopReason = "version_changed" | "version_deleted";

/** The backup as this device sees it. */
export interface KeyBackupStatus {
  /** The version we use (upload to, look keys up in), if any. */
  readonly version: string | undefined;
  /** Its `auth_data.public_key`. */
  readonly publicKey: string | undefined;
  readonly trusted: boolean;
  readonly trustedBy: BackupTrustSource | undefined;
  /** We hold the version's private key (restore and on-demand lookups work). */
  readonly hasKey: boolean;
  /** Why uploading stopped (the server replaced or deleted the version), if it did. */
  readonly stopped: BackupStopReason | undefined;
  /** New room keys are uploaded: a version, trusted, not stopped. */
  readonly uploading: boolean;
  /** Room keys marked uploaded to this version, and all room keys held. */
  readonly backedUp: number;
  readonly total: number;
}

/** What a version check found. */
export type VersionCheck =
  | { readonly kind: "none" }
  | { readonly kind: "same"; readonly trust: BackupTrust }
  | { readonly kind: "adopted"; readonly trust: BackupTrust }
  | {
      readonly kind: "stopped";
      readonly reason: BackupStopReason /** Just now, not before. */;
      readonly changed: boolean;
    };

interface UploadedKey {
  readonly roomId: string;
  readonly sessionId: string;
  /** What of the stored copy went into the record (`uploadedCopy`): another copy still has to go up. */
  readonly copy: string;
}

/**
 * The parts of a stored copy its backup record carries: the key from its first index, the claim
 * of who created it, the chain, the flags behind `is_verified` and `shared_history`. A copy
 * replaced by one differing in any of them (the creator's own share after a forward, at the same
 * index) is not the one a batch uploaded.
 */
function uploadedCopy(r: InboundGroupSessionRecord): string {
  return JSON.stringify([
    r.firstKnownIndex,
    r.senderKey,
    r.senderClaimedEd25519,
    r.forwardingChain,
    r.forwarded,
    r.imported,
    r.sharedHistory === true,
  ]);
}

interface Lookup {
  readonly request: BackupLookupRequest;
  readonly senderKey: string | undefined;
  readonly sender: string;
}

const sessionKey = (roomId: string, sessionId: string): string => `${roomId}\u0000${sessionId}`;

function keyFromSecret(secret: string | undefined): PkDecryption | undefined {
  if (secret === undefined) return undefined;
  try {
    const bytes = decodeBase64(secret);
    return bytes.length === 32 ? PkDecryption.fromPrivateKey(bytes) : undefined;
  } catch {
    return undefined;
  }
}

/** A backed-up room key for a stored session (from its first known index), or undefined if unreadable. */
export function backedUpRoomKey(record: InboundGroupSessionRecord): BackedUpRoomKey | undefined {
  const sessionKey = sessionKeyAtFirstKnownIndex(record);
  if (sessionKey === undefined) return undefined;
  return {
    algorithm: MEGOLM_ALGORITHM,
    sender_key: record.senderKey,
    session_key: sessionKey,
    // Empty for a session held without a valid claim (stored as ""): `{ ed25519: "" }` is refused
    // by our own restore and by matrix-rust-sdk, as export files and bundles avoid it too.
    sender_claimed_keys: claimedKeysOf(record.senderClaimedEd25519),
    forwarding_curve25519_key_chain: [...record.forwardingChain],
    // The spec keeps the shared-history flag in backups too (MSC4268); matrix-rust-sdk (Element)
    // reads it only under its own name.
    ...(record.sharedHistory === true ? { shared_history: true, [RUST_SHARED_HISTORY_FIELD]: true } : {}),
  };
}

export class KeyBackup {
  readonly #ctx: MachineContext;
  readonly #own: OwnDevice;
  readonly #devices: DeviceManager;
  readonly #crossSigning: CrossSigning;
  readonly #gossip: KeyRequests;
  #state: BackupStateRecord | undefined;
  #key: PkDecryption | undefined;
  #encryption: PkEncryption | undefined;
  /** What made the current version trusted, as last checked in this process. */
  #trustedBy: BackupTrustSource | undefined;
  #creating: BackupCreateVersionRequest | undefined;
  #upload: { request: BackupUploadRequest; keys: UploadedKey[] } | undefined;
  /**
   * The store had no session to back up, and no step has saved a room key (or reset the marks)
   * since: `nextUpload` answers without asking it again. The client calls `nextUpload` after every
   * sync response, where that query was a visible part of a bot's CPU per command; a reload (another
   * process wrote) builds a new `KeyBackup`, so this starts false again.
   */
  #nothingToUpload = false;
  readonly #lookups = new Map<string, Lookup>();
  readonly #lookedUp = new Set<string>();
  /** Damaged rows met by `nextUpload`, passed over unmarked (`MAX_SKIPPED_DAMAGED_SESSIONS`). */
  readonly #skippedDamaged = new Set<string>();

  private constructor(
    ctx: MachineContext,
    own: OwnDevice,
    devices: DeviceManager,
    crossSigning: CrossSigning,
    gossip: KeyRequests,
  ) {
    this.#ctx = ctx;
    this.#own = own;
    this.#devices = devices;
    this.#crossSigning = crossSigning;
    this.#gossip = gossip;
  }

  static async load(
    ctx: MachineContext,
    own: OwnDevice,
    devices: DeviceManager,
    crossSigning: CrossSigning,
    gossip: KeyRequests,
  ): Promise<KeyBackup> {
    const backup = new KeyBackup(ctx, own, devices, crossSigning, gossip);
    backup.#setState(await ctx.store.getBackupState());
    backup.#key = keyFromSecret(await ctx.store.getSecret(BACKUP_KEY_SECRET));
    return backup;
  }

  #setState(state: BackupStateRecord | undefined, persist = false): void {
    this.#state = state;
    const publicKey = state?.authData.public_key;
    try {
      this.#encryption = typeof publicKey === "string" ? new PkEncryption(publicKey) : undefined;
    } catch {
      this.#encryption = undefined;
    }
    if (persist) this.#ctx.tx.backupState = state ?? null;
    this.#upload = undefined;
    this.#nothingToUpload = false;
    this.#lookups.clear();
  }

  #setKey(key: PkDecryption | undefined): void {
    this.#key = key;
    this.#ctx.tx.secrets[BACKUP_KEY_SECRET] = key === undefined ? null : encodeBase64(key.exportPrivateKey());
  }

  get state(): BackupStateRecord | undefined {
    return this.#state;
  }

  /** The private key of the version we use, when we hold it. */
  get key(): PkDecryption | undefined {
    const publicKey = this.#state?.authData.public_key;
    return this.#key !== undefined && this.#key.publicKey === publicKey ? this.#key : undefined;
  }

  /** The private key we hold, matching a version or not (the caller checks). */
  get heldKey(): PkDecryption | undefined {
    return this.#key;
  }

  #uploading(): boolean {
    const s = this.#state;
    return s !== undefined && s.trusted === true && s.stopped === undefined && this.#encryption !== undefined;
  }

  async status(): Promise<KeyBackupStatus> {
    const s = this.#state;
    const counts = await this.#ctx.store.countInboundGroupSessions();
    const publicKey = s?.authData.public_key;
    return {
      version: s?.version,
      publicKey: typeof publicKey === "string" ? publicKey : undefined,
      trusted: s?.trusted === true,
      trustedBy: s?.trusted === true ? this.#trustedBy : undefined,
      hasKey: this.key !== undefined,
      stopped: s?.stopped as BackupStopReason | undefined,
      uploading: this.#uploading(),
      backedUp: s === undefined ? 0 : counts.backedUp,
      total: counts.total,
    };
  }

  #trust(version: BackupVersion, key: PkDecryption | undefined): Promise<BackupTrust> {
    return backupVersionTrust(
      { ctx: this.#ctx, own: this.#own, devices: this.#devices, crossSigning: this.#crossSigning },
      version,
      key,
    );
  }

  // ---- versions ----

  /**
   * A new version's request: a fresh key pair (persisted as pending), `auth_data` signed by this
   * device and, when we hold it, our master key. Returns the private key for the caller to keep.
   */
  prepareVersion(): { request: BackupCreateVersionRequest; privateKey: Uint8Array } {
    const key = PkDecryption.create();
    const { userId, deviceId } = this.#ctx;
    const signed = signWithAccount(this.#own.account, userId, deviceId, { public_key: key.publicKey });
    const authData = this.#crossSigning.signWithMasterKey(signed);
    const request: BackupCreateVersionRequest = {
      id: newRequestId(),
      type: "backup_create_version",
      body: { algorithm: MEGOLM_BACKUP_V1_ALGORITHM, auth_data: authData },
    };
    this.#creating = request;
    this.#ctx.tx.secrets[PENDING_BACKUP_KEY_SECRET] = encodeBase64(key.exportPrivateKey());
    return { request, privateKey: key.exportPrivateKey() };
  }

  /** The server created the version (`{ version }`): it becomes ours, every session to upload again. */
  async versionCreated(id: string, response: unknown): Promise<string> {
    const request = this.#creating;
    if (request === undefined || request.id !== id) {
      throw new KeyBackupError("NO_BACKUP", "no version creation with this ID is in flight");
    }
    const version = (response as { version?: unknown } | null)?.version;
    if (!isId(version)) {
      throw new KeyBackupError("BAD_RESPONSE", "the room_keys/version answer has no version");
    }
    const key = keyFromSecret(await this.#ctx.store.getSecret(PENDING_BACKUP_KEY_SECRET));
    if (key === undefined) throw new KeyBackupError("NO_KEY", "the new version's key was lost");
    this.#creating = undefined;
    this.#adopt(
      {
        version,
        algorithm: MEGOLM_BACKUP_V1_ALGORITHM,
        authData: jsonCopy(request.body.auth_data),
        trusted: true,
      },
      key,
      "this_device",
    );
    return version;
  }

  #adopt(state: BackupStateRecord, key: PkDecryption | undefined, by: BackupTrustSource | undefined): void {
    if (this.#state?.version !== state.version) this.#ctx.tx.resetBackedUp = true;
    this.#setState(state, true);
    this.#trustedBy = by;
    if (key !== undefined && key !== this.#key) this.#setKey(key);
    this.#ctx.tx.secrets[PENDING_BACKUP_KEY_SECRET] = null;
  }

  /**
   * Uses the server's current version with `privateKey` (or the key we hold): it must be the
   * version's key. The version's trust is checked; an untrusted version is kept (restore works)
   * but never uploaded to.
   */
  async useVersion(body: unknown, privateKey: Uint8Array | undefined): Promise<BackupTrust> {
    const version = parseVersion(body);
    let key = this.#key;
    if (privateKey !== undefined) {
      try {
        key = PkDecryption.fromPrivateKey(privateKey);
      } catch {
        throw new KeyBackupError("BAD_ARGUMENT", "a backup private key is 32 bytes");
      }
    }
    if (key === undefined) throw new KeyBackupError("NO_KEY", "no backup key is held; give one");
    if (key.publicKey !== version.publicKey) {
      throw new KeyBackupError(
        "KEY_MISMATCH",
        "this key is not the key of the server's current backup version",
      );
    }
    const trust = await this.#trust(version, key);
    this.#adopt(stateOf(version, trust.trusted), key, trust.by);
    return trust;
  }

  /**
   * The server's current version (`GET /room_keys/version`'s body, or `null` for none). The same
   * version: its trust is checked again. Another version (or none): uploading stops, unless the
   * key we hold (or a version being created before a crash) is the new version's and it is
   * trusted, then it is adopted and every session goes up again. With no version in use, one
   * signed by our verified device or trusted master key is adopted without its key.
   */
  async checkVersion(body: unknown): Promise<VersionCheck> {
    const current = this.#state;
    if (body === null) {
      if (current === undefined) return { kind: "none" };
      return this.#stop("version_deleted");
    }
    let version: BackupVersion;
    try {
      version = parseVersion(body);
    } catch (e) {
      // A version of another algorithm is not one we can upload to: ours is no longer current.
      if (!(e instanceof KeyBackupError && e.code === "UNSUPPORTED_ALGORITHM")) throw e;
      return current === undefined ? { kind: "none" } : this.#stop("version_changed");
    }
    if (current?.version === version.version) {
      const trust = await this.#trust(version, this.#key);
      const next: BackupStateRecord = { ...stateOf(version, trust.trusted) };
      if (JSON.stringify(next) !== JSON.stringify(current)) this.#setState(next, true);
      this.#trustedBy = trust.by;
      return { kind: "same", trust };
    }
    const pending = keyFromSecret(await this.#ctx.store.getSecret(PENDING_BACKUP_KEY_SECRET));
    for (const key of [this.#key, pending]) {
      if (key === undefined || key.publicKey !== version.publicKey) continue;
      const trust = await this.#trust(version, key);
      if (!trust.trusted) continue;
      this.#adopt(stateOf(version, true), key, trust.by);
      return { kind: "adopted", trust };
    }
    // A version our own verified device or trusted master key signed is the account's backup,
    // uploaded to even without its private key (only reading needs it): with none in use yet (a
    // new device), and in place of ours when another of our devices replaced it (a reset), as
    // js-sdk switches too; otherwise the keys we receive from then on would be in no backup.
    const trust = await this.#trust(version, undefined);
    if (!trust.trusted) return current === undefined ? { kind: "none" } : this.#stop("version_changed");
    this.#adopt(stateOf(version, true), undefined, trust.by);
    return { kind: "adopted", trust };
  }

  /**
   * A key for the version in use (a refused answer judged again after a version check): taken as
   * `useVersion` would take it with that version. False when there is no version in use, uploading
   * to it stopped, or this is not its key.
   */
  async useKeyForVersionInUse(privateKey: Uint8Array): Promise<boolean> {
    const s = this.#state;
    if (s === undefined || s.stopped !== undefined) return false;
    try {
      await this.useVersion(
        { version: s.version, algorithm: s.algorithm, auth_data: s.authData },
        privateKey,
      );
    } catch (e) {
      if (e instanceof KeyBackupError) return false;
      throw e;
    }
    return true;
  }

  #stop(reason: BackupStopReason): VersionCheck {
    const current = this.#state;
    const changed = current !== undefined && current.stopped !== reason;
    if (current !== undefined && changed) this.#setState({ ...current, stopped: reason }, true);
    return { kind: "stopped", reason, changed };
  }

  /** The version was deleted (by us): forget it and its key. */
  forget(version: string): void {
    if (this.#state?.version !== version) return;
    this.#setState(undefined, true);
    this.#setKey(undefined);
    this.#ctx.tx.resetBackedUp = true;
  }

  // ---- uploads ----

  /**
   * A step saved room keys (`saved`) or reset the backed-up marks: the next `nextUpload` asks the
   * store.
   */
  roomKeysSaved(saved: readonly RoomSessionKey[]): void {
    this.#nothingToUpload = false;
    // A copy saved over a damaged row replaced it: no longer passed over.
    for (const k of saved) this.#skippedDamaged.delete(sessionKey(k.roomId, k.sessionId));
  }

  /** The next batch to upload (the same one again until answered), or undefined. */
  async nextUpload(damaged: DamagedInboundReport): Promise<BackupUploadRequest | undefined> {
    if (this.#upload !== undefined) return this.#upload.request;
    const state = this.#state;
    const encryption = this.#encryption;
    if (state === undefined || encryption === undefined || !this.#uploading()) return undefined;
    if (this.#nothingToUpload) return undefined;
    const unreadable: RoomSessionKey[] = [];
    const skipped = this.#skippedDamaged;
    const records = await this.#ctx.store.getInboundGroupSessionsToBackUp(
      BACKUP_UPLOAD_BATCH_SIZE,
      unreadable,
      {
        skip: (roomId, sessionId) => skipped.has(sessionKey(roomId, sessionId)),
        maxUnreadable: MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP,
      },
    );
    // A damaged row (failed authentication, malformed) cannot go up now. It is passed over, not
    // marked: one that looked damaged through a bug reads again once the bug is fixed, and the
    // next process (which meets it again, once) backs it up; a good copy saved meanwhile replaces
    // it and goes up. Past MAX_SKIPPED_DAMAGED_SESSIONS it is marked so the batches get past it.
    // Reported once (IDs only) with the other damaged rows the engine finds.
    let met = false;
    for (const k of unreadable) {
      const key = sessionKey(k.roomId, k.sessionId);
      if (skipped.has(key)) continue; // a store that does not pass over what `skip` names
      met = true;
      if (skipped.size < MAX_SKIPPED_DAMAGED_SESSIONS) skipped.add(key);
      else this.#ctx.tx.backedUp.push({ roomId: k.roomId, sessionId: k.sessionId });
    }
    damaged.noteDamaged(unreadable);
    // The read stopped at the bound on damaged rows: more may follow, for the next step (which
    // gets past these), unless it met none it had not met before: the next would meet them again.
    const cut = met && unreadable.length >= MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP;
    if (records.length === 0) {
      if (!cut) this.#nothingToUpload = true;
      return undefined;
    }
    // No prototype: a room ID is any string the store keeps, `__proto__` included (a hostile
    // backup answer or key file can bring one), and must not reach `Object.prototype`.
    const rooms = Object.create(null) as BackupUploadRequest["body"]["rooms"];
    const keys: UploadedKey[] = [];
    const verified = new Map<string, boolean>();
    for (const record of records) {
      const { roomId, sessionId, firstKnownIndex, senderKey } = record;
      keys.push({ roomId, sessionId, copy: uploadedCopy(record) });
      const key = backedUpRoomKey(record);
      if (key === undefined) continue; // unreadable: marked with the batch, never retried forever
      let isVerified = verified.get(senderKey);
      if (isVerified === undefined) {
        isVerified = await this.#senderVerified(senderKey);
        verified.set(senderKey, isVerified);
      }
      const data: KeyBackupData = encryptKeyBackupData(encryption, key, {
        firstMessageIndex: firstKnownIndex,
        forwardedCount: record.forwardingChain.length,
        // Servers keep a verified copy over an unverified one whatever its index (Synapse, the
        // spec's rule), and matrix-rust-sdk never claims it: claimed from a later index, ours
        // would replace another device's copy from an earlier one and lose messages. From 0 no
        // copy is better.
        isVerified: isVerified && firstKnownIndex === 0 && !record.forwarded && !record.imported,
      });
      let room = rooms[roomId];
      if (room === undefined) {
        room = { sessions: Object.create(null) as Record<string, KeyBackupData> };
        rooms[roomId] = room;
      }
      room.sessions[sessionId] = data;
    }
    const request: BackupUploadRequest = {
      id: newRequestId(),
      type: "backup_upload",
      version: state.version,
      body: { rooms },
    };
    this.#upload = { request, keys };
    return request;
  }

  /** `is_verified`: the device that created the session is one we verified. */
  async #senderVerified(senderKey: string): Promise<boolean> {
    const device = await this.#devices.deviceByCurveKey(senderKey);
    if (device === undefined) return false;
    const identity = await this.#crossSigning.identity(device.userId);
    return this.#crossSigning.deviceTrust(device, identity).verified;
  }

  /**
   * The server stored the batch: its sessions are marked, unless the version changed since it
   * was built (then nothing is marked under the wrong version) or a session was replaced by a
   * better copy meanwhile (that copy still has to go up).
   */
  async uploaded(id: string): Promise<number> {
    const upload = this.#upload;
    // Unknown: the batch was dropped when the version changed (or the machine restarted).
    if (upload === undefined || upload.request.id !== id) return 0;
    this.#upload = undefined;
    if (this.#state?.version !== upload.request.version || !this.#uploading()) return 0;
    let marked = 0;
    for (const k of upload.keys) {
      let now: InboundGroupSessionRecord | undefined;
      try {
        now = await this.#ctx.store.getInboundGroupSession(k.roomId, k.sessionId);
      } catch (e) {
        // Damaged since the batch was read: left unmarked (the next batch meets and skips it).
        if (!isDamagedRecord(e)) throw e;
        continue;
      }
      if (now === undefined || uploadedCopy(now) !== k.copy) continue;
      this.#ctx.tx.backedUp.push({ roomId: k.roomId, sessionId: k.sessionId });
      marked++;
    }
    return marked;
  }

  /**
   * The upload failed with a Matrix error: `M_WRONG_ROOM_KEYS_VERSION` (another version is
   * current) or `M_NOT_FOUND` (the version is gone) stop uploading; anything else is retried.
   */
  uploadFailed(id: string, errcode: string | undefined): BackupStopReason | undefined {
    if (this.#upload?.request.id !== id) return undefined;
    const version = this.#upload.request.version;
    this.#upload = undefined;
    if (this.#state?.version !== version) return undefined;
    const reason: BackupStopReason | undefined =
      errcode === "M_WRONG_ROOM_KEYS_VERSION"
        ? "version_changed"
        : errcode === "M_NOT_FOUND"
          ? "version_deleted"
          : undefined;
    if (reason !== undefined) this.#stop(reason);
    return reason;
  }

  /** A restored session the backup holds at least as well as we do: not uploaded again. */
  markBackedUp(roomId: string, sessionId: string): void {
    this.#ctx.tx.backedUp.push({ roomId, sessionId });
  }

  // ---- on-demand lookups ----

  /**
   * An event lacks its session: ask the backup first (true), when we can read it and have not
   * asked for this session yet. Otherwise (false) the caller asks our other devices.
   */
  queueLookup(roomId: string, sessionId: string, senderKey: string | undefined, sender: string): boolean {
    const state = this.#state;
    if (state === undefined || this.key === undefined) return false;
    const k = sessionKey(roomId, sessionId);
    if (this.#lookups.has(k)) return true;
    if (this.#lookedUp.has(k) || this.#lookups.size >= MAX_BACKUP_LOOKUPS) return false;
    this.#lookups.set(k, {
      request: { id: newRequestId(), type: "backup_lookup", version: state.version, roomId, sessionId },
      senderKey,
      sender,
    });
    return true;
  }

  /**
   * What background work may find, from memory: a lookup waiting, and an upload under way or
   * room keys that may need one (`nextUpload` then asks the store). False means the matching
   * call would hand out nothing.
   */
  pendingWork(): { lookups: boolean; uploads: boolean } {
    return {
      lookups: this.#lookups.size > 0,
      uploads: this.#upload !== undefined || (this.#uploading() && !this.#nothingToUpload),
    };
  }

  lookupRequests(): BackupLookupRequest[] {
    return [...this.#lookups.values()].map((l) => l.request);
  }

  /** Takes a finished lookup; the caller imports what it found, or asks our devices (`fallBack`). */
  takeLookup(id: string): Lookup | undefined {
    for (const [k, lookup] of this.#lookups) {
      if (lookup.request.id !== id) continue;
      this.#lookups.delete(k);
      this.#lookedUp.add(k);
      if (this.#lookedUp.size > MAX_LOOKED_UP_SESSIONS) {
        const oldest = this.#lookedUp.values().next().value;
        if (oldest !== undefined) this.#lookedUp.delete(oldest);
      }
      return lookup;
    }
    return undefined;
  }

  /** The backup did not have it: ask our other devices, as without a backup. */
  fallBack(lookup: Lookup): void {
    const { roomId, sessionId } = lookup.request;
    this.#gossip.request(roomId, sessionId, lookup.senderKey, lookup.sender);
  }
}

/**
 * The server's answer checked as the client's edge checks it (src/wire/keys.ts), for applications
 * that feed the engine themselves: a version the store could not keep (an ID past `MAX_ID_LENGTH`
 * or ill-formed, `auth_data` nesting past `MAX_BACKUP_AUTH_DATA_DEPTH`) would fail every save, and
 * `auth_data` past `MAX_BACKUP_AUTH_DATA_BYTES` (junk signatures) would be kept whole.
 */
function parseVersion(body: unknown): BackupVersion {
  let version: BackupVersion;
  try {
    version = parseBackupVersion(body);
  } catch (e) {
    if (!(e instanceof BackupError)) throw e;
    if (e.code === "UNSUPPORTED_ALGORITHM") {
      throw new KeyBackupError("UNSUPPORTED_ALGORITHM", "the server's backup uses another algorithm");
    }
    throw new KeyBackupError("BAD_RESPONSE", `malformed backup version (${e.code})`);
  }
  if (
    !isId(version.version) ||
    !storableWithin(version.authData, MAX_BACKUP_AUTH_DATA_DEPTH) ||
    JSON.stringify(version.authData).length > MAX_BACKUP_AUTH_DATA_BYTES
  ) {
    throw new KeyBackupError(
      "BAD_RESPONSE",
      "malformed backup version (an ID or auth_data the store cannot keep)",
    );
  }
  return version;
}

function stateOf(version: BackupVersion, trusted: boolean): BackupStateRecord {
  return {
    version: version.version,
    algorithm: version.algorithm,
    authData: jsonCopy(version.authData),
    trusted,
  };
}

/** A JSON object from the network or our own request, as the store's JSON type (a deep copy). */
function jsonCopy(value: Readonly<Record<string, unknown>>): BackupStateRecord["authData"] {
  return JSON.parse(JSON.stringify(value)) as BackupStateRecord["authData"];
}
