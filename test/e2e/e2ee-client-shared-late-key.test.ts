// Two clients of one device on one crypto store (two processes or tabs): one showed an event it
// could not decrypt, then the key came to the other one (an import here; a sync's to-device
// message the other handled first does the same). The first reloaded at its next unit of work but
// never retried the event: no `room.decrypted`, the event stayed undecryptable for its app.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type FetchLike, MatrixClient } from "../../src/client/index.ts";
import {
  devServerFixture,
  eventById,
  sharedRoom,
  type TestClient,
  uniq,
  watch,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-shared-late-key-");

function client(storeDir: string, fetchImpl?: FetchLike): MatrixClient {
  const c = new MatrixClient({
    homeserverUrl: fx.hs.baseUrl,
    syncTimeoutMs: 0,
    syncFilter: { room: { timeline: { limit: 100 } } },
    ...(fetchImpl !== undefined ? { fetch: fetchImpl } : {}),
    encryption: { store: { directory: storeDir } },
  });
  fx.open.push(c);
  return c;
}

describe("two clients on one store", () => {
  it("an event one of them could not decrypt is decrypted there once the other got its key", async () => {
    const aliceName = uniq("alice");
    const aliceDir = join(fx.dir, aliceName);
    const first = client(aliceDir);
    await first.register({ username: aliceName, password: "pw" });
    const session = await first.store.loadSession();
    assert.ok(session);
    const second = client(aliceDir);
    await second.restore(session);
    const one: TestClient = watch(first, "one", aliceDir);
    const two: TestClient = watch(second, "two", aliceDir);

    // Bob's room key shares can be dropped on the way (the server never sees them).
    let dropShares = false;
    const bobFetch: FetchLike = async (url, init) => {
      if (dropShares && new URL(url).pathname.includes("/sendToDevice/m.room.encrypted/"))
        return Response.json({});
      return fetch(url, init);
    };
    const bobName = uniq("bob");
    const bobDir = join(fx.dir, bobName);
    const bobClient = client(bobDir, bobFetch);
    await bobClient.register({ username: bobName, password: "pw" });
    const bob = watch(bobClient, bobName, bobDir);
    const roomId = await sharedRoom(bob, [one]);
    await two.client.syncOnce({ timeoutMs: 0 });

    dropShares = true;
    const eventId = await bob.client.sendText(roomId, "its key came to the other client");
    dropShares = false;
    await two.client.syncOnce({ timeoutMs: 0 });
    assert.equal(eventById(two, eventId).encryption?.decrypted, false, "no key yet");

    const file = await bob.client.crypto.exportRoomKeys([roomId], "pw");
    await one.client.crypto.importRoomKeys(file, "pw");
    // Two's next unit of work (not a sync: a process that does not sync reloads too) finds the
    // store written by the other client. The reload emits the events in a unit of its own, done
    // once the pending promise jobs have run.
    await two.client.getUserDevices(two.client.userId);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(eventById(two, eventId).content.body, "its key came to the other client");
    assert.deepEqual(
      two.late.map((e) => e.eventId),
      [eventId],
    );
  });
});
