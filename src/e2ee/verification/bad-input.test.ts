// Every malformed or out-of-order verification event: cancelled with the spec's code, or ignored
// where the spec says so. Nothing throws, and no flow completes with a wrong MAC, a wrong
// commitment, a key that changed mid-flow or an event from another device than the one in the flow.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { VerificationMessage } from "./events.ts";
import { sasStartContent } from "./sas-flow.ts";
import { key32, Pair, type Side } from "./test-support/pair.ts";

type Stage = "requested" | "ready" | "started" | "accepted" | "keys" | "confirmed";

interface Setup {
  p: Pair;
  ka: string;
  kb: string;
  flowId: string;
  /** Events held back at the last step (not delivered). */
  held: VerificationMessage[];
}

/** Alice requests (to-device, own devices), Bob accepts, Alice starts SAS; stops at `stage`. */
function setup(stage: Stage): Setup {
  const p = Pair.make({ sameUser: true });
  const ka = p.a.machine.requestToDevice(p.b.userId, [p.b.deviceId], p.a.env, p.now);
  p.deliver();
  const kb = p.b.machine.takeIncoming()[0]?.key as string;
  const flowId = ka.split("|")[1] as string;
  const held: VerificationMessage[] = [];
  const s: Setup = { p, ka, kb, flowId, held };
  if (stage === "requested") return s;
  p.b.machine.accept(kb, p.b.env, p.now);
  p.deliver();
  if (stage === "ready") return s;
  p.a.machine.startSas(ka, p.a.env, p.now);
  if (stage === "started") {
    held.push(...p.a.machine.takeOutgoing());
    return s;
  }
  // Hold Alice's key back at "accepted".
  p.deliver((m) => {
    if (stage !== "accepted" || m.eventType !== "m.key.verification.key") return m;
    held.push(m);
    return undefined;
  });
  if (stage === "accepted" || stage === "keys") return s;
  p.a.machine.confirm(ka, p.a.env, p.now);
  held.push(...p.a.machine.takeOutgoing());
  return s;
}

function send(
  s: Setup,
  from: Side,
  type: string,
  content: Record<string, unknown>,
  senderDevice?: string,
): void {
  const to = s.p.other(from);
  s.p.inject(
    from,
    {
      kind: "to_device",
      eventType: type,
      userId: to.userId,
      deviceIds: [to.deviceId],
      content: { transaction_id: s.flowId, ...content },
    },
    senderDevice,
  );
}

const sasStart = (device: string, over: Record<string, unknown> = {}) => ({
  from_device: device,
  method: "m.sas.v1",
  key_agreement_protocols: ["curve25519-hkdf-sha256"],
  hashes: ["sha256"],
  message_authentication_codes: ["hkdf-hmac-sha256.v2"],
  short_authentication_string: ["decimal", "emoji"],
  ...over,
});
const goodAccept = {
  key_agreement_protocol: "curve25519-hkdf-sha256",
  hash: "sha256",
  message_authentication_code: "hkdf-hmac-sha256.v2",
  short_authentication_string: ["decimal", "emoji"],
  commitment: key32(),
};

interface Row {
  name: string;
  stage: Stage;
  /** Who receives the bad event: Alice (requester, SAS starter) or Bob. */
  target: "a" | "b";
  act: (s: Setup) => void;
  /** The cancel code the target sends, or "ignored". */
  expect: string;
}

