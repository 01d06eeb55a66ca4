/**
 * To-device messages delivered again (a client that did not save the sync position after the
 * crypto store saved the step, e.g. a crash in between, syncs from the old position again): an Olm
 * message already decrypted is REPLAYED, ignored without unwedging the session that sent it.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ToDeviceEvent } from "../sync/to-device.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";
import { UNWEDGE_INTERVAL_MS } from "./sessions.ts";

const ROOM = "!room:x";

/** Bob and Alice with an Olm session both ways, the next message type Alice sends Bob being `type`. */
async function pair(type: 0 | 1) {
  const hs = new FakeHomeserver();
  let now = 1_700_000_000_000;
  const clock = () => now;
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A", now: clock });
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", now: clock });
  await alice.sync();
  await bob.sync();
  const members = joined("@alice:x", "@bob:x");
  if (type === 1) {
    // Bob starts the session (his room key to Alice): Alice's answers on it are normal messages.
    await bob.sendMessage(ROOM, members, "hello");
    await alice.sync();
  }
  await alice.sendMessage(ROOM, members, "hi");
  const toDevice = hs.syncFor("@bob:x", "B").toDevice as ToDeviceEvent[];
  const olm = toDevice.filter((e) => e.type === "m.room.encrypted");
  assert.equal(olm.length, 1);
  const content = olm[0]?.content as { ciphertext: Record<string, { type: number }> };
  assert.equal(content.ciphertext[bob.machine.identityKeys.curve25519]?.type, type);
  // Past the unwedge interval: a message taken for a broken session would start a new one.
  now += UNWEDGE_INTERVAL_MS + 1;
  return { hs, alice, bob, toDevice };
}

describe("Olm messages delivered again", () => {
  for (const type of [1, 0] as const)
    it(`ignores a type ${type} message decrypted before, also after a restart, without unwedging`, async () => {
      const { hs, bob, toDevice } = await pair(type);
      const first = await bob.machine.receiveSyncChanges({ toDevice, nextBatch: "s1" });
      assert.deepEqual(first.failures, []);
      assert.equal(first.toDevice.filter((e) => e.type === "m.room_key").length, 1);
      for (const restart of [false, true]) {
        if (restart) await bob.restart();
        const label = restart ? "after a restart" : "before a restart";
        const again = await bob.machine.receiveSyncChanges({ toDevice, nextBatch: "s1" });
        assert.deepEqual(
          again.failures.map((f) => f.code),
          ["REPLAYED"],
          label,
        );
        assert.deepEqual(again.toDevice, [], label);
        const requests = await bob.machine.outgoingRequests();
        assert.deepEqual(
          requests.filter((r) => r.type === "keys_claim"),
          [],
          `${label}: no new session is claimed`,
        );
        const sent = hs.sentToDevice.length;
        await bob.flush();
        assert.deepEqual(
          hs.sentToDevice.slice(sent).filter((m) => m.from === "@bob:x" && m.to === "@alice:x|A"),
          [],
          `${label}: no m.dummy goes to Alice`,
        );
      }
    });
});
