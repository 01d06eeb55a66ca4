import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { randomBytes } from "../crypto/primitives/index.ts";
import { SqliteCryptoStore, StoreLockedError } from "../store/index.ts";
import type { EncryptedRoomEvent } from "./decryption/room-events.ts";
import { OlmMachine } from "./machine.ts";
import { FakeHomeserver, joined, TestClient } from "./test-support/fake-homeserver.ts";

const ROOM = "!room:x";

describe("the machine on SQLite", () => {
  const directory = mkdtempSync(join(tmpdir(), "keyroom-e2ee-"));
  after(() => rmSync(directory, { recursive: true, force: true }));

  it("keeps every key across a restart", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    const key = randomBytes(32);
    const open = () => SqliteCryptoStore.open({ userId: "@bob:x", deviceId: "B", directory, key });
    let store = await open();
    let bob = await OlmMachine.open({ userId: "@bob:x", deviceId: "B", store });
    hs.device("@bob:x", "B");
    const flush = async () => {
      for (let i = 0; i < 5; i++) {
        const requests = await bob.outgoingRequests();
        if (requests.length === 0) return;
        for (const r of requests) await bob.markRequestAsSent(r, hs.handle("@bob:x", "B", r));
      }
    };
    await flush();
    const members = joined("@alice:x", "@bob:x");
    const first = await alice.sendMessage(ROOM, members, "first");
    await bob.receiveSyncChanges({ ...hs.syncFor("@bob:x", "B"), nextBatch: "s1" });
    await flush();
    assert.equal((await bob.decryptRoomEvent(first, ROOM)).content.body, "first");

    await bob.close();
    await store.close();
    store = await open();
    assert.equal(await store.getNextBatch(), "s1");
    bob = await OlmMachine.open({ userId: "@bob:x", deviceId: "B", store });
    assert.equal((await bob.decryptRoomEvent(first, ROOM)).content.body, "first");
    const second = await alice.sendMessage(ROOM, members, "second");
    await bob.receiveSyncChanges({ ...hs.syncFor("@bob:x", "B"), nextBatch: "s2" });
    assert.equal((await bob.decryptRoomEvent(second, ROOM)).content.body, "second");
    await assert.rejects(bob.decryptRoomEvent({ ...first, event_id: "$replay" }, ROOM), { code: "REPLAYED" });
    await bob.close();
    await store.close();
  });

  it("two machines on one store take turns through the lease: a stale one reloads, or is refused", async () => {
    const shared = mkdtempSync(join(tmpdir(), "keyroom-e2ee-shared-"));
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    const key = randomBytes(32);
    const open = () => SqliteCryptoStore.open({ userId: "@bob:x", deviceId: "B", directory: shared, key });
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
    });
    // Process 1 saves without the lease after process 0 took it: refused, nothing saved.
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
    assert.equal(await stores[0].getNextBatch(), "t1");
    for (const m of machines) await m.close();
    for (const s of stores) await s.close();
    rmSync(shared, { recursive: true, force: true });
  });
});
