/**
 * `CryptoChanges`: everything one step of the state machine changed, written by
 * `CryptoStore.saveChanges` in one transaction. Every field is optional; absent means "unchanged".
 *
 * Application order inside the transaction (so one batch may, e.g., insert and mark backed up):
 * 1. `resetBackedUp` (a new backup version: every inbound session needs uploading again);
 * 2. upserts of every record list, the account, secrets, custom values and the backup state;
 *    `outboundGroupSessionUpdates` apply after `outboundGroupSessions`, in list order;
 * 3. `backedUp` marks (unknown sessions are ignored);
 * 4. deletions;
 * 5. `nextBatch`, so the sync token is committed with, never before, the state it delivered.
 */
import type { JsonValue } from "./json.ts";
import type {
  AccountRecord,
  BackupStateRecord,
  CrossSigningIdentityRecord,
  DeviceRecord,
  InboundGroupSessionRecord,
  OlmMessageHashRecord,
  OlmSessionRecord,
  OutboundGroupSessionRecord,
  OutboundGroupSessionUpdate,
  OutgoingKeyRequestRecord,
  QueuedRequestRecord,
  ReplayRecord,
  RivalRoomKeyId,
  RivalRoomKeyRecord,
  RoomSessionKey,
  RoomSettingsRecord,
  TrackedUserRecord,
  WithheldRecord,
} from "./records.ts";

export interface CryptoChanges {
  account?: AccountRecord;
  olmSessions?: readonly OlmSessionRecord[];
  deletedOlmSessions?: readonly { readonly senderKey: string; readonly sessionId: string }[];
  inboundGroupSessions?: readonly InboundGroupSessionRecord[];
  /** Clears every inbound session's `backedUp` flag before anything else is applied. */
  resetBackedUp?: boolean;
  /** Sessions now uploaded to the backup. */
  backedUp?: readonly RoomSessionKey[];
  outboundGroupSessions?: readonly OutboundGroupSessionRecord[];
  /**
   * Ratchet, message count and newly reached devices of stored outbound sessions: the per-message
   * write, which must not cost more as the list of devices holding the key grows.
   */
  outboundGroupSessionUpdates?: readonly OutboundGroupSessionUpdate[];
  /** Room IDs whose outbound session is discarded (rotation). */
  deletedOutboundGroupSessions?: readonly string[];
  devices?: readonly DeviceRecord[];
  crossSigningIdentities?: readonly CrossSigningIdentityRecord[];
  /** `name → value` to set, or `null` to delete. */
  secrets?: { readonly [name: string]: string | null };
  trackedUsers?: readonly TrackedUserRecord[];
  untrackedUsers?: readonly string[];
  outgoingKeyRequests?: readonly OutgoingKeyRequestRecord[];
  deletedOutgoingKeyRequests?: readonly string[];
  /**
   * Upserted by room and session (a notice saved again keeps its place in the store's order);
   * beyond `MAX_STORED_WITHHELD` the notices stored longest ago are deleted, in the same save.
   */
  withheld?: readonly WithheldRecord[];
  replays?: readonly ReplayRecord[];
  /**
   * Upserted by room, session and `senderKey` (a rival saved again keeps its place in the store's
   * order). Past `MAX_RIVAL_ROOM_KEYS_PER_SESSION` for a session, its rivals stored longest ago
   * are deleted; past `MAX_STORED_RIVAL_ROOM_KEYS` in all, those stored longest ago; in the same save.
   */
  rivalRoomKeys?: readonly RivalRoomKeyRecord[];
  /** Rival room keys deleted (by room, session and `senderKey`); unknown ones are ignored. */
  deletedRivalRoomKeys?: readonly RivalRoomKeyId[];
  roomSettings?: readonly RoomSettingsRecord[];
  /** The backup to upload to, or `null` to forget it. */
  backupState?: BackupStateRecord | null;
  queuedRequests?: readonly QueuedRequestRecord[];
  /** Added once each; beyond `MAX_STORED_OLM_MESSAGE_HASHES` those stored longest ago are deleted. */
  olmMessageHashes?: readonly OlmMessageHashRecord[];
  /**
   * `key → value` for state the fixed record types do not cover, or `null` to delete.
   * Values are encrypted at rest (they may hold key material).
   */
  customValues?: { readonly [key: string]: JsonValue | null };
  /** Request IDs sent (or abandoned): removed from the queue. */
  deletedQueuedRequests?: readonly string[];
  /** The sync token whose contents these changes reflect. */
  nextBatch?: string;
}

/** True when `changes` would change nothing. */
export function isEmptyChanges(changes: CryptoChanges): boolean {
  // A for-in rather than Object.entries: this runs a few times per step (per decrypted event),
  // and the entries array cost more than the checks.
  for (const key in changes) {
    const value = changes[key as keyof CryptoChanges];
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      if (value.length > 0) return false;
    } else if (key === "resetBackedUp") {
      if (value === true) return false;
    } else if (key === "secrets" || key === "customValues") {
      if (Object.keys(value as object).length > 0) return false;
    } else {
      return false;
    }
  }
  return true;
}
