// What the devserver's /sync says of a room beyond its events, as the client exposes it: the room
// summary (heroes, member counts) naming a room that has no name, and the unread notification
// counts (messages from others since our read receipt).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MatrixClient } from "../../src/index.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

let hs: TestDevServer;
const open: MatrixClient[] = [];
let n = 0;
const uniq = (p: string) => `${p}${++n}${Date.now().toString(36)}`;

before(async () => {
  hs = await startTestDevServer();
});
after(async () => {
  for (const c of open) await c.close().catch(() => undefined);
  await hs.close();
});

async function newUser(displayName: string): Promise<MatrixClient> {
  const c = new MatrixClient({ homeserverUrl: hs.baseUrl, syncTimeoutMs: 0 });
  open.push(c);
  await c.register({ username: uniq("u"), password: "pw" });
  await c.setDisplayName(displayName);
  return c;
}

describe("a room's summary from the devserver", () => {
  it("names a room without a name after its other members, with the member counts", async () => {
    const alice = await newUser("Alice");
    const bob = await newUser("Bob");
    const carol = await newUser("Carol");
    const roomId = await alice.createRoom({ encrypted: false, invite: [bob.userId, carol.userId] });
    await bob.joinRoom(roomId);
    await alice.syncOnce({ timeoutMs: 0 });
    const room = alice.getRoom(roomId);
    assert.ok(room);
    assert.equal(room.name, undefined);
    assert.deepEqual([...(room.heroes ?? [])].sort(), [bob.userId, carol.userId].sort());
    assert.equal(room.joinedMemberCount, 2);
    assert.equal(room.invitedMemberCount, 1);
    assert.equal(room.displayName, "Bob and Carol");
  });

  it("counts others' messages since our read receipt as unread notifications", async () => {
    const alice = await newUser("Alice");
    const bob = await newUser("Bob");
    const roomId = await alice.createRoom({ encrypted: false, invite: [bob.userId] });
    await bob.joinRoom(roomId);
    await alice.syncOnce({ timeoutMs: 0 });
    const counts: number[] = [];
    alice.on("room.unreadNotifications", (room, unread) => {
      if (room.roomId === roomId) counts.push(unread.notificationCount);
    });
    await bob.sendText(roomId, "one");
    const last = await bob.sendText(roomId, "two");
    await alice.sendText(roomId, "mine"); // our own messages do not count
    await alice.syncOnce({ timeoutMs: 0 });
    assert.equal(alice.getRoom(roomId)?.unreadNotifications.notificationCount, 2);
    assert.equal(alice.getRoom(roomId)?.unreadNotifications.highlightCount, 0);
    await alice.sendReadReceipt(roomId, last);
    await alice.syncOnce({ timeoutMs: 0 });
    assert.equal(alice.getRoom(roomId)?.unreadNotifications.notificationCount, 0);
    assert.deepEqual(counts, [2, 0]);
  });
});
