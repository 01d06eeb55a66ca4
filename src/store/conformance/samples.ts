/**
 * The records and changes the conformance suite writes and expects back: one of every kind, with
 * every optional field, so a round trip that drops a field fails.
 */
import assert from "node:assert/strict";
import type { CryptoChanges } from "../changes.ts";
import type {
  AccountRecord,
  DeviceRecord,
  InboundGroupSessionRecord,
  OlmSessionRecord,
  OutboundGroupSessionRecord,
  OutgoingKeyRequestRecord,
  Pickle,
  QueuedRequestRecord,
  RivalRoomKeyRecord,
} from "../records.ts";
import type { CryptoStore } from "../store.ts";

export const ALICE = "@alice:example.org";
export const BOB = "@bob:example.org";
export const DEVICE = "ALICEDEVICE";
export const ROOM_A = "!a:example.org";
export const ROOM_B = "!b:example.org";

/**
 * A stand-in pickle, typed as whichever pickle the record holds: a store keeps pickles opaque (it
 * checks they are plain JSON objects with a version; `fromPickle` checks the rest).
 */
export const pickle = <T extends Pickle>(tag: string, n = 0): T =>
  ({ version: 1, key: `${tag}-${n}-c2VjcmV0`, chains: [{ index: n }] }) as unknown as T;

export const sample = {
  account(n = 0): AccountRecord {
    return { pickle: pickle("account", n), deviceKeysUploaded: n > 0, serverOneTimeKeyCount: 50 - n };
  },
  olm(senderKey: string, sessionId: string, lastUsedAt = 2): OlmSessionRecord {
    return { senderKey, sessionId, pickle: pickle(`olm-${sessionId}`), createdAt: 1, lastUsedAt };
  },
  inbound(
    roomId: string,
    sessionId: string,
    extra: Partial<InboundGroupSessionRecord> = {},
  ): InboundGroupSessionRecord {
    return {
      roomId,
      sessionId,
      senderKey: "curveSender",
      senderClaimedEd25519: "edSender",
      firstKnownIndex: 0,
      pickle: pickle(`inbound-${sessionId}`),
      imported: false,
      forwarded: false,
      forwardingChain: [],
      backedUp: false,
      ...extra,
    };
  },
  rival(roomId: string, sessionId: string, senderKey: string, n = 0): RivalRoomKeyRecord {
    return {
      roomId,
      sessionId,
      senderKey,
      senderClaimedEd25519: `ed-${senderKey}`,
      pickle: pickle(`rival-${sessionId}-${senderKey}`, n),
    };
  },
  outbound(roomId: string, sessionId: string, messageCount = 0): OutboundGroupSessionRecord {
    return {
      roomId,
      sessionId,
      pickle: pickle(`outbound-${sessionId}`, messageCount),
      createdAt: 10,
      messageCount,
      sharedWith: { [BOB]: { BOBPHONE: 0, BOBLAPTOP: 3 } },
      pendingShares: { req1: { [ALICE]: { OTHER: messageCount } } },
      withheldFrom: { [BOB]: ["BOBOLD"] },
    };
  },
  device(userId: string, deviceId: string, extra: Partial<DeviceRecord> = {}): DeviceRecord {
    const curve = `curve-${deviceId}`;
    return {
      userId,
      deviceId,
      keys: {
        user_id: userId,
        device_id: deviceId,
        algorithms: ["m.olm.v1.curve25519-aes-sha2"],
        keys: { [`curve25519:${deviceId}`]: curve, [`ed25519:${deviceId}`]: `ed-${deviceId}` },
        signatures: { [userId]: { [`ed25519:${deviceId}`]: "sig" } },
      },
      curve25519Key: curve,
      ed25519Key: `ed-${deviceId}`,
      trust: "unset",
      deleted: false,
      ...extra,
    };
  },
  keyRequest(requestId: string, roomId: string, sessionId: string): OutgoingKeyRequestRecord {
    return {
      requestId,
      roomId,
      sessionId,
      senderKey: "curveSender",
      recipients: [{ userId: ALICE, deviceId: "*" }],
      state: "unsent",
      createdAt: 5,
    };
  },
  queued(requestId: string, createdAt: number): QueuedRequestRecord {
    return {
      requestId,
      kind: "to_device",
      body: { messages: { [BOB]: { BOBPHONE: { n: createdAt } } } },
      createdAt,
    };
  },
};

