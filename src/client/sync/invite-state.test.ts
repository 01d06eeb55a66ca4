// An invitation's stripped state is written by the inviting server, and anyone can invite us: the
// client kept (and stored, for as long as the invitation stood) every event of it, any number and
// any size. It keeps at most MAX_INVITE_STATE_EVENTS events of MAX_INVITE_STATE_CHARS together,
// our own membership event (which names the inviter) first.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { StrippedStateEvent } from "../../wire/index.ts";
import type { MatrixClient } from "../client.ts";
import { MAX_INVITE_STATE_CHARS, MAX_INVITE_STATE_EVENTS } from "../rooms/room.ts";
import { SCRIPTED_SESSION, scriptedSyncClient } from "../test-support/scripted-sync.ts";

const client = scriptedSyncClient;

const stripped = (
  type: string,
  stateKey: string,
  content: Record<string, unknown>,
  sender = "@spam:evil",
) => ({
  type,
  state_key: stateKey,
  sender,
  content,
});

describe("an invitation's stripped state", () => {
  it("is bounded in events and size, our membership (the inviter) kept, also after a restart", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "keyroom-invite-state-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, "client.sqlite3");
    const events = [
      stripped("m.room.name", "", { name: "hello" }),
      ...Array.from({ length: 20_000 }, (_, i) => stripped("x.junk", `k${i}`, { n: i })),
      stripped("m.room.member", SCRIPTED_SESSION.userId, { membership: "invite" }, "@inviter:evil"),
    ];
    const big = [
      stripped("m.room.member", SCRIPTED_SESSION.userId, { membership: "invite" }, "@inviter:evil"),
      ...Array.from({ length: 10 }, (_, i) => stripped("x.big", `b${i}`, { pad: "a".repeat(20_000) })),
    ];
    const body = JSON.stringify({
      next_batch: "s1",
      rooms: {
        invite: {
          "!many:evil": { invite_state: { events } },
          "!big:evil": { invite_state: { events: big } },
        },
      },
    });
    const first = await client(path, [body]);
    const heard: { roomId: string; inviter: string | undefined; count: number }[] = [];
    first.on("room.invite", (room, inviter, state) => {
      heard.push({ roomId: room.roomId, inviter, count: state.length });
    });
    await first.syncOnce();
    const check = (c: MatrixClient) => {
      const many = c.getRoom("!many:evil")?.inviteState ?? [];
      assert.equal(many.length, MAX_INVITE_STATE_EVENTS);
      assert.equal(many[0]?.type, "m.room.name", "kept in their order");
      assert.equal(c.getRoom("!many:evil")?.name, "hello");
      const own = many.find((e: StrippedStateEvent) => e.state_key === SCRIPTED_SESSION.userId);
      assert.equal(own?.sender, "@inviter:evil", "our membership kept, though it came last");
      const bigState = c.getRoom("!big:evil")?.inviteState ?? [];
      assert.ok(JSON.stringify(bigState).length <= MAX_INVITE_STATE_CHARS + bigState.length + 1);
      assert.equal(bigState.length, 4, "our membership and the three padded events that fit");
    };
    check(first);
    assert.deepEqual(
      heard.sort((a, b) => a.roomId.localeCompare(b.roomId)),
      [
        { roomId: "!big:evil", inviter: "@inviter:evil", count: 4 },
        { roomId: "!many:evil", inviter: "@inviter:evil", count: MAX_INVITE_STATE_EVENTS },
      ],
    );
    await first.close();
    const second = await client(path, []);
    check(second);
    await second.close();
  });
});
