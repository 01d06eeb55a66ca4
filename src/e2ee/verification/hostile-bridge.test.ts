// The bridge between the verification machine and the engine remembers, per flow, that it asked
// for the other device's keys (and that it applied a result). Anyone can open flows: a start from
// a device we do not know, then a cancel, repeated with new transaction IDs. The machine's flows
// are bounded (MAX_VERIFICATION_FLOWS, finished ones give way first); what the bridge remembers
// must be too, or it grows with every flow ever seen.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryCryptoStore } from "../../store/index.ts";
import { OlmMachine } from "../machine.ts";
import type { Parts } from "../machine-parts.ts";
import { VerificationBridge } from "./bridge.ts";
import { MAX_BRIDGE_REQUESTS, MAX_VERIFICATION_FLOWS, VERIFICATION_TIMEOUT_MS } from "./constants.ts";
import { key32, Side } from "./test-support/pair.ts";

const start = (flowId: string) => ({
  transaction_id: flowId,
  from_device: "MADEUP",
  method: "m.sas.v1",
  key_agreement_protocols: ["curve25519-hkdf-sha256"],
  hashes: ["sha256"],
  message_authentication_codes: ["hkdf-hmac-sha256.v2"],
  short_authentication_string: ["decimal", "emoji"],
});

describe("the verification bridge under a flood of flows", () => {
  it(`remembers at most the machine's flows (MAX_VERIFICATION_FLOWS, ${MAX_VERIFICATION_FLOWS})`, async () => {
    const bridge = new VerificationBridge();
    const machine = await bridge.load();
    const bob = new Side("@bob:x", "B");
    const tracked: string[] = [];
    // settle() only asks the device manager to fetch the sender's keys here.
    const parts = { devices: { trackSender: (u: string) => tracked.push(u) } } as unknown as Parts;
    const now = 1_700_000_000_000;
    const flows = MAX_VERIFICATION_FLOWS * 20;
    for (let i = 0; i < flows; i++) {
      const sender = `@eve${i % 50}:x`;
      machine.receiveToDevice(
        { type: "m.key.verification.start", sender, content: start(`t${i}`) },
        bob.env,
        now,
      );
      await bridge.settle(parts);
      machine.receiveToDevice(
        {
          type: "m.key.verification.cancel",
          sender,
          content: { transaction_id: `t${i}`, code: "m.user", reason: key32() },
        },
        bob.env,
        now,
      );
      await bridge.settle(parts);
      bridge.takeUpdates();
      for (const r of bridge.requests()) bridge.markSent(r.id);
    }
    assert.equal(tracked.length, flows, "every flow asked for its sender's keys once");
    assert.ok(machine.size <= MAX_VERIFICATION_FLOWS);
    assert.ok(bridge.remembered <= MAX_VERIFICATION_FLOWS, `remembered ${bridge.remembered}`);
  });

  it(`holds at most MAX_BRIDGE_REQUESTS (${MAX_BRIDGE_REQUESTS}) unsent messages, strangers' timed-out flows' dropped first`, async () => {
    // /sendToDevice keeps failing: nothing is marked sent. Strangers open flows that time out at
    // once (stamped as old as a request may be), each queueing an m.timeout cancel.
    const bridge = new VerificationBridge();
    const machine = await bridge.load();
    const bob = new Side("@bob:x", "B");
    const parts = { devices: { trackSender: () => undefined } } as unknown as Parts;
    let now = 1_700_000_000_000;
    const ours = machine.requestToDevice("@carol:x", ["C"], bob.env, now);
    await bridge.settle(parts);
    const flows = MAX_BRIDGE_REQUESTS * 3;
    for (let i = 0; i < flows; i++) {
      now += 2;
      machine.receiveToDevice(
        {
          type: "m.key.verification.request",
          sender: `@eve${i}:x`,
          content: {
            transaction_id: `t${i}`,
            from_device: "EVE",
            methods: ["m.sas.v1"],
            timestamp: now - VERIFICATION_TIMEOUT_MS,
          },
        },
        bob.env,
        now,
      );
      machine.tick(now + 1);
      await bridge.settle(parts);
      bridge.takeUpdates();
    }
    const waiting = bridge.requests();
    const cancels = waiting.filter((r) => r.eventType === "m.key.verification.cancel").length;
    assert.ok(cancels > 0, "the strangers' flows timed out");
    assert.ok(waiting.length <= MAX_BRIDGE_REQUESTS, `${waiting.length} waiting`);
    assert.equal(machine.snapshot(ours)?.phase, "requested");
    assert.ok(
      waiting.some((r) => r.eventType === "m.key.verification.request"),
      "our own live flow's request still waits to be sent",
    );
  });
});

describe("a verification message handed out, then dropped from the bridge while it was being sent", () => {
  it("is marked sent without an error (it went out)", async () => {
    // A pass of the request loop hands out the strangers' timeout cancels; while they are being
    // sent, more strangers' flows time out and the bridge drops the oldest cancels to stay within
    // MAX_BRIDGE_REQUESTS, those handed out among them. Marking those sent must not fail.
    let now = 1_700_000_000_000;
    const store = await MemoryCryptoStore.open({ userId: "@bob:x", deviceId: "B" });
    const m = await OlmMachine.open({ userId: "@bob:x", deviceId: "B", store, now: () => now });
    let batch = 0;
    const timeOut = async () => {
      const toDevice = Array.from({ length: MAX_VERIFICATION_FLOWS }, (_, i) => ({
        type: "m.key.verification.request",
        sender: `@eve${batch}-${i}:x`,
        content: { transaction_id: "t", from_device: "EVE", methods: ["m.sas.v1"], timestamp: now },
      }));
      await m.receiveSyncChanges({ toDevice, nextBatch: `s${batch++}` });
      now += VERIFICATION_TIMEOUT_MS + 1;
      await m.verification.tick();
    };
    await timeOut();
    const cancels = (await m.outgoingRequests()).filter(
      (r) => r.type === "to_device" && r.eventType === "m.key.verification.cancel",
    );
    assert.equal(cancels.length, MAX_VERIFICATION_FLOWS);
    while (batch * MAX_VERIFICATION_FLOWS <= MAX_BRIDGE_REQUESTS + MAX_VERIFICATION_FLOWS) await timeOut();
    const waiting = (await m.outgoingRequests()).filter((r) => r.type === "to_device");
    assert.ok(waiting.length <= MAX_BRIDGE_REQUESTS);
    assert.ok(!waiting.some((r) => r.id === cancels[0]?.id), "the first cancels were dropped");
    for (const r of cancels) await m.markRequestAsSent(r, {});
    await m.close();
  });
});
