// History sharing on invite (MSC4268) when the invite is accepted in another client (Element on
// the user's phone, here a second login of Bob without encryption, a raw `/join`): Bob's Keyroom
// device holds Alice's bundle and sees its own membership go from invite to join in the sync.
// Before, only `joinRoom` on this device recorded the accepted invite, so the bundle was never
// imported and the history from before the invite stayed undecryptable. The sync now records it
// (the inviter named in the invite, as `joinRoom` does) and imports in the background: once when
// `joinRoom` and the sync both see the join, and at the next start after a restart in between.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type FetchLike, FileClientStore, MatrixClient } from "../../src/index.ts";
import {
  devServerFixture,
  eventById,
  syncAll,
  type TestClient,
  texts,
  uniq,
  watch,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-history-other-");

/** Media downloads seen, and a gate that holds them until opened (open unless `hold`). */
function mediaGate(hold: boolean) {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  if (!hold) open();
  let started = () => {};
  const downloading = new Promise<void>((resolve) => {
    started = resolve;
  });
  const gate = { downloads: 0, open, downloading };
  const fetchImpl: FetchLike = async (url, init) => {
    if (new URL(url).pathname.includes("/download/")) {
      gate.downloads++;
      started();
      await opened;
    }
    return fetch(url, init);
  };
  return { gate, fetchImpl };
}

/**
 * A Keyroom user with a file client store (for restarts), requests through `fetchImpl`. `short`:
 * a one-event timeline and no gap filling, so that most of a room's history stays out of a sync.
 */
async function user(prefix: string, fetchImpl?: FetchLike, short = false) {
  const name = uniq(prefix);
  const storeDir = join(fx.dir, name);
  const clientStorePath = join(fx.dir, `${name}.json`);
  const client = new MatrixClient({
    homeserverUrl: fx.hs.baseUrl,
    syncTimeoutMs: 0,
    syncFilter: { room: { timeline: { limit: short ? 1 : 100 } } },
    ...(short ? { fillTimelineGaps: false } : {}),
    store: new FileClientStore(clientStorePath),
    encryption: { store: { directory: storeDir } },
    ...(fetchImpl !== undefined ? { fetch: fetchImpl } : {}),
  });
  fx.open.push(client);
  await client.register({ username: name, password: "pw" });
  await client.bootstrapCrossSigning(); // bundles go to cross-signed devices only
  return { t: watch(client, name, storeDir), clientStorePath };
}

/** The same device started again from both its stores. */
async function restart(t: TestClient, clientStorePath: string): Promise<TestClient> {
  const client = await MatrixClient.fromStore(new FileClientStore(clientStorePath), {
    syncTimeoutMs: 0,
    syncFilter: { room: { timeline: { limit: 100 } } },
    encryption: { store: { directory: t.storeDir } },
  });
  fx.open.push(client);
  return watch(client, t.name, t.storeDir);
}

/** Bob's other login (no encryption here, like a phone's app). */
async function otherLogin(bob: TestClient): Promise<MatrixClient> {
  const other = new MatrixClient({ homeserverUrl: fx.hs.baseUrl });
  fx.open.push(other);
  await other.login({ user: bob.client.userId, password: "pw" });
  return other;
}

/** Bob's other client accepts the invite. */
async function joinElsewhere(bob: TestClient, roomId: string): Promise<void> {
  await (await otherLogin(bob)).joinRoom(roomId);
}

/** Alice's room with shared history (public with `preset`), and a message said before Bob came. */
async function historyRoom(alice: TestClient, preset?: "public_chat") {
  const roomId = await alice.client.createRoom({
    name: "history",
    ...(preset !== undefined ? { preset } : {}),
    initialState: [
      { type: "m.room.history_visibility", state_key: "", content: { history_visibility: "shared" } },
    ],
  });
  return { roomId, said: await alice.client.sendText(roomId, "said before Bob came") };
}

/** Alice's room with shared history, a message in it, and her invite to Bob with her bundle. */
async function invited(alice: TestClient, bob: TestClient) {
  const { roomId, said } = await historyRoom(alice);
  await alice.client.invite(roomId, bob.client.userId);
  await bob.client.syncOnce({ timeoutMs: 0 }); // the invite and the bundle (remembered only)
  assert.equal(bob.client.getRoom(roomId)?.membership, "invite");
  return { roomId, said };
}

describe("history sharing when the invite is accepted in another client", () => {
  it("the Keyroom device imports the inviter's bundle when the sync shows the join", async () => {
    const { t: alice } = await user("hoa");
    const { t: bob } = await user("hob");
    const { roomId, said } = await invited(alice, bob);

    await joinElsewhere(bob, roomId);
    await bob.client.syncOnce({ timeoutMs: 0 }); // invite → join, not through joinRoom here
    assert.equal(bob.client.getRoom(roomId)?.membership, "join");
    await bob.client.crypto.historySharing.idle(); // the sync starts the import, not waiting for it
    assert.deepEqual(texts(bob, roomId), ["said before Bob came"]);
    const ev = eventById(bob, said);
    // Bob has Alice's word for the key, and the event says so.
    assert.deepEqual(ev.encryption?.decrypted === true ? ev.encryption.keysFrom : undefined, {
      curve25519: alice.client.crypto.machine.identityKeys.curve25519,
      userId: alice.client.userId,
      deviceId: alice.client.deviceId,
    });
    assert.deepEqual(await bob.client.crypto.machine.historySharing.bundlesToImport(), []);
  });

  it("a bundle from someone other than the inviter is not imported on a join seen in the sync", async () => {
    const { t: alice } = await user("hoc");
    const { t: carol } = await user("hod");
    const { t: bob } = await user("hoe");
    const roomId = await alice.client.createRoom({
      name: "history",
      invite: [carol.client.userId],
      initialState: [
        { type: "m.room.history_visibility", state_key: "", content: { history_visibility: "shared" } },
      ],
    });
    await carol.client.syncOnce({ timeoutMs: 0 });
    await carol.client.joinRoom(roomId);
    const said = await alice.client.sendText(roomId, "before Bob");
    await syncAll(carol);
    // Carol (a member, not the inviter) sends Bob her bundle; Alice invites him with hers.
    assert.ok((await carol.client.crypto.historySharing.share(roomId, bob.client.userId)).roomKeys >= 1);
    await bob.client.syncOnce({ timeoutMs: 0 }); // Carol's bundle
    const plain = new MatrixClient({ homeserverUrl: fx.hs.baseUrl });
    fx.open.push(plain);
    await plain.login({ user: alice.client.userId, password: "pw" });
    await plain.invite(roomId, bob.client.userId); // Alice's client without encryption: no bundle
    await bob.client.syncOnce({ timeoutMs: 0 });

    await joinElsewhere(bob, roomId);
    await bob.client.syncOnce({ timeoutMs: 0 });
    await bob.client.crypto.historySharing.idle();
    assert.notEqual(eventById(bob, said).encryption?.decrypted, true);
    assert.deepEqual(texts(bob, roomId), []);
  });

  it("joinRoom here and the sync that shows the join download the bundle once", async () => {
    const { t: alice } = await user("hof");
    const { gate, fetchImpl } = mediaGate(true);
    const { t: bob } = await user("hog", fetchImpl);
    const { roomId } = await invited(alice, bob);

    const joined = bob.client.joinRoom(roomId);
    await gate.downloading; // joinRoom's import pass is downloading the bundle...
    await bob.client.syncOnce({ timeoutMs: 0 }); // ...when the sync shows the join: not waited for
    assert.equal(bob.client.getRoom(roomId)?.membership, "join");
    gate.open();
    await joined;
    await bob.client.crypto.historySharing.idle();
    assert.equal(gate.downloads, 1);
    assert.deepEqual(texts(bob, roomId), ["said before Bob came"]);
  });

  it("a restart between the join seen in the sync and the import: imported at the next start", async () => {
    const { t: alice } = await user("hoh");
    const { gate, fetchImpl } = mediaGate(true);
    const { t: bob, clientStorePath } = await user("hoi", fetchImpl);
    const { roomId, said } = await invited(alice, bob);

    await joinElsewhere(bob, roomId);
    await bob.client.syncOnce({ timeoutMs: 0 }); // the join, recorded; its token saved
    // The import starts; its download never ends in this process.
    await Promise.race([gate.downloading, bob.client.crypto.historySharing.idle()]);
    assert.equal(gate.downloads, 1, "the join seen in the sync starts the bundle's download");
    await bob.client.close(); // abandons it
    assert.notEqual(eventById(bob, said).encryption?.decrypted, true);

    const again = await restart(bob, clientStorePath);
    await again.client.syncOnce({ timeoutMs: 0 }); // nothing new in it: the store remembers
    await again.client.crypto.historySharing.idle();
    assert.equal((await again.client.fetchEvent(roomId, said)).content.body, "said before Bob came");
    assert.deepEqual(await again.client.crypto.machine.historySharing.bundlesToImport(), []);
    gate.open();
  });

  it("a join made while the Keyroom device was stopped is seen at its next start", async () => {
    const { t: alice } = await user("hoj");
    const { t: bob, clientStorePath } = await user("hok");
    const { roomId, said } = await invited(alice, bob);
    await bob.client.close();

    await joinElsewhere(bob, roomId);
    const again = await restart(bob, clientStorePath);
    await again.client.syncOnce({ timeoutMs: 0 }); // invite (from the store) → join
    await again.client.crypto.historySharing.idle();
    assert.deepEqual(texts(again, roomId), ["said before Bob came"]);
    assert.equal(eventById(again, said).encryption?.decrypted, true);
  });

  it("a device that never saw the invite finds the inviter in the timeline that shows the join", async () => {
    const { t: alice } = await user("hol");
    const { t: bob, clientStorePath } = await user("hom");
    await bob.client.close(); // away before the invite: its client store never holds it
    const { roomId, said } = await historyRoom(alice);
    await alice.client.invite(roomId, bob.client.userId);
    await joinElsewhere(bob, roomId);

    const again = await restart(bob, clientStorePath);
    await again.client.syncOnce({ timeoutMs: 0 }); // the join, the invite before it in the timeline
    await again.client.crypto.historySharing.idle();
    assert.equal(again.client.getRoom(roomId)?.membership, "join");
    assert.equal(eventById(again, said).encryption?.decrypted, true);
  });

  it("a join after a refused invite in the same timeline accepted no invite: nothing imported", async () => {
    const { t: alice } = await user("hon");
    const { t: bob, clientStorePath } = await user("hoo");
    await bob.client.close();
    const { roomId, said } = await historyRoom(alice, "public_chat");
    await alice.client.invite(roomId, bob.client.userId);
    const other = await otherLogin(bob);
    await other.leaveRoom(roomId); // refuses the invite
    await other.joinRoom(roomId); // then joins the public room on its own

    const again = await restart(bob, clientStorePath);
    await again.client.syncOnce({ timeoutMs: 0 });
    await again.client.crypto.historySharing.idle();
    assert.equal(again.client.getRoom(roomId)?.membership, "join");
    assert.notEqual(eventById(again, said).encryption?.decrypted, true);
  });

  it("an invite this device holds, refused then a public join in one sync: nothing imported", async () => {
    const { t: alice } = await user("hop");
    const { t: bob } = await user("hoq");
    const { roomId, said } = await historyRoom(alice, "public_chat");
    await alice.client.invite(roomId, bob.client.userId);
    await bob.client.syncOnce({ timeoutMs: 0 }); // the invite (held) and Alice's bundle
    assert.equal(bob.client.getRoom(roomId)?.membership, "invite");
    const other = await otherLogin(bob);
    await other.leaveRoom(roomId); // refuses the invite
    await other.joinRoom(roomId); // then joins the public room on its own

    await bob.client.syncOnce({ timeoutMs: 0 }); // leave and join in one response
    await bob.client.crypto.historySharing.idle();
    assert.equal(bob.client.getRoom(roomId)?.membership, "join");
    assert.notEqual(eventById(bob, said).encryption?.decrypted, true);
  });

  it("the held invite withdrawn, another's accepted, the sync showing the join only in its state: the other's bundle", async () => {
    const { t: alice } = await user("hot");
    const { t: carol } = await user("hou");
    const { t: bob } = await user("hov", undefined, true);
    const { roomId, said } = await historyRoom(alice);
    await alice.client.invite(roomId, carol.client.userId);
    await carol.client.syncOnce({ timeoutMs: 0 });
    await carol.client.joinRoom(roomId);
    await alice.client.invite(roomId, bob.client.userId);
    await bob.client.syncOnce({ timeoutMs: 0 }); // Alice's invite (held) and her bundle
    assert.equal(bob.client.getRoom(roomId)?.membership, "invite");
    await alice.client.kick(roomId, bob.client.userId); // withdrawn
    await syncAll(carol);
    await carol.client.invite(roomId, bob.client.userId); // Carol's invite, with her bundle
    await joinElsewhere(bob, roomId);
    await carol.client.sendText(roomId, "after Bob came");

    // Bob's join is in the state only: its `unsigned` names the invite it replaced, Carol's.
    await bob.client.syncOnce({ timeoutMs: 0 });
    await bob.client.crypto.historySharing.idle();
    assert.equal(bob.client.getRoom(roomId)?.membership, "join");
    const ev = await bob.client.fetchEvent(roomId, said);
    assert.equal(ev.content.body, "said before Bob came");
    const from = ev.encryption?.decrypted === true ? ev.encryption.keysFrom?.userId : undefined;
    assert.equal(from, carol.client.userId, "the key is Carol's word, not that of the inviter withdrawn");
  });

  it("an invite this device holds, refused then a public join the sync shows only in its state: nothing imported", async () => {
    const { t: alice } = await user("hor");
    const { t: bob } = await user("hos", undefined, true);
    const { roomId, said } = await historyRoom(alice, "public_chat");
    await alice.client.invite(roomId, bob.client.userId);
    await bob.client.syncOnce({ timeoutMs: 0 }); // the invite (held) and Alice's bundle
    assert.equal(bob.client.getRoom(roomId)?.membership, "invite");
    const other = await otherLogin(bob);
    await other.leaveRoom(roomId); // refuses the invite
    await other.joinRoom(roomId); // then joins the public room on its own
    await alice.client.sendText(roomId, "after Bob came");

    // The one-event timeline holds Alice's message; Bob's join is in the state, his leave nowhere
    // but in the join's `unsigned.prev_content`.
    await bob.client.syncOnce({ timeoutMs: 0 });
    await bob.client.crypto.historySharing.idle();
    assert.equal(bob.client.getRoom(roomId)?.membership, "join");
    assert.deepEqual(await bob.client.crypto.machine.historySharing.bundlesToImport(), []);
    assert.notEqual((await bob.client.fetchEvent(roomId, said)).encryption?.decrypted, true);
  });
});
