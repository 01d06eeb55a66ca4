/**
 * The records of the crypto store: the one vocabulary the E2EE state machine writes and every back
 * end (memory, SQLite, IndexedDB, a user's own) keeps. Every record is JSON-safe. Fields named
 * `pickle`, the account and queued request bodies hold key material: persistent back ends encrypt
 * them (see `cipher/`). Everything else (user, device, room and session IDs, public keys, trust,
 * flags, timestamps) is lookup metadata and is stored in clear.
 *
 * Pickles are typed as the crypto layer's `XPickle`; a back end checks that one is a plain JSON
 * object when it reads it back, and the pickle's own `fromPickle` checks every field (one place
 * for the rules of each pickle format).
 */
import type { InboundGroupSessionPickle, OutboundGroupSessionPickle } from "../crypto/megolm/index.ts";
import type { AccountPickle, SessionPickle } from "../crypto/olm/index.ts";
import type { DeviceKeys } from "../wire/keys.ts";
import type { JsonObject } from "./json.ts";

/** Every pickle a store keeps: JSON-safe, versioned records of the crypto layer. */
export type Pickle = AccountPickle | SessionPickle | InboundGroupSessionPickle | OutboundGroupSessionPickle;

/** Who the store belongs to; recorded when the store is created and checked on every open. */
export interface StoreIdentity {
  readonly userId: string;
  readonly deviceId: string;
}

/** Our Olm account. The pickle holds the identity keys and every unpublished one-time key. */
export interface AccountRecord {
  readonly pickle: AccountPickle;
  /** The device keys reached the server (a `/keys/upload` carrying them succeeded). */
  readonly deviceKeysUploaded: boolean;
  /** The last signed-curve25519 one-time key count the server reported. */
  readonly serverOneTimeKeyCount?: number;
  /** When the current fallback key was generated (ms since epoch). */
  readonly fallbackKeyCreatedAt?: number;
}

/** One Olm session with a peer device; there may be many per peer. */
export interface OlmSessionRecord {
  /** The peer device's Curve25519 identity key (base64). */
  readonly senderKey: string;
  readonly sessionId: string;
  readonly pickle: SessionPickle;
  readonly createdAt: number;
  readonly lastUsedAt: number;
}

export interface RoomSessionKey {
  readonly roomId: string;
  readonly sessionId: string;
}

/** A Megolm session we can decrypt with. Upserts replace: the caller decides which copy is better. */
export interface InboundGroupSessionRecord {
  readonly roomId: string;
  readonly sessionId: string;
  /** Curve25519 key of the device that created the session (from the Olm envelope or the export). */
  readonly senderKey: string;
  /** Ed25519 key the creating device claimed (`keys.ed25519` of the Olm payload). */
  readonly senderClaimedEd25519: string;
  /** The first message index this copy can decrypt. */
  readonly firstKnownIndex: number;
  readonly pickle: InboundGroupSessionPickle;
  /** Came from a key export file or a backup. */
  readonly imported: boolean;
  /** Came through `m.forwarded_room_key` (or carries a forwarding chain from an export). */
  readonly forwarded: boolean;
  /** Curve25519 keys of the devices that forwarded it, oldest first. */
  readonly forwardingChain: readonly string[];
  /** Uploaded to the current key backup version. */
  readonly backedUp: boolean;
  /**
   * Shareable with users invited later (MSC4268): we created it while history was `shared` or
   * `world_readable`, or it came with the flag set (room key, export, backup) or in a key bundle.
   * Absent means false.
   */
  readonly sharedHistory?: boolean;
}

/**
 * A direct `m.room_key` share of a session we hold that names another creator than our copy (see
 * `InboundSessions.add` in the engine): kept aside, in case the session's own events show it was
 * the genuine one. At most one per session and sending device; bounded per session and overall
 * (`MAX_RIVAL_ROOM_KEYS_PER_SESSION`, `MAX_STORED_RIVAL_ROOM_KEYS`).
 */
export interface RivalRoomKeyRecord {
  readonly roomId: string;
  readonly sessionId: string;
  /** Curve25519 key of the device that shared it over Olm (the creator it names). */
  readonly senderKey: string;
  /** Ed25519 key that device claimed (`keys.ed25519` of the Olm payload). */
  readonly senderClaimedEd25519: string;
  /** The shared copy (its first index as shared). */
  readonly pickle: InboundGroupSessionPickle;
  /** The share said `shared_history` (MSC4268). Absent means false. */
  readonly sharedHistory?: boolean;
}

