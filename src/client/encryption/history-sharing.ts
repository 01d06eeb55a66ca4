// History sharing on invite (MSC4268, spec v1.19) in the client: before inviting, the room's
// shareable keys go to the invitee as an encrypted bundle (an attachment in the media repository,
// pointed at by `m.room_key_bundle` over Olm); after accepting an invite (here, or in another
// client: the sync shows our membership go from invite to join), the inviter's bundle is
// downloaded and imported. The engine decides what goes in and what may come in.
import { AttachmentError } from "../../crypto/attachments/errors.ts";
import { utf8Encode } from "../../crypto/primitives/index.ts";
import { HistorySharingError, MAX_BUNDLE_BYTES } from "../../e2ee/history-sharing/bundle.ts";
import type { DecryptedRoomEvent, OlmMachine, PendingBundle } from "../../e2ee/index.ts";
import { ClientError, MatrixError } from "../errors.ts";
import { errorSummary } from "../events/emitter.ts";
import type { Logger } from "../logger.ts";
import type { Room } from "../rooms/room.ts";
import { attachmentCipher } from "./attachments.ts";
import { ClientCryptoError } from "./errors.ts";

export interface HistorySharingHost {
  readonly machine: OlmMachine;
  readonly logger: Logger;
  /** Runs `work` as one unit of work on the crypto store (under its lease). */
  exclusive<T>(work: () => Promise<T>): Promise<T>;
  /** Reports a failure nobody awaits (a background import). */
  reportError(error: unknown): void;
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
  /** The import pass under way (one at a time), and whether another was asked for meanwhile. */
  #running: Promise<void> | undefined;
  #again = false;
  /** Passes started so far; `run`'s callers wait for the first pass that starts after their call. */
  #passes = 0;
  /** `run`'s callers: each resolved once a pass numbered above `after` is done (or at close). */
  #waiting: { readonly after: number; readonly resolve: () => void }[] = [];
  #closed = false;
  /**
   * The downloads under way, each ended (rejected) at `close`: a download is abandoned then. One
   * entry per download, gone when it ends; not a race with one promise of the close, whose
   * reactions would keep every bundle's bytes until the close.
   */
  readonly #abandon = new Set<(error: Error) => void>();

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

  /** Whether an import pass should run again (`schedule`, with the next sync response). */
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

  /**
   * We accepted `inviter`'s invite to `roomId` (`joinRoom`): recorded in the crypto store (under
   * its lease), then their bundle is imported now (resolves once that pass is done), or when it
   * comes. The sync records a join it sees itself (`SyncProcessing`), then calls `schedule`.
   */
  async inviteAccepted(roomId: string, inviter: string): Promise<void> {
    await this.#unit(() => this.#host.machine.historySharing.inviteAccepted(roomId, inviter));
    await this.run();
  }

  /**
   * Starts an import pass in the background (or one more after the pass under way): for the sync
   * loop, which must not wait for a bundle's download. Failures are logged and reported, and
   * leave `retryDue` set; nothing is thrown.
   */
  schedule(): void {
    this.#ask();
  }

  /**
   * Asks for an import pass; resolves once a pass that started after this call is done (never
   * rejects), not when the passes asked for after it are: syncs that keep asking for more while a
   * download fails do not hold it. One pass runs at a time, so `joinRoom` and the sync that shows
   * the join never download a bundle twice: the first pass imports it and the engine forgets it.
   */
  run(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const done = new Promise<void>((resolve) => {
      this.#waiting.push({ after: this.#passes, resolve });
    });
    this.#ask();
    return done;
  }

  /** One more pass, after the one under way if any. */
  #ask(): void {
    if (this.#closed) return;
    this.#again = true;
    // `#loop` awaits a pass before it can end, so it is set here before it clears it.
    this.#running ??= this.#loop();
  }

