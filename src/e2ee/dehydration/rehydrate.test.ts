import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { Account } from "../../crypto/olm/index.ts";
import { randomBytes } from "../../crypto/primitives/index.ts";
import { MemoryCryptoStore } from "../../store/memory/memory-store.ts";
import { MEGOLM_ALGORITHM, OLM_ALGORITHM } from "../devices/device.ts";
import { OlmMachine } from "../machine.ts";
import { signWithAccount } from "../signing.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { createDehydratedDevice, DehydrationError, parseDehydratedDevice } from "./dehydrated-device.ts";
import { RehydratedDevice } from "./rehydrate.ts";

const ALICE = "@alice:x";
const BOB = "@bob:x";
const ROOM = "!room:x";

/** Bob's dehydrated device, and Alice's device sending it room keys over Olm while Bob is away. */
function scenario() {
  const key = randomBytes(32);
  const { deviceId, body } = createDehydratedDevice({ userId: BOB, key, displayName: "d" });
  const { deviceData } = parseDehydratedDevice({ device_id: deviceId, device_data: body.device_data });
  const ed25519 = (body.device_keys.keys as Record<string, string>)[`ed25519:${deviceId}`] ?? "";
  const alice = Account.create();
  const otk = Object.values(body.one_time_keys)[0]?.key ?? "";
  const olm = alice.createOutboundSession(deviceId, otk);
  const toDevice = (
    type: string,
    content: Record<string, unknown>,
    recipientEd = ed25519,
    payloadOver: Record<string, unknown> = {},
  ) => ({
    type: "m.room.encrypted",
    sender: ALICE,
    content: {
      algorithm: OLM_ALGORITHM,
      sender_key: alice.identityKeys.curve25519,
      ciphertext: {
        [deviceId]: olm.encrypt(
          JSON.stringify({
            type,
            content,
            sender: ALICE,
            sender_device: "A",
            recipient: BOB,
            recipient_keys: { ed25519: recipientEd },
            keys: { ed25519: alice.identityKeys.ed25519 },
            ...payloadOver,
          }),
        ),
      },
    },
  });
  const megolm = OutboundGroupSession.create();
  const roomKey = {
    algorithm: MEGOLM_ALGORITHM,
    room_id: ROOM,
    session_id: megolm.sessionId,
    session_key: megolm.sessionKey(),
    shared_history: true,
  };
  const roomEvent = {
    event_id: "$1",
    sender: ALICE,
    type: "m.room.encrypted",
    content: {
      algorithm: MEGOLM_ALGORITHM,
      sender_key: alice.identityKeys.curve25519,
      device_id: "A",
      session_id: megolm.sessionId,
      ciphertext: megolm.encrypt(
        JSON.stringify({ type: "m.room.message", content: { body: "while away" }, room_id: ROOM }),
      ),
    },
  };
  /** The dehydrated device opened with the right key. */
  const open = () => RehydratedDevice.open({ userId: BOB, deviceId, deviceData, key });
  return { open, key, deviceId, deviceData, toDevice, roomKey, roomEvent, alice };
}

