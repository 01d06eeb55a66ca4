// Two verification machines back to back: every flow the spec defines runs to the end, and both
// sides agree on what was verified.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  MAX_FLOWS_PER_USER,
  QR_SECRET_LENGTH,
  SAS_EVENT_TIMEOUT_MS,
  VERIFICATION_TIMEOUT_MS,
} from "./constants.ts";
import { key32, Pair, Side } from "./test-support/pair.ts";

function confirmBoth(p: Pair, ka: string, kb: string): void {
  const sa = p.a.machine.snapshot(ka);
  const sb = p.b.machine.snapshot(kb);
  assert.equal(sa?.sas?.stage, "keys_exchanged");
  assert.deepEqual(sa?.sas?.emoji, sb?.sas?.emoji);
  assert.deepEqual(sa?.sas?.decimals, sb?.sas?.decimals);
  assert.equal(sa?.sas?.emoji?.length, 7);
  p.a.machine.confirm(ka, p.a.env, p.now);
  p.deliver();
  p.b.machine.confirm(kb, p.b.env, p.now);
  p.deliver();
}

function assertVerifiedEachOther(p: Pair, ka: string, kb: string): void {
  const sa = p.a.machine.snapshot(ka);
  const sb = p.b.machine.snapshot(kb);
  assert.equal(sa?.phase, "done", JSON.stringify(sa?.cancel));
  assert.equal(sb?.phase, "done", JSON.stringify(sb?.cancel));
  assert.deepEqual(sa?.verified?.devices, [
    { userId: p.b.userId, deviceId: p.b.deviceId, ed25519: p.b.ed25519 },
  ]);
  assert.deepEqual(sb?.verified?.devices, [
    { userId: p.a.userId, deviceId: p.a.deviceId, ed25519: p.a.ed25519 },
  ]);
}

/** Request to-device from `from`, accepted by the other, SAS started by `starter`. */
export function sasToDevice(p: Pair, from: Side, starter: Side): { ka: string; kb: string } {
  const to = p.other(from);
  from.machine.requestToDevice(to.userId, [to.deviceId], from.env, p.now);
  p.deliver();
  const incoming = to.machine.takeIncoming();
  assert.equal(incoming.length, 1);
  to.machine.accept(incoming[0]?.key as string, to.env, p.now);
  p.deliver();
  const ka = p.flowOf(p.a);
  const kb = p.flowOf(p.b);
  starter.machine.startSas(starter === p.a ? ka : kb, starter.env, p.now);
  p.deliver();
  return { ka, kb };
}

