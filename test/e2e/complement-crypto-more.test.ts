// More of complement-crypto's scenarios (matrix-org/complement-crypto; see complement-crypto.test.ts
// for the first ones and docs/security.md for the table), Keyroom against matrix-js-sdk and
// matrix-nio through the devserver. Each test names the complement-crypto test it mirrors.
// TestNewUserCannotGetKeysForOfflineServer and TestExistingSessionCannotGetKeysForOfflineServer
// are in complement-crypto-federation.test.ts (the remote server's outage injected into Keyroom's
// key queries and claims). Not ported: TestChangingDeviceAfterInviteReEncrypts is an expected
// failure upstream (no re-encryption for a device that appears after the message was sent).
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe } from "node:test";
import Database from "better-sqlite3";
import { VerificationPhase } from "matrix-js-sdk/lib/crypto-api/index.js";
import type { FetchLike } from "../../src/client/http.ts";
import { decodeRecoveryKey } from "../../src/crypto/recovery-key/recovery-key.ts";
import { JsSdkPeer, NioPeer, type Peer, type PeerKind } from "../support/peers/index.ts";
import { jsPhase, nextJsRequest, sasBoth } from "../support/peers/jssdk-verification.ts";
import {
  keyroomRoom,
  keyroomUser,
  krToPeer,
  newPeer,
  peerToKr,
  restart,
  scenario,
  seen,
  syncUntil,
  useFixture,
} from "./complement-helpers.ts";
import { devServerFixture, keyroomDevice, type TestClient, uniq } from "./e2ee-client-helpers.ts";
import { keyroomTrust, nextKeyroomRequest, nioCompareAndConfirm } from "./peers-verification-helpers.ts";

const fx = devServerFixture("keyroom-complement-more-");
useFixture(fx);

/** Moves the creation of every outbound Megolm session in Keyroom's (closed) store `ms` into the past. */
function ageOutboundSessions(storeDir: string, ms: number): number {
  const db = new Database(join(storeDir, "keyroom-crypto.sqlite3"), { fileMustExist: true });
  try {
    return db.prepare("UPDATE outbound_group_sessions SET created_at = created_at - ?").run(ms).changes;
  } finally {
    db.close();
  }
}

/**
 * A fetch that, while `state.spoofAs` is set, rewrites the `/sync` responses Keyroom gets: every
 * `m.room.encrypted` timeline event from `attacker` appears sent by `spoofAs` (what a malicious
 * homeserver can do; complement-crypto does it in mitmproxy).
 */
function spoofingSync(attacker: string) {
  const state: { spoofAs?: string; rewritten: string[] } = { rewritten: [] };
  const fetchLike: FetchLike = async (input, init) => {
    const res = await fetch(input, init);
    const spoofAs = state.spoofAs;
    if (spoofAs === undefined || !new URL(input).pathname.endsWith("/sync") || !res.ok) return res;
    const body = (await res.json()) as {
      rooms?: { join?: Record<string, { timeline?: { events?: Record<string, unknown>[] } }> };
    };
    for (const room of Object.values(body.rooms?.join ?? {})) {
      for (const ev of room.timeline?.events ?? []) {
        if (ev.type === "m.room.encrypted" && ev.sender === attacker) {
          ev.sender = spoofAs;
          state.rewritten.push(String(ev.event_id));
        }
      }
    }
    return Response.json(body, { status: res.status, headers: res.headers });
  };
  return { state, fetch: fetchLike };
}

/** complement-crypto's well-formed recovery key that is no one's. */
const WRONG_RECOVERY_KEY = "EsU1 591R iFs4 8xe6 kR79 7wKu 8XTG xdmx 9PVW 8pX9 LAnC Pe5r";
const NO_BACKUP = { nio: "matrix-nio has no server-side key backup (nio#218)" };

/** A room with shared history (public_chat, encrypted) and no one else, as complement-crypto's. */
async function ownRoom(kr: TestClient): Promise<string> {
  const roomId = await kr.client.createRoom({ name: "backup", visibility: "public", encrypted: true });
  await syncUntil(kr, () => kr.client.getRoom(roomId)?.membership === "join", "room synced");
  return roomId;
}