/** Which rival room key: one per session and sending device. */
export type RivalRoomKeyId = Pick<RivalRoomKeyRecord, "roomId" | "sessionId" | "senderKey">;

/** `userId → deviceId → first message index` the device received. */
export type SharedWith = { readonly [userId: string]: { readonly [deviceId: string]: number } };

/** Our Megolm session for sending in a room; at most one per room. */
export interface OutboundGroupSessionRecord {
  readonly roomId: string;
  readonly sessionId: string;
  readonly pickle: OutboundGroupSessionPickle;
  readonly createdAt: number;
  readonly messageCount: number;
  /** Devices that received the key (their to-device request was marked sent). */
  readonly sharedWith: SharedWith;
  /** Devices whose to-device request carrying the key is still in flight, by request ID. */
  readonly pendingShares: { readonly [requestId: string]: SharedWith };
  /** Devices already told with `m.room_key.withheld` that they won't get this key: userId → deviceIds. */
  readonly withheldFrom: { readonly [userId: string]: readonly string[] };
  /** Created while history was `shared` or `world_readable` (its `m.room_key` said `shared_history`). */
  readonly sharedHistory?: boolean;
}

/**
 * What changes in a stored outbound session as it is used, without repeating its (possibly long)
 * device lists: the advanced ratchet and message count on every message, and only the devices
 * added when the key is shared further or a share is delivered. The session must be stored (by an earlier save or an
 * upsert in the same batch) under the same `sessionId`; otherwise `saveChanges` throws
 * `StoreError("INVALID_RECORD")`.
 */
export interface OutboundGroupSessionUpdate {
  readonly roomId: string;
  readonly sessionId: string;
  readonly pickle: OutboundGroupSessionPickle;
  readonly messageCount: number;
  /** Devices that now hold the key: merged into `sharedWith` (replacing an entry for the same device). */
  readonly addSharedWith?: SharedWith;
  /** Request IDs whose `pendingShares` entry is settled: removed. */
  readonly settledShares?: readonly string[];
  /** New in-flight requests carrying the key, by request ID: added to `pendingShares`. */
  readonly addPendingShares?: { readonly [requestId: string]: SharedWith };
  /** Devices just told (`m.room_key.withheld`) they won't get the key: added to `withheldFrom`. */
  readonly addWithheldFrom?: { readonly [userId: string]: readonly string[] };
}

export const DEVICE_TRUST_STATES = ["unset", "verified", "blacklisted", "ignored"] as const;
export type DeviceTrust = (typeof DEVICE_TRUST_STATES)[number];

/** Another device (or one of our own others), as `/keys/query` returned it. */
export interface DeviceRecord {
  readonly userId: string;
  readonly deviceId: string;
  /** The signed device keys object exactly as received (the signature covers unknown fields too). */
  readonly keys: DeviceKeys;
  /** `keys["curve25519:<deviceId>"]`, kept as a lookup column. */
  readonly curve25519Key: string;
  /** `keys["ed25519:<deviceId>"]`. */
  readonly ed25519Key: string;
  readonly trust: DeviceTrust;
  /** Gone from the user's device list; kept so old messages still attribute correctly. */
  readonly deleted: boolean;
}

/** A user's public cross-signing keys (master / self-signing / user-signing) as received. */
export interface CrossSigningIdentityRecord {
  readonly userId: string;
  readonly identity: JsonObject;
}

export interface TrackedUserRecord {
  readonly userId: string;
  /** Their device list changed since we last queried it. */
  readonly outdated: boolean;
  /**
   * Present when the user is tracked only because they sent us to-device messages (we share no
   * encrypted room): the order in which such users were tracked (higher is later), so the oldest
   * are given up first at the device manager's bound (`MAX_TRACKED_SENDERS`). Absent for room
   * members, who are tracked for good.
   */
  readonly senderOrder?: number;
}

export const KEY_REQUEST_STATES = ["unsent", "sent", "cancellation_pending"] as const;
export type KeyRequestState = (typeof KEY_REQUEST_STATES)[number];

export interface KeyRequestRecipient {
  readonly userId: string;
  /** A device ID, or `"*"` for all of the user's devices. */
  readonly deviceId: string;
}

