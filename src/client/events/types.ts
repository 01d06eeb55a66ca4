// What the client emits, and the shape of room events after the E2EE layer had its say.
import type {
  DecryptionFailureCode,
  E2eeErrorCode,
  HeldKeyRequest,
  IdentityState,
  SenderTrust,
} from "../../e2ee/index.ts";
import type {
  BasicEvent,
  ClientEvent,
  JsonObject,
  Membership,
  StateEvent,
  StrippedStateEvent,
  ToDeviceEvent,
  Unsigned,
} from "../../wire/index.ts";
import type { StoredSession } from "../client-store/index.ts";
import type { Presence } from "../presence.ts";
import type { Room, RoomSummaryInfo, Tombstone } from "../rooms/room.ts";
import type { UnreadNotifications } from "../rooms/unread.ts";
import type { VerificationRequest } from "../verification/request.ts";

/** How an `m.room.encrypted` event fared. Absent on events that were not encrypted. */
export type EncryptionInfo =
  | {
      decrypted: true;
      /** Curve25519 key of the sending device, as the E2EE layer established it. */
      senderKey?: string;
      /**
       * The sending device: the one holding `senderKey`, except with trust `unknown_device`, where
       * no device of the sender's is known to hold it and this is only what the event claims.
       */
      senderDeviceId?: string;
      /** How far the sending device is trusted (see docs/e2ee.md, "Decryption"). */
      trust?: SenderTrust;
      /** The sending device is cross-signed by its owner (see docs/verification.md). */
      senderCrossSigned?: boolean;
      /** The sender's cross-signing identity: `changed` and `violation` call for the user's attention. */
      senderIdentity?: IdentityState;
      /**
       * The key was not sent by the sender's device but forwarded to us by this user and device
       * (e.g. the inviter's history-sharing bundle, a key request answer): we have their word for
       * who sent the event. Absent for keys that came from the sender.
       */
      keysFrom?: { userId?: string; deviceId?: string; curve25519: string };
    }
  | {
      decrypted: false;
      code: UndecryptableCode;
      reason: string;
      /**
       * For `WITHHELD`: the code the sender gave (`m.unverified`: its device does not trust ours;
       * `m.blacklisted`, `m.unauthorised`, `m.unavailable`, `m.no_olm`), so an application can say
       * why, as Element does. Absent for other failures.
       */
      withheldCode?: string;
    };

/**
 * Why an encrypted event is not readable: the E2EE engine's reason (`UNKNOWN_SESSION` and
 * `WITHHELD` may clear up when the key arrives), or the client's own: `NO_CRYPTO` (encryption is
 * not enabled) and `DECRYPTOR_FAILED` (an unexpected error, reported as `error`).
 */
export type UndecryptableCode = DecryptionFailureCode | E2eeErrorCode | "NO_CRYPTO" | "DECRYPTOR_FAILED";

/** A timeline event as the client hands it to applications. */
export interface RoomEvent {
  roomId: string;
  eventId: string;
  sender: string;
  /** The effective type: the decrypted type for encrypted events that decrypted. */
  type: string;
  /** The effective content: the decrypted content for encrypted events that decrypted. */
  content: JsonObject;
  stateKey?: string;
  originServerTs: number;
  redacts?: string;
  unsigned?: Unsigned;
  /** The event as the server sent it. */
  raw: ClientEvent;
  encryption?: EncryptionInfo;
}

export interface RoomEventMeta {
  source: "initial-sync" | "sync" | "gap";
}

export type SyncState =
  /** Not syncing. */
  | "stopped"
  /** First request under way (no token yet, or resuming from a stored one). */
  | "initial"
  /** A response was processed; long-polling for the next. */
  | "syncing"
  /** The last attempt failed transiently; waiting before the next. */
  | "backoff"
  /** Stopped on a permanent failure (e.g. the access token was revoked). */
  | "error";

export interface SyncStateInfo {
  error?: unknown;
  nextBatch?: string;
  /** Wait before the next attempt, in `backoff`. */
  retryInMs?: number;
}