const rows: Row[] = [
  {
    name: "ready without from_device",
    stage: "requested",
    target: "a",
    act: (s) => send(s, s.p.b, "m.key.verification.ready", { methods: ["m.sas.v1"] }),
    expect: "m.invalid_message",
  },
  {
    name: "ready with methods not a list",
    stage: "requested",
    target: "a",
    act: (s) => send(s, s.p.b, "m.key.verification.ready", { from_device: "BOBDEV", methods: "m.sas.v1" }),
    expect: "m.invalid_message",
  },
  {
    name: "ready to the side that did not request",
    stage: "requested",
    target: "b",
    act: (s) =>
      send(s, s.p.a, "m.key.verification.ready", { from_device: "ALICEDEV", methods: ["m.sas.v1"] }),
    expect: "m.unexpected_message",
  },
  {
    name: "a second ready",
    stage: "ready",
    target: "a",
    act: (s) => send(s, s.p.b, "m.key.verification.ready", { from_device: "BOBDEV", methods: ["m.sas.v1"] }),
    expect: "m.unexpected_message",
  },
  {
    name: "start before ready (requester side)",
    stage: "requested",
    target: "a",
    act: (s) => send(s, s.p.b, "m.key.verification.start", sasStart("BOBDEV")),
    expect: "m.unexpected_message",
  },
  {
    name: "start before our ready (requestee side)",
    stage: "requested",
    target: "b",
    act: (s) => send(s, s.p.a, "m.key.verification.start", sasStart("ALICEDEV")),
    expect: "m.unexpected_message",
  },
  {
    name: "start with an unknown method",
    stage: "ready",
    target: "b",
    act: (s) => send(s, s.p.a, "m.key.verification.start", { from_device: "ALICEDEV", method: "m.bogus.v1" }),
    expect: "m.unknown_method",
  },
  {
    name: "start with no common MAC",
    stage: "ready",
    target: "b",
    act: (s) =>
      send(
        s,
        s.p.a,
        "m.key.verification.start",
        sasStart("ALICEDEV", { message_authentication_codes: ["hmac-sha256"] }),
      ),
    expect: "m.unknown_method",
  },
  {
    name: "start without curve25519-hkdf-sha256",
    stage: "ready",
    target: "b",
    act: (s) =>
      send(
        s,
        s.p.a,
        "m.key.verification.start",
        sasStart("ALICEDEV", { key_agreement_protocols: ["curve25519"] }),
      ),
    expect: "m.unknown_method",
  },
  {
    name: "start without the decimal method",
    stage: "ready",
    target: "b",
    act: (s) =>
      send(
        s,
        s.p.a,
        "m.key.verification.start",
        sasStart("ALICEDEV", { short_authentication_string: ["emoji"] }),
      ),
    expect: "m.unknown_method",
  },
  {
    name: "start without a method",
    stage: "ready",
    target: "b",
    act: (s) => send(s, s.p.a, "m.key.verification.start", { from_device: "ALICEDEV" }),
    expect: "m.invalid_message",
  },
  {
    // The accept's commitment covers the start's canonical JSON: a start that has none (a float,
    // here in a field we do not read) must be refused, not throw out of the sync step.
    name: "start with a value canonical JSON refuses",
    stage: "ready",
    target: "b",
    act: (s) => send(s, s.p.a, "m.key.verification.start", sasStart("ALICEDEV", { extra: 1.5 })),
    expect: "m.invalid_message",
  },
  {
    name: "start from another device than the one in the flow",
    stage: "ready",
    target: "b",
    act: (s) => send(s, s.p.a, "m.key.verification.start", sasStart("MALLORY")),
    expect: "ignored",
  },
  {
    name: "reciprocate when no QR code was shown",
    stage: "ready",
    target: "b",
    act: (s) =>
      send(s, s.p.a, "m.key.verification.start", {
        from_device: "ALICEDEV",
        method: "m.reciprocate.v1",
        secret: "AAAAAAAAAAA",
      }),
    expect: "m.unknown_method",
  },
  {
    name: "start after the exchange began",
    stage: "accepted",
    target: "b",
    act: (s) => send(s, s.p.a, "m.key.verification.start", sasStart("ALICEDEV")),
    expect: "m.unexpected_message",
  },
  {
    name: "a different method started by both at once",
    stage: "started",
    target: "a",
    act: (s) =>
      send(s, s.p.b, "m.key.verification.start", {
        from_device: "BOBDEV",
        method: "m.reciprocate.v1",
        secret: "AAAAAAAAAAA",
      }),
    expect: "m.unexpected_message",
  },
  {
    name: "accept before any start",
    stage: "ready",
    target: "a",
    act: (s) => send(s, s.p.b, "m.key.verification.accept", goodAccept),
    expect: "m.unexpected_message",
  },
  {
    name: "accept to the side that did not start",
    stage: "accepted",
    target: "b",
    act: (s) => send(s, s.p.a, "m.key.verification.accept", goodAccept),
    expect: "m.unexpected_message",
  },
  {
    name: "accept choosing an unknown hash",
    stage: "started",
    target: "a",
    act: (s) => send(s, s.p.b, "m.key.verification.accept", { ...goodAccept, hash: "sha1" }),
    expect: "m.unknown_method",
  },
  {
    name: "accept choosing a MAC we did not offer",
    stage: "started",
    target: "a",
    act: (s) =>
      send(s, s.p.b, "m.key.verification.accept", {
        ...goodAccept,
        message_authentication_code: "hmac-sha256",
      }),
    expect: "m.unknown_method",
  },
  {
    name: "accept with a malformed commitment",
    stage: "started",
    target: "a",
    act: (s) => send(s, s.p.b, "m.key.verification.accept", { ...goodAccept, commitment: "short" }),
    expect: "m.invalid_message",
  },
  {
    name: "key before the accept",
    stage: "started",
    target: "a",
    act: (s) => send(s, s.p.b, "m.key.verification.key", { key: key32() }),
    expect: "m.unexpected_message",
  },
  {
    name: "key that is not 32 bytes",
    stage: "accepted",
    target: "b",
    act: (s) => send(s, s.p.a, "m.key.verification.key", { key: "AAAA" }),
    expect: "m.invalid_message",
  },
  {
    name: "key that does not match the commitment",
    stage: "accepted",
    target: "a",
    act: (s) => {
      const held = s.held.splice(0);
      s.p.inject(s.p.a, held[0] as VerificationMessage);
      const fromB = s.p.b.machine.takeOutgoing();
      assert.equal(fromB[0]?.eventType, "m.key.verification.key");
      send(s, s.p.b, "m.key.verification.key", { key: key32() });
    },
    expect: "m.mismatched_commitment",
  },
  {
    name: "a second key",
    stage: "keys",
    target: "b",
    act: (s) => send(s, s.p.a, "m.key.verification.key", { key: key32() }),
    expect: "m.unexpected_message",
  },
  {
    name: "mac before the keys",
    stage: "accepted",
    target: "b",
    act: (s) => send(s, s.p.a, "m.key.verification.mac", { mac: { "ed25519:ALICEDEV": "x" }, keys: "x" }),
    expect: "m.unexpected_message",
  },
  {
    name: "mac with an empty map",
    stage: "keys",
    target: "b",
    act: (s) => send(s, s.p.a, "m.key.verification.mac", { mac: {}, keys: "x" }),
    expect: "m.invalid_message",
  },
  {
    name: "mac whose key MAC is wrong",
    stage: "confirmed",
    target: "b",
    act: (s) => {
      const mac = s.held.find((m) => m.eventType === "m.key.verification.mac") as VerificationMessage;
      const content = mac.content as { mac: Record<string, string>; keys: string };
      const forged = Object.fromEntries(Object.keys(content.mac).map((k) => [k, key32()]));
      s.p.inject(s.p.a, { ...mac, content: { ...content, mac: forged } });
      s.p.b.machine.confirm(s.kb, s.p.b.env, s.p.now);
    },
    expect: "m.key_mismatch",
  },
  {
    name: "mac whose key-list MAC is wrong",
    stage: "confirmed",
    target: "b",
    act: (s) => {
      const mac = s.held.find((m) => m.eventType === "m.key.verification.mac") as VerificationMessage;
      s.p.inject(s.p.a, { ...mac, content: { ...mac.content, keys: key32() } });
      s.p.b.machine.confirm(s.kb, s.p.b.env, s.p.now);
    },
    expect: "m.key_mismatch",
  },
  {
    name: "their device key changed mid-flow",
    stage: "confirmed",
    target: "b",
    act: (s) => {
      s.p.b.devices.set(`${s.p.a.userId}|${s.p.a.deviceId}`, key32());
      for (const m of s.held) s.p.inject(s.p.a, m);
      s.p.b.machine.confirm(s.kb, s.p.b.env, s.p.now);
    },
    expect: "m.key_mismatch",
  },
  {
    name: "a decrypted mac from another device",
    stage: "keys",
    target: "b",
    act: (s) =>
      send(s, s.p.a, "m.key.verification.mac", { mac: { "ed25519:ALICEDEV": "x" }, keys: "x" }, "MALLORY"),
    expect: "ignored",
  },
  {
    name: "done before the verification",
    stage: "keys",
    target: "b",
    act: (s) => send(s, s.p.a, "m.key.verification.done", {}),
    expect: "m.unexpected_message",
  },
  {
    name: "the user says the strings differ",
    stage: "keys",
    target: "b",
    act: (s) => s.p.b.machine.mismatch(s.kb, s.p.now),
    expect: "m.mismatched_sas",
  },
  {
    name: "the user cancels",
    stage: "ready",
    target: "b",
    act: (s) => s.p.b.machine.cancel(s.kb, s.p.now),
    expect: "m.user",
  },
  {
    name: "an event of an unknown flow",
    stage: "keys",
    target: "b",
    act: (s) =>
      send(s, s.p.a, "m.key.verification.mac", { transaction_id: "nope", mac: { a: "b" }, keys: "x" }),
    expect: "ignored",
  },
  {
    name: "an event without transaction_id",
    stage: "keys",
    target: "b",
    act: (s) =>
      s.p.b.machine.receiveToDevice(
        { type: "m.key.verification.key", sender: s.p.a.userId, content: { key: key32() } },
        s.p.b.env,
        s.p.now,
      ),
    expect: "ignored",
  },
  {
    name: "the same flow ID from another user",
    stage: "keys",
    target: "b",
    act: (s) =>
      s.p.b.machine.receiveToDevice(
        {
          type: "m.key.verification.cancel",
          sender: "@mallory:example.org",
          content: { transaction_id: s.flowId, code: "m.user", reason: "" },
        },
        s.p.b.env,
        s.p.now,
      ),
    expect: "ignored",
  },
  {
    name: "a repeated request",
    stage: "ready",
    target: "b",
    act: (s) =>
      send(s, s.p.a, "m.key.verification.request", {
        from_device: "ALICEDEV",
        methods: ["m.sas.v1"],
        timestamp: s.p.now,
      }),
    expect: "ignored",
  },
  {
    name: "an unknown verification event type",
    stage: "ready",
    target: "b",
    act: (s) => send(s, s.p.a, "m.key.verification.bogus", {}),
    expect: "ignored",
  },
];

