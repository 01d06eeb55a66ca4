// History sharing on invite (MSC4268): the invitee's download of the inviter's key bundle failed
// for a passing reason. A rate limit (429) was taken for a bundle that can never be used, and the
// bundle was dropped; any other passing failure (network, 5xx) left it waiting for a "next try"
// that only a later bundle or invitation ever started. Either way the room's history stayed
// undecryptable. It is now tried again with the next sync response (in the background: the sync
// does not wait for the download).
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type FetchLike, MatrixClient } from "../../src/client/index.ts";
import {
  devServerFixture,
  newUser,
  syncAll,
  type TestClient,
  texts,
  uniq,
  watch,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-history-retry-");

async function user(prefix: string, fetchImpl?: FetchLike): Promise<TestClient> {
  let t: TestClient;
  if (fetchImpl === undefined) t = await newUser(fx.hs, fx.dir, prefix);
  else {
    const name = uniq(prefix);
    const storeDir = join(fx.dir, name);
    const client = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      syncFilter: { room: { timeline: { limit: 100 } } },
      fetch: fetchImpl,
      encryption: { store: { directory: storeDir } },
    });
    await client.register({ username: name, password: "pw" });
    t = watch(client, name, storeDir);
  }
  fx.open.push(t.client);
  await t.client.bootstrapCrossSigning(); // bundles go to cross-signed devices only
  return t;
}

for (const [failure, answer] of [
  ["rate limited", () => Response.json({ errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 1 }, { status: 429 })],
  ["a server error", () => Response.json({ errcode: "M_UNKNOWN" }, { status: 502 })],
] as const)
  describe(`a key bundle whose download was ${failure}`, () => {
    it("is imported with the next sync response: the history decrypts", async () => {
      const alice = await user("hra");
      // Bob's first media download fails.
      let failures = 0;
      const bobFetch: FetchLike = async (url, init) => {
        if (failures === 0 && new URL(url).pathname.includes("/media/")) {
          failures++;
          return answer();
        }
        return fetch(url, init);
      };
      const bob = await user("hrb", bobFetch);
      const roomId = await alice.client.createRoom({
        name: "history",
        initialState: [
          { type: "m.room.history_visibility", state_key: "", content: { history_visibility: "shared" } },
        ],
      });
      await alice.client.sendText(roomId, "said before Bob came");
      await syncAll(alice, bob);

      await alice.client.invite(roomId, bob.client.userId);
      await bob.client.syncOnce({ timeoutMs: 0 }); // the invite and the bundle
      await bob.client.joinRoom(roomId); // the bundle's download fails
      assert.equal(failures, 1);
      await bob.client.syncOnce({ timeoutMs: 0 });
      await bob.client.syncOnce({ timeoutMs: 0 });
      // The sync starts the import and does not wait for the download.
      await bob.client.crypto.historySharing.idle();
      assert.deepEqual(texts(bob, roomId), ["said before Bob came"]);
    });
  });
