// Room keys reach every member even when the sender's sync lazy-loads members: the sender fetches
// the member list before its first share.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { MatrixClient } from "../../src/client/index.ts";
import { devServerFixture, eventById, newUser, sharedRoom, syncAll, watch } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-members-");

describe("encrypted client with lazy-loaded members (devserver)", () => {
  it("a member sync never named still gets the room key", async () => {
    const alice = await newUser(fx.hs, fx.dir, "alice");
    const bob = await newUser(fx.hs, fx.dir, "bob");
    const carol = await newUser(fx.hs, fx.dir, "carol");
    fx.open.push(alice.client, bob.client, carol.client);
    const roomId = await sharedRoom(alice, [bob, carol]);
    // Enough of Bob's messages that Carol's join falls outside a short timeline.
    for (let i = 0; i < 4; i++) await bob.client.sendText(roomId, `filler ${i}`);

    // Alice's new device syncs with lazy-loaded members and sees only the recent senders.
    const aliceDir = join(fx.dir, `${alice.name}-lazy`);
    const lazy = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      syncFilter: { room: { timeline: { limit: 2 }, state: { lazy_load_members: true } } },
      encryption: { store: { directory: aliceDir } },
    });
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
});
