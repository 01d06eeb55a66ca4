// In-room verification under hostile room events: anyone in the room can send events of every
// verification type relating to a flow's request, from the other user, from us (another of our
// devices, or a made-up one), into the flow's room or another, with any origin_server_ts and any
// content. They never throw, never complete a flow, never verify anything, and the flows stay
// within MAX_VERIFICATION_FLOWS.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { MAX_VERIFICATION_FLOWS } from "./constants.ts";
import { Pair } from "./test-support/pair.ts";

type Stage = "requested" | "ready" | "started";

/** An in-room flow from Alice to Bob at `stage`; its keys and the request's event ID. */
function setup(stage: Stage) {
  const p = Pair.make();
  const ka = p.roomRequest(p.a);
  const kb = p.b.machine.takeIncoming()[0]?.key as string;
  if (stage !== "requested") {
    p.b.machine.accept(kb, p.b.env, p.now);
    p.deliver();
  }
  if (stage === "started") {
    p.a.machine.startSas(ka, p.a.env, p.now);
    p.deliver();
  }
  return { p, ka, kb, flowId: kb.split("|")[1] as string };
}

const hostileNumber = fc.constantFrom(Number.NaN, -1, 0, 1e300, Number.MAX_SAFE_INTEGER, 1.5);

describe("in-room verification under hostile room events", () => {
  it("never throws, never completes or verifies, flows stay bounded", () => {
    const types = ["request", "ready", "start", "accept", "key", "mac", "done", "cancel"]
      .map((t) => `m.key.verification.${t}`)
      .concat(["m.room.message"]);
    const event = fc.record({
      type: fc.constantFrom(...types),
      content: fc.oneof(
        fc.jsonValue({ maxDepth: 2 }),
        fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 })),
      ),
      relates: fc.constantFrom("flow", "other", "none", "bad"),
      sender: fc.constantFrom("alice", "bob", "carol"),
      fromDevice: fc.oneof(fc.constantFrom("ALICEDEV", "BOBDEV", "OTHER"), fc.string()),
      room: fc.boolean(),
      ts: fc.oneof(fc.constant("now"), hostileNumber),
      toA: fc.boolean(),
      request: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.constantFrom<Stage>("requested", "ready", "started"),
        fc.array(event, { maxLength: 8 }),
        (stage, events) => {
          const s = setup(stage);
          const { p } = s;
          let n = 0;
          for (const e of events) {
            const target = e.toA ? p.a : p.b;
            const sender =
              e.sender === "alice" ? p.a.userId : e.sender === "bob" ? p.b.userId : "@carol:example.org";
            const base =
              typeof e.content === "object" && e.content !== null && !Array.isArray(e.content)
                ? (e.content as Record<string, unknown>)
                : {};
            const relation =
              e.relates === "flow"
                ? { rel_type: "m.reference", event_id: s.flowId }
                : e.relates === "other"
                  ? { rel_type: "m.reference", event_id: "$other" }
                  : e.relates === "bad"
                    ? e.content
                    : undefined;
            const content: Record<string, unknown> = {
              ...base,
              from_device: e.fromDevice,
              ...(relation === undefined ? {} : { "m.relates_to": relation }),
              // Now and then a request of its own (to the target), which opens a flow.
              ...(e.type === "m.room.message" && e.request
                ? { msgtype: "m.key.verification.request", to: target.userId, methods: ["m.sas.v1"] }
                : {}),
            };
            target.machine.receiveRoomEvent(
              {
                roomId: e.room ? p.roomId : "!elsewhere:example.org",
                eventId: `$hostile${++n}`,
                sender,
                type: e.type,
                content,
                originServerTs: e.ts === "now" ? p.now : e.ts,
                senderDevice: e.fromDevice,
              },
              target.env,
              p.now,
            );
            p.a.machine.takeOutgoing();
            p.b.machine.takeOutgoing();
          }
          for (const [side, key] of [
            [p.a, s.ka],
            [p.b, s.kb],
          ] as const) {
            const snap = side.machine.snapshot(key);
            assert.notEqual(snap?.phase, "done");
            assert.equal(snap?.verified, undefined);
            assert.ok(side.machine.size <= MAX_VERIFICATION_FLOWS);
            for (const f of side.machine.list()) assert.equal(f.verified, undefined);
          }
        },
      ),
      { seed: 2366, numRuns: 400 },
    );
  });
});
