// Every kind of change that sync reports wakes a long-polling /sync of the users it concerns.
// A missed wake-up would hold the request for its full 30 s; the per-test timeout turns that into
// a failure.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { scaledMs } from "../support/budget.ts";
import { startTestDevServer, type TestDevServer, type TestUser } from "../support/devserver.ts";

describe("long-poll wake-ups", () => {
  let s: TestDevServer;
  let a: TestUser;
  let b: TestUser;
  let room: string;
  before(async () => {
    s = await startTestDevServer();
    a = await s.register();
    b = await s.register();
    room = (await s.api("POST", "/createRoom", { token: a.accessToken, body: { preset: "public_chat" } }))
      .json.room_id;
    await s.api("POST", `/rooms/${encodeURIComponent(room)}/join`, { token: b.accessToken, body: {} });
  });
  after(() => s.close());

  /** Starts b's long poll, runs `trigger`, and returns what the poll returned. */
  async function wake(trigger: () => Promise<unknown>, who: TestUser = b) {
    const since = (await s.api("GET", "/sync", { token: who.accessToken })).json.next_batch;
    const poll = s.api("GET", `/sync?since=${since}&timeout=30000`, { token: who.accessToken });
    await trigger();
    return (await poll).json;
  }
  const r = () => encodeURIComponent(room);

  it("on a room event", { timeout: scaledMs(10_000) }, async () => {
    const res = await wake(() =>
      s.api("PUT", `/rooms/${r()}/send/m.room.message/w1`, { token: a.accessToken, body: { body: "w" } }),
    );
    assert.equal(res.rooms.join[room].timeline.events[0].content.body, "w");
  });

  it("on a device-list change of a room mate", { timeout: scaledMs(10_000) }, async () => {
    const res = await wake(() => s.login(a));
    assert.deepEqual(res.device_lists.changed, [a.userId]);
  });

  it("on own account data", { timeout: scaledMs(10_000) }, async () => {
    const res = await wake(() =>
      s.api("PUT", `/user/${encodeURIComponent(b.userId)}/account_data/m.w`, {
        token: b.accessToken,
        body: { x: 1 },
      }),
    );
    assert.deepEqual(res.account_data.events, [{ type: "m.w", content: { x: 1 } }]);
  });

  it("on a receipt", { timeout: scaledMs(10_000) }, async () => {
    const ev = (
      await s.api("PUT", `/rooms/${r()}/send/m.room.message/w2`, {
        token: a.accessToken,
        body: { body: "r" },
      })
    ).json.event_id;
    const res = await wake(() =>
      s.api("POST", `/rooms/${r()}/receipt/m.read/${encodeURIComponent(ev)}`, {
        token: a.accessToken,
        body: {},
      }),
    );
    assert.equal(res.rooms.join[room].ephemeral.events[0].type, "m.receipt");
  });

  it("on typing", { timeout: scaledMs(10_000) }, async () => {
    const res = await wake(() =>
      s.api("PUT", `/rooms/${r()}/typing/${encodeURIComponent(a.userId)}`, {
        token: a.accessToken,
        body: { typing: true, timeout: 5000 },
      }),
    );
    assert.deepEqual(res.rooms.join[room].ephemeral.events[0].content.user_ids, [a.userId]);
    // Stop typing now, so that no expiry lands in a later test's window.
    await s.api("PUT", `/rooms/${r()}/typing/${encodeURIComponent(a.userId)}`, {
      token: a.accessToken,
      body: { typing: false },
    });
  });

  it("on an invite, for the invitee", { timeout: scaledMs(10_000) }, async () => {
    const c = await s.register();
    const res = await wake(
      () => s.api("POST", `/rooms/${r()}/invite`, { token: a.accessToken, body: { user_id: c.userId } }),
      c,
    );
    assert.ok(res.rooms.invite[room], "res.rooms.invite[room]");
  });

  it("on a to-device message", { timeout: scaledMs(10_000) }, async () => {
    const res = await wake(() =>
      s.api("PUT", "/sendToDevice/m.w/w3", {
        token: a.accessToken,
        body: { messages: { [b.userId]: { "*": { hi: true } } } },
      }),
    );
    assert.deepEqual(res.to_device.events, [{ type: "m.w", sender: a.userId, content: { hi: true } }]);
  });

  it("a poll with nothing new returns an empty response at its timeout", {
    timeout: scaledMs(10_000),
  }, async () => {
    const since = (await s.api("GET", "/sync", { token: b.accessToken })).json.next_batch;
    const res = (await s.api("GET", `/sync?since=${since}&timeout=50`, { token: b.accessToken })).json;
    assert.equal(res.next_batch, since);
    assert.deepEqual(res.rooms.join, {});
  });
});
