// A room without a name is named after its members in English only ("Alice and 3 others", "Empty
// Room"). The client's `roomNameFormatter` words it instead, from the names, the count of others
// and the case; rooms restored from the client store use it too.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryClientStore } from "../client-store/index.ts";
import { englishRoomName, type RoomNameParts } from "../rooms/display-name.ts";
import { restoredMemoryClient } from "../test-support/scripted-sync.ts";

const member = (userId: string, displayname: string) => ({
  event_id: `$${userId}`,
  type: "m.room.member",
  state_key: userId,
  sender: userId,
  origin_server_ts: 1,
  content: { membership: "join", displayname },
});

const body = JSON.stringify({
  next_batch: "s1",
  rooms: {
    join: {
      "!r:hs": {
        summary: { "m.heroes": ["@alice:hs", "@bob:hs"], "m.joined_member_count": 6 },
        state: { events: [member("@alice:hs", "Alice"), member("@bob:hs", "Bob")] },
      },
      "!alone:hs": { summary: { "m.heroes": ["@gone:hs"], "m.joined_member_count": 1 } },
      "!empty:hs": { summary: { "m.heroes": [], "m.joined_member_count": 1 } },
      "!named:hs": {
        state: {
          events: [
            {
              event_id: "$n",
              type: "m.room.name",
              state_key: "",
              sender: "@a:hs",
              origin_server_ts: 1,
              content: { name: "Salon" },
            },
          ],
        },
      },
    },
  },
});

function french(parts: RoomNameParts): string {
  const list = (names: readonly string[], others: number) => {
    const all = others > 0 ? [...names, `${others} autre${others > 1 ? "s" : ""}`] : [...names];
    return all.length <= 1 ? (all[0] ?? "") : `${all.slice(0, -1).join(", ")} et ${all[all.length - 1]}`;
  };
  switch (parts.kind) {
    case "members":
      return list(parts.names, parts.others);
    case "former_members":
      return `Salon vide (était ${list(parts.names, parts.others)})`;
    case "empty":
      return "Salon vide";
  }
}

describe("the client's roomNameFormatter", () => {
  it("words the names made from members, after a restart too; a room's own name stays", async () => {
    const store = new MemoryClientStore();
    const seen: RoomNameParts[] = [];
    const roomNameFormatter = (parts: RoomNameParts) => {
      seen.push(parts);
      return french(parts);
    };
    const bodies = [body];
    const fetch = async () => new Response(bodies.shift() ?? '{"next_batch":"end"}');
    const client = await restoredMemoryClient({ store, fetch, fillTimelineGaps: false, roomNameFormatter });
    await client.syncOnce();
    const names = () =>
      ["!r:hs", "!alone:hs", "!empty:hs", "!named:hs"].map((id) => client.getRoom(id)?.displayName);
    const expected = ["Alice, Bob et 3 autres", "Salon vide (était @gone:hs)", "Salon vide", "Salon"];
    assert.deepEqual(names(), expected);
    assert.deepEqual(seen.slice(0, 3), [
      { kind: "members", names: ["Alice", "Bob"], others: 3 },
      { kind: "former_members", names: ["@gone:hs"], others: 0 },
      { kind: "empty" },
    ]);
    await client.close();

    const again = await restoredMemoryClient({ store, fetch, fillTimelineGaps: false, roomNameFormatter });
    assert.deepEqual(
      ["!r:hs", "!alone:hs", "!empty:hs", "!named:hs"].map((id) => again.getRoom(id)?.displayName),
      expected,
      "rooms read back from the client store",
    );
    await again.close();
  });

  it("defaults to the English wording", () => {
    assert.equal(englishRoomName({ kind: "members", names: ["Alice"], others: 3 }), "Alice and 3 others");
    assert.equal(englishRoomName({ kind: "members", names: [], others: 1 }), "1 other");
    assert.equal(
      englishRoomName({ kind: "former_members", names: ["A", "B"], others: 0 }),
      "Empty Room (was A and B)",
    );
    assert.equal(englishRoomName({ kind: "empty" }), "Empty Room");
  });
});
