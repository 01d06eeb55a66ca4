// A virtual user started while the appservice runs gets transactions only once its start is over,
// but it may already be in rooms (here: it joins one) while it starts. The room events that come
// meanwhile, an encrypted message and a state change, must not be lost: once started, the user's
// handlers (put on as soon as `user()` gives the client) see them, decrypted and in order, before
// the events that come after its start.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RoomEvent } from "../client/index.ts";
import { startingUserFixture } from "./test-support/starting-user.ts";

describe("a virtual user that is starting when room events for it arrive", () => {
  /** IDs of the room events in transactions the appservice handled. */
  const inTxns = new Set<string>();
  const fx = startingUserFixture("startingrooms", "v_late", (txn) => {
    for (const ev of txn.events) inTxns.add(ev.event_id);
  });

  it("hands it the encrypted message and the state change of its start, decrypted, in order", async () => {
    // It joins while it starts.
    const { ann, starting, roomId } = await fx.startHeld();
    const topicId = await ann.sendStateEvent(roomId, "m.room.topic", "", { topic: "set while you started" });
    const messageId = await ann.sendText(roomId, "sent while you started");
    // Both came in transactions handled while the user was still starting.
    await fx.handled.until(() => inTxns.has(topicId) && inTxns.has(messageId));

    fx.releaseStart();
    const late = await starting;
    const seen: RoomEvent[] = [];
    let afterSeen: () => void = () => {};
    const afterArrived = new Promise<void>((resolve) => {
      afterSeen = resolve;
    });
    let afterId: string | undefined;
    late.on("room.event", (_room, ev) => {
      if (ev.roomId !== roomId) return;
      seen.push(ev);
      if (ev.eventId === afterId) afterSeen();
    });
    afterId = await ann.sendText(roomId, "sent after your start");
    if (seen.some((e) => e.eventId === afterId)) afterSeen();
    await afterArrived;

    const ids = seen.map((e) => e.eventId);
    const message = seen.find((e) => e.eventId === messageId);
    assert.ok(message, "the message sent while it started reached its handlers");
    assert.equal(message.encryption?.decrypted, true);
    assert.equal(message.type, "m.room.message");
    assert.equal(message.content.body, "sent while you started");
    const topic = seen.find((e) => e.eventId === topicId);
    assert.equal(topic?.content.topic, "set while you started", "the state change reached them too");
    assert.equal(late.getRoom(roomId)?.getState("m.room.topic", "")?.content.topic, "set while you started");
    assert.equal(late.getRoom(roomId)?.membership, "join");
    assert.ok(ids.indexOf(topicId) < ids.indexOf(messageId), "in the order they were sent");
    assert.ok(ids.indexOf(messageId) < ids.indexOf(afterId), "before what came after its start");
    assert.equal(new Set(ids).size, ids.length, "each once");
  });
});
