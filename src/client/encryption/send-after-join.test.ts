// Joining on an invitation whose stripped state leaves out `m.room.encryption` (it is the inviting
// server's choice what to show) and sending before the next sync brought the room's state: the
// client took the invitation's state for the room's and sent the message in plaintext into an
// encrypted room. A room we are not joined to in sync is now asked about on the server.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { joinedMember } from "../test-support/room-state.ts";
import { SCRIPTED_SESSION, tempSqliteClientStore } from "../test-support/scripted-sync.ts";

const ROOM = "!r:hs";

describe("sending right after joining on an invitation", () => {
  it("encrypts when the room is encrypted though the invitation did not say so", async (t) => {
    const { dir, store } = await tempSqliteClientStore(t, "keyroom-send-after-join-");
    const invite = {
      next_batch: "s1",
      rooms: {
        invite: {
          [ROOM]: {
            invite_state: {
              events: [
                { type: "m.room.name", state_key: "", sender: "@alice:hs", content: { name: "x" } },
                {
                  type: "m.room.member",
                  state_key: "@me:hs",
                  sender: "@alice:hs",
                  content: { membership: "invite" },
                },
              ],
            },
          },
        },
      },
    };
    const bodies = [JSON.stringify(invite)];
    const sent: string[] = [];
    let ownKeys: unknown;
    let joined = false;
    const client = new MatrixClient({
      homeserverUrl: SCRIPTED_SESSION.homeserverUrl,
      store,
      fillTimelineGaps: false,
      encryption: { store: { directory: dir } },
      fetch: async (url, init) => {
        const path = decodeURIComponent(new URL(url).pathname);
        if (path.endsWith("/sync")) return new Response(bodies.shift() ?? '{"next_batch":"s2"}');
        if (path.endsWith(`/join/${ROOM}`)) {
          joined = true;
          return Response.json({ room_id: ROOM });
        }
        if (path.includes(`/rooms/${ROOM}/state/m.room.encryption`)) {
          // Only members read a room's state.
          if (!joined) return Response.json({ errcode: "M_FORBIDDEN" }, { status: 403 });
          return Response.json({ algorithm: "m.megolm.v1.aes-sha2" });
        }
        if (path.endsWith(`/rooms/${ROOM}/members`))
          return Response.json({ chunk: [joinedMember("@me:hs")] });
        if (path.includes(`/rooms/${ROOM}/send/`)) {
          sent.push(path.split("/send/")[1]?.split("/")[0] ?? "");
          return Response.json({ event_id: `$s${sent.length}` });
        }
        if (path.endsWith("/keys/upload")) {
          const body = JSON.parse(String(init?.body)) as { device_keys?: unknown };
          if (body.device_keys !== undefined) ownKeys = body.device_keys;
          return Response.json({ one_time_key_counts: { signed_curve25519: 50 } });
        }
        if (path.endsWith("/keys/query"))
          return Response.json({ device_keys: { "@me:hs": { D: ownKeys } }, failures: {} });
        if (init?.method === "PUT" && path.includes("/sendToDevice/")) return Response.json({});
        return Response.json({ errcode: "M_NOT_FOUND" }, { status: 404 });
      },
    });
    t.after(() => client.close());
    await client.restore();
    await client.syncOnce({ timeoutMs: 0 });
    assert.equal(client.getRoom(ROOM)?.membership, "invite");
    // Before joining, the server does not say: the invitation's state is all there is to go on.
    assert.equal(await client.isRoomEncrypted(ROOM), false);
    await client.joinRoom(ROOM);
    await client.sendText(ROOM, "hello");
    assert.deepEqual(sent, ["m.room.encrypted"]);
    assert.equal(await client.isRoomEncrypted(ROOM), true);
  });
});