  /** Resolves the callers whose pass is done (`upTo`: the pass that ended; all of them at the end). */
  #release(upTo: number): void {
    const waiting = this.#waiting;
    this.#waiting = waiting.filter((w) => w.after >= upTo);
    for (const w of waiting) if (w.after < upTo) w.resolve();
  }

  /** Waits until no import pass runs or is asked for (tests; an app that wants the history now). */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  /**
   * Stops starting passes; a download under way is abandoned (its bundle stays in the crypto
   * store and is tried again at the next start), an engine step under way is waited for.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const abandon of this.#abandon)
      abandon(new ClientCryptoError("CLOSED", "the client's encryption was closed"));
    this.#abandon.clear();
    await this.#running;
  }

  async #loop(): Promise<void> {
    try {
      while (this.#again && !this.#closed) {
        this.#again = false;
        const pass = ++this.#passes;
        try {
          await this.importReady();
        } catch (e) {
          if (this.#closed) return; // the bundles wait in the store for the next start
          this.#retry = true;
          this.#host.logger.warn(
            { err: errorSummary(e) },
            "room key bundle import failed; tried again later",
          );
          this.#host.reportError(e);
        }
        this.#release(pass);
      }
    } finally {
      // In the same turn as the last check of `#again`: a `run` after it starts a new loop.
      this.#running = undefined;
      this.#release(Number.POSITIVE_INFINITY);
    }
  }

  /** `work` under the store's lease, refused once closed. */
  #unit<T>(work: () => Promise<T>): Promise<T> {
    return this.#host.exclusive(async () => {
      if (this.#closed) throw new ClientCryptoError("CLOSED", "the client's encryption was closed");
      return work();
    });
  }

  /**
   * One pass: downloads and imports every bundle the engine says is ready (from the inviter of a
   * room we joined within the window). A bundle whose media is gone or that does not decrypt or
   * parse is dropped; a passing failure (network, 5xx, rate limit) leaves it for the next try
   * (`retryDue`). Engine steps run under the lease, the downloads outside it. Prefer `run`:
   * passes called directly may overlap.
   */
  async importReady(): Promise<void> {
    const { machine } = this.#host;
    this.#retry = false;
    // The sending device must be one the inviter cross-signed: their keys must be current.
    const inviters = await this.#unit(() => machine.historySharing.userIdsToRefresh());
    try {
      if (inviters.length > 0) await this.#unit(() => this.#host.refreshDevices(inviters));
    } catch (e) {
      if (this.#closed) throw e;
      // Their bundles wait for the next try (the sending device must be known to be theirs).
      this.#retry = true;
      this.#host.logger.warn({ err: errorSummary(e) }, "inviters' device lists unavailable");
    }
    for (const bundle of await this.#unit(() => machine.historySharing.bundlesToImport())) {
      try {
        await this.#import(bundle);
      } catch (e) {
        if (this.#closed) throw e;
        const unusable =
          e instanceof AttachmentError ||
          e instanceof HistorySharingError ||
          e instanceof ClientError ||
          (e instanceof MatrixError && e.httpStatus >= 400 && e.httpStatus < 500 && !e.isRateLimited);
        this.#host.logger.warn(
          { roomId: bundle.roomId, sender: bundle.sender, err: errorSummary(e) },
          unusable ? "dropped a room key bundle that cannot be used" : "room key bundle download failed",
        );
        if (unusable) await this.#unit(() => machine.historySharing.drop(bundle.roomId, bundle.sender));
        else this.#retry = true;
      }
    }
  }

  /** `work`'s outcome, or `ClientCryptoError("CLOSED")` at `close` (`work`'s then nobody's). */
  #abandonedAtClose<T>(work: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.#closed) reject(new ClientCryptoError("CLOSED", "the client's encryption was closed"));
      else this.#abandon.add(reject);
      work.then(
        (value) => {
          this.#abandon.delete(reject);
          resolve(value);
        },
        (error: unknown) => {
          this.#abandon.delete(reject);
          reject(error);
        },
      );
    });
  }

  async #import(bundle: PendingBundle): Promise<void> {
    // Refused past the bound while downloading (a ClientError, which drops the bundle). Not under
    // the lease (another process sharing the store need not wait for it), and abandoned at close.
    const ciphertext = await this.#abandonedAtClose(
      this.#host.downloadMedia(bundle.file.url, MAX_BUNDLE_BYTES),
    );
    const { decryptAttachment } = await attachmentCipher();
    const plaintext = decryptAttachment(ciphertext, bundle.file);
    await this.#unit(async () => {
      const { redecrypted } = await this.#host.machine.historySharing.importBundle(bundle, plaintext);
      await this.#host.emitRedecrypted(redecrypted);
    });
  }
}

/**
 * Who invited `userId` to `room`, as its invite says (the sender of their membership event in the
 * invite's stripped state); undefined when the room is not an invite, or names no one else.
 */
export function inviterOf(room: Room, userId: string): string | undefined {
  if (room.membership !== "invite") return undefined;
  const sender = room.inviteState.find((e) => e.type === "m.room.member" && e.state_key === userId)?.sender;
  return sender !== undefined && sender !== userId ? sender : undefined;
}
