// A homeserver naming a room "" in a sync response made the SQLite client store unreadable: the
// room was saved, and every later `restore` failed with STORE_CORRUPT (the stored room's ID failed
// validation). Room IDs holding lone surrogates were saved under U+FFFD, so two such rooms became
// one, and a token holding one came back changed after a restart. Such rooms are dropped at the
// edge, and such a token is a malformed response.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { MalformedResponseError } from "../errors.ts";
import { scriptedSyncClient } from "../test-support/scripted-sync.ts";

const client = scriptedSyncClient;

describe("room IDs and tokens the SQLite client store cannot keep", () => {
  it("are refused at the edge: the client restores, with the rooms it had", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "keyroom-room-ids-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, "client.sqlite3");
    const bodies = [
      // Written by hand: JSON.parse gives the lone surrogates back from their escapes.
      '{"next_batch":"s1","rooms":{"join":{"":{},"!a\\ud800:hs":{},"!a\\udc00:hs":{},"!ok:hs":{}}}}',
      '{"next_batch":"s2\\udfff"}',
    ];
    const first = await client(path, bodies);
    await first.syncOnce();
    await assert.rejects(first.syncOnce(), MalformedResponseError);
    assert.deepEqual(
      first.getRooms().map((r) => r.roomId),
      ["!ok:hs"],
    );
    assert.equal(first.nextBatch, "s1");
    await first.close();

    const second = await client(path, []);
    assert.deepEqual(
      second.getRooms().map((r) => r.roomId),
      ["!ok:hs"],
    );
    assert.equal(second.nextBatch, "s1");
    await second.close();
  });
});
