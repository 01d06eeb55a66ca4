// `createDirectRoom` reuses a direct chat recorded in `m.direct` only when the other user is in it
// (joined or invited): a recorded room they left, or were never in, got the messages (and
// verification requests) meant for them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { MemoryClientStore } from "../client-store/index.ts";

const member = (userId: string, membership: string) => ({
  event_id: `$${userId}`,
  type: "m.room.member",
  state_key: userId,
  sender: userId,
  origin_server_ts: 1,
  content: { membership },
});

async function directRoomWithB(bMembership: string | undefined): Promise<string> {
  const store = new MemoryClientStore();
  await store.saveSession({ homeserverUrl: "https://hs", userId: "@me:hs", deviceId: "D", accessToken: "t" });
  const client = new MatrixClient({
    homeserverUrl: "https://hs",
    store,
    fillTimelineGaps: false,
    fetch: async (url) => {
      const path = new URL(url).pathname;
      if (path.endsWith("/createRoom")) return Response.json({ room_id: "!new:hs" });
      if (path.includes("/account_data/")) return Response.json({});
      return Response.json({
        next_batch: "s1",
        account_data: { events: [{ type: "m.direct", content: { "@b:hs": ["!old:hs"] } }] },
        rooms: {
          join: {
            "!old:hs": {
              state: {
                events: [member("@me:hs", "join"), ...(bMembership ? [member("@b:hs", bMembership)] : [])],
              },
            },
          },
        },
      });
    },
  });
  await client.restore();
  await client.syncOnce();
  return client.createDirectRoom("@b:hs", { encrypted: false });
}

describe("createDirectRoom", () => {
  it("reuses the recorded direct chat the other user is in", async () => {
    assert.equal(await directRoomWithB("join"), "!old:hs");
    assert.equal(await directRoomWithB("invite"), "!old:hs");
  });

  it("opens a new one when they left the recorded one, or were never in it", async () => {
    assert.equal(await directRoomWithB("leave"), "!new:hs");
    assert.equal(await directRoomWithB("ban"), "!new:hs");
    assert.equal(await directRoomWithB(undefined), "!new:hs");
  });
});
