// The shapes around the client's encryption driver (`ClientCrypto`, loaded with the engine): what
// it needs of the client, how it is opened, and what its calls take and return. Types only, so
// the client imports them without loading the engine.
import type { HeldKeyRequest, SenderRequirement, ShareWith } from "../../e2ee/index.ts";
import type { JsonObject } from "../../wire/index.ts";
import type { Clock } from "../clock.ts";
import type { RoomEvent } from "../events/types.ts";
import type { HttpClient } from "../http.ts";
import type { Logger } from "../logger.ts";
import type { Room } from "../rooms/room.ts";
import type { FetchedMember } from "../sync/hooks.ts";
import type { LeaseOptions } from "./lease.ts";
import type { OpenedStore } from "./options.ts";

/** What the driver needs from the client it serves. */
export interface ClientCryptoHost {
  readonly http: HttpClient;
  readonly logger: Logger;
  getRoom(roomId: string): Room | undefined;
  rooms(): Iterable<Room>;
  /** Emits an event that failed to decrypt earlier and decrypted now that its key arrived. */
  emitDecrypted(room: Room, event: RoomEvent): Promise<void>;
  /** Emits an event that failed to decrypt earlier and fails now for a new reason (its key was withheld). */
  emitUndecryptable(room: Room, event: RoomEvent): Promise<void>;
  /**
   * Hands a timeline event to the verification flow alone (not emitted): a refused sender's
   * verification event decrypted late, its held event taken by the flow as on time.
   */
  verificationEvent?(event: RoomEvent): void;
  /** Emits a key request of one of our own devices that waits for its verification. */
  emitKeyRequest(request: HeldKeyRequest): void;
  /** Reports a failure nobody awaits (a background request). */
  reportError(error: unknown): void;
  /**
   * A room's member list was fetched before a room key share and corrected the room's state
   * (`news`: the member events that changed what we knew). The client saves the room and emits
   * `news`; without it, the correction lives in memory only.
   */
  membersFetched?(room: Room, news: readonly FetchedMember[]): void;
  /** Global account data as last synced (`m.key_backup`). */
  getAccountData(type: string): JsonObject | undefined;
  /** Uploads global account data (secret storage, `m.key_backup`) and keeps the client's copy current. */
  setAccountData(type: string, content: JsonObject): Promise<void>;
  /** Time for schedules (dehydrated-device rotation) and the engine's `now`; the system clock when absent. */
  readonly clock?: Clock;
  /** Uploads bytes to the media repository: the `mxc://` URI (history-sharing bundles). */
  uploadMedia(data: Uint8Array): Promise<string>;
  /** Downloads media bytes, refusing more than `maxBytes` (history-sharing bundles). */
  downloadMedia(mxcUri: string, maxBytes: number): Promise<Uint8Array>;
}

export interface ClientCryptoOpenOptions {
  readonly host: ClientCryptoHost;
  readonly store: OpenedStore;
  readonly userId: string;
  readonly deviceId: string;
  readonly verifyDevices?: boolean;
  readonly onlyVerifiedDevices?: boolean;
  readonly shareWith?: ShareWith;
  readonly senderRequirement?: SenderRequirement;
  readonly errorOnVerifiedUserProblems?: boolean;
  /**
   * The sync token the client resumes from. Undefined while the crypto store has a token means a
   * fresh initial sync, which carries no `device_lists`: the changes since the crypto store's token
   * are then fetched from `/keys/changes`.
   */
  readonly clientSince?: string | undefined;
  /** Taking turns on a store shared with other processes or tabs (see `LeaseKeeper`). */
  readonly lease?: LeaseOptions;
}

export interface KeyImportResult {
  /** Keys that were new or better than what we held. */
  readonly imported: number;
  /** Entries in the file. */
  readonly total: number;
}

export type ProgressCallback = (done: number, total: number) => void;

/**
 * A room's trust requirements: who gets its keys, whether senders must be cross-signed, and
 * whether a verified user's problem fails the send (`VerifiedUserProblemError`).
 */
export interface RoomTrustRequirements {
  readonly shareWith?: ShareWith;
  readonly senderRequirement?: SenderRequirement;
  readonly errorOnVerifiedUserProblems?: boolean;
}
