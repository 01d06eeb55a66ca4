// Anyone can send us to-device messages under made-up user IDs; one from a device we do not know
// made us track its sender (stored, and asked about again whenever outdated) for good. Users
// tracked only so are bounded by MAX_TRACKED_SENDERS, the first tracked first given up; a user we
// share an encrypted room with stays tracked whatever they send. The devices of users not tracked
// (looked up for each sender) are kept in memory up to MAX_CACHED_UNTRACKED_USERS users, and users
// without a cross-signing identity (looked up for each verification event's sender) up to
// MAX_CACHED_MISSING_IDENTITIES.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_CACHED_MISSING_IDENTITIES } from "../cross-signing/manager.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { undecryptableFrom } from "../test-support/values.ts";
import { MAX_VERIFICATION_FLOWS } from "../verification/constants.ts";
import { MAX_CACHED_UNTRACKED_USERS, MAX_TRACKED_SENDERS } from "./manager.ts";

describe("users tracked because they sent us to-device messages", () => {
  it("are bounded by MAX_TRACKED_SENDERS, the first given up first; room members stay", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    await bob.machine.updateTrackedUsers(["@alice:x"]); // we share an encrypted room
    await bob.flush();

    const flood = MAX_TRACKED_SENDERS + 100;
    const senders = ["@alice:x", ...Array.from({ length: flood }, (_, i) => `@spam${i}:evil`)];
    for (let start = 0; start < senders.length; start += 250) {
      const toDevice = senders.slice(start, start + 250).map((s) => undecryptableFrom(s, bob.machine));
      const result = await bob.machine.receiveSyncChanges({ toDevice, nextBatch: `s${start}` });
      assert.ok(result.failures.every((f) => f.code === "NO_SESSION"));
      await bob.flush();
    }
    const tracked = new Set((await bob.store.getTrackedUsers()).map((u) => u.userId));
    assert.ok(tracked.has("@alice:x"), "a user we share a room with stays tracked");
    assert.ok(tracked.has("@bob:x"));
    assert.ok(tracked.has(`@spam${flood - 1}:evil`), "the latest sender is tracked");
    assert.ok(!tracked.has("@spam0:evil"), "the first sender was given up");
    assert.equal(tracked.size, MAX_TRACKED_SENDERS + 2);
  });

  it("the devices of users not tracked are kept in memory up to MAX_CACHED_UNTRACKED_USERS", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    await bob.flush();
    const reads: string[] = [];
    const store = bob.store;
    const getUserDevices = store.getUserDevices.bind(store);
    store.getUserDevices = (userId) => {
      reads.push(userId);
      return getUserDevices(userId);
    };
    const flood = MAX_TRACKED_SENDERS + MAX_CACHED_UNTRACKED_USERS + 100;
    const garbage = async (senders: readonly string[]) => {
      for (let start = 0; start < senders.length; start += 250) {
        const toDevice = senders.slice(start, start + 250).map((s) => undecryptableFrom(s, bob.machine));
        await bob.machine.receiveSyncChanges({ toDevice, nextBatch: `s${start}` });
        await bob.flush();
      }
    };
    await garbage(Array.from({ length: flood }, (_, i) => `@spam${i}:evil`));
    const last = `@spam${flood - 1}:evil`;
    reads.length = 0;
    await garbage(["@spam0:evil", last]);
    assert.ok(reads.includes("@spam0:evil"), "the first sender's devices were forgotten from memory");
    assert.ok(!reads.includes(last), "the latest sender's are still in memory");
  });

  it("users without a cross-signing identity are kept in memory up to MAX_CACHED_MISSING_IDENTITIES", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    await bob.flush();
    const reads: string[] = [];
    const store = bob.store;
    const getIdentity = store.getCrossSigningIdentity.bind(store);
    store.getCrossSigningIdentity = (userId) => {
      reads.push(userId);
      return getIdentity(userId);
    };
    const request = (sender: string) => ({
      type: "m.key.verification.request",
      sender,
      content: { from_device: "DEV", methods: ["m.sas.v1"], timestamp: Date.now(), transaction_id: "t" },
    });
    const send = async (senders: readonly string[]) => {
      for (let start = 0; start < senders.length; start += 250) {
        const toDevice = senders.slice(start, start + 250).map(request);
        await bob.machine.receiveSyncChanges({ toDevice, nextBatch: `v${start}` });
      }
    };
    const flood = MAX_CACHED_MISSING_IDENTITIES + 100;
    await send(Array.from({ length: flood }, (_, i) => `@v${i}:evil`));
    const last = `@v${flood - 1}:evil`;
    // The first MAX_VERIFICATION_FLOWS senders' flows are kept, and looked up on every step.
    const early = `@v${MAX_VERIFICATION_FLOWS + 1}:evil`;
    reads.length = 0;
    await send([early, last]);
    assert.ok(reads.includes(early), "an early sender was forgotten from memory");
    assert.ok(!reads.includes(last), "the latest sender is still in memory");
  });
});
