/**
 * The storage the machine needs: small async reads and one transactional write. Keyroom's
 * `CryptoStore` back ends are adapted to it (`machineStoreFrom`).
 */
import type { UserIdentityRecord } from "../cross-signing/identity.ts";
import type { DeviceRecord } from "../devices/device.ts";
import type {
  AccountRecord,
  InboundGroupSessionRecord,
  MachineChanges,
  OlmSessionRecord,
  OutboundGroupSessionRecord,
  OutgoingKeyRequestRecord,
  QueuedToDevice,
  ReplayRecord,
  RoomSettingsRecord,
  TrackedUserRecord,
  WithheldRecord,
} from "./records.ts";

export interface MachineStore {
  /** Who the store belongs to, if it recorded that yet. */
  getIdentity(): Promise<{ readonly userId: string; readonly deviceId: string } | undefined>;
  loadAccount(): Promise<AccountRecord | undefined>;
  getOlmSessions(senderKey: string): Promise<OlmSessionRecord[]>;
  getInboundGroupSession(roomId: string, sessionId: string): Promise<InboundGroupSessionRecord | undefined>;
  getInboundGroupSessionsForRoom(roomId: string): Promise<InboundGroupSessionRecord[]>;
  /** How many inbound sessions the store holds. */
  countInboundGroupSessions(): Promise<number>;
  /** Up to `limit` sessions after `after`, ordered by room ID then session ID (see `CryptoStore`). */
  listInboundGroupSessions(page: {
    readonly after?: { readonly roomId: string; readonly sessionId: string };
    readonly limit: number;
  }): Promise<InboundGroupSessionRecord[]>;
  getOutboundGroupSession(roomId: string): Promise<OutboundGroupSessionRecord | undefined>;
  getUserDevices(userId: string): Promise<DeviceRecord[]>;
  getDeviceByCurveKey(curve25519: string): Promise<DeviceRecord | undefined>;
  getTrackedUsers(): Promise<TrackedUserRecord[]>;
  /** A user's cross-signing identity as we recorded it (undefined if unreadable). */
  getCrossSigningIdentity(userId: string): Promise<UserIdentityRecord | undefined>;
  /** A stored secret (our cross-signing private keys: see `cross-signing/private-keys.ts`). */
  getSecret(name: string): Promise<string | undefined>;
  getKeyRequests(): Promise<OutgoingKeyRequestRecord[]>;
  getWithheld(roomId: string, sessionId: string): Promise<WithheldRecord | undefined>;
  getReplay(roomId: string, sessionId: string, messageIndex: number): Promise<ReplayRecord | undefined>;
  /** Whether a pre-key message with this hash (see `MachineChanges.olmMessageHashes`) started a session. */
  isOlmMessageKnown(senderKey: string, hash: string): Promise<boolean>;
  getQueuedToDevice(): Promise<QueuedToDevice[]>;
  getRoomSettings(roomId: string): Promise<RoomSettingsRecord | undefined>;
  getNextBatch(): Promise<string | undefined>;
  /** Applies every change at once, or none of them. */
  saveChanges(changes: MachineChanges): Promise<void>;
}
