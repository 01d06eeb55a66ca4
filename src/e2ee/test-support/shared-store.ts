// Two engines on one store, as two processes (or tabs) would run them: each unit of work takes the
// store's lease and reloads the engine when another wrote since. Run on every shared back end.
import assert from "node:assert/strict";
import { StoreLockedError } from "../../store/errors.ts";
import type { CryptoStore } from "../../store/store.ts";
import type { EncryptedRoomEvent } from "../decryption/room-events.ts";
import { OlmMachine } from "../machine.ts";
import { FakeHomeserver, joined, TestClient } from "./fake-homeserver.ts";

const ROOM = "!room:x";

/**
 * Bob's two "processes" alternately send into a room and read Alice's reply: no (session, index)
 * is used twice, both read the reply, and a save from the one whose view is old is refused.
 * `open` opens Bob's store (`@bob:x`, device `B`) at one shared location.
 */
export async function twoEnginesOnOneStore(open: () => Promise<CryptoStore>): Promise<void> {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
  const stores = [await open(), await open()] as const;
  hs.device("@bob:x", "B");
  const machines: OlmMachine[] = [];
  let reloads = 0;
  /** One unit of work of process `n`, as the client runs it: lease, reload if stale, work, release. */
  const turn = async <T>(n: 0 | 1, work: (bob: OlmMachine) => Promise<T>): Promise<T> => {
    const store = stores[n];
    const grant = await store.tryAcquireLease(60_000);
    assert.ok(grant, "nobody else holds it");
    try {
      let bob = machines[n];
      if (bob === undefined) {
        bob = await OlmMachine.open({ userId: "@bob:x", deviceId: "B", store });
        machines[n] = bob;
      } else if (grant.stale) {
        reloads++;
        await bob.reload();
      }
      return await work(bob);
    } finally {
      await store.releaseLease();
    }
  };
  const send = async (bob: OlmMachine, requests: readonly { id: string }[]) => {
    for (const r of requests as Parameters<typeof hs.handle>[2][])
      await bob.markRequestAsSent(r, hs.handle("@bob:x", "B", r));
  };
  const flush = async (bob: OlmMachine) => {
    for (let i = 0; i < 5; i++) {
      const requests = await bob.outgoingRequests();
      if (requests.length === 0) return;
      await send(bob, requests);
    }
  };
  const members = joined("@alice:x", "@bob:x");
  await turn(0, flush); // uploads the device keys and one-time keys
  await turn(1, flush); // sees them uploaded: nothing to send again
  // Bob's two processes alternately send on one outbound session: consecutive indexes.
  const sent: EncryptedRoomEvent[] = [];
  for (let i = 0; i < 6; i++) {
    sent.push(
      await turn(i % 2 === 0 ? 0 : 1, async (bob) => {
        await bob.updateTrackedUsers(["@alice:x"]);
        await flush(bob);
        const claim = await bob.getMissingSessions(["@alice:x"]);
        if (claim !== undefined) await send(bob, [claim]);
        await send(bob, await bob.shareRoomKey(ROOM, members));
        const content = await bob.encryptRoomEvent(ROOM, "m.room.message", {
          msgtype: "m.text",
          body: `m${i}`,
        });
        return { event_id: hs.nextEventId(), sender: "@bob:x", type: "m.room.encrypted" as const, content };
      }),
    );
  }
  assert.equal(reloads, 6, "each turn after the other's reloaded");
  await alice.sync();
  const decrypted = [];
  for (const ev of sent) decrypted.push(await alice.machine.decryptRoomEvent(ev, ROOM));
  assert.deepEqual(
    decrypted.map((d) => d.content.body),
    sent.map((_, i) => `m${i}`),
  );
  // A process that takes over continues past the other's reserved block of indexes (as after a
  // restart): indexes skip, and the session rotates sooner, but none is ever used twice.
  const used = decrypted.map(
    (d, i) =>
      `${String((sent[i]?.content as { session_id?: unknown } | undefined)?.session_id)}:${d.messageIndex}`,
  );
  assert.equal(new Set(used).size, used.length, `no index used twice: ${used.join(" ")}`);
  // Alice answers; the process that syncs gets the room key, the other reads it after a reload.
  const reply = await alice.sendMessage(ROOM, members, "to both");
  await turn(1, async (bob) => {
    await bob.receiveSyncChanges({ ...hs.syncFor("@bob:x", "B"), nextBatch: "t1" });
    assert.equal((await bob.decryptRoomEvent(reply, ROOM)).content.body, "to both");
  });
  await turn(0, async (bob) => {
    assert.equal((await bob.decryptRoomEvent(reply, ROOM)).content.body, "to both");
    await bob.receiveSyncChanges({ ...hs.syncFor("@bob:x", "B"), nextBatch: "t2" });
  });
  // Process 1 saves without the lease after process 0 wrote under it: refused, nothing saved.
  const stale = machines[1];
  assert.ok(stale);
  await assert.rejects(
    stale.receiveSyncChanges({ ...hs.syncFor("@bob:x", "B"), nextBatch: "stale" }),
    (e) => {
      assert.ok(e instanceof StoreLockedError);
      assert.equal(e.code, "STALE");
      return true;
    },
  );
  assert.equal(await stores[0].getNextBatch(), "t2");
  for (const m of machines) await m.close();
  for (const s of stores) await s.close();
}
