/**
 * What the machine persists. Every record is JSON-safe; pickles hold the secret parts and are
 * validated by their own `fromPickle` when read back.
 */
import type { InboundGroupSessionPickle, OutboundGroupSessionPickle } from "../../crypto/megolm/index.ts";
import type { AccountPickle, SessionPickle } from "../../crypto/olm/index.ts";
import type { UserIdentityRecord } from "../cross-signing/identity.ts";
import type { DeviceRecord } from "../devices/device.ts";
import type { ToDeviceRequest } from "../requests.ts";

export interface AccountRecord {
  readonly userId: string;
  readonly deviceId: string;
  readonly pickle: AccountPickle;
  /** The device keys reached the server (a keys/upload carrying them succeeded). */
  readonly deviceKeysUploaded: boolean;
  /** The last one-time key count the server reported, if any. */
  readonly serverOneTimeKeyCount: number | undefined;
  /** When the current fallback key was generated (ms); the previous one is forgotten an hour later. */
  readonly fallbackKeyCreatedAt: number | undefined;
}

export interface OlmSessionRecord {
  /** The peer device's Curve25519 identity key. */
  readonly senderKey: string;
  readonly sessionId: string;
  readonly pickle: SessionPickle;
  readonly createdAt: number;
  readonly lastUsedAt: number;
}

export interface InboundGroupSessionRecord {
  readonly roomId: string;
  readonly sessionId: string;
  /** Curve25519 key of the device that created the session (from the Olm envelope). */
  readonly senderKey: string;
  /** Ed25519 key the creating device claimed (`keys.ed25519` of the Olm payload). */
  readonly senderClaimedEd25519: string;
  readonly pickle: InboundGroupSessionPickle;
  /** Received through `m.forwarded_room_key` (or an export carrying a forwarding chain). */
  readonly forwarded: boolean;
  /** Came from a key export file or a backup. */
  readonly imported: boolean;
  readonly forwardingChain: readonly string[];
}

/** A device that holds (or is being sent) a room key. Its keys cannot change under the same ID. */
export interface SharedDevice {
  readonly userId: string;
  readonly deviceId: string;
  /** The message index the shared key started at. */
  readonly index: number;
}

export interface OutboundGroupSessionRecord {
  readonly roomId: string;
  readonly sessionId: string;
  readonly pickle: OutboundGroupSessionPickle;
  readonly createdAt: number;
  readonly messageCount: number;
  /** Keys received by these devices (their to-device request was marked sent). */
  readonly sharedWith: readonly SharedDevice[];
  /** Devices whose to-device request is still in flight, by request ID. */
  readonly pendingShares: Readonly<Record<string, readonly SharedDevice[]>>;
  /** Devices already told (m.room_key.withheld) that they won't get this key. */
  readonly withheldFrom: readonly { readonly userId: string; readonly deviceId: string }[];
}

/**
 * What using an outbound session changed, without its full device lists: the advanced ratchet
 * and message count (every encrypted message), plus only the devices added since the last save.
 */
export interface OutboundGroupSessionUpdate {
  readonly roomId: string;
  readonly sessionId: string;
  readonly pickle: OutboundGroupSessionPickle;
  readonly messageCount: number;
  /** Devices whose room-key request was delivered: they hold the key now. */
  readonly sharedWith?: readonly SharedDevice[];
  /** Request IDs whose pending share is settled (delivered). */
  readonly settledShares?: readonly string[];
  /** Room-key requests just queued, by request ID. */
  readonly pendingShares?: Readonly<Record<string, readonly SharedDevice[]>>;
  /** Devices just told they won't get this key. */
  readonly withheldFrom?: readonly { readonly userId: string; readonly deviceId: string }[];
}

export interface TrackedUserRecord {
  readonly userId: string;
  readonly outdated: boolean;
}

export interface OutgoingKeyRequestRecord {
  readonly requestId: string;
  readonly roomId: string;
  readonly sessionId: string;
  readonly senderKey: string;
  /** When we first asked (ms): requests expire (`KEY_REQUEST_LIFETIME_MS`). */
  readonly createdAt: number;
}

