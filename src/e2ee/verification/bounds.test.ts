// What a hostile sender can grow in the verification machine is bounded by named constants: flows
// across all users (not only per user), how long a finished flow is remembered, and the entries
// of a MAC's map.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  FINISHED_FLOW_RETENTION_MS,
  MAX_FLOWS_PER_USER,
  MAX_LIST_ENTRIES,
  MAX_VERIFICATION_FLOWS,
} from "./constants.ts";
import { key32, Pair } from "./test-support/pair.ts";

function request(p: Pair, sender: string, flowId: string): void {
  p.b.machine.receiveToDevice(
    {
      type: "m.key.verification.request",
      sender,
      content: { from_device: "DEV", methods: ["m.sas.v1"], timestamp: p.now, transaction_id: flowId },
    },
    p.b.env,
    p.now,
  );
}

describe("verification bounds", () => {
  it(`flows from many users together stay within MAX_VERIFICATION_FLOWS (${MAX_VERIFICATION_FLOWS})`, () => {
    const p = Pair.make();
    const users = Math.ceil(MAX_VERIFICATION_FLOWS / MAX_FLOWS_PER_USER) + 4;
    for (let u = 0; u < users; u++)
      for (let i = 0; i < MAX_FLOWS_PER_USER; i++) request(p, `@u${u}:example.org`, `t${i}`);
    assert.equal(p.b.machine.size, MAX_VERIFICATION_FLOWS);
  });

  it("a finished flow is forgotten after FINISHED_FLOW_RETENTION_MS, and makes way for a new one when full", () => {
    const p = Pair.make();
    request(p, p.a.userId, "done-soon");
    const [first] = p.b.machine.takeIncoming();
    assert.ok(first);
    p.b.machine.cancel(first.key, p.now);
    p.b.machine.tick(p.now + FINISHED_FLOW_RETENTION_MS);
    assert.equal(p.b.machine.size, 1);
    p.b.machine.tick(p.now + FINISHED_FLOW_RETENTION_MS + 1);
    assert.equal(p.b.machine.size, 0);

    // Full of flows, one of them finished: a new request takes the finished one's place.
    const q = Pair.make();
    for (let u = 0; q.b.machine.size < MAX_VERIFICATION_FLOWS; u++) request(q, `@u${u}:example.org`, "t");
    const victim = q.b.machine.list()[0]?.key as string;
    q.b.machine.cancel(victim, q.now);
    request(q, "@late:example.org", "t");
    assert.equal(q.b.machine.size, MAX_VERIFICATION_FLOWS);
    assert.equal(q.b.machine.snapshot(victim), undefined);
    assert.ok(q.b.machine.list().some((f) => f.otherUserId === "@late:example.org"));
  });

  it(`a MAC listing more than MAX_LIST_ENTRIES (${MAX_LIST_ENTRIES}) keys is refused (m.invalid_message)`, () => {
    const p = Pair.make({ sameUser: true });
    const { ka, kb } = p.requestAccepted();
    p.a.machine.startSas(ka, p.a.env, p.now);
    p.deliver();
    assert.equal(p.b.machine.snapshot(kb)?.sas?.stage, "keys_exchanged");
    const mac = Object.fromEntries(
      Array.from({ length: MAX_LIST_ENTRIES + 1 }, (_, i) => [`ed25519:K${i}`, key32()]),
    );
    p.b.machine.receiveToDevice(
      {
        type: "m.key.verification.mac",
        sender: p.a.userId,
        content: { transaction_id: kb.split("|")[1], mac, keys: key32() },
      },
      p.b.env,
      p.now,
    );
    assert.equal(p.b.machine.snapshot(kb)?.cancel?.code, "m.invalid_message");
  });
});
