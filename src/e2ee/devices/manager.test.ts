import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Account } from "../../crypto/olm/index.ts";
import type { DeviceKeysJson } from "../requests.ts";
import { signWithAccount } from "../signing.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";
import { KEYS_QUERY_BACKOFF_MS, KEYS_QUERY_BATCH_SIZE } from "./manager.ts";

function deviceKeys(account: Account, userId: string, deviceId: string): DeviceKeysJson {
  return signWithAccount(account, userId, deviceId, {
    user_id: userId,
    device_id: deviceId,
    algorithms: ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
    keys: {
      [`curve25519:${deviceId}`]: account.identityKeys.curve25519,
      [`ed25519:${deviceId}`]: account.identityKeys.ed25519,
    },
  });
}

/** Bob, with Alice and Carol known to the homeserver; `queried`: the users his next key query asks for. */
async function bobWithAliceAndCarol() {
  const hs = new FakeHomeserver();
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
  await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
  await TestClient.create(hs, { userId: "@carol:x", deviceId: "C" });
  const queried = async () =>
    (await bob.machine.outgoingRequests())
      .flatMap((r) => (r.type === "keys_query" ? Object.keys(r.body.device_keys) : []))
      .sort();
  return { bob, queried };
}
describe("device tracking", () => {
  it("refuses a device whose keys changed under the same ID", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    await bob.machine.updateTrackedUsers(["@alice:x"]);
    await bob.sync();
    const original = await bob.machine.getDevice("@alice:x", "A");
    assert.equal(original?.ed25519, alice.machine.identityKeys.ed25519);
    // The server now serves different, validly self-signed keys for device A.
    hs.forgeDeviceKeys("@alice:x", "A", deviceKeys(Account.create(), "@alice:x", "A"));
    await bob.sync();
    assert.equal((await bob.machine.getDevice("@alice:x", "A"))?.ed25519, original?.ed25519);
  });

  it("removes a device another user's refused device shares the ID of", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    hs.forgeDeviceKeys("@alice:x", "SAME", deviceKeys(Account.create(), "@alice:x", "SAME"));
    hs.forgeDeviceKeys("@carol:x", "SAME", deviceKeys(Account.create(), "@carol:x", "SAME"));
    await bob.machine.updateTrackedUsers(["@alice:x", "@carol:x"]);
    await bob.flush();
    assert.equal((await bob.machine.getUserDevices("@carol:x")).length, 1);
    // In one answer: Alice's device SAME is refused (new keys), Carol's device SAME is gone.
    hs.forgeDeviceKeys("@alice:x", "SAME", deviceKeys(Account.create(), "@alice:x", "SAME"));
    hs.deleteDevice("@carol:x", "SAME");
    await bob.machine.receiveKeysChanges(["@alice:x", "@carol:x"], []);
    const query = (await bob.machine.outgoingRequests()).filter((r) => r.type === "keys_query");
    assert.equal(query.length, 1);
    for (const r of query) await bob.send(r);
    assert.deepEqual(await bob.machine.getUserDevices("@carol:x"), []);
    assert.equal((await bob.machine.getUserDevices("@alice:x")).length, 1, "Alice's old keys kept");
  });

  it("ignores devices with bad signatures, wrong user or device IDs", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    const account = Account.create();
    const good = deviceKeys(account, "@eve:x", "E1");
    hs.forgeDeviceKeys("@eve:x", "E1", good);
    hs.forgeDeviceKeys("@eve:x", "E2", {
      ...deviceKeys(account, "@eve:x", "E2"),
      display: "tampered",
    } as DeviceKeysJson);
    hs.forgeDeviceKeys("@eve:x", "E3", deviceKeys(account, "@eve:x", "E1"));
    hs.forgeDeviceKeys("@eve:x", "E4", deviceKeys(account, "@mallory:x", "E4"));
    await bob.machine.updateTrackedUsers(["@eve:x"]);
    await bob.sync();
    const devices = await bob.machine.getUserDevices("@eve:x");
    assert.deepEqual(
      devices.map((d) => d.deviceId),
      ["E1"],
    );
  });

  it("keeps a user outdated when they changed while a query was in flight", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    await bob.machine.updateTrackedUsers(["@alice:x"]);
    const query = (await bob.machine.outgoingRequests()).find((r) => r.type === "keys_query");
    assert.ok(query);
    const response = hs.handle("@bob:x", "B", query);
    // Alice adds a device before the response is processed.
    await TestClient.create(hs, { userId: "@alice:x", deviceId: "A2" });
    await bob.machine.receiveSyncChanges({ deviceLists: { changed: ["@alice:x"] } });
    await bob.machine.markRequestAsSent(query, response);
    assert.equal(bob.machine.hasOutdatedUsers(["@alice:x"]), true);
    await bob.flush();
    assert.equal(bob.machine.hasOutdatedUsers(["@alice:x"]), false);
    assert.equal((await bob.machine.getUserDevices("@alice:x")).length, 2);
  });

  it("queries exactly the outdated users: after restarts, answers, /keys/changes and leaving", async () => {
    const { bob, queried } = await bobWithAliceAndCarol();
    await bob.flush(); // our own user, queried at every start
    await bob.machine.updateTrackedUsers(["@alice:x", "@carol:x"]);
    // Outdated users stored as such are queried after a restart, before any query went out.
    await bob.restart();
    assert.deepEqual(await queried(), ["@alice:x", "@bob:x", "@carol:x"]);
    await bob.flush();
    assert.deepEqual(await queried(), []);
    await bob.machine.receiveSyncChanges({ deviceLists: { changed: ["@carol:x", "@dave:x"] } });
    assert.deepEqual(await queried(), ["@carol:x"], "untracked users are not queried");
    await bob.flush();
    // An outdated user who left is not queried any more.
    await bob.machine.receiveSyncChanges({ deviceLists: { changed: ["@alice:x"] } });
    await bob.machine.receiveSyncChanges({ deviceLists: { left: ["@alice:x"] } });
    assert.deepEqual(await queried(), []);
    await bob.restart();
    assert.deepEqual(await queried(), ["@bob:x"]);
  });

  it("markAllTrackedOutdated queries every tracked user again, and only them, after a restart too", async () => {
    const { bob, queried } = await bobWithAliceAndCarol();
    await bob.machine.updateTrackedUsers(["@alice:x", "@carol:x"]);
    await bob.flush();
    await bob.machine.receiveSyncChanges({ deviceLists: { left: ["@carol:x"] } });
    assert.deepEqual(await queried(), []);
    await bob.machine.markAllTrackedOutdated();
    assert.deepEqual(await queried(), ["@alice:x", "@bob:x"], "the tracked ones, not one who left");
    await bob.restart();
    assert.deepEqual(await queried(), ["@alice:x", "@bob:x"], "saved as outdated");
  });

  it("queries users in batches", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    const users = Array.from({ length: KEYS_QUERY_BATCH_SIZE + 10 }, (_, i) => `@u${i}:x`);
    await bob.machine.updateTrackedUsers(users);
    const queries = (await bob.machine.outgoingRequests()).filter((r) => r.type === "keys_query");
    assert.deepEqual(
      queries.map((q) => (q.type === "keys_query" ? Object.keys(q.body.device_keys).length : 0)),
      [KEYS_QUERY_BATCH_SIZE, 10],
    );
  });

  it("stops tracking users who left, and rotates the room key when a device is removed", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    const bob2 = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B2" });
    await bob.sync();
    await bob2.sync();
    const members = joined("@alice:x", "@bob:x");
    const first = await alice.sendMessage("!r:x", members, "one");
    hs.deleteDevice("@bob:x", "B2");
    await alice.sync();
    const second = await alice.sendMessage("!r:x", members, "two");
    const sessionOf = (e: typeof first) => (e.content as { session_id: string }).session_id;
    assert.notEqual(sessionOf(second), sessionOf(first));

    await alice.machine.receiveSyncChanges({ deviceLists: { left: ["@bob:x"] } });
    assert.equal(alice.machine.hasOutdatedUsers(["@bob:x"]), true, "untracked users count as outdated");
    await alice.restart();
    assert.equal(alice.machine.hasOutdatedUsers(["@bob:x"]), true, "still untracked after a restart");
    const queried = (await alice.machine.outgoingRequests()).flatMap((r) =>
      r.type === "keys_query" ? Object.keys(r.body.device_keys) : [],
    );
    assert.deepEqual(queried, ["@alice:x"], "only our own user, checked once per start");
  });

  it("persists device trust, and re-queries users named by /keys/changes", async () => {
    const hs = new FakeHomeserver();
    await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    await bob.machine.updateTrackedUsers(["@alice:x"]);
    await bob.flush();
    await bob.machine.setDeviceTrust("@alice:x", "A", "ignored");
    await assert.rejects(bob.machine.setDeviceTrust("@alice:x", "NOPE", "verified"), {
      code: "BAD_ARGUMENT",
    });
    await bob.restart();
    await bob.flush();
    assert.equal((await bob.machine.getDevice("@alice:x", "A"))?.trust, "ignored");

    await bob.machine.receiveKeysChanges(["@alice:x", "@stranger:x"], []);
    assert.equal(bob.machine.hasOutdatedUsers(["@alice:x"]), true);
    const queries = (await bob.machine.outgoingRequests()).filter((r) => r.type === "keys_query");
    assert.deepEqual(
      queries.flatMap((q) => (q.type === "keys_query" ? Object.keys(q.body.device_keys) : [])),
      ["@alice:x"],
      "users we do not track are not queried",
    );
    await bob.flush();
    assert.equal((await bob.machine.getDevice("@alice:x", "A"))?.trust, "ignored", "a re-query keeps trust");
  });

  it("uploads its device keys again when the server lost them", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    await bob.sync();
    // A logout deleted the device; the user logs in again with the same device ID.
    hs.deleteDevice("@bob:x", "B");
    hs.device("@bob:x", "B");
    await bob.restart();
    await bob.flush();
    await bob.sync();
    const server = hs.device("@bob:x", "B");
    assert.equal(server.keys?.keys["ed25519:B"], bob.machine.identityKeys.ed25519);
    assert.ok(server.fallback !== undefined);
    assert.equal(server.oneTimeKeys.size, 50);
  });

  it("tracks members who join or are invited to rooms recorded as encrypted", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    await bob.machine.setRoomSettings("!enc:x", { algorithm: "m.megolm.v1.aes-sha2" });
    await bob.machine.receiveRoomMembership([
      { roomId: "!enc:x", userId: "@joined:x", membership: "join" },
      { roomId: "!enc:x", userId: "@invited:x", membership: "invite" },
      { roomId: "!enc:x", userId: "@left:x", membership: "leave" },
      { roomId: "!plain:x", userId: "@plain:x", membership: "join" },
    ]);
    const queried = (await bob.machine.outgoingRequests()).flatMap((r) =>
      r.type === "keys_query" ? Object.keys(r.body.device_keys) : [],
    );
    assert.deepEqual(queried.sort(), ["@invited:x", "@joined:x"]);
  });

  it("backs off from users whose server could not be reached", async () => {
    let t = 1_700_000_000_000;
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", now: () => t });
    hs.unreachable.add("@far:remote");
    await bob.machine.updateTrackedUsers(["@far:remote"]);
    await bob.flush(); // settles: the failed user is not asked again at once
    assert.equal(bob.machine.hasOutdatedUsers(["@far:remote"]), true);
    t += KEYS_QUERY_BACKOFF_MS;
    const retry = (await bob.machine.outgoingRequests()).filter((r) => r.type === "keys_query");
    assert.equal(retry.length, 1);
    hs.unreachable.delete("@far:remote");
    for (const r of retry) await bob.send(r);
    assert.equal(bob.machine.hasOutdatedUsers(["@far:remote"]), false);
  });
});
