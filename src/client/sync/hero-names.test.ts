// A room without a name is named after its heroes' member display names, which their senders
// choose. Those went into Room.displayName as they were: a right-to-left override reordered the
// whole name shown, a lone surrogate or a 60 000-character name went into it, and a member named
// "@alice:hs" passed as Alice. Such names now show as the user ID, or with it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryClientStore } from "../client-store/index.ts";
import { MAX_ROOM_NAME_MEMBER_CHARS } from "../rooms/display-name.ts";
import { SCRIPTED_SESSION, scriptedSyncClient } from "../test-support/scripted-sync.ts";

let n = 0;
const member = (userId: string, displayname: string) => ({
  event_id: `$m${n++}`,
  type: "m.room.member",
  state_key: userId,
  sender: userId,
  origin_server_ts: 1,
  content: { membership: "join", displayname },
});

async function nameOf(displayname: string): Promise<string | undefined> {
  const body = JSON.stringify({
    next_batch: "s1",
    rooms: {
      join: {
        "!r:hs": {
          summary: { "m.heroes": ["@m:hs"], "m.joined_member_count": 2 },
          state: { events: [member(SCRIPTED_SESSION.userId, "Me"), member("@m:hs", displayname)] },
        },
      },
    },
  });
  const client = await scriptedSyncClient(new MemoryClientStore(), [body]);
  await client.syncOnce();
  const name = client.getRoom("!r:hs")?.displayName;
  await client.close();
  return name;
}

describe("a room named after its heroes, with hostile display names", () => {
  it("shows an ordinary name as it is", async () => {
    assert.equal(await nameOf("Mallory 🙂"), "Mallory 🙂");
    assert.equal(
      await nameOf("x".repeat(MAX_ROOM_NAME_MEMBER_CHARS)),
      "x".repeat(MAX_ROOM_NAME_MEMBER_CHARS),
    );
  });

  it("shows the user ID for a name with controls, bidirectional characters or ill-formed Unicode", async () => {
    for (const bad of ["\u202eecilA", "Al\u2066ice", "\u001b[31mAlice", "Al\u0085ice", "Al\ud800ice"]) {
      assert.equal(await nameOf(bad), "@m:hs", JSON.stringify(bad));
    }
  });

  it("shows the user ID for a name over MAX_ROOM_NAME_MEMBER_CHARS", async () => {
    assert.equal(await nameOf("x".repeat(60_000)), "@m:hs");
  });

  it("tells a name that reads as a user ID, or has invisible characters, apart", async () => {
    assert.equal(await nameOf("@alice:hs"), "@alice:hs (@m:hs)");
    for (const hidden of [
      "Alice\u200b",
      "Al\u200dice",
      "Alice\u200f",
      "Ali\u2060ce",
      "\ufeffAlice",
      "Alice\u061c",
    ]) {
      assert.equal(await nameOf(hidden), `${hidden} (@m:hs)`, JSON.stringify(hidden));
    }
  });

  it("names no member by a user ID out of the spec's grammar (controls, bidirectional characters, spaces)", async () => {
    const bad = ["@\u202eevil:hs", "@e\u0000vil:hs", "@e vil:hs", "@évil:hs", "@evil"];
    const body = JSON.stringify({
      next_batch: "s1",
      rooms: {
        join: {
          // Heroes with no member event: the user ID is all there is to show.
          "!heroes:hs": { summary: { "m.heroes": [...bad, "@ok:hs"], "m.joined_member_count": 3 } },
          // No summary: the members the state holds stand in for heroes.
          "!state:hs": {
            state: {
              events: [
                member(SCRIPTED_SESSION.userId, "Me"),
                ...bad.map((id) => ({ ...member(id, ""), content: { membership: "join" } })),
                { ...member("@ok:hs", ""), content: { membership: "join" } },
              ],
            },
          },
        },
      },
    });
    const client = await scriptedSyncClient(new MemoryClientStore(), [body]);
    await client.syncOnce();
    assert.deepEqual(client.getRoom("!heroes:hs")?.heroes, ["@ok:hs"]);
    assert.equal(client.getRoom("!heroes:hs")?.displayName, "@ok:hs and 1 other");
    assert.equal(client.getRoom("!state:hs")?.displayName, `@ok:hs and ${bad.length} others`);
    await client.close();
  });
});
