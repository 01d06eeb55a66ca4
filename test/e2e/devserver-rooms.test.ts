// Rooms: authorisation, membership transitions, state, pagination, redaction, upgrade, and how
// sync reports them.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startTestDevServer, type TestDevServer, type TestUser } from "../support/devserver.ts";

describe("devserver rooms", () => {
  let s: TestDevServer;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  before(async () => {
    s = await startTestDevServer();
    alice = await s.register();
    bob = await s.register();
    carol = await s.register();
  });
  after(() => s.close());

  const create = async (body: Record<string, unknown> = {}) =>
    (await s.api("POST", "/createRoom", { token: alice.accessToken, body })).json.room_id as string;
  const send = (u: TestUser, room: string, txn: string, body: string) =>
    s.api("PUT", `/rooms/${encodeURIComponent(room)}/send/m.room.message/${txn}`, {
      token: u.accessToken,
      body: { msgtype: "m.text", body },
    });
  const post = (u: TestUser, room: string, action: string, body: Record<string, unknown> = {}) =>
    s.api("POST", `/rooms/${encodeURIComponent(room)}/${action}`, { token: u.accessToken, body });

  it("only members send; private rooms need an invite; unknown room versions are refused", async () => {
    const room = await create();
    const r1 = await send(bob, room, "x", "intruder");
    assert.equal(r1.status, 403);
    assert.equal(r1.json.errcode, "M_FORBIDDEN");
    assert.equal((await post(bob, room, "join")).status, 403);
    assert.equal((await post(alice, room, "invite", { user_id: bob.userId })).status, 200);
    assert.equal((await post(bob, room, "join")).status, 200);
    assert.equal((await send(bob, room, "y", "member now")).status, 200);
    const v = await s.api("POST", "/createRoom", { token: alice.accessToken, body: { room_version: "1" } });
    assert.equal(v.json.errcode, "M_UNSUPPORTED_ROOM_VERSION");
    const eleven = await create({ room_version: "11" });
    const createEv = await s.api("GET", `/rooms/${encodeURIComponent(eleven)}/state/m.room.create`, {
      token: alice.accessToken,
    });
    assert.deepEqual(createEv.json, { room_version: "11" });
  });

  it("kick and ban need power above the target; unban; banned users cannot rejoin", async () => {
    const room = await create({ preset: "public_chat" });
    await post(bob, room, "join");
    await post(carol, room, "join");
    const k = await post(bob, room, "kick", { user_id: carol.userId });
    assert.equal(k.status, 403, "power 0 cannot kick");
    assert.equal((await post(bob, room, "ban", { user_id: alice.userId })).status, 403);
    assert.equal((await post(alice, room, "kick", { user_id: carol.userId, reason: "bye" })).status, 200);
    const m = await s.api("GET", `/rooms/${encodeURIComponent(room)}/state/m.room.member/${carol.userId}`, {
      token: alice.accessToken,
    });
    assert.deepEqual(m.json, { membership: "leave", reason: "bye" });
    assert.equal((await post(alice, room, "ban", { user_id: carol.userId })).status, 200);
    assert.equal((await post(carol, room, "join")).status, 403);
    assert.equal((await post(alice, room, "unban", { user_id: carol.userId })).status, 200);
    assert.equal((await post(carol, room, "join")).status, 200);
    // Power levels: bob cannot raise himself.
    const pl = await s.api("GET", `/rooms/${encodeURIComponent(room)}/state/m.room.power_levels`, {
      token: bob.accessToken,
    });
    const raised = { ...pl.json, users: { ...pl.json.users, [bob.userId]: 100 } };
    const put = await s.api("PUT", `/rooms/${encodeURIComponent(room)}/state/m.room.power_levels`, {
      token: bob.accessToken,
      body: raised,
    });
    assert.equal(put.status, 403);
  });

  it("state put/get, members, joined_members, aliases", async () => {
    const room = await create({ room_alias_name: "lobby", name: "Lobby" });
    const r = encodeURIComponent(room);
    const topic = await s.api("PUT", `/rooms/${r}/state/m.room.topic`, {
      token: alice.accessToken,
      body: { topic: "hi" },
    });
    assert.match(topic.json.event_id, /^\$/);
    const got = await s.api("GET", `/rooms/${r}/state/m.room.topic/`, { token: alice.accessToken });
    assert.deepEqual(got.json, { topic: "hi" }, "a trailing slash names the empty state key");
    const plain = await s.api("GET", `/rooms/${r}/state/m.room.topic`, { token: alice.accessToken });
    assert.deepEqual(plain.json, { topic: "hi" });
    const missing = await s.api("GET", `/rooms/${r}/state/m.room.avatar`, { token: alice.accessToken });
    assert.equal(missing.json.errcode, "M_NOT_FOUND");
    const alias = await s.api("GET", `/directory/room/${encodeURIComponent(`#lobby:${s.serverName}`)}`);
    assert.equal(alias.json.room_id, room);
    assert.equal((await post(bob, `#lobby:${s.serverName}`, "join")).status, 403, "invite-only room");
    await post(alice, room, "invite", { user_id: bob.userId });
    assert.equal(
      (
        await s.api("POST", `/join/${encodeURIComponent(`#lobby:${s.serverName}`)}`, {
          token: bob.accessToken,
          body: {},
        })
      ).json.room_id,
      room,
    );
    const jm = await s.api("GET", `/rooms/${r}/joined_members`, { token: bob.accessToken });
    assert.deepEqual(Object.keys(jm.json.joined).sort(), [alice.userId, bob.userId].sort());
    const members = await s.api("GET", `/rooms/${r}/members`, { token: bob.accessToken });
    assert.equal(members.json.chunk.length, 2);
    const joined = await s.api("GET", "/joined_rooms", { token: bob.accessToken });
    assert.ok(joined.json.joined_rooms.includes(room), "joined.json.joined_rooms.includes(room)");
    const outsider = await s.api("GET", `/rooms/${r}/state`, { token: carol.accessToken });
    assert.equal(outsider.status, 403);
  });

  it("messages paginate both ways with tokens; context; limited sync timelines link up", async () => {
    const room = await create();
    const r = encodeURIComponent(room);
    for (let i = 0; i < 15; i++) await send(alice, room, `p${i}`, `m${i}`);
    const page1 = await s.api("GET", `/rooms/${r}/messages?dir=b&limit=5`, { token: alice.accessToken });
    assert.deepEqual(
      page1.json.chunk.map((e: { content: { body: string } }) => e.content.body),
      ["m14", "m13", "m12", "m11", "m10"],
    );
    const page2 = await s.api("GET", `/rooms/${r}/messages?dir=b&limit=5&from=${page1.json.end}`, {
      token: alice.accessToken,
    });
    assert.equal(page2.json.chunk[0].content.body, "m9");
    const fwd = await s.api("GET", `/rooms/${r}/messages?dir=f&limit=3&from=${page2.json.end}`, {
      token: alice.accessToken,
    });
    assert.deepEqual(
      fwd.json.chunk.map((e: { content: { body: string } }) => e.content.body),
      ["m5", "m6", "m7"],
    );
    const sync = await s.api(
      "GET",
      `/sync?filter=${encodeURIComponent('{"room":{"timeline":{"limit":3}}}')}`,
      {
        token: alice.accessToken,
      },
    );
    const tl = sync.json.rooms.join[room].timeline;
    assert.equal(tl.limited, true);
    assert.deepEqual(
      tl.events.map((e: { content: { body: string } }) => e.content.body),
      ["m12", "m13", "m14"],
    );
    const before = await s.api("GET", `/rooms/${r}/messages?dir=b&limit=1&from=${tl.prev_batch}`, {
      token: alice.accessToken,
    });
    assert.equal(before.json.chunk[0].content.body, "m11", "prev_batch continues right before the timeline");
    const ctx = await s.api(
      "GET",
      `/rooms/${r}/context/${encodeURIComponent(tl.events[1].event_id)}?limit=2`,
      {
        token: alice.accessToken,
      },
    );
    assert.equal(ctx.json.events_before[0].content.body, "m12");
    assert.equal(ctx.json.events_after[0].content.body, "m14");
    const bad = await s.api("GET", `/rooms/${r}/messages?dir=x`, { token: alice.accessToken });
    assert.equal(bad.status, 400);
  });

  it("redaction strips content; others' events need the redact level", async () => {
    const room = await create({ preset: "public_chat" });
    const r = encodeURIComponent(room);
    await post(bob, room, "join");
    const ev = (await send(alice, room, "r1", "secret")).json.event_id as string;
    const denied = await s.api("PUT", `/rooms/${r}/redact/${encodeURIComponent(ev)}/t1`, {
      token: bob.accessToken,
      body: {},
    });
    assert.equal(denied.status, 403);
    const red = await s.api("PUT", `/rooms/${r}/redact/${encodeURIComponent(ev)}/t1`, {
      token: alice.accessToken,
      body: { reason: "oops" },
    });
    assert.equal(red.status, 200);
    const got = await s.api("GET", `/rooms/${r}/event/${encodeURIComponent(ev)}`, { token: bob.accessToken });
    assert.deepEqual(got.json.content, {});
    assert.equal(got.json.unsigned.redacted_because.event_id, red.json.event_id);
    assert.equal(got.json.unsigned.redacted_because.redacts, ev);
  });

  it("sync reports invites with stripped state, joins with full state, leaves once", async () => {
    const room = await create({
      name: "Sync room",
      initial_state: [{ type: "m.room.encryption", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
    });
    const t0 = (await s.api("GET", "/sync", { token: carol.accessToken })).json.next_batch as string;
    await post(alice, room, "invite", { user_id: carol.userId });
    const inv = await s.api("GET", `/sync?since=${t0}`, { token: carol.accessToken });
    const stripped = inv.json.rooms.invite[room].invite_state.events as { type: string }[];
    assert.ok(
      stripped.some((e) => e.type === "m.room.encryption"),
      'stripped.some((e) => e.type === "m.room.encryption")',
    );
    assert.ok(
      stripped.some((e) => e.type === "m.room.name"),
      'stripped.some((e) => e.type === "m.room.name")',
    );
    await post(carol, room, "join");
    const joined = await s.api("GET", `/sync?since=${inv.json.next_batch}`, { token: carol.accessToken });
    const jr = joined.json.rooms.join[room];
    const stateTypes = [...jr.state.events, ...jr.timeline.events].map((e: { type: string }) => e.type);
    assert.ok(
      stateTypes.includes("m.room.create") && stateTypes.includes("m.room.encryption"),
      'stateTypes.includes("m.room.create") && stateTypes.includes("m.room.encryption")',
    );
    assert.equal(jr.summary["m.joined_member_count"], 2);
    await post(carol, room, "leave");
    const left = await s.api("GET", `/sync?since=${joined.json.next_batch}`, { token: carol.accessToken });
    const lt = left.json.rooms.leave[room].timeline.events;
    assert.equal(lt[lt.length - 1].content.membership, "leave");
    await send(alice, room, "after-leave", "not for carol");
    const later = await s.api("GET", `/sync?since=${left.json.next_batch}`, { token: carol.accessToken });
    assert.equal(later.json.rooms.leave[room], undefined);
    assert.equal(later.json.rooms.join[room], undefined);
    assert.equal((await post(carol, room, "forget")).status, 200);
  });

  it("a rejected invite shows up in leave with only the leave event and no state", async () => {
    const room = await create({ name: "Private" });
    const t0 = (await s.api("GET", "/sync", { token: carol.accessToken })).json.next_batch as string;
    await post(alice, room, "invite", { user_id: carol.userId });
    await post(carol, room, "leave");
    const sync = await s.api("GET", `/sync?since=${t0}`, { token: carol.accessToken });
    const left = sync.json.rooms.leave[room];
    assert.deepEqual(
      left.timeline.events.map(
        (e: { type: string; content: { membership: string } }) => e.content.membership,
      ),
      ["leave"],
    );
    assert.deepEqual(left.state.events, []);
    assert.equal(sync.json.rooms.invite[room], undefined);
  });

  it("history visibility: joined hides earlier events from late joiners, shared shows them", async () => {
    for (const [visibility, expectEarly] of [
      ["joined", false],
      ["shared", true],
    ] as const) {
      const late = await s.register();
      const room = await create({
        preset: "public_chat",
        initial_state: [{ type: "m.room.history_visibility", content: { history_visibility: visibility } }],
      });
      const r = encodeURIComponent(room);
      await send(alice, room, `early-${visibility}`, "early");
      await post(late, room, "join");
      await send(alice, room, `later-${visibility}`, "later");
      const bodies = (events: { type: string; content: { body?: string } }[]) =>
        events.filter((e) => e.type === "m.room.message").map((e) => e.content.body);
      const sync = await s.api("GET", "/sync", { token: late.accessToken });
      const msgs = await s.api("GET", `/rooms/${r}/messages?dir=b&limit=50`, { token: late.accessToken });
      const expected = expectEarly ? ["early", "later"] : ["later"];
      assert.deepEqual(bodies(sync.json.rooms.join[room].timeline.events), expected, visibility);
      assert.deepEqual(bodies(msgs.json.chunk).reverse(), expected, visibility);
    }
  });

  it("a joiner's first sync holds the full current state, hidden state events included (issue 10 item 11)", async () => {
    // The exact order from the issue: visibility in the initial state, then encryption, then the invite.
    for (const visibility of ["joined", "invited"] as const) {
      for (const since of [false, true]) {
        const joiner = await s.register();
        const t0 = since ? (await s.api("GET", "/sync", { token: joiner.accessToken })).json.next_batch : "";
        const room = await create({
          initial_state: [{ type: "m.room.history_visibility", content: { history_visibility: visibility } }],
        });
        const r = encodeURIComponent(room);
        const enc = await s.api("PUT", `/rooms/${r}/state/m.room.encryption/`, {
          token: alice.accessToken,
          body: { algorithm: "m.megolm.v1.aes-sha2" },
        });
        assert.equal(enc.status, 200);
        await post(alice, room, "invite", { user_id: joiner.userId });
        await post(joiner, room, "join");
        const sync = await s.api("GET", since ? `/sync?since=${t0}` : "/sync", { token: joiner.accessToken });
        const joined = sync.json.rooms.join[room];
        type Ev = { type: string; state_key?: string; content: Record<string, unknown>; event_id: string };
        const all: Ev[] = [...joined.state.events, ...joined.timeline.events];
        const current = (type: string, key = "") =>
          all.filter((e) => e.type === type && e.state_key === key).at(-1)?.content;
        const what = `${visibility}, ${since ? "incremental" : "initial"} sync`;
        assert.equal(current("m.room.encryption")?.algorithm, "m.megolm.v1.aes-sha2", what);
        assert.equal(current("m.room.history_visibility")?.history_visibility, visibility, what);
        assert.equal(current("m.room.member", joiner.userId)?.membership, "join", what);
        assert.equal(current("m.room.member", alice.userId)?.membership, "join", what);
        // Every current state event of the room reaches the client, in state or in the timeline.
        const state = await s.api("GET", `/rooms/${r}/state`, { token: joiner.accessToken });
        const ids = new Set(all.map((e) => e.event_id));
        for (const e of state.json as Ev[]) assert.ok(ids.has(e.event_id), `${what}: ${e.type} missing`);
      }
    }
  });

  it("lazy-loading members: state carries only the members the timeline needs", async () => {
    const room = await create({ preset: "public_chat" });
    await post(bob, room, "join");
    await post(carol, room, "join");
    for (let i = 0; i < 5; i++) await send(bob, room, `lazy${i}`, `b${i}`);
    const filter = encodeURIComponent(
      JSON.stringify({ room: { timeline: { limit: 3 }, state: { lazy_load_members: true } } }),
    );
    const lazy = await s.api("GET", `/sync?filter=${filter}`, { token: carol.accessToken });
    const members = (lazy.json.rooms.join[room].state.events as { type: string; state_key: string }[])
      .filter((e) => e.type === "m.room.member")
      .map((e) => e.state_key)
      .sort();
    assert.deepEqual(
      members,
      [bob.userId, carol.userId].sort(),
      "the sender and the syncing user, not alice",
    );
    assert.equal(lazy.json.rooms.join[room].summary["m.joined_member_count"], 3);
    const eager = await s.api("GET", "/sync", { token: carol.accessToken });
    const joinedRoom = eager.json.rooms.join[room];
    const all = [...joinedRoom.state.events, ...joinedRoom.timeline.events].filter(
      (e: { type: string }) => e.type === "m.room.member",
    );
    assert.equal(all.length, 3, "without lazy loading every member is there");
  });

  it("relations: children of an event by rel_type and event type, paginated", async () => {
    const room = await create();
    const r = encodeURIComponent(room);
    const parent = (await send(alice, room, "rel-parent", "parent")).json.event_id as string;
    const put = (txn: string, type: string, content: Record<string, unknown>) =>
      s.api("PUT", `/rooms/${r}/send/${type}/${txn}`, { token: alice.accessToken, body: content });
    await put("rel1", "m.reaction", {
      "m.relates_to": { rel_type: "m.annotation", event_id: parent, key: "👍" },
    });
    await put("rel2", "m.room.message", {
      body: "* edited",
      "m.new_content": { body: "edited" },
      "m.relates_to": { rel_type: "m.replace", event_id: parent },
    });
    await put("rel3", "m.room.message", {
      body: "in thread",
      "m.relates_to": { rel_type: "m.thread", event_id: parent },
    });
    await send(alice, room, "unrelated", "unrelated");
    const base = `/_matrix/client/v1/rooms/${r}/relations/${encodeURIComponent(parent)}`;
    const all = await s.api("GET", base, { token: alice.accessToken });
    assert.deepEqual(
      all.json.chunk.map(
        (e: { content: { "m.relates_to": { rel_type: string } } }) => e.content["m.relates_to"].rel_type,
      ),
      ["m.thread", "m.replace", "m.annotation"],
    );
    const reactions = await s.api("GET", `${base}/m.annotation/m.reaction`, { token: alice.accessToken });
    assert.equal(reactions.json.chunk.length, 1);
    const page1 = await s.api("GET", `${base}?limit=2`, { token: alice.accessToken });
    assert.equal(page1.json.chunk.length, 2);
    const page2 = await s.api("GET", `${base}?limit=2&from=${page1.json.next_batch}`, {
      token: alice.accessToken,
    });
    assert.equal(page2.json.chunk[0].type, "m.reaction");
    assert.equal(page2.json.next_batch, undefined);
    const outsider = await s.api("GET", base, { token: carol.accessToken });
    assert.equal(outsider.status, 404);
    const threads = await s.api("GET", `/_matrix/client/v1/rooms/${r}/threads`, { token: alice.accessToken });
    assert.equal(threads.json.chunk.length, 1);
    assert.equal(threads.json.chunk[0].event_id, parent);
    const summary = threads.json.chunk[0].unsigned["m.relations"]["m.thread"];
    assert.equal(summary.count, 1);
    assert.equal(summary.current_user_participated, true);
    assert.equal(summary.latest_event.content.body, "in thread");
  });

  it("typing and receipts arrive as ephemeral events", async () => {
    const room = await create({ preset: "public_chat" });
    const r = encodeURIComponent(room);
    await post(bob, room, "join");
    const t0 = (await s.api("GET", "/sync", { token: bob.accessToken })).json.next_batch as string;
    const poll = s.api("GET", `/sync?since=${t0}&timeout=30000`, { token: bob.accessToken });
    await s.api("PUT", `/rooms/${r}/typing/${encodeURIComponent(alice.userId)}`, {
      token: alice.accessToken,
      body: { typing: true, timeout: 10000 },
    });
    const typing = (await poll).json;
    assert.deepEqual(typing.rooms.join[room].ephemeral.events, [
      { type: "m.typing", content: { user_ids: [alice.userId] } },
    ]);
    const ev = (await send(alice, room, "rc", "read me")).json.event_id as string;
    await s.api("POST", `/rooms/${r}/receipt/m.read/${encodeURIComponent(ev)}`, {
      token: bob.accessToken,
      body: {},
    });
    const rec = await s.api("GET", `/sync?since=${typing.next_batch}`, { token: alice.accessToken });
    const eph = rec.json.rooms.join[room].ephemeral.events.find(
      (e: { type: string }) => e.type === "m.receipt",
    );
    assert.ok(eph.content[ev]["m.read"][bob.userId].ts > 0, 'eph.content[ev]["m.read"][bob.userId].ts > 0');
  });

  it("upgrade: tombstone in the old room, predecessor in the new one", async () => {
    const room = await create({ name: "Old" });
    const up = await post(alice, room, "upgrade", { new_version: "11" });
    assert.equal(up.status, 200);
    const newRoom = up.json.replacement_room as string;
    const tomb = await s.api("GET", `/rooms/${encodeURIComponent(room)}/state/m.room.tombstone`, {
      token: alice.accessToken,
    });
    assert.equal(tomb.json.replacement_room, newRoom);
    const cr = await s.api("GET", `/rooms/${encodeURIComponent(newRoom)}/state/m.room.create`, {
      token: alice.accessToken,
    });
    assert.equal(cr.json.predecessor.room_id, room);
    const name = await s.api("GET", `/rooms/${encodeURIComponent(newRoom)}/state/m.room.name`, {
      token: alice.accessToken,
    });
    assert.equal(name.json.name, "Old");
    const notAllowed = await post(bob, newRoom, "upgrade", { new_version: "11" });
    assert.equal(notAllowed.status, 403);
  });
});