/** An `m.room_key_request` we sent (or will send) for a missing Megolm session. */
export interface OutgoingKeyRequestRecord {
  readonly requestId: string;
  readonly roomId: string;
  readonly sessionId: string;
  readonly senderKey: string;
  readonly recipients: readonly KeyRequestRecipient[];
  readonly state: KeyRequestState;
  readonly createdAt: number;
}

/** An `m.room_key.withheld` notice: why a session's key will not come. */
export interface WithheldRecord {
  readonly roomId: string;
  readonly sessionId: string;
  /** The `code` field, e.g. `m.unverified`, `m.blacklisted`. */
  readonly code: string;
  readonly reason?: string;
  /** User ID that sent the notice. */
  readonly sender: string;
  /** Curve25519 key of the session's creator, when the notice named it. */
  readonly senderKey?: string;
}

/** The first event seen at a Megolm message index; another event ID at the same index is a replay. */
export interface ReplayRecord {
  readonly roomId: string;
  readonly sessionId: string;
  readonly messageIndex: number;
  readonly eventId: string;
  /** `origin_server_ts` of that event. */
  readonly timestamp: number;
}

/**
 * Who gets a room's keys: every device, devices cross-signed by their owner (or marked verified),
 * or devices marked verified. Those left out get `m.room_key.withheld` (`m.unverified`).
 */
export type ShareWith = "all" | "cross_signed" | "verified";
export const SHARE_WITH_VALUES: readonly ShareWith[] = ["all", "cross_signed", "verified"];

/**
 * Whether events from devices not cross-signed by their owner are accepted: `"accept"` (marked
 * through `senderCrossSigned`) or `"refuse"` (`DecryptionError("SENDER_NOT_CROSS_SIGNED")`).
 */
export type SenderRequirement = "accept" | "refuse";
export const SENDER_REQUIREMENT_VALUES: readonly SenderRequirement[] = ["accept", "refuse"];

/** Per-room encryption settings, from `m.room.encryption` plus the user's choices. */
export interface RoomSettingsRecord {
  readonly roomId: string;
  readonly algorithm: string;
  readonly rotationPeriodMs?: number;
  readonly rotationPeriodMessages?: number;
  /** Refuse to send while the room has devices the user has not marked (`UnknownDevicesError`). */
  readonly verifyDevices?: boolean;
  /** The user's per-room trust requirements (override the client-wide options). */
  readonly shareWith?: ShareWith;
  readonly senderRequirement?: SenderRequirement;
  /** Refuse to send while a verified user has a problem (`VerifiedUserProblemError`). */
  readonly errorOnVerifiedUserProblems?: boolean;
}

/** The server-side key backup we upload to. Its private key is a secret (`m.megolm_backup.v1`). */
export interface BackupStateRecord {
  readonly version: string;
  readonly algorithm: string;
  readonly authData: JsonObject;
  /** The version passed the E2EE layer's trust check (see `e2ee/backup`): only then is it uploaded to. */
  readonly trusted?: boolean;
  /** Why uploads to it stopped (e.g. the server replaced or deleted it), when they did. */
  readonly stopped?: string;
}

/**
 * A queued outgoing request (to-device messages: room keys, withheld notices, key requests,
 * unwedging dummies) persisted with the state that produced it, so a crash between creating and
 * sending it loses nothing. The body is encrypted at rest: it may carry key material.
 */
export interface QueuedRequestRecord {
  readonly requestId: string;
  /** Free-form discriminator for the state machine, e.g. `"to_device"`. */
  readonly kind: string;
  readonly body: JsonObject;
  readonly createdAt: number;
}

/**
 * A hash of an Olm message we decrypted, so the same message delivered again (a replayed or
 * re-sent pre-key message) is recognised and not processed twice.
 */
export interface OlmMessageHashRecord {
  /** Curve25519 key of the sending device. */
  readonly senderKey: string;
  /** base64 SHA-256 of the message ciphertext (computed by the state machine). */
  readonly hash: string;
}

/** Well-known names for `secrets`; any other name is allowed too. */
export const SECRET_NAMES = {
  crossSigningMaster: "m.cross_signing.master",
  crossSigningSelfSigning: "m.cross_signing.self_signing",
  crossSigningUserSigning: "m.cross_signing.user_signing",
  backupDecryptionKey: "m.megolm_backup.v1",
} as const;
