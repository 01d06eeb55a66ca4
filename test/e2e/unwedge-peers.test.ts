// Olm session unwedging with clients we did not write (matrix-js-sdk on vodozemac, matrix-nio on
// libolm), through the devserver. A device that lost an Olm session (its store was restored from an
// older copy) cannot decrypt what arrives on it; it makes a new session to the sender and sends it
// an `m.dummy`, and the sender then uses that session. Both directions:
//
// - peer -> Keyroom: Keyroom's store goes back to a copy taken before the session moved on; the
//   peer's next room key is lost on the old session, Keyroom unwedges, the key after that decrypts.
// - Keyroom -> nio: nio's store goes back to a copy; Keyroom's next room key is lost, nio unwedges,
//   Keyroom's key after that decrypts. Keyroom -> js-sdk (IndexedDB store) is in unwedge-jssdk.test.ts.
//
// Rate limits, the same in all three: a device is unwedged only if the newest Olm session it holds
// with the sender is over an hour old (Keyroom's UNWEDGE_INTERVAL_MS, matrix-rust-sdk's
// UNWEDGING_INTERVAL, nio's `_unwedging_interval`), so at most once an hour. A copy taken a moment
// ago holds only young sessions, and no one would unwedge: the copies are aged (AGE_MS) as a backup
// taken over an hour ago would be. Each session moves on past the copy with messages both ways: a
// copy can still read a chain the other side kept sending on, only a new ratchet step loses it.
import assert from "node:assert/strict";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  closePeers,
  NioPeer,
  PEER_KINDS,
  PEER_TEST_TIMEOUT_MS,
  type Peer,
  type PeerKind,
  passwordFor,
  skipUnlessAvailable,
  uniqueUsername,
} from "../support/peers/index.ts";
import {
  keyroomRoom,
  keyroomUser,
  krToPeer,
  newPeer,
  peerToKr,
  seen,
  syncUntil,
  useFixture,
} from "./complement-helpers.ts";
import { devServerFixture } from "./e2ee-client-helpers.ts";
import {
  AGE_MS,
  ageKeyroomStore,
  ageNioStore,
  keyroomDummies,
  reopen,
  sendWithNewKey,
  unwedging,
  wireLog,
} from "./unwedge-helpers.ts";

const fx = devServerFixture("keyroom-unwedge-");
useFixture(fx);

describe("Olm session unwedging with clients we did not write (devserver)", () => {
  for (const kind of PEER_KINDS) {
    it(`peer -> Keyroom: Keyroom restored an old store, unwedges the ${kind} device and decrypts again`, {
      timeout: PEER_TEST_TIMEOUT_MS,
    }, async (t) => {
      if (skipUnlessAvailable(t, [kind])) return;
      const open: Peer[] = [];
      const snapshot = await mkdtemp(join(tmpdir(), "keyroom-unwedge-copy-"));
      try {
        await peerWedgesKeyroom(kind, open, snapshot);
      } finally {
        await closePeers(open);
        await rm(snapshot, { recursive: true, force: true });
      }
    });
  }
});

async function peerWedgesKeyroom(kind: PeerKind, open: Peer[], snapshot: string): Promise<void> {
  let kr = await keyroomUser("uw");
  const peer = unwedging(await newPeer(kind, open));
  // Keyroom rotates its room key at every message, so each one it sends goes out over Olm too.
  const roomId = await keyroomRoom(kr, peer, { rotationPeriodMessages: 1 });
  // An Olm session both ways (Keyroom made it, the peer answered on it).
  await krToPeer(kr, peer, roomId, "one");
  await peerToKr(peer, kr, roomId, "two");

  // The copy: Keyroom's store closed cleanly, then copied.
  await kr.client.close();
  await cp(kr.storeDir, snapshot, { recursive: true });
  kr = await reopen(fx, kr);
  // The session moves on past the copy: both sides ratchet (each message carries a new room key).
  await sendWithNewKey(peer, roomId, "three").then((id) =>
    syncUntil(kr, () => seen(kr, id).body !== undefined, "three"),
  );
  await krToPeer(kr, peer, roomId, "four");
  const five = await sendWithNewKey(peer, roomId, "five");
  await syncUntil(kr, () => seen(kr, five).body !== undefined, "five");

  // Keyroom goes back to the copy, aged as a backup taken over an hour ago.
  await kr.client.close();
  await rm(kr.storeDir, { recursive: true, force: true });
  await cp(snapshot, kr.storeDir, { recursive: true });
  assert.ok((await ageKeyroomStore(kr.storeDir, AGE_MS)) >= 1, "the copy holds the Olm session");
  const wire = wireLog();
  kr = await reopen(fx, kr, wire.fetch);
  const claimsBefore = wire.claims.length;

  // The peer's next room key goes out on the session as the peer has it: Keyroom cannot read it.
  const lost = await sendWithNewKey(peer, roomId, "six: its key went over the session Keyroom lost");
  const peerDevice = (m: { userId: string; deviceId: string }) =>
    m.userId === peer.userId && m.deviceId === peer.deviceId;
  await syncUntil(
    kr,
    () => wire.messages().some((m) => peerDevice(m) && m.types.includes(0)),
    "Keyroom sends the peer's device a message on a new Olm session",
  );
  assert.equal(seen(kr, lost).body, undefined, "the lost key did not arrive");
  // A claim for the peer's device alone, then one pre-key message to it alone: the m.dummy.
  const claims = wire.claims.slice(claimsBefore);
  assert.ok(
    claims.some((c) => c[peer.userId]?.[peer.deviceId] === "signed_curve25519"),
    "a one-time key of the peer's device was claimed",
  );
  for (const c of claims) assert.deepEqual(Object.keys(c), [peer.userId], "only the peer's keys are claimed");
  const dummies = wire.messages();
  assert.equal(dummies.length, 1, "one to-device message: the m.dummy");
  assert.ok(peerDevice(dummies[0] as { userId: string; deviceId: string }), "sent to the peer's device");
  const krKey = dummies[0]?.senderKey;
  assert.ok(krKey);
  // The peer decrypts it: a new Olm session from Keyroom's device.
  await peer.waitForDummy(kr.client.userId, krKey);

  // The peer's next room key goes out on the new session, and Keyroom decrypts with it.
  const seven = await sendWithNewKey(peer, roomId, "seven");
  await syncUntil(kr, () => seen(kr, seven).body !== undefined, "seven decrypted by Keyroom");
  assert.equal(seen(kr, seven).body, "seven");
  // And both ways: Keyroom's own room key reaches the peer.
  await krToPeer(kr, peer, roomId, "eight");
  // No loop: that one m.dummy was the only new session Keyroom made.
  assert.equal(wire.messages().filter((m) => m.types.includes(0)).length, 1, "one pre-key message in all");
}