describe("bad verification input (table)", () => {
  for (const row of rows) {
    it(`${row.name} → ${row.expect}`, () => {
      const s = setup(row.stage);
      const target = row.target === "a" ? s.p.a : s.p.b;
      const key = row.target === "a" ? s.ka : s.kb;
      const before = target.machine.snapshot(key);
      target.machine.takeOutgoing();
      row.act(s);
      const after = target.machine.snapshot(key);
      if (row.expect === "ignored") {
        assert.equal(after?.phase, before?.phase);
        assert.equal(after?.cancel, undefined);
        assert.equal(after?.sas?.stage, before?.sas?.stage);
        assert.ok(!target.machine.takeOutgoing().some((m) => m.eventType === "m.key.verification.cancel"));
      } else {
        assert.equal(after?.phase, "cancelled");
        assert.deepEqual([after?.cancel?.code, after?.cancel?.byUs], [row.expect, true]);
        const cancels = target.machine
          .takeOutgoing()
          .filter((m) => m.eventType === "m.key.verification.cancel");
        assert.deepEqual(
          cancels.map((m) => m.content.code),
          [row.expect],
        );
      }
      assert.notEqual(after?.phase, "done");
      // A cancelled flow stays cancelled: the rest of the exchange changes nothing.
      s.p.deliver();
      if (row.expect !== "ignored") assert.equal(target.machine.snapshot(key)?.phase, "cancelled");
    });
  }

  it("a cancel from the other side ends the flow with their code", () => {
    const s = setup("keys");
    send(s, s.p.a, "m.key.verification.cancel", { code: "m.user", reason: "no" });
    assert.deepEqual(s.p.b.machine.snapshot(s.kb)?.cancel, { code: "m.user", reason: "no", byUs: false });
  });

  it("in-room: a request to someone else, or a reply in another room, is ignored", () => {
    const p = Pair.make();
    const content = { ...p.a.machine.roomRequestContent("@carol:example.org", p.a.env) };
    p.b.machine.receiveRoomEvent(
      {
        roomId: p.roomId,
        eventId: "$r1",
        sender: p.a.userId,
        type: "m.room.message",
        content,
        originServerTs: p.now,
      },
      p.b.env,
      p.now,
    );
    assert.equal(p.b.machine.size, 0);
    const ka = p.roomRequest(p.a);
    const kb = p.b.machine.takeIncoming()[0]?.key as string;
    p.b.machine.accept(kb, p.b.env, p.now);
    const ready = p.b.machine.takeOutgoing()[0] as VerificationMessage & { kind: "room" };
    p.inject(p.b, { ...ready, roomId: "!elsewhere:example.org" });
    assert.equal(p.a.machine.snapshot(ka)?.phase, "requested");
    p.inject(p.b, ready);
    assert.equal(p.a.machine.snapshot(ka)?.phase, "ready");
  });

  it("in-room: a to-device event naming the request's event ID as its transaction_id is ignored", () => {
    const p = Pair.make();
    const ka = p.roomRequest(p.a);
    const kb = p.b.machine.takeIncoming()[0]?.key as string;
    const flowId = kb.split("|")[1] as string;
    p.b.machine.receiveToDevice(
      {
        type: "m.key.verification.cancel",
        sender: p.a.userId,
        content: { transaction_id: flowId, code: "m.user", reason: "" },
      },
      p.b.env,
      p.now,
    );
    assert.equal(p.b.machine.snapshot(kb)?.phase, "requested");
    p.b.machine.accept(kb, p.b.env, p.now);
    p.deliver();
    p.a.machine.receiveToDevice(
      {
        type: "m.key.verification.start",
        sender: p.b.userId,
        content: { ...sasStartContent(p.b.deviceId), transaction_id: flowId },
      },
      p.a.env,
      p.now,
    );
    assert.equal(p.a.machine.snapshot(ka)?.phase, "ready");
    assert.deepEqual(p.a.machine.takeOutgoing(), []);
  });

  it("in-room: another of our devices answering makes this one stand aside silently", () => {
    const p = Pair.make();
    p.roomRequest(p.a);
    const kb = p.b.machine.takeIncoming()[0]?.key as string;
    p.b.machine.receiveRoomEvent(
      {
        roomId: p.roomId,
        eventId: "$x",
        sender: p.b.userId,
        type: "m.key.verification.ready",
        content: {
          from_device: "BOBOTHER",
          methods: ["m.sas.v1"],
          "m.relates_to": { rel_type: "m.reference", event_id: kb.split("|")[1] },
        },
        originServerTs: p.now,
      },
      p.b.env,
      p.now,
    );
    assert.equal(p.b.machine.snapshot(kb)?.cancel?.code, "m.accepted");
    assert.deepEqual(p.b.machine.takeOutgoing(), []);
  });

  it("QR: a reciprocate with the wrong secret cancels with m.key_mismatch", () => {
    const p = Pair.make({ sameUser: true });
    const master = key32();
    for (const side of [p.a, p.b]) side.masters.set(p.a.userId, master);
    p.a.ownMasterTrusted = true;
    const { ka } = p.requestAccepted();
    assert.ok(p.a.machine.qrBytes(ka, p.a.env));
    p.inject(p.b, {
      kind: "to_device",
      eventType: "m.key.verification.start",
      userId: p.a.userId,
      deviceIds: [p.a.deviceId],
      content: {
        transaction_id: ka.split("|")[1],
        from_device: "BOBDEV",
        method: "m.reciprocate.v1",
        secret: key32(),
      },
    });
    assert.equal(p.a.machine.snapshot(ka)?.cancel?.code, "m.key_mismatch");
    assert.equal(p.a.machine.snapshot(ka)?.verified, undefined);
  });

  it("random events at every stage never throw and never complete a flow", () => {
    const types = ["request", "ready", "start", "accept", "key", "mac", "done", "cancel"].map(
      (t) => `m.key.verification.${t}`,
    );
    fc.assert(
      fc.property(
        fc.constantFrom<Stage>("requested", "ready", "started", "accepted", "keys", "confirmed"),
        fc.array(
          fc.tuple(
            fc.constantFrom(...types),
            fc.oneof(fc.jsonValue(), fc.dictionary(fc.string(), fc.jsonValue())),
            fc.boolean(),
          ),
          { maxLength: 6 },
        ),
        (stage, events) => {
          const s = setup(stage);
          for (const [type, content, toA] of events) {
            const target = toA ? s.p.a : s.p.b;
            const body =
              typeof content === "object" && content !== null && !Array.isArray(content)
                ? { ...content, transaction_id: s.flowId }
                : content;
            target.machine.receiveToDevice(
              { type, sender: s.p.other(target).userId, content: body as Record<string, unknown> },
              target.env,
              s.p.now,
            );
          }
          for (const [side, key] of [
            [s.p.a, s.ka],
            [s.p.b, s.kb],
          ] as const) {
            const snap = side.machine.snapshot(key);
            assert.notEqual(snap?.phase, "done");
            assert.equal(snap?.verified?.devices.length ?? 0, 0);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
