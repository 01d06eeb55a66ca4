// A virtual user started while the appservice runs: its device has its keys on the server as soon
// as its client is restored, before the rest of its start (key counts, catching up), so others can
// already send it a room key. A transaction carrying that key while the user is still starting must
// not lose it: once started, the user reads the room's message. The key is in before `user()`
// returns, and its to-device event (decrypted) reaches the handlers put on the client then, after
// a plaintext to-device message that came before it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { path } from "../client/http.ts";
import { emptyResponseSchema, type ToDeviceEvent } from "../wire/index.ts";
import { startingUserFixture } from "./test-support/starting-user.ts";

const NEW_USER = "@v_new:localhost";

describe("a virtual user that is starting when its to-device messages arrive", () => {
  /** To-device messages for the new user in transactions the appservice handled. */
  let toNewUser = 0;
  /** IDs of the room events in transactions the appservice handled. */
  const inTxns = new Set<string>();
  const fx = startingUserFixture("starting", "v_new", (txn) => {
    toNewUser += txn.toDevice.filter((m) => m.to_user_id === NEW_USER).length;
    for (const ev of txn.events) inTxns.add(ev.event_id);
  });

  it("keeps a room key sent to it while it starts: once started, it decrypts the message", async () => {
    // Its device keys are on the server and it is in Ann's room: she may send it a room key.
    const { ann, starting, roomId } = await fx.startHeld();
    // A plaintext to-device message of Ann's first: handed over before the room key's event.
    const [device] = await ann.getUserDevices(NEW_USER);
    assert.ok(device);
    await ann.http.request({
      method: "PUT",
      path: path`/_matrix/client/v3/sendToDevice/org.example.ping/before-the-key`,
      body: { messages: { [NEW_USER]: { [device.deviceId]: { n: 1 } } } },
      schema: emptyResponseSchema,
    });
    const eventId = await ann.sendText(roomId, "for the new one");
    await fx.handled.until(() => toNewUser > 1);

    fx.releaseStart();
    const client = await starting;
    const toDevice: ToDeviceEvent[] = [];
    client.on("toDevice", (event) => {
      toDevice.push(event);
    });
    const ev = await client.fetchEvent(roomId, eventId);
    assert.equal(ev.encryption?.decrypted, true, "the room key sent while it started was kept");
    assert.equal(ev.content.body, "for the new one");

    // Handed to the client after what was held for it.
    const afterId = await ann.sendText(roomId, "after your start");
    await fx.handled.until(() => inTxns.has(afterId));
    const keys = toDevice.filter((e) => e.type === "m.room_key" && e.sender === ann.userId);
    assert.equal(keys.length, 1, "the room key's to-device event reached the handler put on then, once");
    assert.deepEqual(
      toDevice.filter((e) => e.sender === ann.userId).map((e) => e.type),
      ["org.example.ping", "m.room_key"],
      "in the order they came",
    );
    assert.equal(keys[0]?.content.room_id, roomId);
    assert.ok(keys[0]?.encryption, "as decrypted");
  });
});
