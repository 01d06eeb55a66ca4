/**
 * What every part of the machine shares during one step: who we are, the store, the clock, and
 * the change set the step is building (written in one `saveChanges` at its end).
 */
import { encodeBase64Url, randomBytes } from "../crypto/primitives/index.ts";
// Direct module imports: the store's index also loads the SQLite back end, which browsers lack.
import type { CryptoChanges } from "../store/changes.ts";
import type {
  AccountRecord,
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
} from "../store/records.ts";
import type { CryptoStore } from "../store/store.ts";

/** The part of a `CryptoStore` the machine uses: any Keyroom back end, or your own. */
export type MachineStore = Pick<
  CryptoStore,
  | "loadIdentity"
  | "loadAccount"
  | "getOlmSessions"
  | "getInboundGroupSession"
  | "getInboundGroupSessions"
  | "getInboundGroupSessionsForRoom"
  | "countInboundGroupSessions"
  | "listInboundGroupSessions"
  | "getInboundGroupSessionsToBackUp"
  | "getBackupState"
  | "getOutboundGroupSession"
  | "getUserDevices"
  | "getDevicesOfUsers"
  | "getDeviceByCurve25519Key"
  | "getTrackedUsers"
  | "getCrossSigningIdentity"
  | "getSecret"
  | "getOutgoingKeyRequests"
  | "getWithheld"
  | "getRivalRoomKeys"
  | "getReplay"
  | "getReplays"
  | "getReplaysOfSessions"
  | "isOlmMessageKnown"
  | "getRoomSettings"
  | "getQueuedRequests"
  | "getNextBatch"
  | "getCustomValue"
  | "saveChanges"
>;

/** The `CryptoChanges` a step builds: every list present, so the parts can push to it. */
export interface StepChanges extends CryptoChanges {
  account?: AccountRecord;
  olmSessions: OlmSessionRecord[];
  deletedOlmSessions: { senderKey: string; sessionId: string }[];
  inboundGroupSessions: InboundGroupSessionRecord[];
  /** Sessions now in the key backup (marked after the upserts). */
  backedUp: RoomSessionKey[];
  /** Whole records: new sessions (and sessions read back unreadable, replaced). */
  outboundGroupSessions: OutboundGroupSessionRecord[];
  /** The per-message write, independent of the device count (applied after the whole records). */
  outboundGroupSessionUpdates: OutboundGroupSessionUpdate[];
  deletedOutboundGroupSessions: string[];
  devices: DeviceRecord[];
  /** Users' cross-signing identities (whole records). */
  crossSigningIdentities: CrossSigningIdentityRecord[];
  /** `name → value` to set, or `null` to delete (our cross-signing private keys). */
  secrets: { [name: string]: string | null };
  trackedUsers: TrackedUserRecord[];
  untrackedUsers: string[];
  outgoingKeyRequests: OutgoingKeyRequestRecord[];
  deletedOutgoingKeyRequests: string[];
  withheld: WithheldRecord[];
  /** Direct shares naming another creator than our copy, kept aside (see `InboundSessions.add`). */
  rivalRoomKeys: RivalRoomKeyRecord[];
  deletedRivalRoomKeys: RivalRoomKeyId[];
  replays: ReplayRecord[];
  /** Pre-key messages that started a session (base64 SHA-256 of the body), so they cannot again. */
  olmMessageHashes: OlmMessageHashRecord[];
  roomSettings: RoomSettingsRecord[];
  /** To-device requests queued for sending (room keys, unwedging dummies, forwards, key requests, withheld). */
  queuedRequests: QueuedRequestRecord[];
  deletedQueuedRequests: string[];
  nextBatch?: string;
}

export function emptyChanges(): StepChanges {
  return {
    olmSessions: [],
    deletedOlmSessions: [],
    inboundGroupSessions: [],
    backedUp: [],
    outboundGroupSessions: [],
    outboundGroupSessionUpdates: [],
    deletedOutboundGroupSessions: [],
    devices: [],
    crossSigningIdentities: [],
    secrets: {},
    trackedUsers: [],
    untrackedUsers: [],
    outgoingKeyRequests: [],
    deletedOutgoingKeyRequests: [],
    withheld: [],
    rivalRoomKeys: [],
    deletedRivalRoomKeys: [],
    replays: [],
    olmMessageHashes: [],
    roomSettings: [],
    queuedRequests: [],
    deletedQueuedRequests: [],
  };
}

export interface MachineContext {
  readonly userId: string;
  readonly deviceId: string;
  readonly store: MachineStore;
  /** Milliseconds since the epoch; injectable so rotation by age is testable. */
  readonly now: () => number;
  /** The change set of the step in progress. */
  tx: StepChanges;
}

/** A fresh request / transaction ID: random, so IDs never collide across restarts. */
export function newRequestId(): string {
  return encodeBase64Url(randomBytes(12));
}
