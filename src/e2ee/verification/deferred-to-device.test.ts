// A sync processed with `deferVerification` hands its to-device verification events back (in
// `toDevice`) without giving them to the flows; `verification.receiveDeferredToDevice` gives them
// later, and ignores what is not a to-device event (it takes them from the caller).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ProcessedToDeviceEvent } from "../sync/to-device.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";

const request = (sender: string, flowId: string) => ({
  type: "m.key.verification.request",
  sender,
  content: { from_device: "DEV", methods: ["m.sas.v1"], timestamp: Date.now(), transaction_id: flowId },
});

describe("deferred to-device verification events", () => {
  it("wait for receiveDeferredToDevice, then open their flows; malformed ones are ignored", async () => {
    const bob = await TestClient.create(new FakeHomeserver(), { userId: "@bob:x", deviceId: "B" });
    const flows = () => bob.machine.verification.list().map((f) => f.flowId);
    const result = await bob.machine.receiveSyncChanges({
      toDevice: [request("@alice:x", "f1"), request("@carol:x", "f2")],
      nextBatch: "s1",
      deferVerification: true,
    });
    assert.deepEqual(
      result.toDevice.map((e) => e.content.transaction_id),
      ["f1", "f2"],
      "handed back as any to-device event",
    );
    assert.deepEqual(flows(), [], "not given to the flows");

    const malformed = [
      { ...request("not an id", "bad1"), encryption: undefined },
      { ...request("@eve:x", "bad2"), content: "text", encryption: undefined },
      { ...request("@eve:x", "bad3"), encryption: { senderDevice: 7 } },
    ] as unknown as ProcessedToDeviceEvent[];
    await bob.machine.verification.receiveDeferredToDevice([...malformed, ...result.toDevice]);
    assert.deepEqual(flows().sort(), ["f1", "f2"]);

    await bob.machine.receiveSyncChanges({ toDevice: [request("@dave:x", "f3")], nextBatch: "s2" });
    assert.ok(flows().includes("f3"), "without deferVerification: given at once");
  });
});