/** Everything, for round trips. */
export function fullChanges(): CryptoChanges {
  return {
    account: sample.account(1),
    olmSessions: [sample.olm("k1", "s1"), sample.olm("k1", "s2"), sample.olm("k2", "s3")],
    inboundGroupSessions: [
      sample.inbound(ROOM_A, "g1"),
      sample.inbound(ROOM_A, "g2", {
        imported: true,
        forwarded: true,
        forwardingChain: ["c1", "c2"],
        firstKnownIndex: 7,
      }),
      sample.inbound(ROOM_B, "g3", { backedUp: true }),
    ],
    outboundGroupSessions: [sample.outbound(ROOM_A, "o1", 4)],
    devices: [sample.device(BOB, "BOBPHONE"), sample.device(BOB, "BOBLAPTOP", { trust: "verified" })],
    crossSigningIdentities: [{ userId: BOB, identity: { master_key: { keys: { "ed25519:m": "m" } } } }],
    secrets: { "m.cross_signing.master": "bWFzdGVy", "m.megolm_backup.v1": "YmFja3Vw" },
    trackedUsers: [
      { userId: BOB, outdated: true },
      { userId: ALICE, outdated: false },
    ],
    outgoingKeyRequests: [sample.keyRequest("kr1", ROOM_A, "missing")],
    withheld: [
      { roomId: ROOM_A, sessionId: "w1", code: "m.unverified", reason: "not verified", sender: BOB },
    ],
    rivalRoomKeys: [
      sample.rival(ROOM_A, "g1", "curveRival"),
      { ...sample.rival(ROOM_B, "g3", "curveOther"), sharedHistory: true },
    ],
    replays: [{ roomId: ROOM_A, sessionId: "g1", messageIndex: 3, eventId: "$e3", timestamp: 1000 }],
    roomSettings: [
      { roomId: ROOM_A, algorithm: "m.megolm.v1.aes-sha2", rotationPeriodMessages: 100, verifyDevices: true },
      {
        roomId: ROOM_B,
        algorithm: "m.megolm.v1.aes-sha2",
        shareWith: "cross_signed",
        senderRequirement: "refuse",
        errorOnVerifiedUserProblems: true,
      },
    ],
    backupState: {
      version: "3",
      algorithm: "m.megolm_backup.v1.curve25519-aes-sha2",
      authData: { public_key: "pk" },
      trusted: true,
      stopped: "version_changed",
    },
    queuedRequests: [sample.queued("q2", 20), sample.queued("q1", 10)],
    olmMessageHashes: [{ senderKey: "k1", hash: "aGFzaA" }],
    customValues: { "unwedge.k1": { lastAt: 123, list: ["a"] }, counter: 7 },
    nextBatch: "s1_token",
  };
}

export async function checkFull(store: CryptoStore): Promise<void> {
  const c = fullChanges();
  assert.deepEqual(await store.loadAccount(), c.account);
  const byId = <T extends { sessionId: string }>(xs: T[]) =>
    xs.sort((a, b) => (a.sessionId < b.sessionId ? -1 : 1));
  assert.deepEqual(byId(await store.getOlmSessions("k1")), c.olmSessions?.slice(0, 2));
  assert.deepEqual(await store.getInboundGroupSession(ROOM_A, "g2"), c.inboundGroupSessions?.[1]);
  assert.deepEqual(await store.getOutboundGroupSession(ROOM_A), c.outboundGroupSessions?.[0]);
  assert.deepEqual(await deviceOf(store, BOB, "BOBLAPTOP"), c.devices?.[1]);
  assert.deepEqual(await store.getCrossSigningIdentity(BOB), c.crossSigningIdentities?.[0]);
  assert.equal(await store.getSecret("m.megolm_backup.v1"), "YmFja3Vw");
  assert.equal((await store.getTrackedUsers()).length, 2);
  assert.deepEqual(await keyRequestOf(store, { requestId: "kr1" }), c.outgoingKeyRequests?.[0]);
  assert.deepEqual(await store.getWithheld(ROOM_A, "w1"), c.withheld?.[0]);
  assert.deepEqual(await store.getRivalRoomKeys(), c.rivalRoomKeys);
  assert.deepEqual(await store.getReplay(ROOM_A, "g1", 3), c.replays?.[0]);
  assert.deepEqual(await store.getRoomSettings(ROOM_A), c.roomSettings?.[0]);
  assert.deepEqual(await store.getBackupState(), c.backupState);
  assert.deepEqual(
    (await store.getQueuedRequests()).map((q) => q.requestId),
    ["q1", "q2"],
  );
  assert.equal(await store.isOlmMessageKnown("k1", "aGFzaA"), true);
  assert.deepEqual(await store.getCustomValue("unwedge.k1"), { lastAt: 123, list: ["a"] });
  assert.equal(await store.getCustomValue("counter"), 7);
  assert.equal(await store.getNextBatch(), "s1_token");
}

/** One device, read through `getUserDevices` (the store has no single-device read: nothing needs one). */
export async function deviceOf(
  s: CryptoStore,
  userId: string,
  deviceId: string,
): Promise<DeviceRecord | undefined> {
  return (await s.getUserDevices(userId)).find((d) => d.deviceId === deviceId);
}

/** One outgoing key request, by request ID or by session, read through `getOutgoingKeyRequests`. */
export async function keyRequestOf(
  s: CryptoStore,
  match: { requestId: string } | { roomId: string; sessionId: string },
): Promise<OutgoingKeyRequestRecord | undefined> {
  return (await s.getOutgoingKeyRequests()).find((r) =>
    "requestId" in match
      ? r.requestId === match.requestId
      : r.roomId === match.roomId && r.sessionId === match.sessionId,
  );
}
