// Dehydrated devices (MSC3814) through the devserver with Keyroom clients: Bob's only device logs
// out, Alice writes to him, and a new login of Bob rehydrates the dehydrated device and reads it.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { Clock } from "../../src/client/clock.ts";
import {
  ClientError,
  DehydrationError,
  type FetchLike,
  MatrixClient,
  MatrixError,
} from "../../src/client/index.ts";
import { deferred } from "../../src/client/test-support/held-sync.ts";
import { manualClock } from "../../src/client/test-support/manual-clock.ts";
import { randomBytes } from "../../src/crypto/primitives/index.ts";
import { budget } from "../support/budget.ts";
import {
  devServerFixture,
  encryptedClient,
  fixtureUser,
  sharedRoom,
  syncAll,
  type TestClient,
  texts,
  watch,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-dehydration-");

async function newLogin(
  t: { name: string; userId: string },
  suffix: string,
  extra: { clock?: Clock; fetch?: FetchLike } = {},
): Promise<TestClient> {
  const storeDir = join(fx.dir, `${t.name}-${suffix}`);
  const client =
    extra.clock === undefined
      ? encryptedClient(fx.hs, storeDir, {}, extra.fetch)
      : new MatrixClient({
          homeserverUrl: fx.hs.baseUrl,
          syncTimeoutMs: 0,
          clock: extra.clock,
          encryption: { store: { directory: storeDir } },
          ...(extra.fetch === undefined ? {} : { fetch: extra.fetch }),
        });
  fx.open.push(client);
  await client.login({ user: t.userId, password: "pw" });
  return watch(client, t.name, storeDir);
}

/** Recovery set up for `t` (its cross-signing keys in secret storage): the key and the recovery key. */
async function recoveryOf(t: TestClient) {
  const { recoveryKey } = await t.client.crypto.recovery.enable();
  return { recoveryKey, key: await t.client.crypto.secretStorage.unlock({ recoveryKey }) };
}

/** Waits (a load-scaled budget) until the schedule is asleep on the clock. */
async function sleepingAgain(clock: { sleeping(): number }): Promise<void> {
  const b = budget(10_000);
  while (clock.sleeping() === 0) {
    assert.ok(!b.over(), "the rotation schedule never went back to sleep");
    await new Promise((r) => setTimeout(r, 1));
  }
}

describe("dehydrated devices (devserver, Keyroom ↔ Keyroom)", () => {
  it("messages sent while no device of Bob's was online are read after a new login rehydrates", async () => {
    const alice = await fixtureUser(fx, "dha");
    const bob = await fixtureUser(fx, "dhb");
    await alice.client.bootstrapCrossSigning();
    await bob.client.bootstrapCrossSigning();
    const roomId = await sharedRoom(alice, [bob]);
    const bobId = bob.client.userId;

    // Bob keeps the dehydration key in secret storage, which he opens later with his recovery key
    // (with his cross-signing keys: a new dehydrated device must be cross-signed).
    const storage = await recoveryOf(bob);
    const none = await bob.client.crypto.dehydration.start({ secretStorageKey: storage.key });
    assert.equal(none, undefined); // nothing to rehydrate yet
    await syncAll(alice); // hears that Bob's device list changed
    const devices = await alice.client.getUserDevices(bob.client.userId);
    const dehydrated = devices.find((d) => d.deviceId !== bob.client.deviceId);
    assert.ok(dehydrated, "Alice sees Bob's dehydrated device");
    assert.equal(dehydrated.crossSigned, true);

    // Bob's only device goes away; Alice writes.
    await bob.client.logout();
    await syncAll(alice);
    await alice.client.sendText(roomId, "while you were away");
    await alice.client.sendText(roomId, "and again");

    const back = await newLogin({ name: bob.name, userId: bobId }, "2");
    await back.client.crypto.recovery.recover({ recoveryKey: storage.recoveryKey });
    const key = await back.client.crypto.secretStorage.unlock({ recoveryKey: storage.recoveryKey });
    const result = await back.client.crypto.dehydration.start({ secretStorageKey: key });
    assert.equal(result?.deviceId, dehydrated.deviceId);
    assert.ok((result?.imported ?? 0) >= 1);
    await back.client.syncOnce({ timeoutMs: 0 });
    assert.deepEqual(texts(back, roomId), ["while you were away", "and again"]);

    // A new dehydrated device replaced the old one: the next absence is covered too.
    await syncAll(alice);
    const after = await alice.client.getUserDevices(bobId);
    assert.ok(!after.some((d) => d.deviceId === dehydrated.deviceId));
    assert.equal(after.filter((d) => d.deviceId !== back.client.deviceId).length, 1);
  });

  it("an invite with history sharing that came while Bob was away is honoured after rehydration", async () => {
    const alice = await fixtureUser(fx, "dhia");
    const bob = await fixtureUser(fx, "dhib");
    await alice.client.bootstrapCrossSigning();
    await bob.client.bootstrapCrossSigning();
    const storage = await recoveryOf(bob);
    await bob.client.crypto.dehydration.start({ secretStorageKey: storage.key });
    const bobId = bob.client.userId;
    await bob.client.logout();

    const roomId = await alice.client.createRoom({
      name: "while away",
      initialState: [
        { type: "m.room.history_visibility", state_key: "", content: { history_visibility: "shared" } },
      ],
    });
    await alice.client.sendText(roomId, "before the invite");
    await alice.client.syncOnce({ timeoutMs: 0 });
    await alice.client.invite(roomId, bobId); // the bundle goes to Bob's dehydrated device

    const back = await newLogin({ name: bob.name, userId: bobId }, "3");
    await back.client.crypto.recovery.recover({ recoveryKey: storage.recoveryKey });
    const key = await back.client.crypto.secretStorage.unlock({ recoveryKey: storage.recoveryKey });
    await back.client.crypto.dehydration.start({ secretStorageKey: key });
    await back.client.syncOnce({ timeoutMs: 0 });
    await back.client.joinRoom(roomId);
    await back.client.syncOnce({ timeoutMs: 0 });
    assert.deepEqual(texts(back, roomId), ["before the invite"]);
  });

  it("a wrong key is a typed WRONG_KEY; without a device on the server rehydrate gives undefined; delete says whether one was there", async () => {
    const carol = await fixtureUser(fx, "dhc");
    await carol.client.bootstrapCrossSigning();
    assert.equal(await carol.client.crypto.dehydration.rehydrate(randomBytes(32)), undefined);
    await carol.client.crypto.dehydration.create(randomBytes(32));
    await assert.rejects(
      carol.client.crypto.dehydration.rehydrate(randomBytes(32)),
      (e) => e instanceof DehydrationError && e.code === "WRONG_KEY",
    );
    assert.equal(await carol.client.crypto.dehydration.delete(), true);
    assert.equal(await carol.client.crypto.dehydration.delete(), false);
  });

  it("start() with the key from secret storage replaces a device sealed under another key (reported), and throws for a key passed in", async () => {
    const dave = await fixtureUser(fx, "dhd");
    await dave.client.bootstrapCrossSigning();
    await dave.client.crypto.dehydration.create(randomBytes(32)); // another client's key
    await assert.rejects(
      dave.client.crypto.dehydration.start({ key: randomBytes(32) }),
      (e) => e instanceof DehydrationError && e.code === "WRONG_KEY",
    );
    const reported: unknown[] = [];
    dave.client.on("error", (e) => {
      reported.push(e);
    });
    const storage = await dave.client.crypto.secretStorage.createKey();
    assert.equal(await dave.client.crypto.dehydration.start({ secretStorageKey: storage.key }), undefined);
    dave.client.crypto.dehydration.stop();
    assert.ok(
      reported.some((e) => e instanceof DehydrationError && e.code === "WRONG_KEY"),
      "the unusable device is reported",
    );
    // The device on the server is now one the key in secret storage opens.
    const key = await dave.client.crypto.dehydration.keyFromSecretStorage(storage.key);
    const result = await dave.client.crypto.dehydration.rehydrate(key);
    assert.ok(result !== undefined, "a device the account's key opens");
  });

  it("on a server that knows only the earlier draft (POST …/events), rehydration falls back to it", async () => {
    const erin = await fixtureUser(fx, "dhe");
    await erin.client.bootstrapCrossSigning();
    const key = randomBytes(32);
    await erin.client.crypto.dehydration.create(key);
    const methods: string[] = [];
    const storeDir = join(fx.dir, `${erin.name}-post`);
    const client = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      encryption: { store: { directory: storeDir } },
      // The events endpoint answers GET as an older server does: unknown.
      fetch: async (input, init) => {
        if (input.includes("/dehydrated_device/") && input.includes("/events")) {
          methods.push(init.method ?? "GET");
          if ((init.method ?? "GET") === "GET") {
            return new Response(
              JSON.stringify({ errcode: "M_UNRECOGNIZED", error: "Unrecognized request" }),
              {
                status: 404,
                headers: { "content-type": "application/json" },
              },
            );
          }
        }
        return fetch(input, init);
      },
    });
    fx.open.push(client);
    await client.login({ user: erin.client.userId, password: "pw" });
    const result = await client.crypto.dehydration.rehydrate(key);
    assert.equal(result?.events, 0);
    assert.deepEqual(methods, ["GET", "POST"]);
  });

  it("rotates the dehydrated device every period on the injected clock, and stops", async () => {
    const dave = await fixtureUser(fx, "dhd");
    const clock = manualClock();
    const other = await newLogin({ name: dave.name, userId: dave.client.userId }, "2", { clock });
    await other.client.bootstrapCrossSigning(); // the device that dehydrates holds the self-signing key
    const key = randomBytes(32);
    await other.client.crypto.dehydration.start({ key, rehydrate: false, periodMs: 60_000 });
    const deviceIds = async () =>
      (await dave.client.devices.list()).map((d) => d.deviceId).filter((id) => id !== dave.client.deviceId);
    const first = await deviceIds();
    assert.equal(first.length, 2); // the second login and its dehydrated device
    // Wait on progress: the schedule sleeps, is woken, rotates, and sleeps again.
    await sleepingAgain(clock);
    clock.wake();
    await sleepingAgain(clock);
    const second = await deviceIds();
    assert.notDeepEqual(second, first);
    assert.equal(second.length, 2);
    other.client.crypto.dehydration.stop();
    assert.equal(other.client.crypto.dehydration.running, false);
    assert.equal(clock.sleeping(), 0, "stop() cancels the schedule's sleep: no rotation after it");
  });

  it("logout() ends the schedule, its upload under way landing first, before the token is revoked", async () => {
    const fay = await fixtureUser(fx, "dhl");
    const clock = manualClock();
    // The rotation's upload is held until the test lets it go; what is under way when the
    // logout request goes out is noted.
    let holdPut = false;
    const putReached = deferred();
    const putGate = deferred();
    let putInFlight = false;
    let atLogout: { putInFlight: boolean; sleeping: number } | undefined;
    const fetchImpl: FetchLike = async (url, init) => {
      const path = new URL(url).pathname;
      if (path.endsWith("/logout")) atLogout = { putInFlight, sleeping: clock.sleeping() };
      if (holdPut && init.method === "PUT" && path.endsWith("/dehydrated_device")) {
        holdPut = false;
        putInFlight = true;
        putReached.resolve();
        await putGate.promise;
        try {
          return await fetch(url, init);
        } finally {
          putInFlight = false;
        }
      }
      return fetch(url, init);
    };
    const other = await newLogin({ name: fay.name, userId: fay.client.userId }, "2", {
      clock,
      fetch: fetchImpl,
    });
    await other.client.bootstrapCrossSigning();
    const reported: unknown[] = [];
    other.client.on("error", (e) => {
      reported.push(e);
    });
    await other.client.crypto.dehydration.start({ key: randomBytes(32), rehydrate: false, periodMs: 60_000 });
    await sleepingAgain(clock);
    holdPut = true;
    clock.wake(); // the period is over: a rotation uploads, held
    await putReached.promise;
    const loggedOut = other.client.logout();
    // Let the logout run as far as it goes while the upload is held (no assertion on timing:
    // with the upload let go, the logout must find it landed either way).
    await new Promise((r) => setTimeout(r, 50));
    putGate.resolve();
    await loggedOut;
    assert.deepEqual(
      atLogout,
      { putInFlight: false, sleeping: 0 },
      "the token is revoked after the schedule stopped and its upload landed",
    );
    assert.equal(clock.sleeping(), 0, "no rotation after the logout");
    assert.deepEqual(reported, [], "no failed rotation reported");
  });

  it("a logout the server fails leaves the session going: the schedule rotates again, with the same key, and a later logout ends it", async () => {
    const gus = await fixtureUser(fx, "dhf");
    const clock = manualClock();
    let failLogout = true;
    const fetchImpl: FetchLike = async (url, init) => {
      if (failLogout && new URL(url).pathname.endsWith("/logout")) {
        failLogout = false;
        return Response.json({ errcode: "M_UNKNOWN", error: "try later" }, { status: 502 });
      }
      return fetch(url, init);
    };
    const other = await newLogin({ name: gus.name, userId: gus.client.userId }, "2", {
      clock,
      fetch: fetchImpl,
    });
    await other.client.bootstrapCrossSigning();
    const reported: unknown[] = [];
    other.client.on("error", (e) => void reported.push(e));
    const key = randomBytes(32);
    await other.client.crypto.dehydration.start({ key, rehydrate: false, periodMs: 60_000 });
    await sleepingAgain(clock);

    await assert.rejects(other.client.logout(), (e: unknown) => {
      assert.ok(e instanceof ClientError && e.code === "LOGOUT_FAILED");
      assert.ok(e.cause instanceof MatrixError && e.cause.httpStatus === 502);
      return true;
    });
    assert.equal(other.client.crypto.dehydration.running, true, "the schedule goes on");
    await sleepingAgain(clock); // its next rotation is waited for again
    const before = await gus.client.getUserDevices(gus.client.userId);
    clock.wake();
    await sleepingAgain(clock); // the rotation uploaded, under the same key
    const found = await gus.client.crypto.dehydration.rehydrate(key);
    assert.ok(found !== undefined && !before.some((d) => d.deviceId === found.deviceId), "a new device");
    assert.deepEqual(reported, []);

    await other.client.logout();
    assert.equal(clock.sleeping(), 0, "the schedule ended with the session");
  });
});
