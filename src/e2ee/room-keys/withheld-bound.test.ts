/**
 * Withheld notices come in the clear from anyone: a flood naming made-up sessions must not grow
 * the store past MAX_STORED_WITHHELD, and must not keep the session's own sender from being heard.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_STORED_WITHHELD } from "../../store/store.ts";
import { DecryptionError } from "../errors.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";

const ROOM = "!room:x";
const FLOOD = MAX_STORED_WITHHELD + 10;
const BATCH = 5_000;

const notice = (sender: string, sessionId: string) => ({
  type: "m.room_key.withheld",
  sender,
  content: { algorithm: "m.megolm.v1.aes-sha2", room_id: ROOM, session_id: sessionId, code: "m.unverified" },
});

describe("a flood of withheld notices", () => {
  it(`leaves at most MAX_STORED_WITHHELD stored, the newest; the sender's own notice still turns a waiting event WITHHELD`, async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    await bob.machine.updateTrackedUsers(["@alice:x"]);
    await bob.sync();
    await alice.machine.updateTrackedUsers(["@bob:x"]);
    await alice.flush();
    const claim = await alice.machine.getMissingSessions(["@bob:x"]);
    if (claim !== undefined) await alice.send(claim);

    const event = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "held back");
    hs.device("@bob:x", "B").inbox.length = 0; // the key never reaches Bob
    const first = await bob.machine.tryDecryptRoomEvent(event, ROOM);
    assert.ok(!first.ok && first.error.code === "UNKNOWN_SESSION", "the event waits for its key");

    // Mallory (whom nobody tracks, so no device of hers is known) names made-up sessions.
    for (let start = 0; start < FLOOD; start += BATCH) {
      const toDevice = [];
      for (let i = start; i < Math.min(start + BATCH, FLOOD); i++)
        toDevice.push(notice("@mallory:x", `fake${i}`));
      const synced = await bob.machine.receiveSyncChanges({ toDevice });
      assert.deepEqual(synced.withheldEvents, [], "nothing waiting names Mallory's sessions");
    }
    assert.ok(bob.data.withheld.size <= MAX_STORED_WITHHELD, `${bob.data.withheld.size} notices stored`);
    const stored = async (i: number) => (await bob.store.getWithheld(ROOM, `fake${i}`)) !== undefined;
    assert.deepEqual(
      [await stored(0), await stored(FLOOD - MAX_STORED_WITHHELD - 1)],
      [false, false],
      "the oldest gave way",
    );
    assert.deepEqual(
      [await stored(FLOOD - MAX_STORED_WITHHELD), await stored(FLOOD - 1)],
      [true, true],
      "the newest are kept",
    );

    // Alice's own notice, after the flood: believed, stored, and the waiting event handed back.
    const sessionId = (event.content as { session_id: string }).session_id;
    const told = await bob.machine.receiveSyncChanges({ toDevice: [notice("@alice:x", sessionId)] });
    assert.deepEqual(
      told.withheldEvents.map((w) => [w.event.event_id, w.error.code, w.error.withheldCode]),
      [[event.event_id, "WITHHELD", "m.unverified"]],
    );
    await assert.rejects(
      bob.machine.decryptRoomEvent(event, ROOM),
      (e) => e instanceof DecryptionError && e.code === "WITHHELD",
    );
    assert.ok(bob.data.withheld.size <= MAX_STORED_WITHHELD);
    assert.equal(await stored(FLOOD - MAX_STORED_WITHHELD), false, "Alice's notice pushed out the oldest");
    // After a restart, too (read back from the store).
    await bob.restart();
    await assert.rejects(
      bob.machine.decryptRoomEvent(event, ROOM),
      (e) => e instanceof DecryptionError && e.code === "WITHHELD",
    );
  });
});
