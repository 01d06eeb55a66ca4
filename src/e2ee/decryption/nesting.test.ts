// Decrypted payloads nest at most MAX_EVENT_DEPTH levels, as events in the clear do: the
// application (or a store) serializing a deeper one would overflow the stack, so a sender could
// crash whoever handles its messages.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_EVENT_DEPTH } from "../../wire/json.ts";
import { DecryptionError } from "../errors.ts";
import { bobTrackingAlice, joined } from "../test-support/fake-homeserver.ts";

const ROOM = "!room:example.org";

/** Content whose `x` nests `levels` objects deep (the content itself and the event add two). */
function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = {};
  for (let i = 1; i < levels; i++) value = { a: value };
  return { body: "deep", x: value };
}

async function setup() {
  const { hs, alice, bob } = await bobTrackingAlice();
  await alice.prepareRoom(ROOM, joined("@alice:x", "@bob:x"));
  await bob.sync();
  return { hs, alice, bob };
}

describe("nesting of decrypted payloads", () => {
  it("refuses a Megolm payload nested deeper than MAX_EVENT_DEPTH, keeps one within it", async () => {
    const { hs, alice, bob } = await setup();
    const event = async (levels: number) => ({
      event_id: hs.nextEventId(),
      sender: "@alice:x",
      type: "m.room.encrypted",
      content: await alice.machine.encryptRoomEvent(ROOM, "m.room.message", nested(levels)),
    });
    // Payload {type, content: {x: …}, room_id}: `levels` for x, plus the content and the payload.
    const within = await bob.machine.decryptRoomEvent(await event(MAX_EVENT_DEPTH - 2), ROOM);
    assert.equal(within.content.body, "deep");
    await assert.rejects(
      bob.machine.decryptRoomEvent(await event(MAX_EVENT_DEPTH - 1), ROOM),
      (e: unknown) => e instanceof DecryptionError && e.code === "BAD_PAYLOAD",
    );
    await assert.rejects(
      bob.machine.decryptRoomEvent(await event(2_000), ROOM),
      (e: unknown) => e instanceof DecryptionError && e.code === "BAD_PAYLOAD",
    );
  });

  it("drops an Olm to-device payload nested deeper than MAX_EVENT_DEPTH, keeps one within it", async () => {
    const { alice, bob } = await setup();
    const send = async (levels: number) => {
      const { request } = await alice.machine.encryptToDevice(
        "org.example.deep",
        [{ userId: "@bob:x", deviceId: "B" }],
        nested(levels),
      );
      assert.ok(request);
      await alice.send(request);
      return bob.sync();
    };
    const within = await send(MAX_EVENT_DEPTH - 2);
    assert.deepEqual(within.failures, []);
    assert.equal(within.toDevice[0]?.content.body, "deep");
    for (const levels of [MAX_EVENT_DEPTH - 1, 2_000]) {
      const deep = await send(levels);
      assert.deepEqual(
        deep.failures.map((f) => f.code),
        ["BAD_PAYLOAD"],
      );
      assert.equal(deep.toDevice.length, 0);
    }
  });
});
