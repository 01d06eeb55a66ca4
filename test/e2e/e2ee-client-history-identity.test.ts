// History sharing with an inviter whose identity changed after we verified them: their bundle is
// not imported while the change is a violation, and is imported at the next sync once the app
// accepts the new identity (not only when another bundle happens to arrive).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  devServerFixture,
  eventById,
  fixtureUser,
  sharedRoom,
  syncAll,
  type TestClient,
  texts,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-history-identity-");

async function user(prefix: string): Promise<TestClient> {
  const t = await fixtureUser(fx, prefix);
  await t.client.bootstrapCrossSigning(); // bundles go to cross-signed devices only
  return t;
}

describe("history sharing from an inviter whose verified identity changed", () => {
  it("waits for the app's decision, then imports at the next sync", async () => {
    const alice = await user("hia");
    const bob = await user("hib");
    await sharedRoom(alice, [bob]); // so that Bob hears of Alice's key changes
    await bob.client.verifyUser(alice.client.userId);
    await alice.client.bootstrapCrossSigning({ reset: true, auth: { password: "pw" } });
    await syncAll(alice, bob);
    assert.equal((await bob.client.getUserIdentity(alice.client.userId))?.violation, true);

    const roomId = await alice.client.createRoom({
      name: "history",
      initialState: [
        { type: "m.room.history_visibility", state_key: "", content: { history_visibility: "shared" } },
      ],
    });
    const said = await alice.client.sendText(roomId, "said before Bob came");
    await alice.client.invite(roomId, bob.client.userId);
    await bob.client.syncOnce({ timeoutMs: 0 }); // the invite and the bundle (remembered only)
    await bob.client.joinRoom(roomId);
    await bob.client.syncOnce({ timeoutMs: 0 });
    assert.equal(eventById(bob, said).encryption?.decrypted, false, "Bob has the event, undecryptable");
    assert.deepEqual(texts(bob, roomId), [], "not imported from a changed identity");

    await bob.client.acceptIdentityChange(alice.client.userId);
    await bob.client.syncOnce({ timeoutMs: 0 });
    await bob.client.crypto.historySharing.idle(); // the sync starts the import, not waiting for it
    assert.deepEqual(texts(bob, roomId), ["said before Bob came"]);
  });
});
