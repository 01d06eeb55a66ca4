// Room keys reach every member even when the sender's sync lazy-loads members: the sender fetches
// the member list before its first share, and again after a limited sync (a gap: members may
// have come and gone unseen); membership changes seen only in a gap reach the E2EE engine. What
// such a fetch corrects is saved in the client store and emitted (`room.member`).
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  type ClientStore,
  FileClientStore,
  MatrixClient,
  type Membership,
  SqliteClientStore,
} from "../../src/index.ts";
import {
  devServerFixture,
  eventById,
  newUser,
  sharedRoom,
  syncAll,
  type TestClient,
  uniq,
  watch,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-members-");

/** Options of a client whose sync lazy-loads members and keeps two events a room (so gaps come easily). */
function lazyOptions(storeDir: string, opts: { fillTimelineGaps?: boolean }) {
  return {
    syncTimeoutMs: 0,
    syncFilter: { room: { timeline: { limit: 2 }, state: { lazy_load_members: true } } },
    ...opts,
    encryption: { store: { directory: storeDir } },
  };
}

/** A new user whose sync lazy-loads members (`lazyOptions`); its client store is `store` (memory by default). */
async function lazyUser(
  prefix: string,
  opts: { fillTimelineGaps?: boolean } = {},
  store?: (name: string) => Promise<ClientStore>,
): Promise<TestClient> {
  const name = uniq(prefix);
  const storeDir = join(fx.dir, name);
  const client = new MatrixClient({
    homeserverUrl: fx.hs.baseUrl,
    ...lazyOptions(storeDir, opts),
    ...(store !== undefined ? { store: await store(name) } : {}),
  });
  fx.open.push(client);
  await client.register({ username: name, password: "pw" });
  return watch(client, name, storeDir);
}

/** The Megolm session an encrypted event was sent with, as `t` received it. */
function sessionOf(t: TestClient, eventId: string): unknown {
  return eventById(t, eventId).raw.content.session_id;
}

/** The `room.member` events `t`'s client emits for `roomId`, as `userId membership previous`. */
function memberEvents(t: TestClient, roomId: string): string[] {
  const out: string[] = [];
  t.client.on("room.member", (room, userId, membership: Membership, previous) => {
    if (room.roomId === roomId) out.push(`${userId} ${membership} ${previous ?? "-"}`);
  });
  return out;
}

/** Enough of `talker`'s messages that a two-event timeline of the room is limited. */
async function talkPastTheLimit(talker: TestClient, roomId: string): Promise<void> {
  for (let i = 0; i < 3; i++) await talker.client.sendText(roomId, `filler ${i}`);
}

/** New users (not lazy-loading) named from `prefixes`, closed after the test. */
async function newUsers<P extends string[]>(...prefixes: P): Promise<{ [K in keyof P]: TestClient }> {
  const users: TestClient[] = [];
  for (const prefix of prefixes) users.push(await newUser(fx.hs, fx.dir, prefix));
  fx.open.push(...users.map((u) => u.client));
  return users as { [K in keyof P]: TestClient };
}

/** The session ids of the `m.room_key`s for `roomId` that `t` receives from now on. */
function roomKeysFor(t: TestClient, roomId: string): unknown[] {
  const sessionIds: unknown[] = [];
  t.client.on("toDevice", (ev) => {
    if (ev.type === "m.room_key" && ev.content.room_id === roomId) sessionIds.push(ev.content.session_id);
  });
  return sessionIds;
}

/** While `alice` does not sync, `dave` is invited by `bob`, joins and leaves; Bob talks on; then Alice syncs. */
async function daveComesAndGoesInGap(
  alice: TestClient,
  bob: TestClient,
  dave: TestClient,
  roomId: string,
): Promise<void> {
  await bob.client.invite(roomId, dave.client.userId);
  await syncAll(dave);
  await dave.client.joinRoom(roomId);
  await dave.client.leaveRoom(roomId);
  await talkPastTheLimit(bob, roomId);
  await syncAll(alice);
}

/** While `alice` does not sync, `carol` leaves, `dave` (invited by `bob`) joins, Bob talks on; then Alice syncs. */
async function carolLeavesDaveJoinsInGap(
  alice: TestClient,
  { bob, carol, dave }: { bob: TestClient; carol: TestClient; dave: TestClient },
  roomId: string,
): Promise<void> {
  await carol.client.leaveRoom(roomId);
  await bob.client.invite(roomId, dave.client.userId);
  await syncAll(dave);
  await dave.client.joinRoom(roomId);
  await talkPastTheLimit(bob, roomId);
  await syncAll(alice);
}

describe("encrypted client with lazy-loaded members (devserver)", () => {
  it("a member sync never named still gets the room key", async () => {
    const [alice, bob, carol] = await newUsers("alice", "bob", "carol");
    const roomId = await sharedRoom(alice, [bob, carol]);
    // Enough of Bob's messages that Carol's join falls outside a short timeline.
    for (let i = 0; i < 4; i++) await bob.client.sendText(roomId, `filler ${i}`);

    // Alice's new device syncs with lazy-loaded members and sees only the recent senders.
    const aliceDir = join(fx.dir, `${alice.name}-lazy`);
    const lazy = new MatrixClient({ homeserverUrl: fx.hs.baseUrl, ...lazyOptions(aliceDir, {}) });
    fx.open.push(lazy);
    await lazy.login({ user: alice.client.userId, password: "pw" });
    const alice2 = watch(lazy, alice.name, aliceDir);
    await syncAll(alice2);
    const known = lazy.getRoom(roomId)?.members.map((m) => m.userId) ?? [];
    assert.ok(!known.includes(carol.client.userId), "precondition: sync did not name Carol");

    const e = await lazy.sendText(roomId, "for everyone, Carol too");
    await syncAll(bob, carol);
    assert.equal(eventById(carol, e).content.body, "for everyone, Carol too");
    assert.equal(eventById(bob, e).content.body, "for everyone, Carol too");
  });

  it("a member who joined and left inside a filled gap (seen only through /messages) rotates the room key", async () => {
    const alice = await lazyUser("alice");
    const [bob, dave] = await newUsers("bob", "dave");
    const roomId = await sharedRoom(alice, [bob]);
    const before = await alice.client.sendText(roomId, "before Dave came and went");

    // While Alice does not sync: Dave is invited, joins and leaves, and Bob talks on.
    await daveComesAndGoesInGap(alice, bob, dave, roomId);
    const daveEvents = alice.events.filter(
      (e) => e.type === "m.room.member" && e.stateKey === dave.client.userId,
    );
    assert.deepEqual(
      daveEvents.map((e) => e.content.membership),
      ["invite", "join", "leave"],
      "precondition: Alice saw Dave come and go, in the gap",
    );

    // Dave may hold the session through a history bundle: the spec rotates on any leave seen.
    const after = await alice.client.sendText(roomId, "after Dave left");
    await syncAll(bob);
    assert.notEqual(sessionOf(bob, after), sessionOf(bob, before), "the room key was rotated");
  });

  it("without gap filling, members who left or joined in the gap are fetched before the next share", async () => {
    const alice = await lazyUser("alice", { fillTimelineGaps: false });
    const [bob, carol, dave] = await newUsers("bob", "carol", "dave");
    const roomId = await sharedRoom(alice, [bob, carol]);
    const before = await alice.client.sendText(roomId, "before the gap");
    const carolKeys = roomKeysFor(carol, roomId);
    await syncAll(bob, carol);
    assert.ok(carolKeys.includes(sessionOf(bob, before)), "precondition: Carol got the first key");

    // While Alice does not sync: Carol leaves, Dave joins, and Bob talks on; none of it is in
    // Alice's limited timeline, nor (lazy-loaded members) in its state.
    await carolLeavesDaveJoinsInGap(alice, { bob, carol, dave }, roomId);

    const after = await alice.client.sendText(roomId, "after the gap");
    await syncAll(bob, carol, dave);
    assert.equal(
      eventById(dave, after).content.body,
      "after the gap",
      "Dave, who joined in the gap, reads it",
    );
    assert.notEqual(sessionOf(bob, after), sessionOf(bob, before), "the room key was rotated");
    assert.ok(!carolKeys.includes(sessionOf(bob, after)), "Carol, who left in the gap, got no new key");
  });

  it("without gap filling, a member who joined and left unseen in the gap rotates the room key", async () => {
    const alice = await lazyUser("alice", { fillTimelineGaps: false });
    const [bob, dave] = await newUsers("bob", "dave");
    const roomId = await sharedRoom(alice, [bob]);
    const before = await alice.client.sendText(roomId, "before Dave came and went");

    await daveComesAndGoesInGap(alice, bob, dave, roomId);
    assert.equal(
      alice.client.getRoom(roomId)?.getMember(dave.client.userId),
      undefined,
      "precondition: unseen",
    );

    const after = await alice.client.sendText(roomId, "after Dave left");
    await syncAll(bob);
    assert.notEqual(sessionOf(bob, after), sessionOf(bob, before), "the room key was rotated");
  });

  it("members the fetch corrected are emitted once, as sync emits membership changes", async () => {
    const alice = await lazyUser("alice", { fillTimelineGaps: false });
    const [bob, carol, dave] = await newUsers("bob", "carol", "dave");
    const roomId = await sharedRoom(alice, [bob, carol]);
    await alice.client.sendText(roomId, "before the gap");
    const seen = memberEvents(alice, roomId);

    await carolLeavesDaveJoinsInGap(alice, { bob, carol, dave }, roomId);
    assert.deepEqual(seen, [], "precondition: sync did not show the gap's memberships");

    // The events are emitted while the send goes on (not awaited by it), before its request.
    await alice.client.sendText(roomId, "after the gap");
    const carolId = carol.client.userId;
    const daveId = dave.client.userId;
    assert.deepEqual(seen.toSorted(), [`${carolId} leave join`, `${daveId} join -`].toSorted());
    await alice.client.sendText(roomId, "once more");
    await syncAll(alice);
    assert.equal(seen.length, 2, "emitted once");
  });

  /** The persistent client stores, each opened on a path. */
  const persistent: [string, (path: string) => Promise<ClientStore>][] = [
    ["file", async (path) => new FileClientStore(path)],
    ["SQLite", (path) => SqliteClientStore.open(path)],
  ];
  for (const [kind, open] of persistent)
    it(`a member who left in the gap stays left after a restart (${kind} client store): no room key, no second rotation`, async () => {
      const paths = new Map<string, string>();
      const opened = (name: string) => {
        const path = join(fx.dir, `${name}.client-store`);
        paths.set(name, path);
        return open(path);
      };
      const alice = await lazyUser("alice", { fillTimelineGaps: false }, opened);
      const [bob, carol] = await newUsers("bob", "carol");
      const roomId = await sharedRoom(alice, [bob, carol]);
      const carolKeys = roomKeysFor(carol, roomId);
      const before = await alice.client.sendText(roomId, "before the gap");
      await syncAll(bob, carol);
      assert.ok(carolKeys.includes(sessionOf(bob, before)), "precondition: Carol got the first key");

      await carol.client.leaveRoom(roomId);
      await talkPastTheLimit(bob, roomId);
      await syncAll(alice);
      const carolId = carol.client.userId;
      assert.equal(
        alice.client.getRoom(roomId)?.getMember(carolId)?.membership,
        "join",
        "precondition: unseen",
      );
      const after = await alice.client.sendText(roomId, "after the gap");
      await syncAll(bob);
      assert.notEqual(sessionOf(bob, after), sessionOf(bob, before), "precondition: the key was rotated");
      await alice.client.close();

      // Restarted from both stores: the corrected list comes back, and the engine agrees with it.
      const path = paths.get(alice.name);
      assert.ok(path !== undefined);
      const restarted = await MatrixClient.fromStore(
        await open(path),
        lazyOptions(alice.storeDir, { fillTimelineGaps: false }),
      );
      fx.open.push(restarted);
      const alice2 = watch(restarted, alice.name, alice.storeDir);
      assert.equal(
        restarted.getRoom(roomId)?.getMember(carolId)?.membership,
        "leave",
        "Carol left, after a restart too",
      );
      const seen = memberEvents(alice2, roomId);
      await syncAll(alice2);
      const next = await restarted.sendText(roomId, "after the restart");
      await syncAll(bob, carol);
      assert.equal(eventById(bob, next).content.body, "after the restart");
      assert.equal(sessionOf(bob, next), sessionOf(bob, after), "no second rotation for the same leave");
      assert.ok(!carolKeys.includes(sessionOf(bob, next)), "Carol got no new room key");
      assert.deepEqual(seen, [], "nothing changed again");
    });
});
