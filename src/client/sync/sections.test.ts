// A room can come in two sections of one response: left (or kicked) and invited again since the
// last sync, Synapse sends its `leave` entry (the timeline up to the leave) and its `invite` entry.
// The invitation is the newer: the room handled as left after it lost the invitation for good.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { SCRIPTED_SESSION, scriptedSyncClient } from "../test-support/scripted-sync.ts";

const me = SCRIPTED_SESSION.userId;
const ROOM = "!r:hs";
const ownMember = (id: string, membership: string, sender: string = me) => ({
  event_id: id,
  type: "m.room.member",
  state_key: me,
  sender,
  origin_server_ts: 1,
  content: { membership },
});

describe("a room in the leave and invite sections of one response", () => {
  it("ends invited, after a left, and stays so after a restart", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "keyroom-sections-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, "client.sqlite3");
    const client = await scriptedSyncClient(path, [
      JSON.stringify({
        next_batch: "s1",
        rooms: { join: { [ROOM]: { timeline: { events: [ownMember("$j", "join")] } } } },
      }),
      JSON.stringify({
        next_batch: "s2",
        rooms: {
          invite: {
            [ROOM]: {
              invite_state: {
                events: [
                  { type: "m.room.name", state_key: "", sender: "@mod:hs", content: { name: "Again" } },
                  {
                    type: "m.room.member",
                    state_key: me,
                    sender: "@mod:hs",
                    content: { membership: "invite" },
                  },
                ],
              },
            },
          },
          leave: { [ROOM]: { timeline: { events: [ownMember("$k", "leave", "@mod:hs")] } } },
        },
      }),
    ]);
    const changes: string[] = [];
    client.on("room.myMembership", (_room, membership, prev) => void changes.push(`${prev}->${membership}`));
    const invites: (string | undefined)[] = [];
    client.on("room.invite", (_room, inviter) => void invites.push(inviter));
    await client.syncOnce();
    await client.syncOnce();
    const room = client.getRoom(ROOM);
    assert.equal(room?.membership, "invite");
    assert.equal(room?.name, "Again");
    assert.deepEqual(changes, ["undefined->join", "join->leave", "leave->invite"]);
    assert.deepEqual(invites, ["@mod:hs"]);
    await client.close();
    const again = await scriptedSyncClient(path, []);
    assert.equal(again.getRoom(ROOM)?.membership, "invite");
    assert.equal(again.getRoom(ROOM)?.inviteState.length, 2);
    await again.close();
  });
});
