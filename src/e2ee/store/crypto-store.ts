/**
 * Runs the machine on a Keyroom `CryptoStore` (memory, SQLite, IndexedDB or a user's own): maps
 * the machine's records to the store's and its change set to one `saveChanges`.
 */
import type { InboundGroupSessionPickle, OutboundGroupSessionPickle } from "../../crypto/megolm/index.ts";
import type { AccountPickle, SessionPickle } from "../../crypto/olm/index.ts";
// Direct module imports: the store's index also loads the SQLite back end, which browsers lack.
import type { CryptoChanges } from "../../store/changes.ts";
import { asJsonObject } from "../../store/json.ts";
import type {
  QueuedRequestRecord,
  SharedWith,
  DeviceRecord as StoreDevice,
  InboundGroupSessionRecord as StoreInbound,
  OutboundGroupSessionRecord as StoreOutbound,
  OutboundGroupSessionUpdate as StoreOutboundUpdate,
} from "../../store/records.ts";
import type { CryptoStore } from "../../store/store.ts";
import { identityFromJson, identityToJson } from "../cross-signing/identity.ts";
import type { DeviceRecord } from "../devices/device.ts";
import { parseDeviceKeys, type ToDeviceRequest } from "../requests.ts";
import type { MachineStore } from "./port.ts";
import type {
  AccountRecord,
  InboundGroupSessionRecord,
  MachineChanges,
  OutboundGroupSessionRecord,
  OutboundGroupSessionUpdate,
  QueuedToDevice,
  SharedDevice,
} from "./records.ts";

/** Pickles are opaque to the store; the machine validates them with `fromPickle` on the way back. */
function pickleOf<T>(value: unknown): T {
  return value as T;
}

function toSharedWith(devices: readonly SharedDevice[]): SharedWith {
  const out: { [userId: string]: { [deviceId: string]: number } } = {};
  for (const d of devices) {
    const inner = out[d.userId] ?? {};
    inner[d.deviceId] = d.index;
    out[d.userId] = inner;
  }
  return out;
}

function fromSharedWith(shared: SharedWith): SharedDevice[] {
  return Object.entries(shared).flatMap(([userId, devices]) =>
    Object.entries(devices).map(([deviceId, index]) => ({ userId, deviceId, index })),
  );
}

function toStoreDevice(d: DeviceRecord): StoreDevice {
  return {
    userId: d.userId,
    deviceId: d.deviceId,
    keys: asJsonObject(d.keys, "device keys"),
    curve25519Key: d.curve25519,
    ed25519Key: d.ed25519,
    trust: d.trust,
    deleted: d.deleted,
  };
}

function fromStoreDevice(d: StoreDevice): DeviceRecord | undefined {
  // The keys were validated when they arrived; re-parsed here because the store holds plain JSON.
  const keys = parseDeviceKeys(d.keys);
  if (keys === undefined) return undefined;
  return {
    userId: d.userId,
    deviceId: d.deviceId,
    algorithms: keys.algorithms,
    curve25519: d.curve25519Key,
    ed25519: d.ed25519Key,
    displayName: keys.unsigned?.device_display_name,
    trust: d.trust,
    keys,
    deleted: d.deleted,
  };
}

function toStoreInbound(r: InboundGroupSessionRecord): StoreInbound {
  return {
    roomId: r.roomId,
    sessionId: r.sessionId,
    senderKey: r.senderKey,
    senderClaimedEd25519: r.senderClaimedEd25519,
    firstKnownIndex: r.pickle.firstKnownIndex,
    pickle: asJsonObject(r.pickle, "inbound session pickle"),
    imported: r.imported,
    forwarded: r.forwarded,
    forwardingChain: r.forwardingChain,
    // A new or better copy of a session must reach the backup again.
    backedUp: false,
  };
}

function fromStoreInbound(r: StoreInbound): InboundGroupSessionRecord {
  return {
    roomId: r.roomId,
    sessionId: r.sessionId,
    senderKey: r.senderKey,
    senderClaimedEd25519: r.senderClaimedEd25519,
    pickle: pickleOf<InboundGroupSessionPickle>(r.pickle),
    forwarded: r.forwarded,
    imported: r.imported,
    forwardingChain: r.forwardingChain,
  };
}

function toWithheldFrom(devices: readonly { userId: string; deviceId: string }[]): {
  [userId: string]: string[];
} {
  const out: { [userId: string]: string[] } = {};
  for (const { userId, deviceId } of devices) {
    const ids = out[userId] ?? [];
    ids.push(deviceId);
    out[userId] = ids;
  }
  return out;
}

function toPendingShares(pending: Readonly<Record<string, readonly SharedDevice[]>>): {
  [requestId: string]: SharedWith;
} {
  return Object.fromEntries(Object.entries(pending).map(([id, d]) => [id, toSharedWith(d)]));
}