/** Every event the client emits, with its listener arguments. */
export interface ClientEventMap {
  /**
   * A timeline event from sync. State events in the timeline also raise `room.state`. `source`
   * tells recent history delivered by a first (token-less) sync apart from new events, and events
   * fetched to fill a gap in a limited timeline.
   */
  "room.event": [room: Room, event: RoomEvent, meta: RoomEventMeta];
  /**
   * An encrypted timeline event emitted earlier as undecryptable (`encryption.decrypted: false`)
   * decrypted now that its key arrived (by to-device, a forward or an import). Same `eventId`.
   */
  "room.decrypted": [room: Room, event: RoomEvent];
  /**
   * An encrypted timeline event emitted earlier as undecryptable whose sender has since said it
   * withheld the key (`encryption.code` `WITHHELD`, `encryption.withheldCode` why). Same `eventId`;
   * it may still decrypt later (`room.decrypted`) if the key comes after all.
   */
  "room.undecryptable": [room: Room, event: RoomEvent];
  /** Room state changed (from the state block or the timeline). */
  "room.state": [room: Room, event: StateEvent, previous: StateEvent | undefined];
  /** Someone's membership changed (including the local user's). */
  "room.member": [room: Room, userId: string, membership: Membership, previous: Membership | undefined];
  /** The local user was invited; `inviteState` describes the room. */
  "room.invite": [room: Room, inviter: string | undefined, inviteState: readonly StrippedStateEvent[]];
  /** The local user's own membership changed (join, leave, ban, ...). */
  "room.myMembership": [room: Room, membership: Membership, previous: Membership | undefined];
  /**
   * A room was dropped from the client (and its store): by `forgetRoom`, or, past
   * `MAX_LEFT_ROOMS` rooms left, the one left longest ago.
   */
  "room.forgotten": [roomId: string];
  /** The room was upgraded; `tombstone.replacementRoomId` is the successor. */
  "room.tombstone": [room: Room, tombstone: Tombstone];
  /**
   * The server's room summary changed (heroes, joined or invited member count): `room.displayName`
   * may have changed with it.
   */
  "room.summary": [room: Room, summary: RoomSummaryInfo];
  /**
   * The server's unread notification counts of the room changed (`room.unreadNotifications`: the
   * room's, and per thread when the sync filter asks for them).
   */
  "room.unreadNotifications": [room: Room, unread: UnreadNotifications];
  "room.typing": [room: Room, userIds: readonly string[]];
  /**
   * An `m.receipt` ephemeral event: event ID → receipt type → user ID → receipt (`ts`,
   * `thread_id`), checked: entries not of that shape are left out, and an event left empty is not emitted.
   */
  "room.receipt": [room: Room, content: JsonObject];
  "room.accountData": [room: Room, event: BasicEvent];
  accountData: [event: BasicEvent];
  /** A user's presence changed (`m.presence` from sync); `getPresence(userId)` has it since. */
  presence: [presence: Presence];
  /**
   * One of our own devices that is not verified asked for a room key we hold. The request is held:
   * verify the device (`setDeviceTrust(userId, deviceId, "verified")`) to answer it, or blacklist
   * it to drop it. `getHeldKeyRequests()` lists those still waiting.
   */
  "crypto.keyRequest": [request: HeldKeyRequest];
  /** Another device asks to verify (or starts SAS without asking): `accept()` it, or `cancel()`. */
  "verification.request": [request: VerificationRequest];
  /** To-device events, after the E2EE layer decrypted the ones it could. */
  toDevice: [event: ToDeviceEvent];
  sync: [state: SyncState, previous: SyncState, info: SyncStateInfo];
  /**
   * Every listener of one sync response has run; its token is saved once this event's listeners
   * finish. A listener that started work for an event without awaiting it (to handle several rooms
   * at once) awaits it here, so a crash before the save brings the events again. Its listeners are
   * all started at once (one that waits does not hold back the others', a bot's included). The sync loop does
   * not wait for this: it fetches and handles the next responses meanwhile (at most
   * `MAX_UNSAVED_RESPONSES` unsaved) and saves the tokens in order, each after its own work.
   */
  "sync.settle": [info: { nextBatch: string }];
  /**
   * The access token was renewed with the refresh token (here, or by another process sharing the
   * client store): the session as it is now, tokens included. The client store has it already; an
   * application that keeps the session itself (for `restore(session)`) saves it, or its next start
   * restores a spent refresh token and is logged out. Never log it.
   */
  "session.renewed": [session: StoredSession];
  /** The server rejected the access token: the session is over (`softLogout` keeps the device). */
  "session.loggedOut": [info: { softLogout: boolean }];
  /** Errors the client recovered from or cannot surface otherwise (sync failures, send-queue drops). */
  error: [error: unknown];
}
