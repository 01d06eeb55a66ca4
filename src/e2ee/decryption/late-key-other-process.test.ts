// Two processes (or tabs) on one crypto store: an event one of them could not decrypt waits there
// for its key, but the key came to the other one (whichever handles a sync's to-device messages
// takes them). The first only reloaded, never retried the event: it stayed undecryptable for the
// application for good. `reload()` now hands back the waiting events whose key the store holds.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { SqliteCryptoStore } from "../../store/index.ts";
import type { CryptoStore } from "../../store/store.ts";
import { OlmMachine } from "../machine.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";

const ALICE = "@alice:x";
const BOB = "@bob:x";
const ROOM = "!room:x";

describe("an event waiting for its key in one process", () => {
  const directory = mkdtempSync(join(tmpdir(), "keyroom-late-key-elsewhere-"));
  after(() => rmSync(directory, { recursive: true, force: true }));

  it("is handed back by reload() once the other process stored the key", async () => {
    const key = randomBytes(32);
    const open = () => SqliteCryptoStore.open({ userId: ALICE, deviceId: "A", directory, key });
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: BOB, deviceId: "B" });
    hs.device(ALICE, "A");
    const stores: CryptoStore[] = [await open(), await open()];
    const machines: (OlmMachine | undefined)[] = [undefined, undefined];
    /** One unit of work of process `n`: the lease, a reload when another wrote since, the work. */
    const turn = async <T>(n: 0 | 1, work: (alice: OlmMachine, reloaded: unknown) => Promise<T>) => {
      const store = stores[n] as CryptoStore;
      const grant = await store.tryAcquireLease(60_000);
      assert.ok(grant);
      try {
        let alice = machines[n];
        let reloaded: unknown;
        if (alice === undefined) {
          alice = await OlmMachine.open({ userId: ALICE, deviceId: "A", store });
          machines[n] = alice;
        } else if (grant.stale) {
          reloaded = await alice.reload();
        }
        return await work(alice, reloaded);
      } finally {
        await store.releaseLease();
      }
    };
    const flush = async (alice: OlmMachine) => {
      for (let i = 0; i < 5; i++) {
        const requests = await alice.outgoingRequests();
        if (requests.length === 0) return;
        for (const r of requests) await alice.markRequestAsSent(r, hs.handle(ALICE, "A", r));
      }
    };
    await turn(0, flush); // device and one-time keys uploaded
    const event = await bob.sendMessage(ROOM, joined(ALICE, BOB), "its key comes to the other one");
    // Process one sees the event first: no key yet.
    await turn(0, async (alice) => {
      const first = await alice.tryDecryptRoomEvent(event, ROOM);
      assert.ok(!first.ok && first.error.code === "UNKNOWN_SESSION");
    });
    // Process two handles the sync that brings the key.
    await turn(1, async (alice) => {
      const { roomKeys } = await alice.receiveSyncChanges({ ...hs.syncFor(ALICE, "A"), nextBatch: "s1" });
      assert.equal(roomKeys.length, 1);
    });
    // Process one's next unit reloads: the event decrypts now, and is handed back.
    await turn(0, async (_alice, reloaded) => {
      assert.deepEqual(
        (reloaded as { eventId: string; content: { body?: unknown } }[] | undefined)?.map((d) => [
          d.eventId,
          d.content.body,
        ]),
        [[event.event_id, "its key comes to the other one"]],
      );
    });
    for (const m of machines) await m?.close();
    for (const s of stores) await s.close();
  });
});
