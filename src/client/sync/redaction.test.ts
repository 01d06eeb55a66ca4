import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { MemoryClientStore } from "../client-store/index.ts";
import { INSTANT_CLOCK } from "../test-support/scripted-sync.ts";

const ROOM = "!r:hs";

const ev = (
  id: string,
  type: string,
  content: Record<string, unknown>,
  extra: Record<string, unknown> = {},
) => ({
  event_id: id,
  type,
  sender: "@a:hs",
  origin_server_ts: 1,
  content,
  ...extra,
});

/** A client whose syncs answer the given responses in turn. */
async function clientWith(responses: unknown[], store = new MemoryClientStore()) {
  let n = 0;
  const fetch = async (url: string): Promise<Response> => {
    if (new URL(url).pathname.endsWith("/sync"))
      return new Response(JSON.stringify(responses[n++]), { status: 200 });
    return new Response(JSON.stringify({ errcode: "M_UNRECOGNIZED" }), { status: 404 });
  };
  await store.saveSession({ homeserverUrl: "https://hs", userId: "@me:hs", deviceId: "D", accessToken: "t" });
  const client = new MatrixClient({ homeserverUrl: "https://hs", store, fetch, clock: INSTANT_CLOCK });
  await client.restore();
  return client;
}

describe("redactions of room state", () => {
  for (const version of ["10", "11"]) {
    it(`strip the current state event as the redaction algorithm does (room version ${version})`, async () => {
      const redacts = (id: string, target: string) =>
        version === "11"
          ? ev(id, "m.room.redaction", { redacts: target, reason: "oops" })
          : ev(id, "m.room.redaction", { reason: "oops" }, { redacts: target });
      const store = new MemoryClientStore();
      const client = await clientWith(
        [
          {
            next_batch: "s1",
            rooms: {
              join: {
                [ROOM]: {
                  state: {
                    events: [
                      ev(
                        "$create",
                        "m.room.create",
                        {
                          room_version: version,
                          creator: "@a:hs",
                          predecessor: { room_id: "!old:hs" },
                        },
                        { state_key: "" },
                      ),
                      ev("$me", "m.room.member", { membership: "join" }, { state_key: "@me:hs" }),
                    ],
                  },
                  timeline: {
                    events: [
                      ev("$name", "m.room.name", { name: "Secret plans" }, { state_key: "" }),
                      ev(
                        "$b",
                        "m.room.member",
                        { membership: "join", displayname: "Bee" },
                        { state_key: "@b:hs" },
                      ),
                      ev(
                        "$tomb",
                        "m.room.tombstone",
                        { replacement_room: "!elsewhere:hs" },
                        { state_key: "" },
                      ),
                    ],
                  },
                },
              },
            },
          },
          {
            next_batch: "s2",
            rooms: {
              join: {
                [ROOM]: {
                  timeline: {
                    events: [
                      redacts("$r1", "$name"),
                      redacts("$r2", "$b"),
                      redacts("$r3", "$tomb"),
                      redacts("$r4", "$create"),
                    ],
                  },
                },
              },
            },
          },
        ],
        store,
      );
      await client.syncOnce();
      let room = client.getRoom(ROOM);
      assert.equal(room?.name, "Secret plans");
      assert.equal(room?.tombstone?.replacementRoomId, "!elsewhere:hs");
      assert.deepEqual(room?.predecessor, { roomId: "!old:hs" });
      await client.syncOnce();
      room = client.getRoom(ROOM);
      assert.equal(room?.name, undefined, "a redacted m.room.name names the room no more");
      assert.deepEqual(room?.getMember("@b:hs"), { userId: "@b:hs", membership: "join" });
      assert.equal(room?.tombstone, undefined, "a redacted tombstone points nowhere");
      assert.deepEqual(
        room?.predecessor,
        version === "11" ? { roomId: "!old:hs" } : undefined,
        "room version 11 keeps all of m.room.create, earlier ones only creator",
      );
      assert.equal(room?.getState("m.room.name")?.unsigned?.redacted_because?.event_id, "$r1");
      // What is stored is the redacted state too.
      const saved = (await store.loadSync())?.rooms.find((r) => r.roomId === ROOM);
      const name = saved?.state.find((e) => e.type === "m.room.name");
      assert.deepEqual(name?.content, {});
    });
  }

  it("leaves a state event alone when the redaction names an event no longer current", async () => {
    const client = await clientWith([
      {
        next_batch: "s1",
        rooms: {
          join: {
            [ROOM]: {
              timeline: {
                events: [
                  ev("$me", "m.room.member", { membership: "join" }, { state_key: "@me:hs" }),
                  ev("$n1", "m.room.name", { name: "Old" }, { state_key: "" }),
                  ev("$n2", "m.room.name", { name: "New" }, { state_key: "" }),
                  ev("$r", "m.room.redaction", {}, { redacts: "$n1" }),
                ],
              },
            },
          },
        },
      },
    ]);
    await client.syncOnce();
    assert.equal(client.getRoom(ROOM)?.name, "New");
  });

  it("leaves state alone for a redaction its sender may not make, as servers do", async () => {
    const other = (id: string, sender: string, content: Record<string, unknown>, extra = {}) => ({
      ...ev(id, "m.room.redaction", content, extra),
      sender,
    });
    const client = await clientWith([
      {
        next_batch: "s1",
        rooms: {
          join: {
            [ROOM]: {
              timeline: {
                events: [
                  ev("$create", "m.room.create", { room_version: "10", creator: "@a:hs" }, { state_key: "" }),
                  ev("$me", "m.room.member", { membership: "join" }, { state_key: "@me:hs" }),
                  ev(
                    "$pl",
                    "m.room.power_levels",
                    { users: { "@a:hs": 100, "@mod:other": 50 } },
                    { state_key: "" },
                  ),
                  ev("$name", "m.room.name", { name: "Lobby" }, { state_key: "" }),
                  ev("$topic", "m.room.topic", { topic: "Talk" }, { state_key: "" }),
                  ev("$tomb", "m.room.tombstone", { replacement_room: "!next:hs" }, { state_key: "" }),
                  // Another server's user without the redact level.
                  other("$r1", "@evil:other", {}, { redacts: "$name" }),
                  // Before room version 11 `content.redacts` is free content: its own message is what it redacts.
                  other("$r2", "@b:hs", { redacts: "$tomb" }, { redacts: "$own" }),
                  // Another server's moderator may.
                  other("$r3", "@mod:other", {}, { redacts: "$topic" }),
                ],
              },
            },
          },
        },
      },
    ]);
    await client.syncOnce();
    const room = client.getRoom(ROOM);
    assert.equal(room?.name, "Lobby");
    assert.equal(room?.tombstone?.replacementRoomId, "!next:hs");
    assert.equal(room?.topic, undefined);
  });
});
