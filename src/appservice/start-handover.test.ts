// How the handover splits what was held for a starting user (`planHandover`): its Olm-encrypted
// to-device messages in runs, fed before `user()` returns, each run cut by anything handed over
// between two of them (a plaintext message; a transaction's room events or read receipts), so
// that each run's decrypted events go back to their place among the rest, in the order they came.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AppserviceToDevice } from "../wire/appservice.ts";
import { planHandover, type ToDevicePart } from "./start-handover.ts";
import type { HeldTxn } from "./starting-users.ts";
import { parseTransaction } from "./transaction.ts";

const message = (type: string, n: number): AppserviceToDevice => ({
  type,
  sender: "@alice:hs",
  to_user_id: "@v_a:hs",
  to_device_id: "DEV",
  content: { n },
});
/** An Olm-encrypted message, `e<n>`. */
const e = (n: number) => message("m.room.encrypted", n);
/** A plaintext one, `p<n>`. */
const p = (n: number) => message("org.example", n);
const { events: roomEvents, ephemeral: receipts } = parseTransaction({
  events: [
    {
      event_id: "$1",
      type: "m.room.message",
      sender: "@alice:hs",
      room_id: "!r:hs",
      origin_server_ts: 1,
      content: { body: "1" },
    },
  ],
  ephemeral: [{ type: "m.receipt", room_id: "!r:hs", content: {} }],
});
const held = (txnId: string, toDevice: AppserviceToDevice[], carries: "events" | "receipt" | "" = "") => ({
  txnId,
  toDevice,
  events: carries === "events" ? roomEvents : [],
  receipts: carries === "receipt" ? receipts : [],
});
const name = (m: AppserviceToDevice) => `${m.type === "m.room.encrypted" ? "e" : "p"}${m.content.n}`;
const shape = (parts: readonly ToDevicePart[]) =>
  parts.map((part) => ("run" in part ? `run(${part.run.messages.map(name)})` : `${part.plain.map(name)}`));

describe("planHandover", () => {
  it("cuts a transaction's encrypted messages into runs around its plaintext ones, in order", () => {
    const { txns, runs } = planHandover([held("t1", [e(1), p(2), p(3), e(4), e(5), p(6)], "events")]);
    assert.deepEqual(
      txns.map((t) => [t.txnId, shape(t.toDevice), t.events.length]),
      [["t1", ["run(e1)", "p2,p3", "run(e4,e5)", "p6"], 1]],
    );
    assert.deepEqual(
      runs.map((r) => r.messages.map(name)),
      [["e1"], ["e4", "e5"]],
    );
  });

  it("lets a run span transactions that bring nothing else; room events and receipts cut it", () => {
    const txns: HeldTxn[] = [
      held("t1", [e(1)]),
      held("t2", [e(2), p(3)]),
      held("t3", [e(4)], "events"),
      held("t4", [e(5)], "receipt"),
      held("t5", [e(6)]),
      held("t6", [], "events"),
      held("t7", [e(7)]),
    ];
    const plan = planHandover(txns);
    assert.deepEqual(
      plan.txns.map((t) => [t.txnId, shape(t.toDevice)]),
      [
        ["t1", ["run(e1,e2)"]],
        ["t2", ["p3"]],
        ["t3", ["run(e4)"]],
        ["t4", ["run(e5)"]],
        ["t5", ["run(e6)"]],
        ["t6", []],
        ["t7", ["run(e7)"]],
      ],
    );
    assert.equal(plan.runs.length, 5, "one response each before user() returns");
  });
});
