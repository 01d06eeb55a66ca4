// The room events held for a virtual user while it starts, through the appservice (a scripted
// homeserver, no encryption): at most MAX_ROOM_EVENTS_HELD_WHILE_STARTING of them, the first ones,
// reach its handlers once `user()` has given the client, in order and before what comes after its
// start; the rest are dropped and the drop is logged with the user and the count.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { FetchLike } from "../client/transport.ts";
import type { Registration } from "../wire/appservice.ts";
import { Appservice } from "./appservice.ts";
import { MAX_ROOM_EVENTS_HELD_WHILE_STARTING } from "./starting-users.ts";
import { parseTransaction } from "./transaction.ts";

const REGISTRATION: Registration = {
  id: "held",
  url: null,
  as_token: "as_token_held",
  hs_token: "hs_token_held",
  sender_localpart: "bot",
  namespaces: { users: [{ exclusive: true, regex: "@v_.*" }] },
};
const ME = "@v_me:hs";
const ROOM = "!r:hs";

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

const message = (id: string) => ({
  event_id: id,
  type: "m.room.message",
  sender: "@alice:hs",
  room_id: ROOM,
  origin_server_ts: 1,
  content: { msgtype: "m.text", body: id },
});

describe("room events held for a starting virtual user, through the appservice", () => {
  it("hands it the first MAX_ROOM_EVENTS_HELD_WHILE_STARTING, in order; logs the rest as dropped", async () => {
    let reached: () => void = () => {};
    const startPaused = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    // The user is in ROOM; its start waits, when it creates its device, until released.
    const homeserver: FetchLike = async (url, init) => {
      const p = new URL(url).pathname;
      if (p.endsWith("/account/whoami")) return json({ user_id: "@bot:hs" });
      if (p.endsWith("/register")) return json({ errcode: "M_USER_IN_USE", error: "in use" }, 400);
      if ((init.method ?? "GET") === "PUT" && p.includes("/devices/")) {
        reached();
        await released;
        return json({});
      }
      if (p.endsWith("/joined_rooms")) return json({ joined_rooms: [ROOM] });
      if (p.endsWith("/state")) {
        const own = { type: "m.room.member", state_key: ME, sender: ME, content: { membership: "join" } };
        return json([{ ...own, event_id: "$own", room_id: ROOM, origin_server_ts: 0 }]);
      }
      if (p.endsWith("/sync")) return json({ next_batch: "s" });
      return json({ errcode: "M_NOT_FOUND", error: "not here" }, 404);
    };
    const warnings: Record<string, unknown>[] = [];
    const logger = {
      debug() {},
      info() {},
      error() {},
      warn(fields: unknown) {
        if (typeof fields === "object" && fields !== null) warnings.push(fields as Record<string, unknown>);
      },
    };
    const as = new Appservice({
      registration: REGISTRATION,
      homeserverUrl: "https://hs.invalid",
      encryption: false,
      fetch: homeserver,
      logger,
      clientOptions: { fillTimelineGaps: false },
    });
    try {
      await as.start();
      const starting = as.user(ME, { deviceId: "DEV" });
      await startPaused;
      const ids = Array.from({ length: MAX_ROOM_EVENTS_HELD_WHILE_STARTING + 2 }, (_, i) => `$${i}`);
      const half = MAX_ROOM_EVENTS_HELD_WHILE_STARTING / 2;
      await as.handleTransaction("t1", parseTransaction({ events: ids.slice(0, half).map(message) }));
      await as.handleTransaction("t2", parseTransaction({ events: ids.slice(half).map(message) }));
      assert.deepEqual(
        warnings.filter((w) => w.userId === ME).map((w) => [w.txnId, w.roomEvents, w.toDevice]),
        [["t2", 2, 0]],
        "the drop is logged, with the user and the count",
      );

      release();
      const client = await starting;
      const seen: string[] = [];
      client.on("room.event", (_room, ev) => {
        seen.push(ev.eventId);
      });
      // Fed after the held ones (transactions are fed in order): they are all in once it is.
      await as.handleTransaction("t3", parseTransaction({ events: [message("$after")] }));
      assert.deepEqual(seen, [...ids.slice(0, MAX_ROOM_EVENTS_HELD_WHILE_STARTING), "$after"]);
    } finally {
      release();
      await as.close();
    }
  });
});