/** Keyroom sends in a room of its own and backs its keys up (recovery: secret storage + backup). */
async function keyroomBacksUp(open: Peer[]) {
  const kr = await keyroomUser("bk");
  const roomId = await ownRoom(kr);
  const eventId = await kr.client.sendText(roomId, "An encrypted message");
  await syncUntil(kr, () => seen(kr, eventId).body !== undefined, "Keyroom sees its own message");
  const { recoveryKey } = await kr.client.crypto.recovery.enable({ auth: { password: "pw" } });
  await kr.client.crypto.backup.uploadPending();
  const status = await kr.client.crypto.backup.status();
  assert.ok(status.total >= 1 && status.backedUp === status.total, "every key backed up");
  // The restorer: a new js-sdk device of the same user.
  const restorer = await JsSdkPeer.login(fx.hs.baseUrl, kr.name, "pw");
  open.push(restorer);
  return { roomId, eventId, recoveryKey, restorer };
}

/** js-sdk sends in a room of its own and backs its keys up as Element does. */
async function jsBacksUp(open: Peer[]) {
  const name = uniq("bkjs");
  const js = await JsSdkPeer.register(fx.hs.baseUrl, name, "pw");
  open.push(js);
  const roomId = await js.createRoom({ encrypted: true, name: "backup" });
  const eventId = await js.sendText(roomId, "An encrypted message");
  await js.bootstrapCrossSigning("pw");
  const recoveryKey = await js.bootstrapSecretStorage();
  await js.waitForKeyBackupUploaded();
  // The restorer: a new Keyroom device of the same user.
  const restorer = await keyroomDevice(fx, name, "login");
  return { roomId, eventId, recoveryKey, restorer };
}

/** A fetch that records the bodies of Keyroom's `PUT /sendToDevice/{type}/…` requests while `on`. */
function toDeviceRecorder() {
  const state: { on: boolean; sent: { type: string; messages: Record<string, Record<string, unknown>> }[] } =
    {
      on: false,
      sent: [],
    };
  const fetchLike: FetchLike = async (input, init) => {
    const m = /\/sendToDevice\/([^/]+)\//.exec(new URL(input).pathname);
    if (state.on && m !== null && init.method === "PUT" && typeof init.body === "string") {
      const body = JSON.parse(init.body) as { messages: Record<string, Record<string, unknown>> };
      state.sent.push({ type: decodeURIComponent(m[1] ?? ""), messages: body.messages });
    }
    return fetch(input, init);
  };
  return { state, fetch: fetchLike };
}

/**
 * A Keyroom device and a peer device of the same user (the peer logs in as Keyroom's user), each
 * knowing the other's device keys; Keyroom then syncs in the background. js-sdk first sets up
 * cross-signing (it asks for verification only then; complement-crypto's js client does the same),
 * and an encrypted room of the user's own makes nio track the user's devices.
 */
async function ownDevices(kind: PeerKind, open: Peer[]) {
  const kr = await keyroomUser("sas");
  const userId = kr.client.userId;
  let peer: JsSdkPeer | NioPeer;
  if (kind === "js-sdk") {
    peer = await JsSdkPeer.login(fx.hs.baseUrl, kr.name, "pw");
    open.push(peer);
    await peer.bootstrapCrossSigning("pw");
  } else {
    peer = await NioPeer.login(fx.hs.baseUrl, kr.name, "pw");
    open.push(peer);
  }
  await kr.client.createRoom({ name: "own devices", encrypted: true });
  for (let i = 0; i < 150; i++) {
    if ((await kr.client.getUserDevices(userId)).some((d) => d.deviceId === peer.deviceId)) break;
    await kr.client.syncOnce({ timeoutMs: 200 });
  }
  assert.notEqual(await keyroomTrust(kr.client, userId, peer.deviceId), "verified");
  await peer.waitForDevices(userId, (ids) => ids.includes(kr.client.deviceId));
  await kr.client.startSync();
  return { kr: kr.client, peer, userId };
}