describe("verification flows between two machines", () => {
  for (const [name, fromA, starterA] of [
    ["requester starts SAS", true, true],
    ["the accepting side starts SAS", true, false],
    ["the other side requests", false, true],
  ] as const) {
    it(`to-device SAS between own devices: ${name}`, () => {
      const p = Pair.make({ sameUser: true });
      const { ka, kb } = sasToDevice(p, fromA ? p.a : p.b, starterA ? p.a : p.b);
      confirmBoth(p, ka, kb);
      assertVerifiedEachOther(p, ka, kb);
      assert.ok(p.log.some((e) => e.type === "m.key.verification.done"));
    });
  }

  it("in-room SAS between two users; later events relate to the request", () => {
    const p = Pair.make();
    const ka = p.roomRequest(p.a);
    const [incoming] = p.b.machine.takeIncoming();
    assert.equal(incoming?.roomId, p.roomId);
    p.b.machine.accept(incoming?.key as string, p.b.env, p.now);
    p.deliver();
    p.b.machine.startSas(incoming?.key as string, p.b.env, p.now);
    p.deliver();
    confirmBoth(p, ka, incoming?.key as string);
    assertVerifiedEachOther(p, ka, incoming?.key as string);
    for (const e of p.log) {
      assert.equal((e.content["m.relates_to"] as { event_id: string }).event_id, ka.split("|")[1]);
      assert.equal(e.content.transaction_id, undefined);
    }
  });

  it("start without request (the older to-device flow), both directions", () => {
    for (const starterIsA of [true, false]) {
      const p = Pair.make();
      const starter = starterIsA ? p.a : p.b;
      const other = p.other(starter);
      const ks = starter.machine.startSasWithoutRequest(other.userId, other.deviceId, starter.env, p.now);
      p.deliver();
      const [incoming] = other.machine.takeIncoming();
      assert.equal(incoming?.sas?.stage, "accept_pending");
      other.machine.accept(incoming?.key as string, other.env, p.now);
      p.deliver();
      const [ka, kb] = starterIsA ? [ks, incoming?.key as string] : [incoming?.key as string, ks];
      confirmBoth(p, ka, kb);
      assertVerifiedEachOther(p, ka, kb);
      assert.ok(!p.log.some((e) => e.type === "m.key.verification.done"), "no done in the older flow");
    }
  });

  it("legacy MAC method when the other side offers only hkdf-hmac-sha256", () => {
    const p = Pair.make();
    p.a.machine.startSasWithoutRequest(p.b.userId, p.b.deviceId, p.a.env, p.now);
    p.deliver((m) =>
      m.eventType === "m.key.verification.start"
        ? { ...m, content: { ...m.content, message_authentication_codes: ["hkdf-hmac-sha256"] } }
        : m,
    );
    const [incoming] = p.b.machine.takeIncoming();
    p.b.machine.accept(incoming?.key as string, p.b.env, p.now);
    let chosen: unknown;
    p.deliver((m) => {
      if (m.eventType === "m.key.verification.accept") chosen = m.content.message_authentication_code;
      return m;
    });
    assert.equal(chosen, "hkdf-hmac-sha256");
    // Alice's start was tampered with, so the commitment Bob made does not match her start.
    assert.equal(p.a.machine.list()[0]?.cancel?.code, "m.mismatched_commitment");
  });

  it("both sides start SAS at once: the smaller user/device ID's start stands, nobody cancels", () => {
    for (const sameUser of [true, false]) {
      const p = Pair.make({ sameUser });
      const { ka, kb } = p.requestAccepted();
      p.a.machine.startSas(ka, p.a.env, p.now);
      p.b.machine.startSas(kb, p.b.env, p.now);
      const starts: string[] = [];
      p.deliver((m, from) => {
        if (m.eventType === "m.key.verification.start") starts.push(from.deviceId);
        if (m.eventType === "m.key.verification.accept") starts.push(`accept by ${from.deviceId}`);
        return m;
      });
      // ALICEDEV < BOBDEV and @alice < @bob: Alice's start wins, Bob accepts it.
      assert.deepEqual(starts, ["ALICEDEV", "BOBDEV", "accept by BOBDEV"]);
      confirmBoth(p, ka, kb);
      assertVerifiedEachOther(p, ka, kb);
    }
  });

  it("both start at once: device IDs compare by code point, as other clients compare them (UTF-8 bytes)", () => {
    // U+FFFD sorts before U+1F600 by code point (and UTF-8), after it by UTF-16 code unit.
    const a = new Side("@alice:example.org", "DEV\uFFFD");
    const b = new Side("@alice:example.org", "DEV\u{1F600}");
    a.know(b);
    b.know(a);
    const p = new Pair(a, b);
    const { ka, kb } = p.requestAccepted();
    p.a.machine.startSas(ka, p.a.env, p.now);
    p.b.machine.startSas(kb, p.b.env, p.now);
    const accepts: string[] = [];
    p.deliver((m, from) => {
      if (m.eventType === "m.key.verification.accept") accepts.push(from.deviceId);
      return m;
    });
    assert.deepEqual(accepts, [b.deviceId], "the start of the smaller device ID stands");
    confirmBoth(p, ka, kb);
    assertVerifiedEachOther(p, ka, kb);
  });

  it("a to-device request to several devices: the others get m.accepted", () => {
    const p = Pair.make({ sameUser: true });
    p.a.machine.requestToDevice(p.b.userId, [p.b.deviceId, "THIRD"], p.a.env, p.now);
    const cancels: unknown[] = [];
    p.deliver((m) => {
      if (m.kind === "to_device" && m.eventType === "m.key.verification.cancel")
        cancels.push([m.deviceIds, m.content.code]);
      return m;
    });
    p.b.machine.accept(p.b.machine.takeIncoming()[0]?.key as string, p.b.env, p.now);
    p.deliver((m) => {
      if (m.kind === "to_device" && m.eventType === "m.key.verification.cancel")
        cancels.push([m.deviceIds, m.content.code]);
      return m;
    });
    assert.deepEqual(cancels, [[["THIRD"], "m.accepted"]]);
  });

  /**
   * Alice's to-device request to Bob's device and "THIRD", taken by Bob's: `lateReady` brings a
   * ready from another device afterwards (its sending device known when decrypted), `sent` what
   * Alice sends then, `finish` runs the SAS with Bob's device to the end. `toldThird` holds what
   * Alice sent THIRD when Bob's device took the request.
   */
  function takenByOneOfTwo() {
    const p = Pair.make({ sameUser: true });
    const ka = p.a.machine.requestToDevice(p.b.userId, [p.b.deviceId, "THIRD"], p.a.env, p.now);
    p.deliver();
    p.b.machine.accept(p.b.machine.takeIncoming()[0]?.key as string, p.b.env, p.now);
    const toldThird: unknown[] = [];
    p.deliver((m) => {
      if (m.kind === "to_device" && m.deviceIds.includes("THIRD"))
        toldThird.push([m.eventType, m.content.code]);
      return m;
    });
    assert.deepEqual(toldThird, [["m.key.verification.cancel", "m.accepted"]]);
    assert.equal(p.a.machine.snapshot(ka)?.phase, "ready");
    const flowId = ka.split("|")[1] as string;
    const lateReady = (fromDevice: string, senderDevice?: string) =>
      p.a.machine.receiveToDevice(
        {
          type: "m.key.verification.ready",
          sender: p.b.userId,
          ...(senderDevice !== undefined ? { senderDevice } : {}),
          content: { from_device: fromDevice, methods: ["m.sas.v1"], transaction_id: flowId },
        },
        p.a.env,
        p.now,
      );
    const sent = () =>
      p.a.machine
        .takeOutgoing()
        .map((m) => [m.eventType, m.kind === "to_device" ? m.deviceIds : [], m.content.code]);
    const stillReady = () => {
      assert.equal(p.a.machine.snapshot(ka)?.phase, "ready");
      assert.equal(p.a.machine.snapshot(ka)?.cancel, undefined);
    };
    const finish = () => {
      const kb = p.b.machine.list()[0]?.key as string;
      p.a.machine.startSas(ka, p.a.env, p.now);
      p.deliver();
      confirmBoth(p, ka, kb);
      assertVerifiedEachOther(p, ka, kb);
    };
    return { lateReady, sent, stillReady, finish };
  }

  it("a to-device request: a second device accepting after the first, encrypted, is told m.accepted once", () => {
    const t = takenByOneOfTwo();
    // A device never asked gets no answer, whichever device its ready names.
    t.lateReady("NEVERASKED", "NEVERASKED");
    t.lateReady("THIRD", "OTHER");
    assert.deepEqual(t.sent(), []);
    // THIRD's ready comes decrypted (its sending device known), repeated: THIRD was told when
    // Bob's device took the request, and is not told again.
    for (let i = 0; i < 3; i++) t.lateReady("THIRD", "THIRD");
    t.stillReady();
    assert.deepEqual(t.sent(), []);
    t.finish();
  });

  it("a to-device request: a second device accepting after the first is told m.accepted once, the flow goes on", () => {
    const t = takenByOneOfTwo();
    // THIRD's ready crossed Bob's on the way: it comes now, its sending device unknown (plaintext).
    // THIRD was told when Bob's device took the request: not again for its ready, nor for repeats
    // (a replay, or a server flooding us).
    for (let i = 0; i < 3; i++) t.lateReady("THIRD");
    t.stillReady();
    assert.deepEqual(t.sent(), []);
    // A ready naming a device we never asked gets no answer; the flow still goes on to the end.
    t.lateReady("NEVERASKED");
    assert.deepEqual(t.sent(), []);
    t.finish();
  });

  it("starting waits for the other device's keys, then goes on", () => {
    const p = Pair.make({ knowKeys: false });
    const { ka, kb } = sasToDevice(p, p.a, p.a);
    assert.equal(p.a.machine.snapshot(ka)?.needsKeys, true);
    assert.deepEqual(p.a.machine.usersNeedingKeys(), [p.b.userId]);
    assert.equal(p.a.machine.snapshot(ka)?.phase, "ready");
    p.a.know(p.b);
    p.a.machine.keysUpdated(p.a.env, p.now);
    p.deliver();
    // Bob does not know Alice's keys either: her start waits on his side.
    assert.equal(p.b.machine.snapshot(kb)?.needsKeys, true);
    p.b.know(p.a);
    p.b.machine.keysUpdated(p.b.env, p.now);
    p.deliver();
    confirmBoth(p, ka, kb);
    assertVerifiedEachOther(p, ka, kb);
  });

  it("our start waiting for keys gives way to theirs: later key answers find nothing to start", () => {
    // Bob lacks Alice's keys: his start waits; Alice's start comes first and waits too.
    const p = Pair.make({ knowKeys: false });
    p.a.know(p.b);
    const { ka, kb } = p.requestAccepted();
    p.b.machine.startSas(kb, p.b.env, p.now);
    p.a.machine.startSas(ka, p.a.env, p.now);
    p.deliver();
    p.b.know(p.a);
    p.b.machine.keysUpdated(p.b.env, p.now);
    p.deliver();
    assert.equal(p.b.machine.snapshot(kb)?.sas?.stage, "keys_exchanged");
    assert.equal(p.b.machine.snapshot(kb)?.needsKeys, false);
    assert.deepEqual(p.b.machine.usersNeedingKeys(), []);
    // The next /keys/query answer (any user's) must not try to start SAS again.
    p.b.machine.keysUpdated(p.b.env, p.now);
    confirmBoth(p, ka, kb);
    assertVerifiedEachOther(p, ka, kb);
  });

  it("timeouts: a request expires after 10 minutes, a SAS step after 60 s without an answer", () => {
    const p = Pair.make();
    const ka = p.a.machine.requestToDevice(p.b.userId, [p.b.deviceId], p.a.env, p.now);
    p.a.machine.tick(p.now + VERIFICATION_TIMEOUT_MS);
    assert.equal(p.a.machine.snapshot(ka)?.phase, "requested");
    p.a.machine.tick(p.now + VERIFICATION_TIMEOUT_MS + 1);
    assert.equal(p.a.machine.snapshot(ka)?.cancel?.code, "m.timeout");

    const q = Pair.make();
    const k = q.a.machine.startSasWithoutRequest(q.b.userId, q.b.deviceId, q.a.env, q.now);
    q.a.machine.takeOutgoing(); // the start is lost
    q.a.machine.tick(q.now + SAS_EVENT_TIMEOUT_MS + 1);
    const s = q.a.machine.snapshot(k);
    assert.equal(s?.cancel?.code, "m.timeout");
    assert.deepEqual(
      q.a.machine.takeOutgoing().map((m) => [m.eventType, m.content.code]),
      [["m.key.verification.cancel", "m.timeout"]],
    );
  });

  it("the 60 s without an answer count from our accept, not from their start (a slow user or key query)", () => {
    const waited = 90_000;
    // The user accepts a start without request after a while.
    const p = Pair.make();
    p.a.machine.startSasWithoutRequest(p.b.userId, p.b.deviceId, p.a.env, p.now);
    p.deliver();
    const kb = p.b.machine.takeIncoming()[0]?.key as string;
    p.b.machine.accept(kb, p.b.env, p.now + waited);
    p.b.machine.tick(p.now + waited + SAS_EVENT_TIMEOUT_MS);
    assert.equal(
      p.b.machine.snapshot(kb)?.phase,
      "started",
      JSON.stringify(p.b.machine.snapshot(kb)?.cancel),
    );
    p.b.machine.tick(p.now + waited + SAS_EVENT_TIMEOUT_MS + 1);
    assert.equal(p.b.machine.snapshot(kb)?.cancel?.code, "m.timeout");

    // Their start waits for their device's keys; the accept goes out when the keys arrive.
    const q = Pair.make({ knowKeys: false });
    q.a.know(q.b);
    const { kb: kq } = sasToDevice(q, q.a, q.a);
    assert.equal(q.b.machine.snapshot(kq)?.needsKeys, true);
    q.b.know(q.a);
    q.b.machine.keysUpdated(q.b.env, q.now + waited);
    assert.equal(q.b.machine.snapshot(kq)?.sas?.stage, "awaiting_key");
    q.b.machine.tick(q.now + waited + SAS_EVENT_TIMEOUT_MS);
    assert.equal(
      q.b.machine.snapshot(kq)?.phase,
      "started",
      JSON.stringify(q.b.machine.snapshot(kq)?.cancel),
    );
  });

  it("requests stamped too far in the past or future are ignored; fresh ones are not", () => {
    const p = Pair.make();
    for (const [skew, kept] of [
      [-10 * 60_000 - 1, false],
      [5 * 60_000 + 1, false],
      [-9 * 60_000, true],
      [4 * 60_000, true],
    ] as const) {
      const before = p.b.machine.size;
      p.b.machine.receiveToDevice(
        {
          type: "m.key.verification.request",
          sender: p.a.userId,
          content: {
            from_device: p.a.deviceId,
            methods: ["m.sas.v1"],
            timestamp: p.now + skew,
            transaction_id: key32(),
          },
        },
        p.b.env,
        p.now,
      );
      assert.equal(p.b.machine.size, before + (kept ? 1 : 0), `skew ${skew}`);
    }
  });

  it("the number of flows with one user is bounded", () => {
    const p = Pair.make();
    for (let i = 0; i < MAX_FLOWS_PER_USER + 5; i++) {
      p.b.machine.receiveToDevice(
        {
          type: "m.key.verification.request",
          sender: p.a.userId,
          content: {
            from_device: p.a.deviceId,
            methods: ["m.sas.v1"],
            timestamp: p.now,
            transaction_id: `t${i}`,
          },
        },
        p.b.env,
        p.now,
      );
    }
    assert.equal(p.b.machine.size, MAX_FLOWS_PER_USER);
  });
});

