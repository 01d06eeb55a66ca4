// A `!quit` command on a bot whose client runs the sync loop: the handler awaits `bot.stop()` and
// then the client's `close()`. The loop waits for the handler before it saves the response, so a
// close that waited for the loop waited for itself. It now returns; the response is saved, then
// the store closes, and nothing is written after. The `timeout` only ends a deadlocked test (which
// otherwise never finishes); no step is timed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type ClientStore, MatrixClient, MemoryClientStore, silentLogger } from "../index.ts";
import { Bot } from "./bot.ts";

const DEADLOCK = { timeout: 60_000 };
const ME = "@bot:hs";

const json = (body: unknown) =>
  new Response(JSON.stringify(body), { headers: { "content-type": "application/json" } });

const member = (userId: string) => ({
  type: "m.room.member",
  state_key: userId,
  event_id: `$join-${userId}`,
  sender: userId,
  origin_server_ts: 1,
  content: { membership: "join" },
});

/**
 * A bot client on a loop: the first /sync joins `!r:hs`, the second brings `!quit`, later ones
 * wait until aborted. `log` records each save of a sync position and the store's close, in order.
 */
async function botClient() {
  const log: string[] = [];
  const sent: string[] = [];
  const store = new MemoryClientStore();
  await store.saveSession({ homeserverUrl: "https://hs", userId: ME, deviceId: "DEV", accessToken: "t" });
  const saveSync = store.saveSync.bind(store);
  store.saveSync = async (changes) => {
    await saveSync(changes);
    log.push(`saved ${changes.nextBatch}`);
  };
  (store as ClientStore).close = async () => void log.push("closed");
  const answers = [
    {
      next_batch: "s1",
      rooms: { join: { "!r:hs": { timeline: { events: [member(ME)], prev_batch: "p0" } } } },
    },
    {
      next_batch: "s2",
      rooms: {
        join: {
          "!r:hs": {
            timeline: {
              events: [
                member("@a:hs"),
                {
                  type: "m.room.message",
                  event_id: "$quit",
                  sender: "@a:hs",
                  origin_server_ts: 2,
                  content: { msgtype: "m.text", body: "!quit" },
                },
              ],
              prev_batch: "p1",
            },
          },
        },
      },
    },
  ];
  const fetch = async (input: string, init: RequestInit): Promise<Response> => {
    const url = new URL(input);
    if (url.pathname.endsWith("/sync")) {
      const answer = answers.shift();
      if (answer !== undefined) return json(answer);
      const signal = init.signal as AbortSignal;
      return new Promise<Response>((_, reject) => {
        if (signal.aborted) reject(new Error("aborted"));
        signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
      });
    }
    if (/\/send\//.test(url.pathname) && init.method === "PUT") {
      sent.push(String((JSON.parse(String(init.body)) as { body?: unknown }).body));
      return json({ event_id: `$sent${sent.length}` });
    }
    if (/\/state\/m\.room\.encryption\/?$/.test(url.pathname))
      return new Response(JSON.stringify({ errcode: "M_NOT_FOUND", error: "no" }), { status: 404 });
    return json({});
  };
  const client = new MatrixClient({ homeserverUrl: "https://hs", store, fetch });
  await client.restore();
  return { client, log, sent };
}

/** Resolves once the client's sync loop stopped. */
function loopStopped(c: MatrixClient): Promise<void> {
  return new Promise((resolve) => {
    const off = c.on("sync", (state) => {
      if (state === "stopped") {
        off();
        resolve();
      }
    });
  });
}

for (const closes of [false, true]) {
  const what = closes ? "bot.stop() and client.close()" : "bot.stop()";
  test(
    `a command awaiting ${what}, with the client on its sync loop, returns; the bot and the loop stop`,
    DEADLOCK,
    async () => {
      const { client, log, sent } = await botClient();
      const bot = new Bot({ client, logger: silentLogger });
      let returned!: () => void;
      const quitReturned = new Promise<void>((resolve) => {
        returned = resolve;
      });
      bot.command("quit", {}, async (ctx) => {
        await ctx.reply("bye");
        await bot.stop();
        if (closes) await client.close();
        returned();
      });
      const stopped = loopStopped(client);
      await bot.start();
      await quitReturned;
      await stopped;
      assert.equal(bot.isRunning, false);
      // From outside: waits for the close under way (or closes).
      await client.close();
      assert.deepEqual(sent, ["bye"]);
      // The `!quit` response is saved (a restart does not run it again), then the store closes.
      assert.deepEqual(log, ["saved s1", "saved s2", "closed"]);
    },
  );
}
