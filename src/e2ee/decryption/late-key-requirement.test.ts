// An event whose key comes after it is decrypted again when the key lands: under
// `senderRequirement: "refuse"` (asked for the event, or the machine's default) it must still be
// refused if its sending device is not cross-signed, not handed back as decrypted. A server that
// holds the room key back one sync made any event, from a device it made up, pass the requirement.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SenderRequirement } from "../../store/records.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";

const ALICE = "@alice:example.org";
const BOB = "@bob:example.org";
const ROOM = "!room:example.org";

async function lateKey(options: { asked?: SenderRequirement; machine?: SenderRequirement }) {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, {
    userId: ALICE,
    deviceId: "ALICE1",
    ...(options.machine === undefined ? {} : { senderRequirement: options.machine }),
  });
  const bob = await TestClient.create(hs, { userId: BOB, deviceId: "BOB1" }); // not cross-signed
  const event = await bob.sendMessage(ROOM, joined(ALICE, BOB), "before its key");
  const opts = options.asked === undefined ? {} : { senderRequirement: options.asked };
  const first = await alice.machine.tryDecryptRoomEvent(event, ROOM, opts);
  assert.ok(!first.ok && first.error.code === "UNKNOWN_SESSION", "the key has not arrived yet");
  const { redecrypted } = await alice.sync(); // the key arrives
  return { alice, event, redecrypted, opts };
}

describe("events decrypted once their key arrives", () => {
  it("are not handed back when the requirement asked for them refuses their sender", async () => {
    const { alice, event, redecrypted, opts } = await lateKey({ asked: "refuse" });
    assert.deepEqual(
      redecrypted.map((d) => d.eventId),
      [],
    );
    const again = await alice.machine.tryDecryptRoomEvent(event, ROOM, opts);
    assert.ok(!again.ok && again.error.code === "SENDER_NOT_CROSS_SIGNED");
  });

  it("are not handed back when the machine's default requirement refuses their sender", async () => {
    const { alice, event, redecrypted } = await lateKey({ machine: "refuse" });
    assert.deepEqual(
      redecrypted.map((d) => d.eventId),
      [],
    );
    // The key did land: the event is refused for its sender, not for a missing key.
    const again = await alice.machine.tryDecryptRoomEvent(event, ROOM);
    assert.ok(!again.ok && again.error.code === "SENDER_NOT_CROSS_SIGNED");
  });

  it("the control: are handed back, marked not cross-signed, when the sender is accepted", async () => {
    const { event, redecrypted } = await lateKey({});
    assert.deepEqual(
      redecrypted.map((d) => [d.eventId, d.senderCrossSigned]),
      [[event.event_id, false]],
    );
  });
});
