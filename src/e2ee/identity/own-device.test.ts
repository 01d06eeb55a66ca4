import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryCryptoStore, MemoryStoreData } from "../../store/index.ts";
import { OlmMachine } from "../machine.ts";
import type { KeysUploadRequest } from "../requests.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";

const USER = "@alice:example.org";

/** Opens a machine on `data`; `reopen` closes it first, as a process restart would. */
async function openOn(
  data: MemoryStoreData,
  deviceId = "DEV",
): Promise<{ machine: OlmMachine; close: () => Promise<void> }> {
  const store = await MemoryCryptoStore.open({ userId: USER, deviceId, data });
  const machine = await OlmMachine.open({ userId: USER, deviceId, store });
  return {
    machine,
    close: async () => {
      await machine.close();
      await store.close();
    },
  };
}

function uploadOf(requests: Awaited<ReturnType<OlmMachine["outgoingRequests"]>>): KeysUploadRequest {
  const upload = requests.find((r) => r.type === "keys_upload");
  assert.ok(upload !== undefined && upload.type === "keys_upload");
  return upload;
}

describe("own device keys", () => {
  it("re-sends exactly the same keys when an upload's response was lost", async () => {
    const hs = new FakeHomeserver();
    const data = new MemoryStoreData();
    const { machine, close } = await openOn(data);
    const first = uploadOf(await machine.outgoingRequests());
    // The server stores the keys but the response never reaches us.
    hs.handle(USER, "DEV", first);
    const again = uploadOf(await machine.outgoingRequests());
    assert.equal(again.id, first.id);
    assert.deepEqual(again.body, first.body);

    // Even across a restart (the request ID is new, the keys are not): they were saved before
    // the request was first handed out.
    await close();
    const { machine: reopened } = await openOn(data);
    const afterRestart = uploadOf(await reopened.outgoingRequests());
    assert.deepEqual(afterRestart.body, first.body);
    const response = hs.handle(USER, "DEV", afterRestart);
    await reopened.markRequestAsSent(afterRestart, response);
  });

  it("persists new one-time keys before returning the upload that carries them", async () => {
    const hs = new FakeHomeserver();
    const data = new MemoryStoreData();
    const { machine, close } = await openOn(data);
    const first = uploadOf(await machine.outgoingRequests());
    await machine.markRequestAsSent(first, hs.handle(USER, "DEV", first));
    const topUp = uploadOf(await machine.outgoingRequests());
    const keyIds = Object.keys(topUp.body.one_time_keys ?? {});
    assert.equal(keyIds.length, 50);
    // Crash now: a new machine on the same store offers the very same keys.
    await close();
    const { machine: reopened } = await openOn(data);
    const offered = uploadOf(await reopened.outgoingRequests());
    assert.deepEqual(Object.keys(offered.body.one_time_keys ?? {}), keyIds);
    assert.equal(offered.body.device_keys, undefined, "device keys were acknowledged already");
  });

  it("publishes a new fallback key once the old one was used", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: USER, deviceId: "ALICE" });
    const bob = await TestClient.create(hs, { userId: "@bob:example.org", deviceId: "BOB" });
    await bob.sync();
    const firstFallback = hs.device(bob.userId, "BOB").fallback?.keyId;
    hs.exhaustOneTimeKeys(bob.userId, "BOB");
    const event = await alice.sendMessage("!r:x", joined(USER, bob.userId), "via fallback");
    assert.equal(hs.device(bob.userId, "BOB").fallback?.used, true);
    const synced = await bob.sync();
    assert.equal(synced.failures.length, 0);
    assert.equal((await bob.machine.decryptRoomEvent(event, "!r:x")).content.body, "via fallback");
    const fallback = hs.device(bob.userId, "BOB").fallback;
    assert.notEqual(fallback?.keyId, firstFallback);
    assert.equal(fallback?.used, false);
    // The exhausted one-time keys were replenished as well.
    assert.equal(hs.device(bob.userId, "BOB").oneTimeKeys.size, 50);
  });

  it("refuses a store that belongs to another device", async () => {
    const store = await MemoryCryptoStore.open({
      userId: USER,
      deviceId: "DEV",
      data: new MemoryStoreData(),
    });
    await assert.rejects(OlmMachine.open({ userId: USER, deviceId: "OTHER", store }), {
      code: "STORE_MISMATCH",
    });
  });

  it("reads a count map without signed_curve25519 as zero keys left", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: USER, deviceId: "ALICE" });
    hs.exhaustOneTimeKeys(USER, "ALICE");
    await alice.machine.receiveSyncChanges({ oneTimeKeyCounts: {} });
    const upload = uploadOf(await alice.machine.outgoingRequests());
    assert.equal(Object.keys(upload.body.one_time_keys ?? {}).length, 50);
  });
});
