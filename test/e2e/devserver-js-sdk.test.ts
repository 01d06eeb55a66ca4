// Interop: matrix-js-sdk 43 with its Rust crypto (vodozemac) against the devserver: an encrypted
// conversation, cross-signing bootstrap, and a key backup round trip to a fresh device.
import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startTestDevServer, type TestDevServer, type TestUser } from "../support/devserver.ts";

// matrix-js-sdk 43 calls Promise.withResolvers, which Node 20 lacks.
if (typeof (Promise as unknown as { withResolvers?: unknown }).withResolvers !== "function") {
  Object.defineProperty(Promise, "withResolvers", {
    configurable: true,
    writable: true,
    value<T>() {
      let resolve!: (v: T | PromiseLike<T>) => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

// The SDK arms long timers it never clears (request timeouts of 60-110 s, pollers of minutes to
// hours). Unref them so the test process can exit once the test is done.
const LONG_TIMER_MS = 10_000;
const originalSetTimeout = globalThis.setTimeout;
globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...rest: unknown[]) => {
  const t = originalSetTimeout(fn, ms, ...rest);
  if ((ms ?? 0) >= LONG_TIMER_MS) t.unref();
  return t;
}) as typeof setTimeout;

const sdk = await import("matrix-js-sdk");
// The SDK logs every request through loglevel loggers it creates lazily; silence them all.
const loglevel = (await import("loglevel")).default;
function quiet(): void {
  loglevel.disableAll();
  for (const l of Object.values(loglevel.getLoggers())) l.disableAll();
}

type Client = ReturnType<typeof sdk.createClient>;
type Event = InstanceType<typeof sdk.MatrixEvent>;

async function startClient(s: TestDevServer, u: TestUser): Promise<Client> {
  const client = sdk.createClient({
    baseUrl: s.baseUrl,
    userId: u.userId,
    accessToken: u.accessToken,
    deviceId: u.deviceId,
  });
  quiet();
  await client.initRustCrypto({ useIndexedDB: false });
  quiet();
  const prepared = new Promise<void>((resolve) => {
    client.on(sdk.ClientEvent.Sync, (state) => {
      if (state === "PREPARED") resolve();
    });
  });
  await client.startClient({ initialSyncLimit: 20 });
  await prepared;
  quiet();
  return client;
}

/** Resolves with the first (decrypted) timeline event in `roomId` that matches `pred`. */
function waitForEvent(client: Client, roomId: string, pred: (ev: Event) => boolean): Promise<Event> {
  return new Promise((resolve) => {
    const check = async (ev: Event): Promise<void> => {
      if (ev.getRoomId() !== roomId) return;
      await client.decryptEventIfNeeded(ev);
      if (pred(ev)) resolve(ev);
    };
    client.on(sdk.RoomEvent.Timeline, (ev) => void check(ev));
    client.on(sdk.MatrixEventEvent.Decrypted, (ev) => void check(ev));
    for (const ev of client.getRoom(roomId)?.getLiveTimeline().getEvents() ?? []) void check(ev);
  });
}

const textIs = (body: string) => (ev: Event) =>
  ev.getType() === "m.room.message" && ev.getContent().body === body;

describe("matrix-js-sdk (Rust crypto) on the devserver", { timeout: 60_000 }, () => {
  let s: TestDevServer;
  let aliceUser: TestUser;
  let bobUser: TestUser;
  let alice: Client;
  let bob: Client;
  let roomId: string;
  const clients: Client[] = [];

  before(async () => {
    s = await startTestDevServer();
    aliceUser = await s.register("jsalice", "alice-password");
    bobUser = await s.register("jsbob", "bob-password");
    alice = await startClient(s, aliceUser);
    bob = await startClient(s, bobUser);
    clients.push(alice, bob);
  });
  after(async () => {
    // Stop, then abort in-flight requests while the server is still up: a request that failed on a
    // closed port would be retried by the SDK for half a minute.
    for (const c of clients) {
      c.stopClient();
      c.http.abort();
    }
    await s.close();
  });

  it("two users exchange Megolm messages and decrypt each other's", async () => {
    const invited = new Promise<string>((resolve) => {
      bob.on(sdk.RoomMemberEvent.Membership, (_e, member) => {
        if (member.userId === bobUser.userId && member.membership === "invite") resolve(member.roomId);
      });
    });
    const created = await alice.createRoom({
      invite: [bobUser.userId],
      initial_state: [
        { type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } },
      ],
    });
    roomId = created.room_id;
    assert.equal(await invited, roomId);
    await bob.joinRoom(roomId);
    const bobGot = waitForEvent(bob, roomId, textIs("hello bob"));
    await alice.sendTextMessage(roomId, "hello bob");
    const ev = await bobGot;
    assert.equal(ev.isEncrypted(), true);
    assert.equal(ev.getWireType(), "m.room.encrypted");

    const aliceGot = waitForEvent(alice, roomId, textIs("hello alice"));
    await bob.sendTextMessage(roomId, "hello alice");
    const back = await aliceGot;
    assert.equal(back.isEncrypted(), true);
    assert.equal(back.getSender(), bobUser.userId);
  });

  it("a new device of Bob (announced through device_lists) can read Alice's next message", async () => {
    const bob2User = await s.login(bobUser);
    const bob2 = await startClient(s, bob2User);
    clients.push(bob2);
    // Alice's client must learn of the new device from /sync device_lists (a message sent before
    // that is, by design, not encrypted for the new device).
    let known = false;
    for (let i = 0; i < 100 && !known; i++) {
      const devices = await alice.getCrypto()!.getUserDeviceInfo([bobUser.userId]);
      known = devices.get(bobUser.userId)?.has(bob2User.deviceId) ?? false;
      if (!known) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(known, true, "Alice's client saw Bob's new device");
    const got = waitForEvent(bob2, roomId, textIs("for all of bob's devices"));
    const onFirst = waitForEvent(bob, roomId, textIs("for all of bob's devices"));
    await alice.sendTextMessage(roomId, "for all of bob's devices");
    const [ev2, ev1] = await Promise.all([got, onFirst]);
    assert.equal(ev2.isEncrypted(), true);
    assert.equal(ev2.isDecryptionFailure(), false);
    assert.equal(ev1.isDecryptionFailure(), false);
  });

  it("bootstraps cross-signing; the device is then cross-signed", async () => {
    const crypto = alice.getCrypto()!;
    await crypto.bootstrapCrossSigning({
      authUploadDeviceSigningKeys: async (makeRequest) => {
        await makeRequest({
          type: "m.login.password",
          identifier: { type: "m.id.user", user: aliceUser.userId },
          password: aliceUser.password,
        });
      },
    });
    const q = await s.api("POST", "/keys/query", {
      token: bobUser.accessToken,
      body: { device_keys: { [aliceUser.userId]: [] } },
    });
    assert.ok(q.json.master_keys[aliceUser.userId], "q.json.master_keys[aliceUser.userId]");
    assert.ok(q.json.self_signing_keys[aliceUser.userId], "q.json.self_signing_keys[aliceUser.userId]");
    assert.equal(
      q.json.user_signing_keys[aliceUser.userId],
      undefined,
      "user-signing key only for its owner",
    );
    const sigs = q.json.device_keys[aliceUser.userId][aliceUser.deviceId].signatures[aliceUser.userId];
    assert.equal(Object.keys(sigs).length, 2, "device self-signature plus self-signing key signature");
    // The client learns of its new signatures through device_lists and a key query.
    let verified = false;
    for (let i = 0; i < 100 && !verified; i++) {
      const status = await crypto.getDeviceVerificationStatus(aliceUser.userId, aliceUser.deviceId);
      verified = status?.crossSigningVerified === true;
      if (!verified) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(verified, true);
  });

  it("backs up room keys and restores them on a new device", async () => {
    const crypto = alice.getCrypto()!;
    await crypto.resetKeyBackup();
    const version = await crypto.getActiveSessionBackupVersion();
    assert.ok(version, "version");
    // The backup loop uploads in the background; wait until the server counts the keys.
    for (let i = 0; i < 100; i++) {
      const v = await s.api("GET", `/room_keys/version/${version}`, { token: aliceUser.accessToken });
      if (v.json.count > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const key = await crypto.getSessionBackupPrivateKey();
    assert.ok(key, "key");

    const second = await s.login(aliceUser);
    const alice2 = await startClient(s, second);
    clients.push(alice2);
    const crypto2 = alice2.getCrypto()!;
    await crypto2.storeSessionBackupPrivateKey(key, version);
    const restored = await crypto2.restoreKeyBackup();
    assert.ok(restored.imported >= 1, `imported ${restored.imported} of ${restored.total}`);
    const ev = await waitForEvent(alice2, roomId, textIs("hello alice"));
    assert.equal(ev.isDecryptionFailure(), false);
  });
});