describe("rehydration (MSC3814)", () => {
  it("decrypts the events queued for the device and imports the room keys it received", async () => {
    const s = scenario();
    const device = s.open();
    const page = device.receiveEvents([
      s.toDevice("m.room_key", s.roomKey),
      s.toDevice("m.dummy", {}), // decrypts, not a room key: neither kept nor counted as dropped
      s.toDevice("m.room_key", s.roomKey, "someone else's key"), // meant for another device
      { type: "m.room.encrypted", sender: ALICE, content: { algorithm: OLM_ALGORITHM } },
      "junk",
    ]);
    assert.equal(page.roomKeys.length, 1);
    assert.equal(page.dropped, 3);
    assert.equal(page.roomKeys[0]?.sender, ALICE);
    assert.equal(JSON.stringify(device).includes("session_key"), false);
    device.wipe();

    const store = await MemoryCryptoStore.open({ userId: BOB, deviceId: "NEW" });
    const machine = await OlmMachine.open({ userId: BOB, deviceId: "NEW", store });
    const { imported } = await machine.dehydration.importRoomKeys(page.roomKeys);
    assert.equal(imported, 1);
    const decrypted = await machine.decryptRoomEvent(s.roomEvent, ROOM);
    assert.equal(decrypted.content.body, "while away");
    // Came over Olm from its creator: not marked imported or forwarded; the flag is kept.
    const record = await store.getInboundGroupSession(ROOM, s.roomKey.session_id);
    assert.deepEqual([record?.imported, record?.forwarded, record?.sharedHistory], [false, false, true]);
    await machine.close();
  });

  it("a room key whose Olm payload names another sender, another recipient user, or a dehydrated sender is dropped", () => {
    const s = scenario();
    const device = s.open();
    const page = device.receiveEvents([
      // Alice's Olm session, but the payload says Mallory sent it: a relayed or forged attribution.
      s.toDevice("m.room_key", s.roomKey, undefined, { sender: "@mallory:x" }),
      // Encrypted to this device's keys but addressed to another user.
      s.toDevice("m.room_key", s.roomKey, undefined, { recipient: "@carol:x" }),
      // From a device that says it is dehydrated (MSC3814: such a device sends nothing).
      s.toDevice("m.room_key", s.roomKey, undefined, { sender_device_keys: { dehydrated: true } }),
    ]);
    assert.deepEqual([page.roomKeys.length, page.dropped], [0, 3]);
    // The same session then delivers a well-formed key: the drops above were the checks, not the session.
    const good = device.receiveEvents([s.toDevice("m.room_key", s.roomKey)]);
    assert.equal(good.roomKeys.length, 1);
    device.wipe();
  });

  it("a room key from a device the machine knows as dehydrated is not imported (MSC3814)", async () => {
    const s = scenario();
    const device = s.open();
    const page = device.receiveEvents([s.toDevice("m.room_key", s.roomKey)]);
    device.wipe();
    assert.equal(page.roomKeys.length, 1);
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: BOB, deviceId: "NEW" });
    hs.forgeDeviceKeys(
      ALICE,
      "A",
      signWithAccount(s.alice, ALICE, "A", {
        user_id: ALICE,
        device_id: "A",
        algorithms: [OLM_ALGORITHM, MEGOLM_ALGORITHM],
        dehydrated: true,
        keys: { "curve25519:A": s.alice.identityKeys.curve25519, "ed25519:A": s.alice.identityKeys.ed25519 },
      }),
    );
    await bob.machine.updateTrackedUsers([ALICE]);
    await bob.flush();
    const { imported } = await bob.machine.dehydration.importRoomKeys(page.roomKeys);
    assert.equal(imported, 0);
    assert.equal(await bob.store.getInboundGroupSession(ROOM, s.roomKey.session_id), undefined);
  });

  it("a wrong key and a damaged pickle are both WRONG_KEY (the AEAD tag cannot tell them apart)", () => {
    const s = scenario();
    assert.throws(
      () =>
        RehydratedDevice.open({
          userId: BOB,
          deviceId: s.deviceId,
          deviceData: s.deviceData,
          key: randomBytes(32),
        }),
      (e) => e instanceof DehydrationError && e.code === "WRONG_KEY",
    );
    const damaged = { ...s.deviceData, device_pickle: `${s.deviceData.device_pickle.slice(0, -4)}AAAA` };
    assert.throws(
      () => RehydratedDevice.open({ userId: BOB, deviceId: s.deviceId, deviceData: damaged, key: s.key }),
      (e) => e instanceof DehydrationError && e.code === "WRONG_KEY",
    );
  });

  it("receiveEvents never throws, whatever a page holds", () => {
    const s = scenario();
    const device = s.open();
    const ciphertext = (v: unknown) => ({
      type: "m.room.encrypted",
      sender: ALICE,
      content: { algorithm: OLM_ALGORITHM, sender_key: "k", ciphertext: { [s.deviceId]: v } },
    });
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.jsonValue(), fc.jsonValue().map(ciphertext)), { maxLength: 5 }),
        (events) => {
          const page = device.receiveEvents(events);
          assert.equal(page.roomKeys.length, 0);
        },
      ),
      { numRuns: 200 },
    );
    device.wipe();
  });
});
