// Encrypted rooms through the devserver with two (and more) Keyroom clients created with
// `encryption`: messages both ways, own devices, leaving, late joiners, restarts.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { InboundGroupSession } from "../../src/crypto/megolm/index.ts";
import { FileClientStore, MatrixClient, type SyncChanges, type ToDeviceEvent } from "../../src/index.ts";
import {
  devServerFixture,
  eventById,
  fixtureUser,
  sharedRoom,
  syncAll,
  type TestClient,
  texts,
  watch,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-client-");

/** Counts the Megolm decryptions that really run, until `restore()`. */
function countDecryptions(): { count(): number; restore(): void } {
  let n = 0;
  const realDecrypt = InboundGroupSession.prototype.decrypt;
  InboundGroupSession.prototype.decrypt = function (this: InboundGroupSession, message: string) {
    n++;
    return realDecrypt.call(this, message);
  };
  return {
    count: () => n,
    restore: () => {
      InboundGroupSession.prototype.decrypt = realDecrypt;
    },
  };
}

describe("encrypted client (devserver)", () => {
  it("two clients chat in an encrypted room both ways; the server only sees ciphertext", async () => {
    const alice = await fixtureUser(fx, "alice");
    const bob = await fixtureUser(fx, "bob");
    const roomId = await sharedRoom(alice, [bob]);
    assert.equal(alice.client.getRoom(roomId)?.encrypted, true);

    const toDevice: ToDeviceEvent[] = [];
    bob.client.on("toDevice", (ev) => void toDevice.push(ev));
    const e1 = await alice.client.sendText(roomId, "hello bob");
    await syncAll(bob);
    // The room key came over Olm: the event says from which device, and holds no key material.
    const roomKey = toDevice.find((ev) => ev.type === "m.room_key");
    assert.ok(roomKey);
    assert.equal(roomKey.content.session_key, undefined);
    assert.deepEqual(roomKey.encryption, {
      senderCurve25519: (await bob.client.getUserDevices(alice.client.userId))[0]?.curve25519,
      senderEd25519: alice.client.getFingerprint(),
      senderDevice: alice.client.deviceId,
    });
    const got = eventById(bob, e1);
    assert.equal(got.type, "m.room.message");
    assert.equal(got.content.body, "hello bob");
    assert.equal(got.raw.type, "m.room.encrypted");
    assert.deepEqual(got.encryption, {
      decrypted: true,
      senderKey: (await bob.client.getUserDevices(alice.client.userId))[0]?.curve25519,
      senderDeviceId: alice.client.deviceId,
      trust: "unverified",
      // Neither user has set up cross-signing.
      senderCrossSigned: false,
      senderIdentity: "none",
    });

    const e2 = await bob.client.sendText(roomId, "hi alice", { replyTo: e1 });
    await syncAll(alice);
    const reply = eventById(alice, e2);
    assert.equal(reply.content.body, "hi alice");
    assert.equal(reply.encryption?.decrypted, true);
    // The relation stays readable by the server; the body does not.
    assert.ok(reply.raw.content["m.relates_to"]);
    assert.equal(reply.raw.content.body, undefined);

    // The server stored ciphertext only: both messages, as /messages gives them.
    const page = await alice.client.messages(roomId, { limit: 10 });
    const stored = page.events.filter((e) => e.eventId === e1 || e.eventId === e2);
    assert.equal(stored.length, 2, "both messages are in the page");
    for (const ev of stored) assert.equal(ev.raw.type, "m.room.encrypted");
    assert.deepEqual(texts(bob, roomId), ["hello bob"]);
  });

  it("a client's own event comes back with the plaintext it sent, exactly as decryption gives it", async () => {
    const alice = await fixtureUser(fx, "alice");
    const bob = await fixtureUser(fx, "bob");
    const roomId = await sharedRoom(alice, [bob]);
    const sent = await alice.client.sendText(roomId, "echo me");
    const decryptions = countDecryptions();
    try {
      await syncAll(alice);
      assert.equal(decryptions.count(), 0, "the echo of the event /send accepted is not decrypted again");
      const echo = eventById(alice, sent);
      assert.equal(echo.content.body, "echo me");
      // The same event from /messages is decrypted in full: the same content and sender facts.
      const page = await alice.client.messages(roomId, { limit: 10 });
      const fetched = page.events.find((e) => e.eventId === sent);
      assert.ok(fetched);
      assert.equal(decryptions.count(), 1);
      assert.deepEqual(fetched.content, echo.content);
      assert.deepEqual(fetched.encryption, echo.encryption);
      assert.ok(echo.encryption?.decrypted === true && echo.encryption.trust === "verified");
    } finally {
      decryptions.restore();
    }
  });

  it("an own event whose echo arrives before /send's answer is not decrypted again either", async () => {
    // The sync response carrying the echo often beats `/send`'s answer (a third of a bot's replies
    // in bench/bots.ts): /send's answer is held here until the echo has been handled.
    let hold = false;
    let release = (): void => {};
    const answered = new Promise<void>((resolve) => {
      release = resolve;
    });
    const name = `early${Date.now().toString(36)}`;
    const storeDir = join(fx.dir, name);
    const client = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      encryption: { store: { directory: storeDir } },
      fetch: async (input, init) => {
        const res = await globalThis.fetch(input, init);
        if (hold && String(input).includes("/send/m.room.encrypted/")) await answered;
        return res;
      },
    });
    fx.open.push(client);
    await client.register({ username: name, password: "pw" });
    const alice = watch(client, name, storeDir);
    const bob = await fixtureUser(fx, "bob");
    const roomId = await sharedRoom(alice, [bob]);
    await alice.client.sendText(roomId, "warm up");
    await syncAll(alice, bob);
    const decryptions = countDecryptions();
    try {
      hold = true;
      const sending = alice.client.sendText(roomId, "before the answer");
      while (!texts(alice, roomId).includes("before the answer")) await syncAll(alice);
      assert.equal(decryptions.count(), 0, "the echo used the plaintext sent");
      release();
      const eventId = await sending;
      const echo = eventById(alice, eventId).encryption;
      assert.ok(echo?.decrypted === true && echo.trust === "verified");
    } finally {
      release();
      decryptions.restore();
    }
  });

  it("a second device of the same user joins and reads new messages", async () => {
    const alice = await fixtureUser(fx, "alice");
    const bob = await fixtureUser(fx, "bob");
    const roomId = await sharedRoom(alice, [bob]);
    await alice.client.sendText(roomId, "before the second device");

    const bob2Dir = join(fx.dir, `${bob.name}-2`);
    const bob2Client = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      encryption: { store: { directory: bob2Dir } },
    });
    fx.open.push(bob2Client);
    await bob2Client.login({ user: bob.client.userId, password: "pw" });
    const bob2 = watch(bob2Client, bob.name, bob2Dir);
    assert.notEqual(bob2Client.deviceId, bob.client.deviceId);
    await syncAll(bob2, alice);

    const e = await alice.client.sendText(roomId, "after the second device");
    await syncAll(bob, bob2);
    assert.equal(eventById(bob2, e).content.body, "after the second device");
    assert.equal(eventById(bob, e).content.body, "after the second device");

    // Bob's own devices see each other's messages too.
    const fromBob2 = await bob2Client.sendText(roomId, "from my second device");
    await syncAll(bob, alice);
    assert.equal(eventById(bob, fromBob2).content.body, "from my second device");
    assert.equal(eventById(alice, fromBob2).content.body, "from my second device");
  });

  it("a member who leaves cannot read later messages (the room key rotates)", async () => {
    const alice = await fixtureUser(fx, "alice");
    const bob = await fixtureUser(fx, "bob");
    const carol = await fixtureUser(fx, "carol");
    const roomId = await sharedRoom(alice, [bob, carol]);
    const e1 = await alice.client.sendText(roomId, "all three of us");
    await syncAll(bob, carol);
    assert.equal(eventById(carol, e1).content.body, "all three of us");
    const firstSession = eventById(carol, e1).raw.content.session_id;

    await carol.client.leaveRoom(roomId);
    await syncAll(alice, bob);
    const e2 = await alice.client.sendText(roomId, "carol is gone");
    assert.notEqual(
      (await alice.client.messages(roomId, { limit: 1 })).events[0]?.raw.content.session_id,
      firstSession,
    );
    await syncAll(bob);
    assert.equal(eventById(bob, e2).content.body, "carol is gone");
    // Even holding the ciphertext, Carol has no key for the new session.
    const carolRoom = carol.client.getRoom(roomId);
    assert.ok(carolRoom);
    const result = await carol.client.crypto.decryptRoomEvent(carolRoom, eventById(bob, e2).raw);
    assert.equal(result.ok, false);
    assert.equal(result.ok === false && result.code, "UNKNOWN_SESSION");
    // ... while the first message still decrypts for her.
    const before = await carol.client.crypto.decryptRoomEvent(carolRoom, eventById(bob, e1).raw);
    assert.equal(before.ok, true);
  });

  it("a member we kick gets no key for what we send before sync shows the kick", async () => {
    const alice = await fixtureUser(fx, "alice");
    const bob = await fixtureUser(fx, "bob");
    const carol = await fixtureUser(fx, "carol");
    const roomId = await sharedRoom(alice, [bob, carol]);
    const e1 = await alice.client.sendText(roomId, "all three of us");
    await syncAll(alice, bob, carol);
    const firstSession = eventById(carol, e1).raw.content.session_id;

    await alice.client.kick(roomId, carol.client.userId);
    // No sync for Alice: the kick is known from the server's answer alone.
    const e2 = await alice.client.sendText(roomId, "carol was kicked");
    await syncAll(bob);
    assert.equal(eventById(bob, e2).content.body, "carol was kicked");
    assert.notEqual(eventById(bob, e2).raw.content.session_id, firstSession, "the room key rotated");
    const carolRoom = carol.client.getRoom(roomId);
    assert.ok(carolRoom);
    const result = await carol.client.crypto.decryptRoomEvent(carolRoom, eventById(bob, e2).raw);
    assert.equal(result.ok === false && result.code, "UNKNOWN_SESSION");
  });

  it("a late joiner cannot read history from before it joined", async () => {
    const alice = await fixtureUser(fx, "alice");
    const bob = await fixtureUser(fx, "bob");
    const roomId = await sharedRoom(alice, [bob]);
    const early = await alice.client.sendText(roomId, "before dave");

    const dave = await fixtureUser(fx, "dave");
    await alice.client.invite(roomId, dave.client.userId);
    await syncAll(dave);
    await dave.client.joinRoom(roomId);
    await syncAll(alice, dave);
    const late = await alice.client.sendText(roomId, "welcome dave");
    await syncAll(dave);
    assert.equal(eventById(dave, late).content.body, "welcome dave");

    const history = await dave.client.messages(roomId, { limit: 50 });
    const old = history.events.find((e) => e.eventId === early);
    assert.ok(old, "the shared history is visible to the late joiner");
    assert.equal(old.encryption?.decrypted, false);
    assert.equal(old.type, "m.room.encrypted");
  });

  it("restarts from its SQLite store between messages and decrypts old and new ones", async () => {
    const alice = await fixtureUser(fx, "alice");
    const bob = await fixtureUser(fx, "bob");
    const roomId = await sharedRoom(alice, [bob]);
    const e1 = await alice.client.sendText(roomId, "before the restart");
    await syncAll(bob);
    assert.equal(eventById(bob, e1).content.body, "before the restart");
    const bobSession = await bob.client.store.loadSession();
    assert.ok(bobSession);
    await bob.client.close();

    const e2 = await alice.client.sendText(roomId, "while bob was away");
    const bobAgain = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      encryption: { store: { directory: bob.storeDir } },
    });
    fx.open.push(bobAgain);
    await bobAgain.restore(bobSession);
    const bob2 = watch(bobAgain, bob.name, bob.storeDir);
    await syncAll(bob2);
    assert.equal(eventById(bob2, e2).content.body, "while bob was away");

    // Old events still decrypt from the store's keys.
    const history = await bobAgain.messages(roomId, { limit: 50 });
    const old = history.events.find((e) => e.eventId === e1);
    assert.equal(old?.content.body, "before the restart");

    // And the restarted device still sends.
    const e3 = await bobAgain.sendText(roomId, "back again");
    await syncAll(alice);
    assert.equal(eventById(alice, e3).content.body, "back again");
  });
  it("a crash after the crypto state was saved but before the sync token loses no key", async () => {
    const alice = await fixtureUser(fx, "alice");
    const bobName = `bob-crash-${Date.now().toString(36)}`;
    const bobDir = join(fx.dir, bobName);
    const clientStorePath = join(fx.dir, `${bobName}.json`);
    /** A client store whose next token save "crashes" (the process dies before writing it). */
    class CrashingStore extends FileClientStore {
      crashNext = false;
      override async saveSync(changes: SyncChanges): Promise<void> {
        if (this.crashNext) {
          this.crashNext = false;
          throw new Error("simulated crash before the sync token was saved");
        }
        return super.saveSync(changes);
      }
    }
    const store = new CrashingStore(clientStorePath);
    const bobClient = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      store,
      encryption: { store: { directory: bobDir } },
    });
    fx.open.push(bobClient);
    await bobClient.register({ username: bobName, password: "pw" });
    const bob = watch(bobClient, bobName, bobDir);
    const roomId = await sharedRoom(alice, [bob]);

    const eventId = await alice.client.sendText(roomId, "survives the crash");
    store.crashNext = true;
    await assert.rejects(bobClient.syncOnce({ timeoutMs: 0 }), /simulated crash/);
    await bobClient.close();

    // Restart from both stores: the same sync comes again, and its room key is not lost.
    const restarted = await MatrixClient.fromStore(new FileClientStore(clientStorePath), {
      syncTimeoutMs: 0,
      encryption: { store: { directory: bobDir } },
    });
    fx.open.push(restarted);
    const bob2 = watch(restarted, bobName, bobDir);
    await syncAll(bob2);
    assert.equal(eventById(bob2, eventId).content.body, "survives the crash");
    const next = await alice.client.sendText(roomId, "and after it");
    await syncAll(bob2);
    assert.equal(eventById(bob2, next).content.body, "and after it");
  });

  it("invited members get the room key unless history visibility is joined", async () => {
    const alice = await fixtureUser(fx, "alice");
    const bob = await fixtureUser(fx, "bob");
    const roomId = await sharedRoom(alice, [bob]);
    const erin = await fixtureUser(fx, "erin");
    await alice.client.invite(roomId, erin.client.userId);
    await syncAll(alice, erin);
    const forInvitee = await alice.client.sendText(roomId, "for the invitee too");
    await erin.client.joinRoom(roomId);
    await syncAll(erin);
    const history = await erin.client.messages(roomId, { limit: 20 });
    assert.equal(history.events.find((e) => e.eventId === forInvitee)?.content.body, "for the invitee too");

    const closed = await sharedRoom(alice, [bob], { historyVisibility: "joined" });
    const frank = await fixtureUser(fx, "frank");
    await alice.client.invite(closed, frank.client.userId);
    await syncAll(alice, frank);
    const notForInvitee = await alice.client.sendText(closed, "members only");
    await frank.client.joinRoom(closed);
    await syncAll(frank, alice, bob);
    assert.equal(eventById(bob, notForInvitee).content.body, "members only");
    const room = frank.client.getRoom(closed);
    assert.ok(room);
    const raw = eventById(bob, notForInvitee).raw;
    const result = await frank.client.crypto.decryptRoomEvent(room, raw);
    assert.equal(result.ok, false);
  });
  it("after an initial sync over an existing store, devices added meanwhile get the key (/keys/changes)", async () => {
    const name = `alice-gap-${Date.now().toString(36)}`;
    const aliceDir = join(fx.dir, name);
    const make = () =>
      new MatrixClient({
        homeserverUrl: fx.hs.baseUrl,
        syncTimeoutMs: 0,
        encryption: { store: { directory: aliceDir }, restoreDeviceId: true },
      });
    const first = make();
    fx.open.push(first);
    await first.register({ username: name, password: "pw" });
    const alice = watch(first, name, aliceDir);
    const bob = await fixtureUser(fx, "bob");
    const roomId = await sharedRoom(alice, [bob]);
    await first.sendText(roomId, "before the gap");
    await first.close();

    // While Alice is away, Bob adds a device.
    const bob2Dir = join(fx.dir, `${bob.name}-gap`);
    const bob2Client = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      encryption: { store: { directory: bob2Dir } },
    });
    fx.open.push(bob2Client);
    await bob2Client.login({ user: bob.client.userId, password: "pw" });
    const bob2 = watch(bob2Client, bob.name, bob2Dir);
    await syncAll(bob2);

    // Alice comes back with an empty client store: an initial sync, same device.
    const again = make();
    fx.open.push(again);
    await again.login({ user: first.userId, password: "pw" });
    await again.syncOnce({ timeoutMs: 0 });
    const eventId = await again.sendText(roomId, "after the gap");
    await syncAll(bob2);
    assert.equal(eventById(bob2, eventId).content.body, "after the gap");
  });
  it("logs nothing secret: no plaintext, no access token", async () => {
    const lines: string[] = [];
    const record = (obj?: unknown, msg?: string) => {
      lines.push(
        `${msg ?? ""} ${JSON.stringify(obj, (_k, v) => (v instanceof Error ? { ...v, message: v.message } : v))}`,
      );
    };
    const logger = { debug: record, info: record, warn: record, error: record };
    const make = (name: string) =>
      new MatrixClient({
        homeserverUrl: fx.hs.baseUrl,
        syncTimeoutMs: 0,
        logger,
        encryption: { store: { directory: join(fx.dir, name) } },
      });
    const aName = `alice-log-${Date.now().toString(36)}`;
    const bName = `bob-log-${Date.now().toString(36)}`;
    const a = make(aName);
    const b = make(bName);
    fx.open.push(a, b);
    await a.register({ username: aName, password: "pw" });
    await b.register({ username: bName, password: "pw" });
    const alice = watch(a, aName, join(fx.dir, aName));
    const bob = watch(b, bName, join(fx.dir, bName));
    const roomId = await sharedRoom(alice, [bob]);
    const secret = "the plaintext that must never be logged";
    const eventId = await a.sendText(roomId, secret);
    await syncAll(bob, alice);
    assert.equal(eventById(bob, eventId).content.body, secret);
    // The failure path too: an event of a session nobody has.
    await b.crypto.decryptRoomEvent(b.getRoom(roomId) ?? assert.fail("room"), {
      ...eventById(bob, eventId).raw,
      content: { ...eventById(bob, eventId).raw.content, session_id: "unknown" },
    });
    assert.ok(lines.length > 0, "the clients logged something");
    const tokens = [(await a.store.loadSession())?.accessToken, (await b.store.loadSession())?.accessToken];
    for (const line of lines) {
      assert.equal(line.includes(secret), false, "plaintext in a log line");
      for (const t of tokens) if (t) assert.equal(line.includes(t), false, "access token in a log line");
    }
    // The driver serializes to its identity only (no machine or store internals).
    assert.deepEqual(JSON.parse(JSON.stringify(a.crypto)), {
      type: "ClientCrypto",
      userId: a.userId,
      deviceId: a.deviceId,
    });
  });
  it("follows the room's rotation_period_msgs and keeps one-time keys topped up", async () => {
    const alice = await fixtureUser(fx, "alice");
    const bob = await fixtureUser(fx, "bob");
    const roomId = await alice.client.createRoom({
      encrypted: false,
      invite: [bob.client.userId],
      initialState: [
        {
          type: "m.room.encryption",
          state_key: "",
          content: { algorithm: "m.megolm.v1.aes-sha2", rotation_period_msgs: 2 },
        },
      ],
    });
    await syncAll(bob);
    await bob.client.joinRoom(roomId);
    await syncAll(alice, bob);
    const ids: string[] = [];
    for (const body of ["one", "two", "three"]) ids.push(await alice.client.sendText(roomId, body));
    await syncAll(bob);
    const sessions = ids.map((id) => eventById(bob, id).raw.content.session_id);
    assert.deepEqual(
      ids.map((id) => eventById(bob, id).content.body),
      ["one", "two", "three"],
    );
    assert.equal(sessions[0], sessions[1]);
    assert.notEqual(sessions[1], sessions[2]);

    // The server holds a full stock of Bob's one-time keys (50) after his syncs.
    const session = await bob.client.store.loadSession();
    const res = await fx.hs.api("GET", "/sync?timeout=0", { token: session?.accessToken ?? "" });
    assert.equal(res.json.device_one_time_keys_count?.signed_curve25519, 50);
    assert.deepEqual(res.json.device_unused_fallback_key_types, ["signed_curve25519"]);
  });
  it("with background sync loops, concurrent sends both ways all decrypt", async () => {
    const make = async (prefix: string) => {
      const name = `${prefix}-bg-${Date.now().toString(36)}`;
      const client = new MatrixClient({
        homeserverUrl: fx.hs.baseUrl,
        syncTimeoutMs: 500,
        encryption: { store: { directory: join(fx.dir, name) } },
      });
      fx.open.push(client);
      await client.register({ username: name, password: "pw" });
      return watch(client, name, join(fx.dir, name));
    };
    const alice = await make("alice");
    const bob = await make("bob");
    const roomId = await sharedRoom(alice, [bob]);
    const expected = new Set<string>();
    for (let i = 0; i < 5; i++) expected.add(`a${i}`).add(`b${i}`);
    /** Resolves once `t` has seen every expected body decrypted (live or late). */
    const allSeen = (t: TestClient) =>
      new Promise<void>((resolve) => {
        const check = () => {
          const seen = new Set(texts(t, roomId));
          if ([...expected].every((b) => seen.has(b))) resolve();
        };
        t.client.on("room.event", check);
        t.client.on("room.decrypted", check);
        check();
      });
    const done = Promise.all([allSeen(alice), allSeen(bob)]);
    await Promise.all([alice.client.startSync(), bob.client.startSync()]);
    await Promise.all([
      ...[0, 1, 2, 3, 4].map((i) => alice.client.sendText(roomId, `a${i}`)),
      ...[0, 1, 2, 3, 4].map((i) => bob.client.sendText(roomId, `b${i}`)),
    ]);
    await done;
    await Promise.all([alice.client.stopSync(), bob.client.stopSync()]);
    for (const t of [alice, bob]) {
      const undecrypted = t.events.filter((e) => e.roomId === roomId && e.encryption?.decrypted === false);
      const lateIds = new Set(t.late.map((e) => e.eventId));
      assert.ok(
        undecrypted.every((e) => lateIds.has(e.eventId)),
        "every failure was made good",
      );
    }
  });
  it("a state event cannot turn a room's encryption off or down", async () => {
    const alice = await fixtureUser(fx, "alice");
    const bob = await fixtureUser(fx, "bob");
    const roomId = await sharedRoom(alice, [bob]);
    await alice.client.sendText(roomId, "encrypted as usual");
    // Someone with power in the room replaces m.room.encryption with nothing usable.
    await bob.client.sendStateEvent(roomId, "m.room.encryption", "", {}).catch(() => undefined);
    await alice.client.sendStateEvent(roomId, "m.room.encryption", "", {});
    await syncAll(alice, bob);
    assert.equal(alice.client.getRoom(roomId)?.encryption, undefined, "the state names no algorithm");
    assert.equal(alice.client.getRoom(roomId)?.encrypted, true, "and leaves the room encrypted");
    const e1 = await alice.client.sendText(roomId, "still encrypted");
    await syncAll(bob);
    assert.equal(eventById(bob, e1).raw.type, "m.room.encrypted");
    assert.equal(eventById(bob, e1).content.body, "still encrypted");
    const f1 = await alice.client.sendFile(roomId, new Uint8Array([1, 2, 3]), { filename: "x.bin" });
    await syncAll(bob);
    assert.equal(eventById(bob, f1).raw.type, "m.room.encrypted");

    // Another algorithm: sending is refused rather than downgraded; syncing goes on.
    await alice.client.sendStateEvent(roomId, "m.room.encryption", "", { algorithm: "m.plaintext.v0" });
    const errors: unknown[] = [];
    alice.client.on("error", (e) => void errors.push(e));
    await syncAll(alice, bob);
    assert.ok(errors.some((e) => (e as { code?: string }).code === "ENCRYPTION_DOWNGRADE"));
    await assert.rejects(alice.client.sendText(roomId, "refused"), { code: "ENCRYPTION_DOWNGRADE" });
    await syncAll(alice);
  });
});
