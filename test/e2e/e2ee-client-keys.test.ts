// Encrypted client through the devserver, the harder cases: keys that arrive after their message,
// one-time keys exhausted (fallback key), verifyDevices with verify / blacklist / ignore, key
// export and import on a fresh device, encrypted attachments, device ID reuse and store identity.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type FetchLike, MatrixClient } from "../../src/client/index.ts";
import { UnknownDevicesError } from "../../src/e2ee/index.ts";
import { StoreMismatchError } from "../../src/store/errors.ts";
import {
  devServerFixture,
  encryptedClient,
  eventById,
  fixtureDevice,
  fixtureUser,
  sharedRoom,
  syncAll,
  type TestClient,
  texts,
  uniq,
  watch,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-keys-");

async function tokenOf(t: TestClient): Promise<string> {
  const s = await t.client.store.loadSession();
  assert.ok(s);
  return s.accessToken;
}

describe("encrypted client (devserver): keys and trust", () => {
  it("an event whose room key arrives later is emitted undecryptable, then as room.decrypted", async () => {
    // Alice's to-device messages are answered as sent but held back, to be delivered later.
    const held: { url: string; init: RequestInit }[] = [];
    let hold = false;
    const fetchImpl: FetchLike = async (url, init) => {
      if (hold && init.method === "PUT" && url.includes("/sendToDevice/")) {
        held.push({ url, init });
        return new Response("{}", { status: 200, headers: { "Content-Type": "application/json" } });
      }
      return fetch(url, init);
    };
    const alice = await fixtureUser(fx, "alice", {}, fetchImpl);
    const bob = await fixtureUser(fx, "bob");
    const roomId = await sharedRoom(alice, [bob]);

    hold = true;
    const eventId = await alice.client.sendText(roomId, "the key comes later");
    hold = false;
    assert.ok(held.length > 0, "the room key went out as to-device messages");
    await syncAll(bob);
    const first = eventById(bob, eventId);
    assert.equal(first.type, "m.room.encrypted");
    assert.deepEqual(
      first.encryption && {
        decrypted: first.encryption.decrypted,
        code: "code" in first.encryption && first.encryption.code,
      },
      { decrypted: false, code: "UNKNOWN_SESSION" },
    );
    assert.equal(bob.late.length, 0);

    // Deliver the held messages (same transaction IDs), then Bob syncs them in.
    for (const { url, init } of held) assert.equal((await fetch(url, init)).status, 200);
    await syncAll(bob);
    assert.equal(bob.late.length, 1);
    const late = bob.late[0];
    assert.equal(late?.eventId, eventId);
    assert.equal(late?.content.body, "the key comes later");
    assert.equal(late?.encryption?.decrypted, true);
  });

  it("uses the fallback key when the recipient's one-time keys are exhausted", async () => {
    const alice = await fixtureUser(fx, "alice");
    const bob = await fixtureUser(fx, "bob");
    const roomId = await sharedRoom(alice, [bob]);
    const carol = await fixtureUser(fx, "carol");
    // Someone else drains Bob's one-time keys (Bob does not sync meanwhile, so no top-up).
    const token = await tokenOf(carol);
    const body = { one_time_keys: { [bob.client.userId]: { [bob.client.deviceId]: "signed_curve25519" } } };
    let sawFallback = false;
    for (let i = 0; i < 200 && !sawFallback; i++) {
      const res = await fx.hs.api("POST", "/keys/claim", { token, body });
      const keys = res.json.one_time_keys?.[bob.client.userId]?.[bob.client.deviceId] ?? {};
      sawFallback = Object.values(keys).some((k) => (k as { fallback?: boolean }).fallback === true);
    }
    assert.ok(sawFallback, "the server hands out the fallback key once one-time keys are gone");

    // Alice has no Olm session with Bob yet: her claim gets the fallback key, and it works.
    const eventId = await alice.client.sendText(roomId, "over the fallback key");
    await syncAll(bob);
    assert.equal(eventById(bob, eventId).content.body, "over the fallback key");
    // Bob's next syncs top his one-time keys up and publish a new fallback key.
    await syncAll(bob, bob);
    const res = await fx.hs.api("POST", "/keys/claim", { token, body });
    const keys = res.json.one_time_keys[bob.client.userId][bob.client.deviceId];
    assert.equal(
      Object.values(keys).some((k) => (k as { fallback?: boolean }).fallback === true),
      false,
    );
  });

  it("verifyDevices: UnknownDevicesError lists unseen devices; verify, ignore, blacklist (withheld)", async () => {
    const alice = await fixtureUser(fx, "alice", { verifyDevices: true });
    const bob = await fixtureUser(fx, "bob");
    const roomId = await sharedRoom(alice, [bob]);
    const bobDev = bob.client.deviceId;

    const refused = await alice.client.sendText(roomId, "blocked").then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(refused instanceof UnknownDevicesError);
    assert.deepEqual(
      refused.devices.map((d) => `${d.userId}|${d.deviceId}`),
      [`${bob.client.userId}|${bobDev}`],
    );
    const bobKeys = (await alice.client.getUserDevices(bob.client.userId))[0];
    assert.equal(refused.devices[0]?.ed25519, bobKeys?.ed25519);
    // What Alice compares out of band is Bob's fingerprint.
    assert.equal(bobKeys?.ed25519, bob.client.getFingerprint());

    assert.equal((await alice.client.verifyDevice(bob.client.userId, bobDev)).trust, "verified");
    const e1 = await alice.client.sendText(roomId, "to verified bob");
    await syncAll(bob);
    assert.equal(eventById(bob, e1).content.body, "to verified bob");
    assert.equal(eventById(bob, e1).encryption?.decrypted, true);

    // Two more devices of Bob appear: both block sending until decided.
    const bob2 = await fixtureDevice(fx, bob, "2");
    const bob3 = await fixtureDevice(fx, bob, "3");
    await syncAll(bob2, bob3, alice);
    const again = await alice.client.sendText(roomId, "blocked again").then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(again instanceof UnknownDevicesError);
    assert.deepEqual(
      again.devices.map((d) => d.deviceId).sort(),
      [bob2.client.deviceId, bob3.client.deviceId].sort(),
    );
    await alice.client.blacklistDevice(bob.client.userId, bob2.client.deviceId);
    await alice.client.ignoreDevice(bob.client.userId, bob3.client.deviceId);
    const e2 = await alice.client.sendText(roomId, "not for the blacklisted device");
    await syncAll(bob, bob2, bob3);
    assert.equal(eventById(bob, e2).content.body, "not for the blacklisted device");
    assert.equal(eventById(bob3, e2).content.body, "not for the blacklisted device");
    const withheld = eventById(bob2, e2);
    assert.equal(withheld.type, "m.room.encrypted");
    assert.equal(withheld.encryption?.decrypted, false);
    assert.equal(
      withheld.encryption && "code" in withheld.encryption && withheld.encryption.code,
      "WITHHELD",
    );

    // Per room: Bob turns verifyDevices on for this room only; Alice's (unset) device blocks him.
    await bob.client.setRoomVerifyDevices(roomId, true);
    const perRoom = await bob.client.sendText(roomId, "bob blocked").then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(perRoom instanceof UnknownDevicesError);
    assert.ok(perRoom.devices.some((d) => d.userId === alice.client.userId));
  });

  it("a key export imports on a fresh device and decrypts the history it was waiting for", async () => {
    const alice = await fixtureUser(fx, "alice");
    const bob = await fixtureUser(fx, "bob");
    const roomId = await sharedRoom(alice, [bob]);
    const e1 = await alice.client.sendText(roomId, "old secret");
    await syncAll(bob);
    assert.equal(eventById(bob, e1).content.body, "old secret");

    const progress: [number, number][] = [];
    const file = await bob.client.exportRoomKeys("correct horse", {
      roomIds: [roomId],
      rounds: 1000,
      onProgress: (done, total) => void progress.push([done, total]),
    });
    assert.match(file, /^-----BEGIN MEGOLM SESSION DATA-----/);
    assert.deepEqual(progress, [[1, 1]]);
    assert.equal(file.includes("old secret"), false);

    const fresh = await fixtureDevice(fx, bob, "fresh");
    await syncAll(fresh);
    const before = await fresh.client.messages(roomId, { limit: 20 });
    const locked = before.events.find((e) => e.eventId === e1);
    assert.equal(locked?.encryption?.decrypted, false);

    await assert.rejects(fresh.client.importRoomKeys(file, "wrong"), {
      name: "KeyExportError",
      code: "BAD_PASSPHRASE",
    });
    const counted: number[] = [];
    const result = await fresh.client.importRoomKeys(file, "correct horse", {
      onProgress: (done) => void counted.push(done),
    });
    assert.ok(result.imported >= 1);
    assert.equal(result.total, result.imported);
    assert.equal(counted.at(-1), result.total);
    assert.equal(eventById(fresh, e1).content.body, "old secret");
    assert.equal(fresh.late.length, 1);
    const after = await fresh.client.messages(roomId, { limit: 20 });
    assert.equal(after.events.find((e) => e.eventId === e1)?.content.body, "old secret");
  });

  it("encrypts attachments in encrypted rooms and decrypts them on download", async () => {
    const alice = await fixtureUser(fx, "alice");
    const bob = await fixtureUser(fx, "bob");
    const roomId = await sharedRoom(alice, [bob]);
    const bytes = new Uint8Array(70_000).map((_, i) => (i * 31) & 0xff);
    const eventId = await alice.client.sendFile(roomId, bytes, {
      filename: "pic.png",
      contentType: "image/png",
    });
    await syncAll(bob);
    const ev = eventById(bob, eventId);
    assert.equal(ev.content.msgtype, "m.image");
    assert.equal(ev.content.url, undefined);
    const file = ev.content.file as { url: string; v: string };
    assert.equal(file.v, "v2");
    const stored = await bob.client.downloadMedia(file.url);
    assert.notDeepEqual(stored.data, bytes);
    assert.deepEqual(await bob.client.downloadAttachment(ev.content), bytes);
    // A tampered file object is refused before any plaintext comes out.
    const tampered = { ...ev.content, file: { ...file, hashes: { sha256: "A".repeat(43) } } };
    await assert.rejects(bob.client.downloadAttachment(tampered), {
      name: "AttachmentError",
      code: "HASH_MISMATCH",
    });

    // Streams are encrypted chunk by chunk.
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(bytes.subarray(0, 1000));
        c.enqueue(bytes.subarray(1000));
        c.close();
      },
    });
    const streamed = await alice.client.sendFile(roomId, stream, {
      filename: "s.bin",
      size: bytes.byteLength,
    });
    await syncAll(bob);
    const streamedContent = eventById(bob, streamed).content;
    assert.deepEqual(await bob.client.downloadAttachment(streamedContent), bytes);
    const chunks: Uint8Array[] = [];
    for await (const chunk of await bob.client.downloadAttachmentStream(streamedContent)) chunks.push(chunk);
    assert.deepEqual(Buffer.concat(chunks), Buffer.from(bytes));
    const badStream = await bob.client.downloadAttachmentStream(tampered);
    await assert.rejects(
      (async () => {
        for await (const _ of badStream) {
          // drain: the hash is checked at the end
        }
      })(),
      { name: "AttachmentError", code: "HASH_MISMATCH" },
    );
  });

  it("restoreDeviceId logs in as the stored device; a store of another device or user is refused", async () => {
    const name = uniq("rita");
    const userId = `@${name}:${fx.hs.serverName}`;
    const storeDir = join(fx.dir, name);
    const first = encryptedClient(fx.hs, storeDir, { restoreDeviceId: true });
    const { deviceId } = await first.register({ username: name, password: "pw" });
    const fingerprint = first.getFingerprint();
    await first.close();

    // A new process with an empty client store: the crypto store names the device.
    const second = encryptedClient(fx.hs, storeDir, { restoreDeviceId: true });
    fx.open.push(second);
    await assert.rejects(second.login({ user: name, password: "pw" }), { code: "RESTORE_NEEDS_USER_ID" });
    const info = await second.login({ user: userId, password: "pw" });
    assert.equal(info.deviceId, deviceId);
    assert.equal(second.getFingerprint(), fingerprint);
    await second.close();

    // Without restoreDeviceId the server makes a new device: the store refuses it, clearly.
    const third = encryptedClient(fx.hs, storeDir);
    fx.open.push(third);
    const err = await third.login({ user: userId, password: "pw" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof StoreMismatchError);
    assert.equal(err.code, "DEVICE_MISMATCH");
    await third.close();
    // The device the server made for that refused login was logged out again: only the stored one
    // (and the probe's own login) remain.
    const probe = await fetch(`${fx.hs.baseUrl}/_matrix/client/v3/login`, {
      method: "POST",
      body: JSON.stringify({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: userId },
        password: "pw",
      }),
    }).then((r) => r.json() as Promise<{ access_token: string; device_id: string }>);
    const listed = await fetch(`${fx.hs.baseUrl}/_matrix/client/v3/devices`, {
      headers: { authorization: `Bearer ${probe.access_token}` },
    }).then((r) => r.json() as Promise<{ devices: { device_id: string }[] }>);
    assert.deepEqual(listed.devices.map((d) => d.device_id).sort(), [deviceId, probe.device_id].sort());

    // Another user on this store: USER_MISMATCH.
    const other = encryptedClient(fx.hs, storeDir);
    fx.open.push(other);
    const err2 = await other.register({ username: uniq("olga"), password: "pw" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err2 instanceof StoreMismatchError);
    assert.equal(err2.code, "USER_MISMATCH");
  });
  it("a new own device gets missing keys from a verified own device (key request and forward)", async () => {
    const alice = await fixtureUser(fx, "alice");
    const bob = await fixtureUser(fx, "bob");
    const roomId = await sharedRoom(alice, [bob]);
    const old = await alice.client.sendText(roomId, "sent before bob's new device existed");
    await syncAll(bob);
    assert.equal(eventById(bob, old).content.body, "sent before bob's new device existed");

    // Each of Bob's devices trusts the other (after comparing fingerprints), before the new one
    // syncs: requests from a device not yet verified are not answered.
    const bob2 = await fixtureDevice(fx, bob, "kr");
    await syncAll(bob);
    await bob.client.verifyDevice(bob.client.userId, bob2.client.deviceId);
    await bob2.client.verifyDevice(bob.client.userId, bob.client.deviceId);

    // bob2 cannot decrypt the old message and asks its own devices; bob answers with a forwarded
    // key; bob2 receives it and re-emits the event decrypted.
    await syncAll(bob2);
    assert.equal(eventById(bob2, old).encryption?.decrypted, false);
    for (let i = 0; i < 4 && bob2.late.length === 0; i++) await syncAll(bob2, bob);
    assert.equal(eventById(bob2, old).content.body, "sent before bob's new device existed");
    assert.equal(eventById(bob2, old).encryption?.decrypted, true);
  });
  it("a passphrase protects the store; a second client on the same store shares it (lease)", async () => {
    const name = uniq("pia");
    const storeDir = join(fx.dir, name);
    const first = encryptedClient(fx.hs, storeDir, { passphrase: "store secret" });
    fx.open.push(first);
    await first.register({ username: name, password: "pw" });
    const session = await first.store.loadSession();
    assert.ok(session);

    // The same device in a second client (as in a second process): not refused, it takes turns.
    const twin = encryptedClient(fx.hs, storeDir, { passphrase: "store secret" });
    fx.open.push(twin);
    await twin.restore(session);
    assert.equal(twin.getFingerprint(), first.getFingerprint());
    const bob = await fixtureUser(fx, "bob");
    const a = watch(first, name, storeDir);
    const b = watch(twin, name, storeDir);
    const roomId = await sharedRoom(a, [bob]);
    // Alternate senders on one outbound session: each reloads what the other advanced, so Bob
    // decrypts every one (a reused Megolm index would be refused as a replay).
    const sent: string[] = [];
    for (let i = 0; i < 6; i++) {
      const text = `turn ${i}`;
      await (i % 2 === 0 ? first : twin).sendText(roomId, text);
      sent.push(text);
    }
    await syncAll(bob);
    assert.deepEqual(texts(bob, roomId), sent);
    // Bob answers. Each client sees it once, decrypted: the first to sync handles the response (and
    // its to-device messages); the other applies only the rooms of its own response, then syncs on
    // from the shared position without showing the message twice.
    await bob.client.sendText(roomId, "to the pair");
    await syncAll(b, a, b, a);
    assert.deepEqual(
      texts(b, roomId).filter((t) => t === "to the pair"),
      ["to the pair"],
    );
    assert.deepEqual(
      texts(a, roomId).filter((t) => t === "to the pair"),
      ["to the pair"],
    );
    await first.close();
    await twin.close();

    const wrong = encryptedClient(fx.hs, storeDir, { passphrase: "not it" });
    fx.open.push(wrong);
    await assert.rejects(wrong.restore(session), { name: "StoreKeyError", code: "WRONG_KEY" });
    const right = encryptedClient(fx.hs, storeDir, { passphrase: "store secret" });
    fx.open.push(right);
    await right.restore(session);
    assert.equal(right.deviceId, session.deviceId);
    assert.ok(right.getFingerprint().length > 0);
  });
  it("a keys upload whose response was lost is sent again with the same keys", async () => {
    let dropped = 0;
    const fetchImpl: FetchLike = async (url, init) => {
      const res = await fetch(url, init);
      // The server stores the keys, but the answer never reaches the client.
      if (dropped === 0 && init.method === "POST" && url.endsWith("/keys/upload")) {
        dropped++;
        throw new TypeError("fetch failed (simulated lost response)");
      }
      return res;
    };
    const name = uniq("lost");
    const storeDir = join(fx.dir, name);
    const client = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      fetch: fetchImpl,
      encryption: { store: { directory: storeDir } },
    });
    fx.open.push(client);
    const errors: unknown[] = [];
    client.on("error", (e) => void errors.push(e));
    await client.register({ username: name, password: "pw" });
    assert.equal(dropped, 1);
    assert.ok(errors.length > 0, "the failed upload was reported");
    const lost = watch(client, name, storeDir);
    await syncAll(lost); // the same upload goes out again and is accepted

    const bob = await fixtureUser(fx, "bob");
    const roomId = await sharedRoom(bob, [lost]);
    const eventId = await bob.client.sendText(roomId, "after a lost upload response");
    await syncAll(lost);
    assert.equal(eventById(lost, eventId).content.body, "after a lost upload response");
  });
  it("onlyVerifiedDevices: unverified devices get the key withheld until verified", async () => {
    const alice = await fixtureUser(fx, "alice", { onlyVerifiedDevices: true });
    const bob = await fixtureUser(fx, "bob");
    const roomId = await sharedRoom(alice, [bob]);
    const e1 = await alice.client.sendText(roomId, "only for verified devices");
    await syncAll(bob);
    const first = eventById(bob, e1);
    assert.equal(first.encryption?.decrypted, false);
    assert.equal(first.encryption && "code" in first.encryption && first.encryption.code, "WITHHELD");

    await alice.client.verifyDevice(bob.client.userId, bob.client.deviceId);
    const e2 = await alice.client.sendText(roomId, "now bob is verified");
    await syncAll(bob);
    assert.equal(eventById(bob, e2).content.body, "now bob is verified");
  });

  it("a device of ours that logs in before our first sync is known after it (an initial sync has no device_lists)", async () => {
    const first = await fixtureUser(fx, "kf");
    const second = encryptedClient(fx.hs, join(fx.dir, `${first.name}-2`));
    fx.open.push(second);
    await second.login({ user: first.client.userId, password: "pw" });
    // The first device queried its own keys at login, before the second existed; its first sync is
    // an initial sync, which says nothing about what changed since.
    await first.client.syncOnce({ timeoutMs: 0 });
    const devices = await first.client.getUserDevices(first.client.userId);
    assert.ok(devices.some((d) => d.deviceId === second.deviceId));
  });
});
