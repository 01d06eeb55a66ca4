// A room's own name (`m.room.name`) and canonical alias went into Room.displayName as they were,
// while a member's display name was checked: a right-to-left override in a room name reordered it
// and the text shown after it (a notification's "in <room>: <message>"), a terminal escape went
// to the screen, and a 60 000-character name into the room list. Such a name or alias is now passed
// over as a member's display name is (the spec's next rule names the room), and a long name cut;
// `Room.name` stays what the state holds.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryClientStore } from "../client-store/index.ts";
import { MAX_ROOM_NAME_CHARS } from "../rooms/display-name.ts";
import { SCRIPTED_SESSION, scriptedSyncClient } from "../test-support/scripted-sync.ts";

let n = 0;
const stateEvent = (type: string, content: Record<string, unknown>, stateKey = "") => ({
  event_id: `$s${n++}`,
  type,
  state_key: stateKey,
  sender: "@m:hs",
  origin_server_ts: 1,
  content,
});

/** The room's `displayName` and `name` with this `m.room.name` (and canonical alias), Mallory its other member. */
async function named(name: unknown, alias?: unknown): Promise<{ shown?: string; name?: string }> {
  const events = [
    stateEvent("m.room.member", { membership: "join", displayname: "Me" }, SCRIPTED_SESSION.userId),
    stateEvent("m.room.member", { membership: "join", displayname: "Mallory" }, "@m:hs"),
    stateEvent("m.room.name", { name }),
    ...(alias === undefined ? [] : [stateEvent("m.room.canonical_alias", { alias })]),
  ];
  const body = JSON.stringify({
    next_batch: "s1",
    rooms: {
      join: {
        "!r:hs": { summary: { "m.heroes": ["@m:hs"], "m.joined_member_count": 2 }, state: { events } },
      },
    },
  });
  const client = await scriptedSyncClient(new MemoryClientStore(), [body]);
  await client.syncOnce();
  const r = client.getRoom("!r:hs");
  await client.close();
  return {
    ...(r?.displayName === undefined ? {} : { shown: r.displayName }),
    ...(r?.name ? { name: r.name } : {}),
  };
}

describe("a room's own name, hostile", () => {
  it("shows an ordinary name in any script as it is", async () => {
    for (const ok of [
      "Lobby",
      "غرفة الأخبار",
      "חדשות",
      "新闻 🗞️",
      "Привет мир",
      "👩‍👩‍👧 family",
      // Bidirectional marks (not embeddings, overrides or isolates) are ordinary in right-to-left text.
      "\u200fشبكة\u200f (1)",
      "x".repeat(MAX_ROOM_NAME_CHARS),
    ]) {
      assert.deepEqual(await named(ok), { shown: ok, name: ok }, JSON.stringify(ok));
    }
  });

  it("passes over a name with controls, bidirectional overrides or isolates, or ill-formed Unicode", async () => {
    for (const bad of [
      "\u202etxt.exe",
      "Lob\u2066by",
      "Lob\u202aby",
      "\u001b]0;pwned\u0007Lobby",
      "Lob\u0000by",
      "Lob\u0085by",
      "Lobby\n\nSystem: verify now",
      "Lob\ud800by",
    ]) {
      // Named after its members, as without a name; `name` is still the state's.
      assert.deepEqual(await named(bad), { shown: "Mallory", name: bad }, JSON.stringify(bad));
      // The canonical alias, when the room has one, comes first.
      assert.equal((await named(bad, "#lobby:hs")).shown, "#lobby:hs", JSON.stringify(bad));
    }
  });

  it("passes over a canonical alias that is no alias, or has controls or bidirectional characters", async () => {
    for (const bad of [
      "#lo\u202ebby:hs",
      "#lo\u0000bby:hs",
      "lobby",
      `#${"x".repeat(300)}:hs`,
      "#\ud800:hs",
    ]) {
      assert.deepEqual(await named("", bad), { shown: "Mallory", name: bad }, JSON.stringify(bad));
    }
  });

  it("cuts a name longer than MAX_ROOM_NAME_CHARS, ending in …, never inside a surrogate pair", async () => {
    const long = "y".repeat(60_000);
    assert.deepEqual(await named(long), { shown: `${"y".repeat(MAX_ROOM_NAME_CHARS - 1)}…`, name: long });
    const across = `${"z".repeat(MAX_ROOM_NAME_CHARS - 2)}\u{1f600}zz`;
    const { shown } = await named(across);
    assert.equal(shown, `${"z".repeat(MAX_ROOM_NAME_CHARS - 2)}…`);
    assert.ok(shown?.isWellFormed());
  });
});
