// A session imported without its creator's Ed25519 key (an export entry that had none) is kept with
// an empty claim. What we write about it must still be the spec's format: a `sender_claimed_keys`
// value that is not an Ed25519 key makes matrix-rust-sdk (and so Element) refuse the whole bundle
// or export file, not just the one session. Such a session goes out with an empty map; one whose
// sender key is not a Curve25519 key is left out of bundles and export files.
import assert from "node:assert/strict";
import { it } from "node:test";
import { InboundGroupSession, OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";

const ROOM = "!room:example.org";

/** An export entry of a new session whose sender key is not a Curve25519 key. */
function notCurveSenderKeyEntry(sharedHistory: boolean) {
  const outbound = OutboundGroupSession.create();
  return {
    algorithm: "m.megolm.v1.aes-sha2",
    room_id: ROOM,
    sender_key: "not-a-curve-key",
    session_id: outbound.sessionId,
    session_key: InboundGroupSession.fromSessionKey(outbound.sessionKey()).exportAtFirstKnownIndex(),
    sender_claimed_keys: {},
    forwarding_curve25519_key_chain: [],
    shared_history: sharedHistory,
  };
}

it("a session without a valid claimed Ed25519 key goes into bundles and exports with an empty claim", async () => {
  const hs = new FakeHomeserver();
  const bob = await TestClient.create(hs, { userId: "@bob:example.org", deviceId: "BOB1" });
  const sessions = ["", "not-a-key"].map((claimed) => {
    const outbound = OutboundGroupSession.create();
    return { outbound, claimed };
  });
  await bob.machine.importRoomKeys(
    sessions.map(({ outbound, claimed }) => ({
      algorithm: "m.megolm.v1.aes-sha2",
      room_id: ROOM,
      sender_key: "RF3s+E7RkTQTGF2d8Deol0FkQvgII2aJDf3/Jp5mxVU",
      session_id: outbound.sessionId,
      session_key: InboundGroupSession.fromSessionKey(outbound.sessionKey()).exportAtFirstKnownIndex(),
      ...(claimed === "" ? {} : { sender_claimed_keys: { ed25519: claimed } }),
      forwarding_curve25519_key_chain: [],
      shared_history: true,
    })),
  );
  const bundle = await bob.machine.historySharing.buildBundle(ROOM);
  assert.equal(bundle.room_keys.length, 2);
  for (const k of bundle.room_keys) assert.deepEqual(k.sender_claimed_keys, {}, "bundle");
  const exported = await bob.machine.exportRoomKeys([ROOM]);
  assert.equal(exported.length, 2);
  for (const k of exported) assert.deepEqual(k.sender_claimed_keys, {}, "export");
});

it("a session whose sender key is not a Curve25519 key is left out of bundles", async () => {
  const hs = new FakeHomeserver();
  const bob = await TestClient.create(hs, { userId: "@bob:example.org", deviceId: "BOB1" });
  const { imported } = await bob.machine.importRoomKeys([true, false].map(notCurveSenderKeyEntry));
  assert.equal(imported, 2);
  const bundle = await bob.machine.historySharing.buildBundle(ROOM);
  assert.deepEqual(bundle, { room_keys: [], withheld: [] });
});

it("a session whose sender key is not a Curve25519 key is left out of export files", async () => {
  const hs = new FakeHomeserver();
  const bob = await TestClient.create(hs, { userId: "@bob:example.org", deviceId: "BOB1" });
  const { imported } = await bob.machine.importRoomKeys([notCurveSenderKeyEntry(false)]);
  assert.equal(imported, 1);
  assert.deepEqual(await bob.machine.exportRoomKeys([ROOM]), []);
  const pages = [];
  for await (const page of bob.machine.exportAllRoomKeys()) pages.push(...page);
  assert.deepEqual(pages, []);
});
