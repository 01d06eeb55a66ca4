// Which users are tracked only because they sent us to-device messages (and in what order) is
// stored with each tracked user, so MAX_TRACKED_SENDERS still bounds them after a restart: a flood
// after reopening gives up the senders tracked longest ago, before or after the restart, and never
// a room member — nor a sender who has since become one. On each back end.
import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { randomBytes } from "../../crypto/primitives/index.ts";
import {
  type CryptoStore,
  IndexedDbCryptoStore,
  MemoryCryptoStore,
  MemoryStoreData,
  SqliteCryptoStore,
} from "../../store/index.ts";
import { OlmMachine } from "../machine.ts";
import { FakeHomeserver } from "../test-support/fake-homeserver.ts";
import { undecryptableFrom } from "../test-support/values.ts";
import { MAX_TRACKED_SENDERS } from "./manager.ts";

const BOB = "@bob:x";
const ROOM = "!encrypted:x";
const directory = mkdtempSync(join(tmpdir(), "keyroom-senders-"));
after(() => rmSync(directory, { recursive: true, force: true }));

/** Opens the same store again each time it is called (a restart). */
function backEnds(): { name: string; open: () => Promise<CryptoStore> }[] {
  const data = new MemoryStoreData();
  const key = randomBytes(32);
  const dir = mkdtempSync(join(directory, "db-"));
  const idbName = `keyroom-senders-${process.pid}`;
  return [
    { name: "memory", open: () => MemoryCryptoStore.open({ userId: BOB, deviceId: "B", data }) },
    {
      name: "SQLite",
      open: () => SqliteCryptoStore.open({ userId: BOB, deviceId: "B", directory: dir, key }),
    },
    {
      name: "IndexedDB",
      open: () => IndexedDbCryptoStore.open({ userId: BOB, deviceId: "B", name: idbName, key }),
    },
  ];
}

describe("users tracked only as senders, across restarts", () => {
  for (const { name, open } of backEnds()) {
    it(`stay bounded by MAX_TRACKED_SENDERS, oldest first, room members kept (${name})`, async () => {
      const hs = new FakeHomeserver();
      hs.device("@alice:x", "A");
      hs.device(BOB, "B");
      let store = await open();
      let bob = await OlmMachine.open({ userId: BOB, deviceId: "B", store });
      let batch = 0;
      const flush = async () => {
        for (let i = 0; i < 10; i++) {
          const requests = await bob.outgoingRequests();
          if (requests.length === 0) return;
          for (const r of requests) await bob.markRequestAsSent(r, hs.handle(BOB, "B", r));
        }
      };
      const send = async (senders: readonly string[]) => {
        for (let start = 0; start < senders.length; start += 250) {
          const toDevice = senders.slice(start, start + 250).map((s) => undecryptableFrom(s, bob));
          await bob.receiveSyncChanges({ toDevice, nextBatch: `s${++batch}` });
          await flush();
        }
      };
      const restart = async () => {
        await bob.close();
        await store.close();
        store = await open();
        bob = await OlmMachine.open({ userId: BOB, deviceId: "B", store });
        await flush();
      };
      const tracked = async () => new Set((await store.getTrackedUsers()).map((u) => u.userId));
      const spam = (i: number) => `@spam${i}:evil`;
      try {
        await bob.setRoomSettings(ROOM, { algorithm: "m.megolm.v1.aes-sha2" });
        await bob.receiveRoomMembership([{ roomId: ROOM, userId: "@alice:x", membership: "join" }]);
        // Carol writes first (reaching the bound exactly), then joins our encrypted room.
        await send([
          "@carol:x",
          "@alice:x",
          ...Array.from({ length: MAX_TRACKED_SENDERS - 1 }, (_, i) => spam(i)),
        ]);
        await restart();
        await bob.receiveRoomMembership([{ roomId: ROOM, userId: "@carol:x", membership: "join" }]);
        await restart();
        assert.equal((await tracked()).size, MAX_TRACKED_SENDERS + 2, "nobody given up yet");

        // After the restarts: carol is a member now, so the senders spam0.. go first.
        await send(Array.from({ length: 10 }, (_, i) => `@new${i}:evil`));
        let now = await tracked();
        for (const member of [BOB, "@alice:x", "@carol:x"]) assert.ok(now.has(member), member);
        assert.ok(!now.has(spam(8)), "the senders tracked longest ago were given up");
        assert.ok(now.has(spam(9)) && now.has("@new9:evil"));
        assert.equal(now.size, MAX_TRACKED_SENDERS + 3);

        // The new senders were numbered after the old ones: the next to go is still an old one.
        await restart();
        await send(["@one-more:evil"]);
        now = await tracked();
        assert.ok(!now.has(spam(9)) && now.has(spam(10)) && now.has("@new0:evil"));
        assert.ok(now.has("@carol:x") && now.has("@alice:x"));
        assert.equal(now.size, MAX_TRACKED_SENDERS + 3);
      } finally {
        await bob.close();
        await store.close();
      }
    });
  }
});