function toStoreOutboundUpdate(u: OutboundGroupSessionUpdate): StoreOutboundUpdate {
  return {
    roomId: u.roomId,
    sessionId: u.sessionId,
    pickle: asJsonObject(u.pickle, "outbound session pickle"),
    messageCount: u.messageCount,
    ...(u.sharedWith === undefined ? {} : { addSharedWith: toSharedWith(u.sharedWith) }),
    ...(u.settledShares === undefined ? {} : { settledShares: u.settledShares }),
    ...(u.pendingShares === undefined ? {} : { addPendingShares: toPendingShares(u.pendingShares) }),
    ...(u.withheldFrom === undefined ? {} : { addWithheldFrom: toWithheldFrom(u.withheldFrom) }),
  };
}

function toStoreOutbound(r: OutboundGroupSessionRecord): StoreOutbound {
  const withheldFrom = toWithheldFrom(r.withheldFrom);
  return {
    roomId: r.roomId,
    sessionId: r.sessionId,
    pickle: asJsonObject(r.pickle, "outbound session pickle"),
    createdAt: r.createdAt,
    messageCount: r.messageCount,
    sharedWith: toSharedWith(r.sharedWith),
    pendingShares: toPendingShares(r.pendingShares),
    withheldFrom,
  };
}

function fromStoreOutbound(r: StoreOutbound): OutboundGroupSessionRecord {
  return {
    roomId: r.roomId,
    sessionId: r.sessionId,
    pickle: pickleOf<OutboundGroupSessionPickle>(r.pickle),
    createdAt: r.createdAt,
    messageCount: r.messageCount,
    sharedWith: fromSharedWith(r.sharedWith),
    pendingShares: Object.fromEntries(
      Object.entries(r.pendingShares).map(([id, shared]) => [id, fromSharedWith(shared)]),
    ),
    withheldFrom: Object.entries(r.withheldFrom).flatMap(([userId, ids]) =>
      ids.map((deviceId) => ({ userId, deviceId })),
    ),
  };
}

const QUEUED_KIND = "to_device";

function toQueued(q: QueuedToDevice, now: number): QueuedRequestRecord {
  return {
    requestId: q.request.id,
    kind: QUEUED_KIND,
    body: asJsonObject(
      {
        eventType: q.request.eventType,
        messages: q.request.body.messages,
        ...(q.roomId === undefined ? {} : { roomId: q.roomId }),
      },
      "queued request",
    ),
    createdAt: now,
  };
}

function fromQueued(r: QueuedRequestRecord): QueuedToDevice | undefined {
  const { eventType, messages, roomId } = r.body;
  if (
    r.kind !== QUEUED_KIND ||
    typeof eventType !== "string" ||
    typeof messages !== "object" ||
    messages === null
  ) {
    return undefined;
  }
  const request: ToDeviceRequest = {
    id: r.requestId,
    type: "to_device",
    eventType,
    body: { messages: messages as ToDeviceRequest["body"]["messages"] },
  };
  return { request, roomId: typeof roomId === "string" ? roomId : undefined };
}

