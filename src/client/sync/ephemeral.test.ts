// A joined room's ephemeral events (`m.typing`, `m.receipt`) come from the server, any shape and
// size. The typing list was kept per room as sent, any strings (ill-formed, overlong, repeated),
// any number of them; it is now user IDs only, each once, at most MAX_TYPING_USERS. Receipts were
// handed to listeners as sent (a string where an object of users was documented, a user "ID"
// with a lone surrogate); they are now of the spec's shape, the rest left out.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_IDENTIFIER_LENGTH } from "../../wire/index.ts";
import { MemoryClientStore } from "../client-store/index.ts";
import { MAX_TYPING_USERS } from "../rooms/ephemeral.ts";
import { scriptedSyncClient } from "../test-support/scripted-sync.ts";

const ROOM = "!r:hs";
const sync = (next: string, events: unknown[]) =>
  JSON.stringify({ next_batch: next, rooms: { join: { [ROOM]: { ephemeral: { events } } } } });

describe("hostile ephemeral events", () => {
  it("m.typing: user IDs only, each once, at most MAX_TYPING_USERS", async () => {
    const many = Array.from({ length: MAX_TYPING_USERS * 50 }, (_, i) => `@u${i}:hs`);
    const client = await scriptedSyncClient(new MemoryClientStore(), [
      sync("s1", [
        {
          type: "m.typing",
          content: {
            user_ids: [
              "@alice:hs",
              "@alice:hs",
              "\ud800@lone:hs",
              "@lone\udc00:hs",
              `@${"x".repeat(MAX_IDENTIFIER_LENGTH)}:hs`,
              "not-a-user",
              "",
              42,
              null,
              { id: "@bob:hs" },
              "@bob:hs",
            ],
          },
        },
      ]),
      sync("s2", [{ type: "m.typing", content: { user_ids: many } }]),
      sync("s3", [{ type: "m.typing", content: { user_ids: "@alice:hs" } }]),
    ]);
    const heard: (readonly string[])[] = [];
    client.on("room.typing", (_room, users) => void heard.push(users));
    await client.syncOnce();
    const room = client.getRoom(ROOM);
    assert.ok(room);
    assert.deepEqual(room.typingUserIds, ["@alice:hs", "@bob:hs"]);
    await client.syncOnce();
    assert.equal(room.typingUserIds.length, MAX_TYPING_USERS);
    assert.deepEqual(room.typingUserIds, many.slice(0, MAX_TYPING_USERS));
    await client.syncOnce();
    assert.deepEqual(room.typingUserIds, []);
    assert.deepEqual(
      heard.map((u) => u.length),
      [2, MAX_TYPING_USERS, 0],
    );
    await client.close();
  });

  it("m.receipt: only entries of the spec's shape reach listeners", async () => {
    const client = await scriptedSyncClient(new MemoryClientStore(), [
      sync("s1", [
        {
          type: "m.receipt",
          content: {
            $good: {
              "m.read": {
                "@alice:hs": { ts: 5, thread_id: "main" },
                "@bob:hs": { ts: -1, thread_id: 7, extra: "x".repeat(1000) },
                "@lone\udc00:hs": { ts: 1 },
                "not-a-user": { ts: 1 },
                "@carol:hs": "read",
              },
              "m.read.private": "nobody",
              "\ud800": { "@alice:hs": { ts: 1 } },
              ["__proto__"]: { "@alice:hs": { ts: 2 } },
            },
            "no-sigil": { "m.read": { "@alice:hs": { ts: 1 } } },
            [`$${"x".repeat(MAX_IDENTIFIER_LENGTH)}`]: { "m.read": { "@alice:hs": { ts: 1 } } },
            $list: [1, 2],
            $empty: { "m.read": { "@lone\udc00:hs": { ts: 1 } } },
          },
        },
      ]),
      sync("s2", [{ type: "m.receipt", content: { $x: "y", $z: null } }]),
    ]);
    const heard: unknown[] = [];
    client.on("room.receipt", (_room, content) => void heard.push(content));
    await client.syncOnce();
    await client.syncOnce();
    assert.equal(heard.length, 1);
    assert.deepEqual(JSON.parse(JSON.stringify(heard[0])), {
      $good: {
        "m.read": { "@alice:hs": { ts: 5, thread_id: "main" }, "@bob:hs": {} },
        ["__proto__"]: { "@alice:hs": { ts: 2 } },
      },
    });
    assert.ok(Object.hasOwn((heard[0] as Record<string, object>).$good ?? {}, "__proto__"));
    await client.close();
  });
});