describe("Olm session unwedging, Keyroom's session lost by the peer (devserver)", () => {
  it("Keyroom -> nio: nio restored an old store, unwedges Keyroom's device, and Keyroom's next key decrypts", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["nio"])) return;
    const open: Peer[] = [];
    const storeDir = await mkdtemp(join(tmpdir(), "keyroom-unwedge-nio-"));
    const snapshot = await mkdtemp(join(tmpdir(), "keyroom-unwedge-nio-copy-"));
    try {
      const kr = await keyroomUser("uw");
      const dummies = keyroomDummies(kr);
      const name = uniqueUsername("nio");
      const login = async () => {
        const p = await NioPeer.login(fx.hs.baseUrl, name, passwordFor(name), {
          storeDir,
          deviceId: first.deviceId,
        });
        open.push(p);
        return p;
      };
      const first = await NioPeer.register(fx.hs.baseUrl, name, passwordFor(name), { storeDir });
      open.push(first);
      const roomId = await keyroomRoom(kr, first, { rotationPeriodMessages: 1 });
      await first.waitForDevices(kr.client.userId, (ids) => ids.includes(kr.client.deviceId));

      // An Olm session both ways (Keyroom made it, nio answered on it).
      await krToPeer(kr, first, roomId, "one");
      await peerToKr(first, kr, roomId, "two");
      await first.syncOnce(0); // acknowledges the to-device messages it received

      // nio's copy, closed cleanly; then the session moves on past it (Keyroom's keys ratchet it).
      await first.close();
      await cp(storeDir, snapshot, { recursive: true });
      let nio = await login();
      // (nio must send over Olm too: Keyroom's keys alone stay on a chain the copy can still read.)
      await krToPeer(kr, nio, roomId, "three");
      const four = await sendWithNewKey(nio, roomId, "four");
      await syncUntil(kr, () => seen(kr, four).body !== undefined, "four");
      await krToPeer(kr, nio, roomId, "five");
      await nio.syncOnce(0);

      // nio goes back to the copy: the session with Keyroom is gone.
      await nio.close();
      await rm(storeDir, { recursive: true, force: true });
      await cp(snapshot, storeDir, { recursive: true });
      assert.ok((await ageNioStore(storeDir, AGE_MS)) >= 1, "the copy holds the Olm session");
      nio = await login();
      const nioKeys = await nio.identityKeys();

      // Keyroom's next room key goes out on the session nio lost: nio cannot read it, and unwedges.
      const lost = await kr.client.sendText(roomId, "six: its key went over the session nio lost");
      const undecryptable = await nio.waitForMessage(roomId, (m) => m.eventId === lost);
      assert.equal(undecryptable.decrypted, false, "nio cannot decrypt it");
      await syncUntil(
        kr,
        () => dummies.some((d) => d.sender === nio.userId && d.senderKey === nioKeys.curve25519),
        "Keyroom receives nio's m.dummy",
      );
      assert.equal(dummies.length, 1, "one m.dummy");

      // Keyroom's next room key goes out on nio's new session, and nio decrypts with it.
      await krToPeer(kr, nio, roomId, "seven");
      await peerToKr(nio, kr, roomId, "eight");
    } finally {
      await closePeers(open);
      await rm(storeDir, { recursive: true, force: true });
      await rm(snapshot, { recursive: true, force: true });
    }
  });
});
