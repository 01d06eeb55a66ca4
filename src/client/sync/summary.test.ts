// The room summary of /sync (`m.heroes`, `m.joined_member_count`, `m.invited_member_count`) was
// parsed and dropped: a room without a name had no name to show, and with lazy-loaded members no
// way to count them. It is kept per room (and stored), and names the room by the spec's rules.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { MAX_ROOM_HEROES, MemoryClientStore } from "../client-store/index.ts";
import type { RoomSummaryInfo } from "../rooms/room.ts";
import { SCRIPTED_SESSION, scriptedSyncClient } from "../test-support/scripted-sync.ts";

const ME = SCRIPTED_SESSION.userId;
let n = 0;
const member = (userId: string, membership: string, displayname?: string) => ({
  event_id: `$m${n++}`,
  type: "m.room.member",
  state_key: userId,
  sender: userId,
  origin_server_ts: 1,
  content: { membership, ...(displayname !== undefined ? { displayname } : {}) },
});
const sync = (next: string, join: Record<string, unknown>) =>
  JSON.stringify({ next_batch: next, rooms: { join } });

async function tempPath(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "keyroom-summary-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return join(dir, "client.sqlite3");
}

describe("the room summary", () => {
  it("is kept, names a room without a name, updates field by field and survives a restart", async (t) => {
    const path = await tempPath(t);
    const state = {
      events: [
        member(ME, "join", "Me"),
        member("@alice:hs", "join", "Alice"),
        member("@bob:hs", "join", "Twin"),
        member("@carol:hs", "invite", "Twin"),
      ],
    };
    const bodies = [
      sync("s1", {
        "!r:hs": {
          summary: {
            "m.heroes": ["@alice:hs", "@bob:hs", "@carol:hs"],
            "m.joined_member_count": 10,
            "m.invited_member_count": 1,
          },
          state,
        },
        "!alone:hs": { summary: { "m.heroes": ["@gone:hs"], "m.joined_member_count": 1 } },
        "!empty:hs": { summary: { "m.heroes": [], "m.joined_member_count": 1 } },
      }),
      // Only the counts changed: the heroes stay as they were.
      sync("s2", { "!r:hs": { summary: { "m.joined_member_count": 3, "m.invited_member_count": 1 } } }),
      // Nothing changed: no event.
      sync("s3", { "!r:hs": { summary: { "m.joined_member_count": 3 } } }),
    ];
    const client = await scriptedSyncClient(path, bodies);
    const heard: [string, RoomSummaryInfo][] = [];
    client.on("room.summary", (room, summary) => {
      heard.push([room.roomId, summary]);
    });
    await client.syncOnce();
    const room = client.getRoom("!r:hs");
    assert.ok(room);
    assert.deepEqual(room.heroes, ["@alice:hs", "@bob:hs", "@carol:hs"]);
    assert.equal(room.joinedMemberCount, 10);
    assert.equal(room.invitedMemberCount, 1);
    assert.equal(room.name, undefined);
    // Two members named Twin are told apart by their user IDs; 10 + 1 - 1 - 3 not named.
    assert.equal(room.displayName, "Alice, Twin (@bob:hs), Twin (@carol:hs) and 7 others");
    assert.equal(client.getRoom("!alone:hs")?.displayName, "Empty Room (was @gone:hs)");
    assert.equal(client.getRoom("!empty:hs")?.displayName, "Empty Room");

    await client.syncOnce();
    assert.deepEqual(room.heroes, ["@alice:hs", "@bob:hs", "@carol:hs"]);
    assert.equal(room.joinedMemberCount, 3);
    assert.equal(room.displayName, "Alice, Twin (@bob:hs) and Twin (@carol:hs)");
    await client.syncOnce();
    assert.deepEqual(
      heard.map(([id]) => id),
      ["!r:hs", "!alone:hs", "!empty:hs", "!r:hs"],
    );
    assert.equal(heard[3]?.[1].joinedMemberCount, 3);
    await client.close();

    const again = await scriptedSyncClient(path, []);
    const back = again.getRoom("!r:hs");
    assert.deepEqual(back?.summary, {
      heroes: ["@alice:hs", "@bob:hs", "@carol:hs"],
      joinedMemberCount: 3,
      invitedMemberCount: 1,
    });
    assert.equal(back?.displayName, "Alice, Twin (@bob:hs) and Twin (@carol:hs)");
    await again.close();
  });

  it("gives way to the room's name, and falls back to the members in state without a summary", async (t) => {
    const client = await scriptedSyncClient(await tempPath(t), [
      sync("s1", {
        "!named:hs": {
          summary: { "m.heroes": ["@alice:hs"], "m.joined_member_count": 2 },
          state: {
            events: [
              {
                ...member("@alice:hs", "join"),
                type: "m.room.name",
                state_key: "",
                content: { name: "Lobby" },
              },
            ],
          },
        },
        "!plain:hs": { state: { events: [member(ME, "join"), member("@zed:hs", "join", "Zed")] } },
      }),
    ]);
    await client.syncOnce();
    assert.equal(client.getRoom("!named:hs")?.displayName, "Lobby");
    const plain = client.getRoom("!plain:hs");
    assert.equal(plain?.heroes, undefined);
    assert.equal(plain?.joinedMemberCount, 2);
    assert.equal(plain?.displayName, "Zed");
    await client.close();
  });

  it("from a hostile server: a huge heroes list is cut, junk heroes dropped, a bad summary left out", async (t) => {
    const huge = Array.from({ length: 100_000 }, (_, i) => `@u${i}:evil`);
    const client = await scriptedSyncClient(await tempPath(t), [
      sync("s1", {
        "!huge:evil": { summary: { "m.heroes": huge, "m.joined_member_count": 100_001 } },
        "!junk:evil": {
          summary: { "m.heroes": [ME, 7, "not a user", "@ok:evil", "@ok:evil", `@${"x".repeat(300)}`] },
        },
        "!bad:evil": {
          summary: { "m.joined_member_count": -1, "m.heroes": ["@a:evil"] },
          timeline: {
            events: [
              {
                event_id: "$e",
                type: "m.room.message",
                sender: "@a:evil",
                origin_server_ts: 1,
                content: { body: "hi" },
              },
            ],
          },
        },
      }),
    ]);
    const events: string[] = [];
    client.on("room.event", (_room, ev) => {
      events.push(ev.eventId);
    });
    await client.syncOnce();
    const heroes = client.getRoom("!huge:evil")?.heroes;
    assert.equal(heroes?.length, MAX_ROOM_HEROES);
    assert.equal(heroes?.[0], "@u0:evil");
    assert.equal(
      client.getRoom("!huge:evil")?.displayName,
      "@u0:evil, @u1:evil, @u2:evil, @u3:evil, @u4:evil and 99995 others",
    );
    assert.deepEqual(client.getRoom("!junk:evil")?.heroes, ["@ok:evil"]);
    // The room stays, its timeline too; the summary it sent is not kept.
    assert.deepEqual(client.getRoom("!bad:evil")?.summary, {});
    assert.deepEqual(events, ["$e"]);
    await client.close();
  });

  it("takes a new heroes list that joins to the same text as the one kept", async () => {
    // "@a:evil\n@b:evil" is one hero, then two: the first is no user ID (and dropped), but the
    // lists are compared item by item, whatever the hero IDs hold.
    const client = await scriptedSyncClient(new MemoryClientStore(), [
      sync("s1", {
        "!r:evil": { summary: { "m.heroes": ["@a:evil\n@b:evil"], "m.joined_member_count": 3 } },
      }),
      sync("s2", { "!r:evil": { summary: { "m.heroes": ["@a:evil", "@b:evil"] } } }),
    ]);
    const heard: (readonly string[] | undefined)[] = [];
    client.on("room.summary", (_room, summary) => void heard.push(summary.heroes));
    await client.syncOnce();
    await client.syncOnce();
    assert.deepEqual(client.getRoom("!r:evil")?.heroes, ["@a:evil", "@b:evil"]);
    assert.deepEqual(heard, [[], ["@a:evil", "@b:evil"]]);
    await client.close();
  });
});
