import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  E2eeError,
  type OutgoingRequest,
  type RequestFailure,
  type RequestFailureOutcome,
} from "../../e2ee/index.ts";
import { MatrixError } from "../errors.ts";
import { MAX_OUTGOING_PASSES, OutgoingRequestLoop, Serial } from "./outgoing.ts";

const toDevice = (id: string): OutgoingRequest => ({
  id,
  type: "to_device",
  eventType: "m.room.encrypted",
  body: { messages: {} },
});

/** A machine whose queue empties as requests are marked sent; `extra` requests appear on demand. */
class FakeMachine {
  queue: OutgoingRequest[] = [];
  marked: string[] = [];
  passes = 0;
  async outgoingRequests(): Promise<OutgoingRequest[]> {
    this.passes++;
    return [...this.queue];
  }
  async markRequestAsSent({ id }: { id: string }): Promise<void> {
    this.marked.push(id);
    this.queue = this.queue.filter((r) => r.id !== id);
  }
  /** Error answers handed back; `onFailure` decides what the engine does (by default nothing). */
  failures: { id: string; failure: RequestFailure }[] = [];
  onFailure: (id: string) => RequestFailureOutcome = () => "unchanged";
  async markRequestAsFailed({ id }: { id: string }, failure: RequestFailure): Promise<RequestFailureOutcome> {
    this.failures.push({ id, failure });
    return this.onFailure(id);
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe("OutgoingRequestLoop", () => {
  it("sends every request, marks it sent, and stops when nothing is left", async () => {
    const machine = new FakeMachine();
    machine.queue = [toDevice("a"), toDevice("b")];
    const sent: string[] = [];
    const loop = new OutgoingRequestLoop({
      machine,
      send: async (r) => {
        sent.push(r.id);
        return {};
      },
      onError: () => assert.fail("no error expected"),
    });
    await loop.run();
    assert.deepEqual(sent, ["a", "b"]);
    assert.deepEqual(machine.marked, ["a", "b"]);
    assert.equal(machine.passes, 2); // the second pass finds nothing
  });

  it("runs one pass at a time and runs again when asked during a pass", async () => {
    const machine = new FakeMachine();
    machine.queue = [toDevice("a")];
    const gate = deferred();
    let inFlight = 0;
    let maxInFlight = 0;
    const loop = new OutgoingRequestLoop({
      machine,
      send: async (r) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        if (r.id === "a") await gate.promise;
        inFlight--;
        return {};
      },
      onError: () => assert.fail("no error expected"),
    });
    const first = loop.run();
    await new Promise((r) => setImmediate(r));
    // Queued while "a" is in flight: the running loop must pick it up, not a second loop.
    machine.queue.push(toDevice("b"));
    const second = loop.run();
    gate.resolve();
    await Promise.all([first, second]);
    assert.equal(maxInFlight, 1);
    assert.deepEqual(machine.marked, ["a", "b"]);
  });

  it("keeps a failed request in the engine, reports it, and sends it on the next run", async () => {
    const machine = new FakeMachine();
    machine.queue = [toDevice("a"), toDevice("b")];
    let fail = true;
    const errors: (string | undefined)[] = [];
    const loop = new OutgoingRequestLoop({
      machine,
      send: async (r) => {
        if (fail && r.id === "a") throw new Error("network down");
        return {};
      },
      onError: (_e, r) => void errors.push(r?.id),
    });
    await loop.run();
    assert.deepEqual(errors, ["a"]);
    assert.deepEqual(machine.marked, ["b"]);
    assert.ok(loop.lastError instanceof Error);
    fail = false;
    await loop.run();
    assert.deepEqual(machine.marked, ["b", "a"]);
    assert.equal(loop.lastError, undefined);
  });

  it("hands a server's error answer to the engine; a request it rebuilds goes out in another pass, unreported", async () => {
    const machine = new FakeMachine();
    machine.queue = [{ id: "u1", type: "keys_upload", body: {} }];
    const refusal = { errcode: "M_UNKNOWN", error: "One time key signed_curve25519:AAAAAQ already exists" };
    machine.onFailure = (id) => {
      // The engine replaces the refused upload by a new one.
      machine.queue = [{ id: `${id}+`, type: "keys_upload", body: {} }];
      return "rebuilt";
    };
    const rebuilt: string[] = [];
    const loop = new OutgoingRequestLoop({
      machine,
      send: async (r) => {
        if (r.id === "u1") throw new MatrixError(400, refusal);
        return {};
      },
      onError: () => assert.fail("no error expected"),
      onRebuilt: (r) => void rebuilt.push(r.id),
    });
    await loop.run();
    assert.deepEqual(machine.failures, [{ id: "u1", failure: { status: 400, body: refusal } }]);
    assert.deepEqual(rebuilt, ["u1"]);
    assert.deepEqual(machine.marked, ["u1+"]);
    assert.equal(loop.lastError, undefined);
  });

  it("reports the server's error when the engine changes nothing, and the engine's when it gives up", async () => {
    const machine = new FakeMachine();
    machine.queue = [toDevice("a"), { id: "u", type: "keys_upload", body: {} }];
    const gaveUp = new E2eeError("KEY_UPLOAD_CONFLICT", "refused too many times");
    machine.onFailure = (id) => {
      if (id === "u") throw gaveUp;
      return "unchanged";
    };
    const errors: unknown[] = [];
    const loop = new OutgoingRequestLoop({
      machine,
      send: async () => {
        throw new MatrixError(500, { errcode: "M_UNKNOWN" });
      },
      onError: (e) => void errors.push(e),
    });
    await loop.run();
    assert.ok(errors[0] instanceof MatrixError);
    assert.equal(errors[1], gaveUp);
    assert.equal(machine.passes, 1);
    // A failure that is no answer from the server (the network) is not the engine's business.
    machine.failures = [];
    const offline = new OutgoingRequestLoop({
      machine,
      send: async () => {
        throw new Error("network down");
      },
      onError: () => {},
    });
    await offline.run();
    assert.deepEqual(machine.failures, []);
  });

  it("stops after MAX_OUTGOING_PASSES when every pass makes new requests", async () => {
    const machine = new FakeMachine();
    let n = 0;
    machine.outgoingRequests = async () => {
      machine.passes++;
      return [toDevice(`r${n++}`)];
    };
    const loop = new OutgoingRequestLoop({ machine, send: async () => ({}), onError: () => {} });
    await loop.run();
    assert.equal(machine.passes, MAX_OUTGOING_PASSES);
  });

  it("does nothing once closed", async () => {
    const machine = new FakeMachine();
    machine.queue = [toDevice("a")];
    const loop = new OutgoingRequestLoop({ machine, send: async () => ({}), onError: () => {} });
    await loop.close();
    await loop.run();
    assert.equal(machine.passes, 0);
  });
});

describe("Serial", () => {
  it("runs tasks one after another, even after a failure", async () => {
    const serial = new Serial();
    const order: string[] = [];
    const gate = deferred();
    const a = serial.run(async () => {
      await gate.promise;
      order.push("a");
      throw new Error("a failed");
    });
    const b = serial.run(async () => void order.push("b"));
    gate.resolve();
    await assert.rejects(a, /a failed/);
    await b;
    assert.deepEqual(order, ["a", "b"]);
  });
});

describe("OutgoingRequestLoop.run just as a loop ends", () => {
  // A run asked for between the last pass's end and the loop's clean-up was handed the ending
  // loop: it resolved without a pass, and what was queued before it waited for the next run (a
  // history-sharing claim then went unsent, and its bundle to devices without a session). Asked
  // at every point of the last pass's end here, each within a few promise hops.
  it("always gets a pass that started after it was asked", async () => {
    const missed: number[] = [];
    for (let hops = 0; hops < 30; hops++) {
      const machine = new FakeMachine();
      machine.queue = [toDevice("a")];
      let late: Promise<void> | undefined;
      const loop: OutgoingRequestLoop = new OutgoingRequestLoop({
        machine,
        send: async () => ({}),
        onError: () => assert.fail("no error expected"),
      });
      const outgoing = machine.outgoingRequests.bind(machine);
      machine.outgoingRequests = async () => {
        // The last pass (nothing left): a request is queued and a run asked for `hops` hops later.
        if (machine.queue.length === 0 && late === undefined) {
          let p: Promise<unknown> = Promise.resolve();
          for (let i = 0; i < hops; i++) p = p.then(() => undefined);
          late = p.then(() => {
            machine.queue.push(toDevice("b"));
            return loop.run();
          });
        }
        return outgoing();
      };
      await loop.run();
      await late;
      if (!machine.marked.includes("b")) missed.push(hops);
    }
    assert.deepEqual(missed, []);
  });
});
