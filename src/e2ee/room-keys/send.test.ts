import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { EncryptedRoomEvent } from "../decryption/room-events.ts";
import {
  type TestClient as Client,
  FakeHomeserver,
  joined,
  TestClient,
} from "../test-support/fake-homeserver.ts";
import type { RoomEventPlan } from "./send.ts";

const ROOM = "!room:x";
const members = joined("@alice:x", "@bob:x");

async function pair(): Promise<{ alice: Client; bob: Client }> {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
  await alice.flush();
  await bob.sync();
  return { alice, bob };
}

const ask = (c: Client, body: string): Promise<RoomEventPlan> =>
  c.machine.prepareRoomEvent(ROOM, "m.room.message", { msgtype: "m.text", body }, { members });

const event = (c: Client, content: Record<string, unknown>): EncryptedRoomEvent => ({
  event_id: c.hs.nextEventId(),
  sender: c.userId,
  type: "m.room.encrypted",
  content,
});

describe("one machine call per encrypted send", () => {
  it("asks for device lists, then sessions, then hands out the shares with the event", async () => {
    const { alice, bob } = await pair();
    const stages: string[] = [];
    let plan = await ask(alice, "first");
    while (plan.stage !== "ready") {
      stages.push(plan.stage);
      for (const r of plan.requests) await alice.send(r);
      plan = await ask(alice, "first");
    }
    assert.deepEqual(stages, ["devices", "sessions"]);
    assert.deepEqual(
      plan.requests.map((r) => r.type),
      ["to_device"],
    );
    for (const r of plan.requests) await alice.send(r);
    await bob.sync();
    const decrypted = await bob.machine.decryptRoomEvent(event(alice, plan.content), ROOM);
    assert.equal(decrypted.content.body, "first");
  });

  it("a member whose server cannot be reached does not hold the send up: the others get the key", async () => {
    const { alice, bob } = await pair();
    alice.hs.unreachable.add("@far:remote");
    const withFar = [...members, ...joined("@far:remote")];
    const askWithFar = () =>
      alice.machine.prepareRoomEvent(
        ROOM,
        "m.room.message",
        { msgtype: "m.text", body: "hi" },
        { members: withFar },
      );
    let plan = await askWithFar();
    const stages: string[] = [];
    // Bounded: each stage's requests are sent once; a plan that keeps asking for devices would loop.
    for (let i = 0; plan.stage !== "ready" && i < 5; i++) {
      stages.push(plan.stage);
      for (const r of plan.requests) await alice.send(r);
      plan = await askWithFar();
    }
    assert.equal(plan.stage, "ready", `stages: ${stages.join(", ")}`);
    assert.deepEqual(stages, ["devices", "sessions"]);
    assert.equal(alice.machine.hasOutdatedUsers(["@far:remote"]), true, "asked again after the back-off");
    for (const r of plan.requests) await alice.send(r);
    await bob.sync();
    assert.equal((await bob.machine.decryptRoomEvent(event(alice, plan.content), ROOM)).content.body, "hi");
  });

  it("in steady state: one call, nothing to send first, no store read of the room's settings", async () => {
    const { alice, bob } = await pair();
    await alice.sendMessage(ROOM, members, "warm up");
    let reads = 0;
    const read = alice.store.getRoomSettings.bind(alice.store);
    alice.store.getRoomSettings = (roomId) => {
      reads++;
      return read(roomId);
    };
    const plan = await ask(alice, "steady");
    assert.equal(plan.stage, "ready");
    assert.equal(plan.requests.length, 0);
    // Read once, for the first send; kept in memory since (room-settings.ts).
    assert.equal(reads, 0);
    await bob.sync();
    if (plan.stage === "ready") {
      assert.equal(
        (await bob.machine.decryptRoomEvent(event(alice, plan.content), ROOM)).content.body,
        "steady",
      );
    }
  });

  it("hands out a share again until it is marked sent", async () => {
    const { alice } = await pair();
    let plan = await ask(alice, "one");
    while (plan.stage !== "ready") {
      for (const r of plan.requests) await alice.send(r);
      plan = await ask(alice, "one");
    }
    const [share] = plan.requests;
    assert.ok(share);
    // The share was lost: the next send carries it again, with a new ciphertext.
    const again = await ask(alice, "two");
    assert.equal(again.stage, "ready");
    assert.deepEqual(
      again.requests.map((r) => r.id),
      [share.id],
    );
    await alice.send(share);
    const after = await ask(alice, "three");
    assert.equal(after.requests.length, 0);
  });

  it("a send follows the room's settings as last saved, and not settings whose save failed", async () => {
    const { alice } = await pair();
    const ready = async (body: string): Promise<Record<string, unknown>> => {
      let plan = await ask(alice, body);
      while (plan.stage !== "ready") {
        for (const r of plan.requests) await alice.send(r);
        plan = await ask(alice, body);
      }
      for (const r of plan.requests) await alice.send(r);
      return plan.content;
    };
    const first = await ready("one");
    assert.equal((await ready("two")).session_id, first.session_id);
    // A save that fails: the session is not rotated after each message.
    const save = alice.store.saveChanges.bind(alice.store);
    alice.store.saveChanges = async () => {
      throw new Error("disk full");
    };
    await assert.rejects(alice.machine.setRoomSettings(ROOM, { rotationPeriodMessages: 1 }), /disk full/);
    alice.store.saveChanges = save;
    assert.equal((await ready("three")).session_id, first.session_id);
    assert.equal((await alice.machine.getRoomSettings(ROOM))?.rotationPeriodMessages, undefined);
    // Saved: the next send follows it (a new session once the current one sent its message).
    await alice.machine.setRoomSettings(ROOM, { rotationPeriodMessages: 1 });
    const rotated = await ready("four");
    assert.notEqual(rotated.session_id, first.session_id);
    assert.notEqual((await ready("five")).session_id, rotated.session_id);
  });
});
