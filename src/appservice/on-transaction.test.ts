// `onTransaction` may start a virtual user (the docs' example: one an invite names): the user's
// set-up waits for the users' shares of transactions, which are over by then, not for the whole
// transaction (which waits for `onTransaction`: that was a deadlock).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { FetchLike } from "../client/transport.ts";
import type { Registration } from "../wire/appservice.ts";
import { Appservice } from "./appservice.ts";
import { parseTransaction, type Transaction } from "./transaction.ts";

const REGISTRATION: Registration = {
  id: "ontxn",
  url: null,
  as_token: "as_token_ontxn",
  hs_token: "hs_token_ontxn",
  sender_localpart: "bot",
  namespaces: { users: [{ exclusive: true, regex: "@v_.*" }] },
};

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

const homeserver: FetchLike = async (url, init) => {
  const p = new URL(url).pathname;
  if (p.endsWith("/account/whoami")) return json({ user_id: "@bot:hs" });
  if (p.endsWith("/register")) return json({ user_id: "@v_new:hs" });
  if ((init.method ?? "GET") === "PUT" && p.includes("/devices/")) return json({});
  if (p.endsWith("/joined_rooms")) return json({ joined_rooms: [] });
  if (p.endsWith("/sync")) return json({ next_batch: "s" });
  return json({ errcode: "M_NOT_FOUND", error: "not here" }, 404);
};

const invite = parseTransaction({
  events: [
    {
      event_id: "$i",
      type: "m.room.member",
      state_key: "@v_new:hs",
      sender: "@alice:hs",
      room_id: "!r:hs",
      origin_server_ts: 1,
      content: { membership: "invite" },
    },
  ],
});

describe("onTransaction starting a virtual user", () => {
  it("finishes: the user is started and the transaction handled, later ones in order", async () => {
    const seen: string[] = [];
    const as: Appservice = new Appservice({
      registration: REGISTRATION,
      homeserverUrl: "https://hs.invalid",
      encryption: false,
      fetch: homeserver,
      clientOptions: { fillTimelineGaps: false },
      onTransaction: async (txn: Transaction, txnId: string) => {
        seen.push(`${txnId} start`);
        const target = txn.events[0]?.state_key;
        if (target !== undefined) await as.user(target);
        seen.push(`${txnId} end`);
      },
    });
    await as.start();
    try {
      const [first, second] = await Promise.all([
        as.handleTransaction("t1", invite),
        as.handleTransaction("t2", parseTransaction({ events: [] })),
      ]);
      assert.equal(first, true);
      assert.equal(second, true);
      assert.deepEqual(as.userIds, ["@v_new:hs"]);
      assert.deepEqual(seen, ["t1 start", "t1 end", "t2 start", "t2 end"], "transactions stay in order");
    } finally {
      await as.close();
    }
  });
});
