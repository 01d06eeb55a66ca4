// One-off `/keys/query` requests for users we do not track (`queryKeysForUsers`, behind the
// client's `getUserDevices` for someone we share no encrypted room with): the answer is stored
// but the user is not tracked, so later device-list changes of theirs are not followed. The
// requests their asker failed to send are never answered: at most MAX_LOOKUPS_IN_FLIGHT are held.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { E2eeError } from "../errors.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { MAX_LOOKUPS_IN_FLIGHT } from "./manager.ts";

describe("one-off device lookups", () => {
  it("store the answer without tracking the user", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    await bob.flush();
    const requests = await bob.machine.queryKeysForUsers(["@alice:x", "@bob:x"]);
    assert.deepEqual(
      requests.map((r) => Object.keys(r.body.device_keys)),
      [["@alice:x"]],
      "tracked users (ourselves) are left to outgoingRequests",
    );
    assert.deepEqual(
      (await bob.machine.outgoingRequests()).filter((r) => r.type === "keys_query"),
      [],
      "the asker sends a lookup, not the request loop",
    );
    for (const r of requests) await bob.send(r);
    assert.deepEqual(
      (await bob.machine.getUserDevices("@alice:x")).map((d) => d.deviceId),
      ["A"],
    );
    assert.equal(bob.machine.isTracked("@alice:x"), false);
    assert.ok(!(await bob.store.getTrackedUsers()).some((u) => u.userId === "@alice:x"));
    // Their device-list changes are not followed.
    await bob.machine.receiveKeysChanges(["@alice:x"], []);
    assert.deepEqual(
      (await bob.machine.outgoingRequests()).filter((r) => r.type === "keys_query"),
      [],
    );
  });

  it("holds at most MAX_LOOKUPS_IN_FLIGHT unanswered, the oldest forgotten first", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    await bob.flush();
    const requests = [];
    for (let i = 0; i < MAX_LOOKUPS_IN_FLIGHT + 5; i++)
      requests.push(...(await bob.machine.queryKeysForUsers([`@u${i}:x`])));
    const first = requests[0];
    const last = requests[requests.length - 1];
    assert.ok(first !== undefined && last !== undefined);
    await assert.rejects(
      bob.machine.markRequestAsSent(first, { device_keys: {} }),
      (e: unknown) => e instanceof E2eeError && e.code === "UNKNOWN_REQUEST",
    );
    await bob.machine.markRequestAsSent(last, { device_keys: {} });
  });
});