describe("QR verification between two machines", () => {
  function withIdentities(sameUser: boolean, trusted: boolean): Pair {
    const p = Pair.make({ sameUser });
    const aMaster = key32();
    const bMaster = sameUser ? aMaster : key32();
    for (const s of [p.a, p.b]) {
      s.masters.set(p.a.userId, aMaster);
      s.masters.set(p.b.userId, bMaster);
    }
    p.a.ownMasterTrusted = true; // the shower (mode 0x01) trusts the master key
    p.b.ownMasterTrusted = trusted;
    return p;
  }

  for (const [name, sameUser, showerTrusts, mode] of [
    ["another user (mode 0x00)", false, true, 0],
    ["own device, shower trusts the master key (0x01)", true, true, 1],
    ["own device, shower does not trust it (0x02)", true, false, 2],
  ] as const) {
    it(`show and scan: ${name}`, () => {
      const p = withIdentities(sameUser, true);
      const shower = showerTrusts ? p.a : p.b;
      const scanner = p.other(shower);
      shower.ownMasterTrusted = showerTrusts;
      scanner.ownMasterTrusted = true;
      shower.machine.requestToDevice(scanner.userId, [scanner.deviceId], shower.env, p.now);
      p.deliver();
      const ks = p.flowOf(shower);
      const kc = scanner.machine.takeIncoming()[0]?.key as string;
      scanner.machine.accept(kc, scanner.env, p.now);
      p.deliver();
      const bytes = shower.machine.qrBytes(ks, shower.env);
      assert.ok(bytes);
      assert.equal(bytes[7], mode);
      scanner.machine.scanQr(kc, bytes, scanner.env, p.now);
      p.deliver();
      assert.equal(shower.machine.snapshot(ks)?.qr, "reciprocated");
      shower.machine.confirmQrScanned(ks, p.now);
      p.deliver();
      const ss = shower.machine.snapshot(ks);
      const sc = scanner.machine.snapshot(kc);
      assert.equal(ss?.phase, "done", JSON.stringify(ss?.cancel));
      assert.equal(sc?.phase, "done", JSON.stringify(sc?.cancel));
      const learned = [...(ss?.verified?.devices ?? []), ...(ss?.verified?.masterKeys ?? [])];
      assert.ok(learned.length > 0);
    });
  }

  it("a scanned code with wrong keys cancels with m.key_mismatch; the wrong mode with m.user_mismatch", () => {
    const p = withIdentities(false, true);
    const { ka, kb } = p.requestAccepted();
    const bytes = p.a.machine.qrBytes(ka, p.a.env) as Uint8Array;
    const forged = bytes.slice();
    const at = forged.length - QR_SECRET_LENGTH - 1; // last byte of key2
    forged[at] = (forged[at] as number) ^ 1;
    p.b.machine.scanQr(kb, forged, p.b.env, p.now);
    assert.equal(p.b.machine.snapshot(kb)?.cancel?.code, "m.key_mismatch");

    const q = withIdentities(false, true);
    const { ka: qa, kb: kq } = q.requestAccepted();
    const code = q.a.machine.qrBytes(qa, q.a.env) as Uint8Array;
    const wrongMode = code.slice();
    wrongMode[7] = 1;
    q.b.machine.scanQr(kq, wrongMode, q.b.env, q.now);
    assert.equal(q.b.machine.snapshot(kq)?.cancel?.code, "m.user_mismatch");
  });
});
