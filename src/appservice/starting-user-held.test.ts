// The room events held for a virtual user while it starts, through the appservice (a scripted
// homeserver, no encryption): at most MAX_ROOM_EVENTS_HELD_WHILE_STARTING of them, the first ones,
// reach its handlers once `user()` has given the client, in order and before what comes after its
// start; the rest are dropped and the drop is logged with the user and the count. The read receipts
// of its start reach them too, with their transaction's events; its typing notices do not.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_ROOM_EVENTS_HELD_WHILE_STARTING } from "./starting-users.ts";
import {
  ME,
  message,
  ROOM,
  registrationOf,
  scripted,
  startingMe,
  txnOf,
} from "./test-support/scripted-start.ts";
import { parseTransaction } from "./transaction.ts";

const REGISTRATION = registrationOf("held");
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

describe("room events held for a starting virtual user, through the appservice", () => {
  it("hands it the first MAX_ROOM_EVENTS_HELD_WHILE_STARTING, in order; logs the rest as dropped", async () => {
    // The user is in ROOM; its start waits, when it creates its device, until released.
    const hs = scripted();
    const warnings: Record<string, unknown>[] = [];
    const logger = {
      debug() {},
      info() {},
      error() {},
      warn(fields: unknown) {
        if (typeof fields === "object" && fields !== null) warnings.push(fields as Record<string, unknown>);
      },
    };
    const { as, starting } = await startingMe(hs, REGISTRATION, { encryption: false, logger });
    try {
      const ids = Array.from({ length: MAX_ROOM_EVENTS_HELD_WHILE_STARTING + 2 }, (_, i) => `$${i}`);
      const half = MAX_ROOM_EVENTS_HELD_WHILE_STARTING / 2;
      await as.handleTransaction("t1", txnOf(...ids.slice(0, half)));
      await as.handleTransaction("t2", txnOf(...ids.slice(half)));
      assert.deepEqual(
        warnings.filter((w) => w.userId === ME).map((w) => [w.txnId, w.roomEvents, w.toDevice]),
        [["t2", 2, 0]],
        "the drop is logged, with the user and the count",
      );

      hs.release();
      const client = await starting;
      const seen: string[] = [];
      client.on("room.event", (_room, ev) => {
        seen.push(ev.eventId);
      });
      // Fed after the held ones (transactions are fed in order): they are all in once it is.
      await as.handleTransaction("t3", txnOf("$after"));
      assert.deepEqual(seen, [...ids.slice(0, MAX_ROOM_EVENTS_HELD_WHILE_STARTING), "$after"]);
    } finally {
      hs.release();
      await as.close();
    }
  });

  it("hands it the read receipts of its start with their transaction's events; not its typing notices", async () => {
    const hs = scripted();
    const { as, starting } = await startingMe(hs, REGISTRATION, { encryption: false, logger: quiet });
    try {
      const read = { $during: { "m.read": { "@alice:hs": { ts: 1 } } } };
      await as.handleTransaction(
        "t1",
        parseTransaction({
          events: [message("$during")],
          ephemeral: [
            { type: "m.receipt", room_id: ROOM, content: read },
            { type: "m.typing", room_id: ROOM, content: { user_ids: ["@alice:hs"] } },
          ],
        }),
      );

      hs.release();
      const client = await starting;
      const seen: string[] = [];
      client.on("room.event", (_room, ev) => {
        seen.push(ev.eventId);
      });
      client.on("room.receipt", (_room, content) => {
        seen.push(`receipt of ${Object.keys(content).join()}`);
      });
      client.on("room.typing", (_room, userIds) => {
        seen.push(`typing: ${userIds.join()}`);
      });
      await as.handleTransaction("t2", txnOf("$after"));
      assert.deepEqual(seen, ["$during", "receipt of $during", "$after"]);
    } finally {
      hs.release();
      await as.close();
    }
  });
});