describe("complement-crypto scenarios, more (devserver)", () => {
  scenario("TestAliceBobEncryptionWorks", async (kind, open) => {
    // Keyroom is Alice: it creates the room and sends; the peer decrypts.
    const kr = await keyroomUser();
    const peer = await newPeer(kind, open);
    const roomId = await keyroomRoom(kr, peer);
    assert.equal(await kr.client.isRoomEncrypted(roomId), true);
    const id = await kr.client.sendText(roomId, "Hello world");
    const m = await peer.waitForMessage(roomId, (x) => x.eventId === id && x.decrypted);
    assert.equal(m.encrypted, true, "sent as m.room.encrypted");
    assert.equal(m.body, "Hello world");

    // The peer is Alice: it creates the room and sends; Keyroom decrypts.
    const bob = await keyroomUser("bob");
    const theirs = await peer.createRoom({ encrypted: true, invite: [bob.client.userId] });
    await syncUntil(bob, () => bob.client.getRoom(theirs)?.membership === "invite", "invited");
    await bob.client.joinRoom(theirs);
    await peer.waitForMembership(theirs, bob.client.userId, "join");
    assert.equal(await bob.client.isRoomEncrypted(theirs), true);
    const back = await peerToKr(peer, bob, theirs, "Hello world");
    const got = [...bob.events, ...bob.late].filter((e) => e.eventId === back).at(-1);
    assert.equal(got?.raw.type, "m.room.encrypted", "it came encrypted");
    assert.equal(got?.encryption?.decrypted && got.encryption.senderDeviceId, peer.deviceId);
  });

  scenario("TestRoomKeyIsCycledAfterEnoughTime", async (kind, open) => {
    // rotation_period_ms below an hour is raised to an hour (as matrix-rust-sdk does), so instead
    // of waiting, the time passes while Keyroom is stopped: its store's outbound sessions are made
    // older than the period (61 minutes), then it restarts. One room rotates every hour, the other
    // every two: only the first gets a new session. (Restarting alone keeps the session:
    // TestRoomKeyIsNotCycledOnClientRestart.)
    let kr = await keyroomUser();
    const peer = await newPeer(kind, open);
    const hourly = await keyroomRoom(kr, peer, { rotationPeriodMs: 60 * 60_000 });
    const twoHourly = await keyroomRoom(kr, peer, { rotationPeriodMs: 2 * 60 * 60_000 });
    const before = await krToPeer(kr, peer, hourly, "before we start");
    assert.equal(await krToPeer(kr, peer, hourly, "before the time expires"), before);
    const otherBefore = await krToPeer(kr, peer, twoHourly, "in the other room");
    await kr.client.close();
    assert.equal(ageOutboundSessions(kr.storeDir, 61 * 60_000), 2, "both rooms' sessions aged");
    kr = await restart(kr);
    await kr.client.syncOnce({ timeoutMs: 0 });
    const after = await krToPeer(kr, peer, hourly, "after the time expires");
    assert.notEqual(after, before, "a new Megolm session once the period passed");
    assert.equal(
      await krToPeer(kr, peer, twoHourly, "the other room, within its period"),
      otherBefore,
      "the same session while the room's period has not passed",
    );
  });

  for (const spoof of ["mxid", "plaintext"] as const) {
    const sub = spoof === "mxid" ? "SpoofedMXIDSender" : "SpoofedPlaintextSender";
    scenario(`TestSpoofedEventSenderHandling/${sub}`, async (kind, open) => {
      // Alice (a peer) sends; the server rewrites the event's sender to Charlie (another peer in
      // the room, or a bare "charlie") in the /sync of Bob (Keyroom). The Megolm session is
      // Alice's device's: Keyroom must not show the message as Charlie's. complement-crypto
      // accepts a red "mismatched sender" shield or a decryption failure; Keyroom fails it.
      const alice = await newPeer(kind, open);
      const charlie = await newPeer(kind, open);
      const spoofer = spoofingSync(alice.userId);
      const bob = await keyroomUser("bob", spoofer.fetch);
      const roomId = await alice.createRoom({ encrypted: true, invite: [bob.client.userId, charlie.userId] });
      await syncUntil(bob, () => bob.client.getRoom(roomId)?.membership === "invite", "invited");
      await bob.client.joinRoom(roomId);
      await charlie.waitForMembership(roomId, charlie.userId, "invite");
      await charlie.join(roomId);
      await alice.waitForMembership(roomId, bob.client.userId, "join");
      await alice.waitForMembership(roomId, charlie.userId, "join");
      const first = await alice.sendText(roomId, "Test Message");
      await charlie.waitForMessage(roomId, (x) => x.eventId === first && x.decrypted);
      await syncUntil(bob, () => seen(bob, first).body !== undefined, "the first message decrypted");
      assert.equal(seen(bob, first).body, "Test Message");

      spoofer.state.spoofAs = spoof === "mxid" ? charlie.userId : "charlie";
      const spoofed = await alice.sendText(roomId, "Another Test Message");
      await charlie.waitForMessage(roomId, (x) => x.eventId === spoofed && x.decrypted);
      const emitted = () => [...bob.events, ...bob.late].filter((e) => e.eventId === spoofed);
      await syncUntil(bob, () => spoofer.state.rewritten.includes(spoofed), "the spoofed event delivered");
      // One more sync: a decryption that waits on a key query (the spoofed sender's devices) is done.
      await bob.client.syncOnce({ timeoutMs: 0 });
      // Shown undecryptable (no body), with the reason: the session is another user's.
      const views = emitted();
      assert.ok(views.length > 0, "the event is shown");
      for (const ev of views) {
        assert.equal(ev.sender, spoofer.state.spoofAs);
        assert.equal(ev.encryption?.decrypted, false, `decrypted as ${ev.sender}'s`);
        assert.equal(ev.content.body, undefined);
        assert.equal(ev.encryption?.decrypted === false && ev.encryption.code, "MISMATCHED_SENDER");
      }
    });
  }

  scenario(
    "TestCanBackupKeys",
    async (_kind, open) => {
      // Keyroom backs up, js-sdk restores with Keyroom's recovery key.
      const a = await keyroomBacksUp(open);
      const restored = await a.restorer.recoverWithRecoveryKey(a.recoveryKey);
      assert.ok(restored.imported >= 1, JSON.stringify(restored));
      const m = await a.restorer.waitForMessage(a.roomId, (x) => x.eventId === a.eventId && x.decrypted);
      assert.equal(m.body, "An encrypted message");

      // js-sdk backs up, Keyroom restores with js-sdk's recovery key.
      const b = await jsBacksUp(open);
      const result = await b.restorer.client.crypto.recovery.recover({ recoveryKey: b.recoveryKey });
      assert.ok(result.restored >= 1, `restored ${result.restored}`);
      await syncUntil(b.restorer, () => seen(b.restorer, b.eventId).present, "the old message");
      assert.equal(seen(b.restorer, b.eventId).body, "An encrypted message");
    },
    NO_BACKUP,
  );

  scenario(
    "TestBackupWrongRecoveryKeyFails",
    async (_kind, open) => {
      assert.equal(decodeRecoveryKey(WRONG_RECOVERY_KEY).length, 32, "well-formed, just not the right one");
      // Keyroom backs up; js-sdk tries the wrong key and cannot read the message.
      const a = await keyroomBacksUp(open);
      await assert.rejects(a.restorer.recoverWithRecoveryKey(WRONG_RECOVERY_KEY));
      const m = await a.restorer.waitForMessage(a.roomId, (x) => x.eventId === a.eventId);
      assert.equal(m.decrypted, false, "js-sdk decrypted it: insecure backup?");

      // js-sdk backs up; Keyroom tries the wrong key, is refused, and cannot read the message.
      const b = await jsBacksUp(open);
      const kr = b.restorer;
      await assert.rejects(kr.client.crypto.recovery.recover({ recoveryKey: WRONG_RECOVERY_KEY }), {
        code: "WRONG_KEY",
      });
      assert.equal((await kr.client.crypto.backup.status()).hasKey, false, "no backup key taken");
      await syncUntil(kr, () => seen(kr, b.eventId).present, "the old message");
      assert.equal(seen(kr, b.eventId).failed, true, "Keyroom decrypted it: insecure backup?");
      assert.equal(seen(kr, b.eventId).body, undefined);
    },
    NO_BACKUP,
  );

  scenario("TestToDeviceMessagesAreBatched", async (kind, open) => {
    // 100 other users, one device each, in a room whose key rotates at every message: the peer and
    // 99 Keyroom devices (their keys uploaded, then closed, as complement-crypto closes its
    // clients). Keyroom's next message shares a new room key with all 100 devices: in one
    // PUT /sendToDevice, not in small batches (old clients sent 20 per request).
    const recorder = toDeviceRecorder();
    const kr = await keyroomUser("batch", recorder.fetch);
    const roomId = await kr.client.createRoom({
      name: "batched",
      visibility: "public",
      initialState: [
        {
          type: "m.room.encryption",
          state_key: "",
          content: { algorithm: "m.megolm.v1.aes-sha2", rotation_period_msgs: 1 },
        },
      ],
    });
    const peer = await newPeer(kind, open);
    await peer.join(roomId);
    const others = [peer.userId];
    for (let i = 0; i < 99; i++) {
      const other = await keyroomUser("bob");
      await other.client.joinRoom(roomId);
      others.push(other.client.userId);
      await other.client.close();
    }
    await syncUntil(kr, () => kr.client.getRoom(roomId)?.joinedMemberIds.length === 101, "everyone joined");
    recorder.state.on = true;
    const id = await kr.client.sendText(roomId, "this should cause to-device msgs to be sent");
    recorder.state.on = false;
    const roomKeys = recorder.state.sent.filter((r) => r.type === "m.room.encrypted");
    assert.equal(roomKeys.length, 1, `the room key went out in ${roomKeys.length} requests`);
    const users = Object.keys(roomKeys[0]?.messages ?? {});
    assert.equal(users.length, 100, "one request for all 100 users");
    assert.deepEqual(users.sort(), others.sort());
    const m = await peer.waitForMessage(roomId, (x) => x.eventId === id && x.decrypted);
    assert.equal(m.body, "this should cause to-device msgs to be sent");
  });

  for (const keyroomVerifies of [true, false]) {
    // complement-crypto runs it with each client as verifier (the requester) and as verifiee.
    const title = `TestVerificationSAS/${keyroomVerifies ? "KeyroomVerifier" : "KeyroomVerifiee"}`;
    scenario(title, async (kind, open) => {
      const { kr, peer, userId } = await ownDevices(kind, open);
      if (peer instanceof JsSdkPeer) {
        // Request to the user's own devices, ready, m.sas.v1 started by the verifier, the same
        // emoji on both sides, both confirm, both done (never cancelled).
        const crypto = peer.client.getCrypto();
        assert.ok(crypto);
        if (keyroomVerifies) {
          const incoming = nextJsRequest(peer);
          const ours = await kr.requestVerification(userId);
          const theirs = await incoming;
          assert.equal(theirs.otherDeviceId, kr.deviceId);
          await theirs.accept();
          await ours.waitFor((x) => x.phase === "ready");
          await ours.startSas();
          await jsPhase(theirs, VerificationPhase.Started);
          await sasBoth(theirs.verifier as NonNullable<typeof theirs.verifier>, ours);
          await jsPhase(theirs, VerificationPhase.Done);
        } else {
          const incoming = nextKeyroomRequest(kr);
          const theirs = await crypto.requestOwnUserVerification();
          const ours = await incoming;
          assert.equal(ours.otherDeviceId, peer.deviceId);
          await ours.accept();
          await jsPhase(theirs, VerificationPhase.Ready);
          await sasBoth(await theirs.startVerification("m.sas.v1"), ours);
          await jsPhase(theirs, VerificationPhase.Done);
        }
        const status = await crypto.getDeviceVerificationStatus(userId, kr.deviceId as string);
        assert.equal(status?.localVerified, true);
      } else {
        // nio knows no verification requests: the verifier starts SAS directly (its only flow).
        let txn: string;
        let ours: Awaited<ReturnType<typeof kr.startSasVerification>>;
        if (keyroomVerifies) {
          ours = await kr.startSasVerification(userId, peer.deviceId);
          const incoming = await peer.waitForSas((x) => !x.weStarted && x.userId === userId);
          txn = incoming.transactionId;
          await peer.acceptSas(txn);
        } else {
          const incoming = nextKeyroomRequest(kr);
          txn = await peer.startSas(userId, kr.deviceId as string);
          ours = await incoming;
          assert.equal(ours.flowId, txn);
          await ours.accept();
        }
        await nioCompareAndConfirm(peer, txn, ours);
        assert.equal(await peer.deviceVerified(userId, kr.deviceId as string), true);
      }
      assert.equal(await keyroomTrust(kr, userId, peer.deviceId), "verified");
    });
  }
});
