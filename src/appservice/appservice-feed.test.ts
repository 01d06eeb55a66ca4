// A virtual user's share of a transaction when the homeserver refuses what the share needs: the
// state of a room the user joined in the transaction (it left, or was kicked, before the state was
// asked for). The rest of the share is handled; the room is left out, not joined without its state.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { FetchLike } from "../client/transport.ts";
import type { Registration } from "../wire/appservice.ts";
import { Appservice } from "./appservice.ts";
import { parseTransaction } from "./transaction.ts";

const REGISTRATION: Registration = {
  id: "feed",
  url: null,
  as_token: "as_token_feed",
  hs_token: "hs_token_feed",
  sender_localpart: "bot",
  namespaces: { users: [{ exclusive: true, regex: "@v_.*" }] },
};
const ME = "@v_me:hs";

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

/** `stateStatus`: how `GET /rooms/!gone:hs/state` is answered (other rooms have empty state). */
function homeserver(stateStatus: number): FetchLike {
  return async (url, init) => {
    const p = new URL(url).pathname;
    if (p.endsWith("/account/whoami")) return json({ user_id: "@bot:hs" });
    if (p.endsWith("/register")) return json({ errcode: "M_USER_IN_USE", error: "in use" }, 400);
    if ((init.method ?? "GET") === "PUT" && p.includes("/devices/")) return json({});
    if (p.endsWith("/joined_rooms")) return json({ joined_rooms: [] });
    if (p.endsWith("/sync")) return json({ next_batch: "s" });
    if (p.endsWith(`/rooms/${encodeURIComponent("!gone:hs")}/state`)) {
      return json({ errcode: stateStatus === 403 ? "M_FORBIDDEN" : "M_UNKNOWN", error: "no" }, stateStatus);
    }
    if (p.endsWith("/state")) return json([]);
    return json({ errcode: "M_NOT_FOUND", error: "not here" }, 404);
  };
}

const join = (roomId: string, id: string) => ({
  event_id: id,
  type: "m.room.member",
  state_key: ME,
  sender: ME,
  room_id: roomId,
  origin_server_ts: 1,
  content: { membership: "join" },
});

async function start(stateStatus: number) {
  const givenUp: string[] = [];
  const as = new Appservice({
    registration: REGISTRATION,
    homeserverUrl: "https://hs.invalid",
    encryption: false,
    fetch: homeserver(stateStatus),
    clientOptions: { fillTimelineGaps: false },
    onError: (_e, userId) => givenUp.push(userId),
  });
  await as.start();
  const client = await as.user(ME, { deviceId: "DEV" });
  const toDevice: unknown[] = [];
  client.on("toDevice", (ev) => {
    toDevice.push(ev.content);
  });
  return { as, client, toDevice, givenUp };
}

const txn = parseTransaction({
  events: [join("!gone:hs", "$1"), join("!fine:hs", "$2")],
  "de.sorunome.msc2409.to_device": [
    { type: "m.dummy", sender: "@alice:hs", to_user_id: ME, to_device_id: "DEV", content: { n: 1 } },
  ],
});

describe("a virtual user's share when the homeserver refuses a joined room's state", () => {
  it("403 (left or kicked since): the rest of the share is handled at once, the room left out", async () => {
    const { as, client, toDevice, givenUp } = await start(403);
    try {
      assert.equal(await as.handleTransaction("t1", txn), true);
      assert.deepEqual(toDevice, [{ n: 1 }], "the to-device message is handled");
      assert.equal(client.getRoom("!fine:hs")?.membership, "join");
      assert.equal(client.getRoom("!gone:hs"), undefined, "not joined without its state");
      assert.deepEqual(givenUp, []);
    } finally {
      await as.close();
    }
  });

  it("500 (may pass): the transaction fails, to be retried, and nothing of it is handled", async () => {
    const { as, client, toDevice } = await start(500);
    try {
      // The homeserver's 500 for the room's state, not some other failure.
      await assert.rejects(as.handleTransaction("t1", txn), { name: "MatrixError", httpStatus: 500 });
      assert.deepEqual(toDevice, []);
      assert.equal(client.getRoom("!fine:hs"), undefined);
    } finally {
      await as.close();
    }
  });
});