export interface WithheldRecord {
  readonly roomId: string;
  readonly sessionId: string;
  /** User who sent the notice. */
  readonly sender: string;
  readonly senderKey: string | undefined;
  readonly code: string;
  readonly reason: string | undefined;
}

export interface ReplayRecord {
  readonly roomId: string;
  readonly sessionId: string;
  readonly messageIndex: number;
  readonly eventId: string;
  /** `origin_server_ts` of that event (0 if it had none). */
  readonly timestamp: number;
}

export interface QueuedToDevice {
  readonly request: ToDeviceRequest;
  /** For room-key shares: the room whose outbound session the request carries. */
  readonly roomId: string | undefined;
}

/** What we recorded of a room's `m.room.encryption` and the user's per-room choices. */
export interface RoomSettingsRecord {
  readonly roomId: string;
  readonly algorithm: string;
  readonly rotationPeriodMs: number | undefined;
  readonly rotationPeriodMsgs: number | undefined;
  readonly verifyDevices: boolean | undefined;
}

/** One transactional write: everything a step of the machine changed, plus the sync token. */
export interface MachineChanges {
  account?: AccountRecord;
  olmSessions: OlmSessionRecord[];
  deletedOlmSessions: { senderKey: string; sessionId: string }[];
  inboundGroupSessions: InboundGroupSessionRecord[];
  /** Whole records: new sessions (and sessions read back unreadable, replaced). */
  outboundGroupSessions: OutboundGroupSessionRecord[];
  /** Applied after `outboundGroupSessions`: the per-message write, independent of the device count. */
  outboundGroupSessionUpdates: OutboundGroupSessionUpdate[];
  deletedOutboundGroupSessions: string[];
  devices: DeviceRecord[];
  /** Users' cross-signing identities (whole records). */
  identities: UserIdentityRecord[];
  /** `name → value` to set, or `null` to delete (our cross-signing private keys). */
  secrets: Record<string, string | null>;
  trackedUsers: TrackedUserRecord[];
  untrackedUsers: string[];
  keyRequests: OutgoingKeyRequestRecord[];
  deletedKeyRequests: string[];
  withheld: WithheldRecord[];
  replays: ReplayRecord[];
  /** Pre-key messages that started a session (base64 SHA-256 of the body), so they cannot again. */
  olmMessageHashes: { senderKey: string; hash: string }[];
  roomSettings: RoomSettingsRecord[];
  /** To-device requests queued for sending (room keys, unwedging dummies, forwards, key requests, withheld). */
  queuedToDevice: QueuedToDevice[];
  sentToDevice: string[];
  nextBatch?: string;
}

export function emptyChanges(): MachineChanges {
  return {
    olmSessions: [],
    deletedOlmSessions: [],
    inboundGroupSessions: [],
    outboundGroupSessions: [],
    outboundGroupSessionUpdates: [],
    deletedOutboundGroupSessions: [],
    devices: [],
    identities: [],
    secrets: {},
    trackedUsers: [],
    untrackedUsers: [],
    keyRequests: [],
    deletedKeyRequests: [],
    withheld: [],
    replays: [],
    olmMessageHashes: [],
    roomSettings: [],
    queuedToDevice: [],
    sentToDevice: [],
  };
}

export function hasChanges(c: MachineChanges): boolean {
  return (
    c.account !== undefined ||
    c.nextBatch !== undefined ||
    Object.keys(c.secrets).length > 0 ||
    c.olmSessions.length +
      c.deletedOlmSessions.length +
      c.inboundGroupSessions.length +
      c.outboundGroupSessions.length +
      c.outboundGroupSessionUpdates.length +
      c.deletedOutboundGroupSessions.length +
      c.devices.length +
      c.identities.length +
      c.trackedUsers.length +
      c.untrackedUsers.length +
      c.keyRequests.length +
      c.deletedKeyRequests.length +
      c.withheld.length +
      c.replays.length +
      c.olmMessageHashes.length +
      c.roomSettings.length +
      c.queuedToDevice.length +
      c.sentToDevice.length >
      0
  );
}
