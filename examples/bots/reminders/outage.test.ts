// The reminders bot while its homeserver is briefly down: a reminder that falls due then is
// posted once the server is back, not dropped (only a room closed to the bot drops its reminder).
import assert from "node:assert/strict";
import { test } from "node:test";
import { MatrixClient } from "keyroom";
import { Bot, installSkill } from "keyroom/bot";
import { FAKE_BOT_USER, FakeClock, fakeMember, fakeMessage } from "keyroom/bot/testing";
import reminders from "./skills/reminders.ts";

const ROOM = "!room:fake.example";
const ALICE = "@alice:fake.example";

test("a reminder due while the homeserver is down is posted when it is back", async () => {
  const clock = new FakeClock();
  let down = false;
  const bodies: string[] = [];
  const json = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  const client = new MatrixClient({
    homeserverUrl: "http://fake.example",
    appserviceUser: true,
    clock,
    sendBackoff: { baseMs: 0, maxMs: 0, maxAttempts: 1 },
    fetch: async (input, init) => {
      if (!/\/send\/m\.room\.message\//.test(new URL(input).pathname)) return json(200, {});
      // Down while the bot posts; back by the time it writes its state (the send's retries and
      // backoff take a while, skipped here).
      if (down) return json(502, { errcode: "M_UNKNOWN", error: "bad gateway" });
      bodies.push(String((JSON.parse(String(init.body)) as { body: unknown }).body));
      return json(200, { event_id: `$sent${bodies.length}` });
    },
  });
  await client.restore({
    homeserverUrl: "http://fake.example",
    userId: FAKE_BOT_USER,
    deviceId: "FAKE",
    accessToken: "t",
  });
  const bot = new Bot({ client, clock });
  await installSkill(bot, reminders, undefined, bot.logger);
  await bot.start();
  const feed = (n: number, events: unknown[]) =>
    client.feedSync({
      next_batch: `b${n}`,
      rooms: { join: { [ROOM]: { timeline: { events, limited: false, prev_batch: "p" } } } },
    } as Parameters<MatrixClient["feedSync"]>[0]);
  await feed(1, [fakeMember(FAKE_BOT_USER, "join"), fakeMember(ALICE, "join")]);
  await feed(2, [fakeMessage(ALICE, "!remind 1m tea")]);
  assert.deepEqual(bodies, ["OK, in 1m."]);

  down = true;
  await clock.advance(2 * 60_000, () => bot.scheduler.idle());
  down = false;
  await clock.advance(30_000, () => bot.scheduler.idle());
  assert.deepEqual(bodies, ["OK, in 1m.", `⏰ ${ALICE}: tea`]);
  await bot.stop();
});