/** A `MachineStore` backed by a `CryptoStore`. */
export function machineStoreFrom(
  store: CryptoStore,
  userId: string,
  now: () => number = Date.now,
): MachineStore {
  return {
    getIdentity: () => store.loadIdentity(),
    async loadAccount(): Promise<AccountRecord | undefined> {
      const [identity, account] = await Promise.all([store.loadIdentity(), store.loadAccount()]);
      if (account === undefined) return undefined;
      return {
        userId: identity.userId,
        deviceId: identity.deviceId,
        pickle: pickleOf<AccountPickle>(account.pickle),
        deviceKeysUploaded: account.deviceKeysUploaded,
        serverOneTimeKeyCount: account.serverOneTimeKeyCount,
        fallbackKeyCreatedAt: account.fallbackKeyCreatedAt,
      };
    },
    async getOlmSessions(senderKey) {
      return (await store.getOlmSessions(senderKey)).map((r) => ({
        ...r,
        pickle: pickleOf<SessionPickle>(r.pickle),
      }));
    },
    async getInboundGroupSession(roomId, sessionId) {
      const r = await store.getInboundGroupSession(roomId, sessionId);
      return r && fromStoreInbound(r);
    },
    async getInboundGroupSessionsForRoom(roomId) {
      return (await store.getInboundGroupSessionsForRoom(roomId)).map(fromStoreInbound);
    },
    async countInboundGroupSessions() {
      return (await store.countInboundGroupSessions()).total;
    },
    async listInboundGroupSessions(page) {
      return (await store.listInboundGroupSessions(page)).map(fromStoreInbound);
    },
    async getOutboundGroupSession(roomId) {
      const r = await store.getOutboundGroupSession(roomId);
      return r && fromStoreOutbound(r);
    },
    async getUserDevices(userId) {
      return (await store.getUserDevices(userId)).flatMap((d) => fromStoreDevice(d) ?? []);
    },
    async getDeviceByCurveKey(curve25519) {
      const d = await store.getDeviceByCurve25519Key(curve25519);
      return d && fromStoreDevice(d);
    },
    getTrackedUsers: () => store.getTrackedUsers(),
    async getCrossSigningIdentity(userId) {
      const r = await store.getCrossSigningIdentity(userId);
      return r && identityFromJson(userId, r.identity);
    },
    getSecret: (name) => store.getSecret(name),
    async getKeyRequests() {
      return (await store.getOutgoingKeyRequests()).map((r) => ({
        requestId: r.requestId,
        roomId: r.roomId,
        sessionId: r.sessionId,
        senderKey: r.senderKey,
        createdAt: r.createdAt,
      }));
    },
    async getWithheld(roomId, sessionId) {
      const r = await store.getWithheld(roomId, sessionId);
      return r && { ...r, reason: r.reason, senderKey: r.senderKey };
    },
    getReplay: (roomId, sessionId, messageIndex) => store.getReplay(roomId, sessionId, messageIndex),
    isOlmMessageKnown: (senderKey, hash) => store.isOlmMessageKnown(senderKey, hash),
    async getQueuedToDevice() {
      return (await store.getQueuedRequests()).flatMap((r) => fromQueued(r) ?? []);
    },
    getNextBatch: () => store.getNextBatch(),
    async getRoomSettings(roomId) {
      const r = await store.getRoomSettings(roomId);
      return (
        r && {
          roomId: r.roomId,
          algorithm: r.algorithm,
          rotationPeriodMs: r.rotationPeriodMs,
          rotationPeriodMsgs: r.rotationPeriodMessages,
          verifyDevices: r.verifyDevices,
        }
      );
    },

    async saveChanges(c: MachineChanges): Promise<void> {
      const at = now();
      const changes: CryptoChanges = {
        olmSessions: c.olmSessions.map((s) => ({
          ...s,
          pickle: asJsonObject(s.pickle, "olm session pickle"),
        })),
        deletedOlmSessions: c.deletedOlmSessions,
        inboundGroupSessions: c.inboundGroupSessions.map(toStoreInbound),
        outboundGroupSessions: c.outboundGroupSessions.map(toStoreOutbound),
        outboundGroupSessionUpdates: c.outboundGroupSessionUpdates.map(toStoreOutboundUpdate),
        deletedOutboundGroupSessions: c.deletedOutboundGroupSessions,
        devices: c.devices.map(toStoreDevice),
        crossSigningIdentities: c.identities.map((r) => ({
          userId: r.userId,
          identity: asJsonObject(identityToJson(r), "cross-signing identity"),
        })),
        secrets: c.secrets,
        trackedUsers: c.trackedUsers,
        untrackedUsers: c.untrackedUsers,
        outgoingKeyRequests: c.keyRequests.map((r) => ({
          ...r,
          recipients: [{ userId, deviceId: "*" }],
          state: "unsent" as const,
        })),
        deletedOutgoingKeyRequests: c.deletedKeyRequests,
        withheld: c.withheld.map((w) => ({
          roomId: w.roomId,
          sessionId: w.sessionId,
          sender: w.sender,
          code: w.code,
          ...(w.reason === undefined ? {} : { reason: w.reason }),
          ...(w.senderKey === undefined ? {} : { senderKey: w.senderKey }),
        })),
        replays: c.replays,
        olmMessageHashes: c.olmMessageHashes,
        roomSettings: c.roomSettings.map((r) => ({
          roomId: r.roomId,
          algorithm: r.algorithm,
          ...(r.rotationPeriodMs === undefined ? {} : { rotationPeriodMs: r.rotationPeriodMs }),
          ...(r.rotationPeriodMsgs === undefined ? {} : { rotationPeriodMessages: r.rotationPeriodMsgs }),
          ...(r.verifyDevices === undefined ? {} : { verifyDevices: r.verifyDevices }),
        })),
        queuedRequests: c.queuedToDevice.map((q) => toQueued(q, at)),
        deletedQueuedRequests: c.sentToDevice,
      };
      if (c.account !== undefined) {
        const a = c.account;
        changes.account = {
          pickle: asJsonObject(a.pickle, "account pickle"),
          deviceKeysUploaded: a.deviceKeysUploaded,
          ...(a.serverOneTimeKeyCount === undefined
            ? {}
            : { serverOneTimeKeyCount: a.serverOneTimeKeyCount }),
          ...(a.fallbackKeyCreatedAt === undefined ? {} : { fallbackKeyCreatedAt: a.fallbackKeyCreatedAt }),
        };
      }
      if (c.nextBatch !== undefined) changes.nextBatch = c.nextBatch;
      await store.saveChanges(changes);
    },
  };
}
