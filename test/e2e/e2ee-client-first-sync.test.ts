// A first sync full of encrypted events from senders new to this device (a new login that restored
// the room keys, e.g. from an export or a backup): their devices are fetched in one batched
// /keys/query before the events are decrypted, not one round trip per new sender (which made a
// large account's first sync several times slower: bench/sync).
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { MatrixClient } from "../../src/client/index.ts";
import { devServerFixture, eventById, newUser, sharedRoom, syncAll, watch } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-first-sync-");

describe("encrypted client, first sync (devserver)", () => {
  it("queries the devices of every new sender at once, then decrypts their events", async () => {
    const alice = await newUser(fx.hs, fx.dir, "alice");
    const bob = await newUser(fx.hs, fx.dir, "bob");
    const carol = await newUser(fx.hs, fx.dir, "carol");
    const dave = await newUser(fx.hs, fx.dir, "dave");
    fx.open.push(alice.client, bob.client, carol.client, dave.client);
    const roomId = await sharedRoom(alice, [bob, carol, dave]);
    const senders = [alice, bob, carol];
    const sent: string[] = [];
    for (const s of senders) sent.push(await s.client.sendText(roomId, `from ${s.name}`));
    await syncAll(dave);
    const keys = await dave.client.exportRoomKeys("pw", { rounds: 1000 });

    // Dave's new device: the room keys restored, then its first sync, where room and senders are new.
    const queried: string[][] = [];
    const counting = async (input: string, init: RequestInit): Promise<Response> => {
      if (new URL(input).pathname.endsWith("/keys/query")) {
        const body = JSON.parse(String(init.body)) as { device_keys: Record<string, unknown> };
        queried.push(Object.keys(body.device_keys));
      }
      return fetch(input, init);
    };
    const storeDir = join(fx.dir, `${dave.name}-2`);
    const client = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      syncFilter: { room: { timeline: { limit: 100 } } },
      encryption: { store: { directory: storeDir } },
      fetch: counting,
    });
    fx.open.push(client);
    await client.login({ user: dave.client.userId, password: "pw" });
    await client.importRoomKeys(keys, "pw");
    const dave2 = watch(client, dave.name, storeDir);
    queried.length = 0;
    await syncAll(dave2);

    senders.forEach((s, i) => {
      const ev = eventById(dave2, sent[i] ?? "");
      assert.equal(ev.content.body, `from ${s.name}`);
    });
    const naming = queried.filter((users) => senders.some((s) => users.includes(s.client.userId)));
    assert.equal(naming.length, 1, `one query for the senders, got ${JSON.stringify(queried)}`);
    for (const s of senders) assert.ok(naming[0]?.includes(s.client.userId));
  });
});

/** Alice and Bob in an encrypted room, each having seen the other's messages (and fetched their devices). */
async function conversation() {
  const alice = await newUser(fx.hs, fx.dir, "alice");
  const bob = await newUser(fx.hs, fx.dir, "bob");
  fx.open.push(alice.client, bob.client);
  const roomId = await sharedRoom(alice, [bob]);
  await bob.client.sendText(roomId, "first");
  await syncAll(alice, bob);
  await alice.client.sendText(roomId, "reply");
  await syncAll(alice, bob);
  return { alice, bob, roomId };
}

describe("encrypted client, senders it already follows (devserver)", () => {
  it("a response whose encrypted events come from tracked, current senders takes no tracking step or extra outgoing pass", async () => {
    const { alice, bob, roomId } = await conversation();

    const machine = alice.client.crypto.machine;
    const calls = { track: 0, outgoing: 0 };
    const track = machine.updateTrackedUsers.bind(machine);
    const outgoing = machine.outgoingRequests.bind(machine);
    machine.updateTrackedUsers = (ids) => {
      calls.track++;
      return track(ids);
    };
    machine.outgoingRequests = () => {
      calls.outgoing++;
      return outgoing();
    };
    const eventId = await bob.client.sendText(roomId, "second");
    await syncAll(alice);
    machine.updateTrackedUsers = track;
    machine.outgoingRequests = outgoing;

    assert.equal(eventById(alice, eventId).content.body, "second");
    // One pass, after the events (`beforeSaveSyncToken`); none for the sender, whom Alice follows.
    assert.deepEqual(calls, { track: 0, outgoing: 1 });
  });

  it("a response that leaves the key backup nothing to do takes no backup step", async () => {
    const { alice, bob, roomId } = await conversation();
    await alice.client.crypto.backup.idle();

    const backup = alice.client.crypto.machine.backup;
    const calls = { lookups: 0, uploads: 0 };
    const lookupRequests = backup.lookupRequests.bind(backup);
    const nextUpload = backup.nextUpload.bind(backup);
    backup.lookupRequests = () => {
      calls.lookups++;
      return lookupRequests();
    };
    backup.nextUpload = () => {
      calls.uploads++;
      return nextUpload();
    };
    // No backup in use and no session missing: nothing to look up or upload after this response.
    const eventId = await bob.client.sendText(roomId, "second");
    await syncAll(alice);
    await alice.client.crypto.backup.idle();
    backup.lookupRequests = lookupRequests;
    backup.nextUpload = nextUpload;

    assert.equal(eventById(alice, eventId).content.body, "second");
    assert.deepEqual(calls, { lookups: 0, uploads: 0 });
  });
});
