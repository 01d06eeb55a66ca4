// A left room's limited timeline is filled before the response reaches the E2EE hook, as a joined
// room's is: a fill that fails (the network gone) then fails the response before the engine took
// its to-device messages. After it, the response comes again and the engine, which had consumed them
// (an Olm message decrypts once), handed back nothing for listeners: they were lost.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ToDeviceEvent } from "../../wire/index.ts";
import { INSTANT_CLOCK, restoredMemoryClient, textMessage } from "../test-support/scripted-sync.ts";
import type { SyncCryptoChanges, SyncProcessor } from "./hooks.ts";

const json = (b: unknown, status = 200) => new Response(JSON.stringify(b), { status });
const kick = {
  event_id: "$kick",
  type: "m.room.member",
  state_key: "@me:hs",
  sender: "@mod:hs",
  origin_server_ts: 9,
  content: { membership: "leave" },
};

describe("a left room's gap fill", () => {
  it("fails the response before the E2EE hook takes its to-device messages", async () => {
    let network = false;
    const fetch = async (url: string): Promise<Response> => {
      const u = new URL(url);
      if (u.pathname.endsWith("/sync")) {
        return json({
          next_batch: "s2",
          to_device: { events: [{ type: "m.secret", sender: "@b:hs", content: { n: 1 } }] },
          rooms: {
            leave: {
              "!r:hs": { timeline: { events: [textMessage(8), kick], limited: true, prev_batch: "p7" } },
            },
          },
        });
      }
      if (!network) return json({ errcode: "M_UNKNOWN" }, 502);
      return json({ start: "p7", chunk: [textMessage(7)] });
    };
    // An engine as the real one behaves: a to-device message it took is not handed back again.
    const consumed = new Set<string>();
    let calls = 0;
    const syncProcessor: SyncProcessor = {
      processSyncChanges: async (changes: SyncCryptoChanges): Promise<ToDeviceEvent[]> => {
        calls++;
        const out = changes.toDeviceEvents.filter((e) => !consumed.has(JSON.stringify(e)));
        for (const e of out) consumed.add(JSON.stringify(e));
        return out;
      },
    };
    const client = await restoredMemoryClient({ fetch, clock: INSTANT_CLOCK, syncProcessor }, "s1");
    const toDevice: string[] = [];
    client.on("toDevice", (ev) => void toDevice.push(ev.type));
    const events: string[] = [];
    client.on("room.event", (_r, ev, meta) => void events.push(`${ev.eventId}:${meta.source}`));
    await assert.rejects(client.syncOnce());
    assert.equal(calls, 0);
    network = true;
    await client.syncOnce();
    assert.deepEqual(toDevice, ["m.secret"]);
    assert.deepEqual(events, ["$7:gap", "$8:sync", "$kick:sync"]);
    assert.equal(client.getRoom("!r:hs")?.membership, "leave");
    await client.close();
  });
});
