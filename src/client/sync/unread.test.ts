// A room's unread notification counts (`unread_notifications`, and per thread
// `unread_thread_notifications`) were parsed and dropped: an app had no badge to show. They are
// kept per room (and stored), with an event when they change.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { MAX_IDENTIFIER_LENGTH } from "../../wire/index.ts";
import type { MatrixClient } from "../client.ts";
import { MAX_THREAD_NOTIFICATION_COUNTS } from "../client-store/index.ts";
import { scriptedSyncClient } from "../test-support/scripted-sync.ts";

const sync = (next: string, join: Record<string, unknown>) =>
  JSON.stringify({ next_batch: next, rooms: { join } });
const typing = { ephemeral: { events: [{ type: "m.typing", content: { user_ids: [] } }] } };

async function tempPath(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "keyroom-unread-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return join(dir, "client.sqlite3");
}

const plain = (c: MatrixClient, roomId: string) => {
  const u = c.getRoom(roomId)?.unreadNotifications;
  return u && { n: u.notificationCount, h: u.highlightCount, threads: Object.fromEntries(u.threads) };
};

describe("unread notification counts", () => {
  it("are kept per room and thread, emitted when they change, and survive a restart", async (t) => {
    const path = await tempPath(t);
    const client = await scriptedSyncClient(path, [
      sync("s1", {
        "!r:hs": {
          unread_notifications: { notification_count: 3, highlight_count: 1 },
          unread_thread_notifications: {
            $t1: { notification_count: 2, highlight_count: 1 },
            $t2: { notification_count: 0, highlight_count: 0 },
          },
        },
        "!quiet:hs": typing,
      }),
      // The same counts again, and an entry without counts: no change.
      sync("s2", {
        "!r:hs": {
          unread_notifications: { notification_count: 3, highlight_count: 1 },
          unread_thread_notifications: { $t1: { notification_count: 2, highlight_count: 1 } },
        },
      }),
      sync("s3", { "!r:hs": typing }),
    ]);
    const heard: [string, number][] = [];
    client.on("room.unreadNotifications", (room, unread) => {
      heard.push([room.roomId, unread.notificationCount]);
    });
    await client.syncOnce();
    const expected = { n: 3, h: 1, threads: { $t1: { notificationCount: 2, highlightCount: 1 } } };
    assert.deepEqual(plain(client, "!r:hs"), expected);
    assert.deepEqual(plain(client, "!quiet:hs"), { n: 0, h: 0, threads: {} });
    await client.syncOnce();
    await client.syncOnce();
    assert.deepEqual(plain(client, "!r:hs"), expected);
    assert.deepEqual(heard, [["!r:hs", 3]]);
    await client.close();

    // Read: the room's counts come back 0, and the threads it leaves out have none.
    const again = await scriptedSyncClient(path, [
      sync("s4", { "!r:hs": { unread_notifications: { notification_count: 0, highlight_count: 0 } } }),
    ]);
    assert.deepEqual(plain(again, "!r:hs"), expected);
    again.on("room.unreadNotifications", (room, unread) => {
      heard.push([room.roomId, unread.threads.size]);
    });
    await again.syncOnce();
    assert.deepEqual(plain(again, "!r:hs"), { n: 0, h: 0, threads: {} });
    assert.deepEqual(heard, [
      ["!r:hs", 3],
      ["!r:hs", 0],
    ]);
    const read = again.getRoom("!r:hs")?.toSnapshot();
    await again.close();
    // Counts back to 0 are stored as a room that never had any: read back the same.
    const third = await scriptedSyncClient(path, []);
    assert.deepEqual(third.getRoom("!r:hs")?.toSnapshot(), read);
    await third.close();
  });

  it("from a hostile server: threads bounded, malformed counts left out but not their room", async (t) => {
    const threads: Record<string, unknown> = {};
    for (let i = 0; i < MAX_THREAD_NOTIFICATION_COUNTS + 500; i++)
      threads[`$t${i}`] = { notification_count: 1, highlight_count: 0 };
    threads.$bad = { notification_count: -1 };
    threads.$huge = { notification_count: 1e300 };
    const message = {
      event_id: "$e",
      type: "m.room.message",
      sender: "@a:evil",
      origin_server_ts: 1,
      content: { body: "hi" },
    };
    const client = await scriptedSyncClient(await tempPath(t), [
      sync("s1", {
        "!many:evil": {
          unread_notifications: { notification_count: 1 },
          unread_thread_notifications: threads,
        },
        "!bad:evil": {
          unread_notifications: { notification_count: "3", highlight_count: 1.5 },
          unread_thread_notifications: [1, 2],
          timeline: { events: [message] },
        },
      }),
    ]);
    const events: string[] = [];
    client.on("room.event", (_room, ev) => {
      events.push(ev.eventId);
    });
    await client.syncOnce();
    const many = client.getRoom("!many:evil")?.unreadNotifications;
    assert.equal(many?.threads.size, MAX_THREAD_NOTIFICATION_COUNTS);
    assert.equal(many?.threads.has("$bad"), false);
    assert.equal(many?.highlightCount, 0);
    assert.deepEqual(plain(client, "!bad:evil"), { n: 0, h: 0, threads: {} });
    assert.deepEqual(events, ["$e"]);
    await client.close();
  });

  it("from a hostile server: thread keys that are no event ID are left out, the others kept", async (t) => {
    const one = { notification_count: 1, highlight_count: 0 };
    const client = await scriptedSyncClient(await tempPath(t), [
      sync("s1", {
        "!r:evil": {
          unread_thread_notifications: {
            $root: one,
            "$old:hs": { notification_count: 2, highlight_count: 1 },
            "no-sigil": one,
            "!room:hs": one,
            "@user:hs": one,
            $: one,
            [`$${"x".repeat(MAX_IDENTIFIER_LENGTH)}`]: one,
            "$\ud800": one,
            "": one,
            " $root": one,
          },
        },
      }),
    ]);
    await client.syncOnce();
    assert.deepEqual(plain(client, "!r:evil")?.threads, {
      $root: { notificationCount: 1, highlightCount: 0 },
      "$old:hs": { notificationCount: 2, highlightCount: 1 },
    });
    await client.close();
  });
});
