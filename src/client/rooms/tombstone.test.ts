// `followTombstone(roomId, { join: false })` names the newest room of an upgrade chain without
// joining: a successor we are not in has state we may not read (403), which ended the walk with
// an error instead of the room reached. A tombstone may name any room: one whose `m.room.create`
// does not name the room as its predecessor is not followed (a bot carried its room state there).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MatrixClient } from "../client.ts";
import { restoredMemoryClient } from "../test-support/scripted-sync.ts";

const state = (type: string, stateKey: string, content: Record<string, unknown>) => ({
  event_id: `$${type}${stateKey}`,
  type,
  state_key: stateKey,
  sender: "@a:hs",
  origin_server_ts: 1,
  content,
});

type Responder = (method: string, path: string) => Response | undefined;

async function tombstonedClient(respond: Responder): Promise<{ client: MatrixClient; requests: string[] }> {
  const requests: string[] = [];
  const client = await restoredMemoryClient({
    fillTimelineGaps: false,
    fetch: async (url, init) => {
      const path = decodeURIComponent(new URL(url).pathname);
      const method = init?.method ?? "GET";
      requests.push(`${method} ${path}`);
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
      return (
        respond(method, path) ??
        Response.json({ errcode: "M_FORBIDDEN", error: "not in room" }, { status: 403 })
      );
    },
  });
  await client.syncOnce();
  return { client, requests };
}

describe("followTombstone", () => {
  it("without joining, ends at a successor whose state we may not read", async () => {
    const { client, requests } = await tombstonedClient(() => undefined);
    assert.equal(await client.followTombstone("!a:hs", { join: false }), "!b:hs");
    assert.ok(!requests.some((r) => r.includes("/join")), "nothing joined");
  });

  for (const [name, predecessor] of [
    ["another room", { room_id: "!other:hs" }],
    ["no room", undefined],
  ] as const) {
    it(`stops before a successor whose m.room.create names ${name} as its predecessor, and leaves it`, async () => {
      const { client, requests } = await tombstonedClient((method, path) => {
        if (method === "POST" && path === "/_matrix/client/v3/join/!b:hs")
          return Response.json({ room_id: "!b:hs" });
        if (method === "POST" && path.endsWith("/leave")) return Response.json({});
        if (path === "/_matrix/client/v3/rooms/!b:hs/state/m.room.create")
          return Response.json({ creator: "@evil:hs", ...(predecessor ? { predecessor } : {}) });
        return undefined;
      });
      assert.equal(await client.followTombstone("!a:hs"), "!a:hs");
      assert.ok(requests.includes("POST /_matrix/client/v3/rooms/!b:hs/leave"), "the wrong room is left");
      assert.equal(await client.followTombstone("!a:hs", { join: false }), "!a:hs");
    });
  }

  it("follows a successor that names the room as its predecessor", async () => {
    const { client, requests } = await tombstonedClient((method, path) => {
      if (method === "POST" && path === "/_matrix/client/v3/join/!b:hs")
        return Response.json({ room_id: "!b:hs" });
      if (path === "/_matrix/client/v3/rooms/!b:hs/state/m.room.create")
        return Response.json({ predecessor: { room_id: "!a:hs" } });
      if (path === "/_matrix/client/v3/rooms/!b:hs/state/m.room.tombstone")
        return Response.json({ errcode: "M_NOT_FOUND", error: "none" }, { status: 404 });
      return undefined;
    });
    assert.equal(await client.followTombstone("!a:hs"), "!b:hs");
    assert.ok(!requests.some((r) => r.endsWith("/leave")));
  });
});
