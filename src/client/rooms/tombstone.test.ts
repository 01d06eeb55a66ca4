// `followTombstone(roomId, { join: false })` names the newest room of an upgrade chain without
// joining: a successor we are not in has state we may not read (403), which ended the walk with
// an error instead of the room reached.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { MemoryClientStore } from "../client-store/index.ts";

const state = (type: string, stateKey: string, content: Record<string, unknown>) => ({
  event_id: `$${type}${stateKey}`,
  type,
  state_key: stateKey,
  sender: "@a:hs",
  origin_server_ts: 1,
  content,
});

describe("followTombstone", () => {
  it("without joining, ends at a successor whose state we may not read", async () => {
    const requests: string[] = [];
    const store = new MemoryClientStore();
    await store.saveSession({
      homeserverUrl: "https://hs",
      userId: "@me:hs",
      deviceId: "D",
      accessToken: "t",
    });
    const client = new MatrixClient({
      homeserverUrl: "https://hs",
      store,
      fillTimelineGaps: false,
      fetch: async (url, init) => {
        const path = decodeURIComponent(new URL(url).pathname);
        requests.push(`${init?.method ?? "GET"} ${path}`);
        if (path.endsWith("/sync"))
          return Response.json({
            next_batch: "s1",
            rooms: {
              join: {
                "!a:hs": {
                  state: {
                    events: [
                      state("m.room.member", "@me:hs", { membership: "join" }),
                      state("m.room.tombstone", "", { replacement_room: "!b:hs" }),
                    ],
                  },
                },
              },
            },
          });
        return Response.json({ errcode: "M_FORBIDDEN", error: "not in room" }, { status: 403 });
      },
    });
    await client.restore();
    await client.syncOnce();
    assert.equal(await client.followTombstone("!a:hs", { join: false }), "!b:hs");
    assert.ok(!requests.some((r) => r.includes("/join")), "nothing joined");
  });
});
