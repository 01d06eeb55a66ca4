import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { randomBytes } from "../crypto/primitives/index.ts";
import { SqliteCryptoStore } from "../store/index.ts";
import { OlmMachine } from "./machine.ts";
import { FakeHomeserver, joined, TestClient } from "./test-support/fake-homeserver.ts";
import { twoEnginesOnOneStore } from "./test-support/shared-store.ts";

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
    const key = randomBytes(32);
    try {
      await twoEnginesOnOneStore(() =>
        SqliteCryptoStore.open({ userId: "@bob:x", deviceId: "B", directory: shared, key }),
      );
    } finally {
      rmSync(shared, { recursive: true, force: true });
    }
  });
});
