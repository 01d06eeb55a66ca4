// History sharing on invite (MSC4268, spec v1.19) in the client: before inviting, the room's
// shareable keys go to the invitee as an encrypted bundle (an attachment in the media repository,
// pointed at by `m.room_key_bundle` over Olm); after accepting an invite, the inviter's bundle is
// downloaded and imported. The engine decides what goes in and what may come in.
import { AttachmentError } from "../../crypto/attachments/errors.ts";
import { utf8Encode } from "../../crypto/primitives/index.ts";
import { HistorySharingError, MAX_BUNDLE_BYTES } from "../../e2ee/history-sharing/bundle.ts";
import type { DecryptedRoomEvent, OlmMachine, PendingBundle } from "../../e2ee/index.ts";
import { ClientError, MatrixError } from "../errors.ts";
import { errorSummary } from "../events/emitter.ts";
import type { Logger } from "../logger.ts";
import { attachmentCipher } from "./attachments.ts";

export interface HistorySharingHost {
  readonly machine: OlmMachine;
  readonly logger: Logger;
  uploadMedia(data: Uint8Array): Promise<string>;
  /** Media bytes, refusing more than `maxBytes` (a `ClientError`). */
  downloadMedia(mxcUri: string, maxBytes: number): Promise<Uint8Array>;
  /** These users' device lists made current (a `/keys/query` when needed). */
  refreshDevices(userIds: readonly string[]): Promise<void>;
  /** The user's device list made current and Olm sessions claimed with their devices. */
  prepareRecipient(userId: string): Promise<void>;
  flush(): Promise<void>;
  emitRedecrypted(events: readonly DecryptedRoomEvent[]): Promise<void>;
  /** The room's keys from the key backup, when one is in use with its key; false when none is. */
  restoreRoomFromBackup(roomId: string): Promise<boolean>;
}

/** Rooms whose keys were fetched from the backup in this process: at most this many remembered. */
export const MAX_ROOMS_RESTORED_FOR_SHARING = 1000;

export interface SharedHistory {
  /** Sessions sent (marked shareable). */
  readonly roomKeys: number;
  /** Sessions listed as not shared. */
  readonly withheld: number;
  /** The invitee's devices that got the bundle (cross-signed ones only). */
  readonly devices: readonly string[];
}

export class HistorySharing {
  readonly #host: HistorySharingHost;
  /** Rooms whose backed-up keys were fetched before a bundle in this process (oldest dropped). */
  readonly #restored = new Set<string>();
  /** A passing failure left bundles to import (or none was tried since the start): try at the next sync. */
  #retry = true;

  constructor(host: HistorySharingHost) {
    this.#host = host;
  }

  /**
   * Builds, encrypts, uploads and sends the room's key bundle to `userId`'s cross-signed devices.
   * Call before inviting them, and only when the room's history visibility is `shared` or
   * `world_readable` (`MatrixClient.invite` does both).
   */
  async share(roomId: string, userId: string): Promise<SharedHistory> {
    const { machine } = this.#host;
    await this.#restoreFromBackup(roomId);
    const bundle = await machine.historySharing.buildBundle(roomId);
    if (bundle.room_keys.length === 0 && bundle.withheld.length === 0) {
      return { roomKeys: 0, withheld: 0, devices: [] };
    }
    const { encryptAttachment } = await attachmentCipher();
    const { ciphertext, info } = encryptAttachment(utf8Encode(JSON.stringify(bundle)));
    const url = await this.#host.uploadMedia(ciphertext);
    await this.#host.prepareRecipient(userId);
    const { request, recipients } = await machine.historySharing.shareBundle(roomId, userId, {
      ...info,
      url,
    });
    if (request !== undefined) await this.#host.flush();
    return { roomKeys: bundle.room_keys.length, withheld: bundle.withheld.length, devices: recipients };
  }

  /**
   * The spec's first step: the room's keys from the key backup, so the bundle holds the history
   * this device never received. Once per room per process; a failure is logged and sharing goes
   * on with the keys we hold.
   */
  async #restoreFromBackup(roomId: string): Promise<void> {
    if (this.#restored.has(roomId)) return;
    try {
      if (!(await this.#host.restoreRoomFromBackup(roomId))) return;
    } catch (e) {
      this.#host.logger.warn({ roomId, err: errorSummary(e) }, "room keys not restored from the backup");
      return;
    }
    this.#restored.add(roomId);
    for (const oldest of this.#restored) {
      if (this.#restored.size <= MAX_ROOMS_RESTORED_FOR_SHARING) break;
      this.#restored.delete(oldest);
    }
  }

  /** Whether `importReady` should run again (with the next sync response). */
  get retryDue(): boolean {
    return this.#retry;
  }

  /**
   * The app accepted a user's changed identity or withdrew its verification: bundles from that
   * inviter that waited on the violation are tried with the next sync response.
   */
  identityDecided(): void {
    this.#retry = true;
  }

  /** We accepted `inviter`'s invite to `roomId`: their bundle is imported now, or when it comes. */
  async inviteAccepted(roomId: string, inviter: string): Promise<void> {
    await this.#host.machine.historySharing.inviteAccepted(roomId, inviter);
    await this.importReady();
  }

  /**
   * Downloads and imports every bundle the engine says is ready (from the inviter of a room we
   * joined within the window). A bundle whose media is gone or that does not decrypt or parse is
   * dropped; a passing failure (network, 5xx, rate limit) leaves it for the next try (`retryDue`).
   */
  async importReady(): Promise<void> {
    const { machine } = this.#host;
    this.#retry = false;
    // The sending device must be one the inviter cross-signed: their keys must be current.
    const inviters = await machine.historySharing.userIdsToRefresh();
    try {
      if (inviters.length > 0) await this.#host.refreshDevices(inviters);
    } catch (e) {
      // Their bundles wait for the next try (the sending device must be known to be theirs).
      this.#retry = true;
      this.#host.logger.warn({ err: errorSummary(e) }, "inviters' device lists unavailable");
    }
    for (const bundle of await machine.historySharing.bundlesToImport()) {
      try {
        await this.#import(bundle);
      } catch (e) {
        const unusable =
          e instanceof AttachmentError ||
          e instanceof HistorySharingError ||
          e instanceof ClientError ||
          (e instanceof MatrixError && e.httpStatus >= 400 && e.httpStatus < 500 && !e.isRateLimited);
        this.#host.logger.warn(
          { roomId: bundle.roomId, sender: bundle.sender, err: errorSummary(e) },
          unusable ? "dropped a room key bundle that cannot be used" : "room key bundle download failed",
        );
        if (unusable) await machine.historySharing.drop(bundle.roomId, bundle.sender);
        else this.#retry = true;
      }
    }
  }

  async #import(bundle: PendingBundle): Promise<void> {
    // Refused past the bound while downloading (a ClientError, which drops the bundle).
    const ciphertext = await this.#host.downloadMedia(bundle.file.url, MAX_BUNDLE_BYTES);
    const { decryptAttachment } = await attachmentCipher();
    const plaintext = decryptAttachment(ciphertext, bundle.file);
    const { redecrypted } = await this.#host.machine.historySharing.importBundle(bundle, plaintext);
    await this.#host.emitRedecrypted(redecrypted);
  }
}
