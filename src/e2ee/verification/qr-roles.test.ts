// The roles of the two keys in each QR mode (client-server API, "QR code format"): which key must be
// ours and which theirs, what a scan proves and what the shower learns once reciprocated. Every
// key is distinct, so a check that looks at the wrong key, or a result naming the wrong one, fails.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { VerificationEnv } from "./env.ts";
import { VerificationError } from "./errors.ts";
import type { QrCodeData, QrMode } from "./qr-code.ts";
import { checkScanned, shownVerifies } from "./qr-flow.ts";
import { key32, Pair } from "./test-support/pair.ts";

const ME = "@alice:example.org";
const BOB = "@bob:example.org";
const k = {
  ourDevice: key32(),
  ourMaster: key32(),
  bobMaster: key32(),
  malloryMaster: key32(),
  otherOwnDevice: key32(),
  secret: key32(),
};

function env(ownMasterTrusted = true): VerificationEnv {
  const masters: Record<string, string> = {
    [ME]: k.ourMaster,
    [BOB]: k.bobMaster,
    "@mallory:example.org": k.malloryMaster,
  };
  return {
    userId: ME,
    deviceId: "ADEV",
    ed25519: k.ourDevice,
    deviceKey: (u, d) => (u === ME && d === "OTHER" ? k.otherOwnDevice : undefined),
    masterKey: (u) => masters[u],
    ownMasterTrusted,
  };
}

const code = (mode: QrMode, key1: string, key2: string, flowId = "flow"): QrCodeData => ({
  mode,
  flowId,
  key1,
  key2,
  secret: k.secret,
});

describe("QR key roles: what a scanned code must hold", () => {
  it("mode 0x00 (another user): key1 is their master key, key2 ours; nothing else passes", () => {
    const ok = checkScanned(env(), code(0, k.bobMaster, k.ourMaster), "flow", BOB, "BDEV");
    assert.deepEqual(ok, {
      ok: true,
      verified: { devices: [], masterKeys: [{ userId: BOB, key: k.bobMaster }] },
    });
    for (const [key1, key2, why] of [
      [k.malloryMaster, k.ourMaster, "another user's master key as theirs"],
      [k.bobMaster, k.malloryMaster, "a wrong key as ours"],
      [k.ourMaster, k.bobMaster, "the two keys swapped"],
    ] as const) {
      const r = checkScanned(env(), code(0, key1, key2), "flow", BOB, "BDEV");
      assert.equal(r.ok ? "ok" : r.code, "m.key_mismatch", why);
    }
    const other = checkScanned(env(), code(0, k.bobMaster, k.ourMaster, "another"), "flow", BOB, "BDEV");
    assert.equal(other.ok ? "ok" : other.code, "m.unknown_transaction");
  });

  it("mode 0x01 (own device that trusts the master key): key1 our master key, key2 this device's key", () => {
    const ok = checkScanned(env(false), code(1, k.ourMaster, k.ourDevice), "flow", ME, "OTHER");
    assert.deepEqual(ok, {
      ok: true,
      verified: { devices: [], masterKeys: [{ userId: ME, key: k.ourMaster }] },
    });
    for (const [key1, key2, why] of [
      [k.malloryMaster, k.ourDevice, "a master key that is not ours"],
      [k.ourMaster, k.otherOwnDevice, "a device key that is not this device's"],
      [k.ourDevice, k.ourMaster, "the two keys swapped"],
    ] as const) {
      const r = checkScanned(env(false), code(1, key1, key2), "flow", ME, "OTHER");
      assert.equal(r.ok ? "ok" : r.code, "m.key_mismatch", why);
    }
  });

  it("mode 0x02 (own device that does not trust it): key1 its device key, key2 our master key, and we must trust it", () => {
    const ok = checkScanned(env(), code(2, k.otherOwnDevice, k.ourMaster), "flow", ME, "OTHER");
    assert.deepEqual(ok, {
      ok: true,
      verified: { devices: [{ userId: ME, deviceId: "OTHER", ed25519: k.otherOwnDevice }], masterKeys: [] },
    });
    for (const [key1, key2, why] of [
      [k.malloryMaster, k.ourMaster, "a device key that is not that device's"],
      [k.otherOwnDevice, k.malloryMaster, "a master key that is not ours"],
      [k.ourMaster, k.otherOwnDevice, "the two keys swapped"],
    ] as const) {
      const r = checkScanned(env(), code(2, key1, key2), "flow", ME, "OTHER");
      assert.equal(r.ok ? "ok" : r.code, "m.key_mismatch", why);
    }
    const untrusted = checkScanned(env(false), code(2, k.otherOwnDevice, k.ourMaster), "flow", ME, "OTHER");
    assert.equal(untrusted.ok ? "ok" : untrusted.code, "m.key_mismatch", "we do not trust our master key");
  });

  it("a mode that does not fit who is verified is refused with m.user_mismatch", () => {
    for (const mode of [1, 2] as const) {
      const r = checkScanned(env(), code(mode, k.bobMaster, k.ourMaster), "flow", BOB, "BDEV");
      assert.equal(r.ok ? "ok" : r.code, "m.user_mismatch");
    }
    const own = checkScanned(env(), code(0, k.ourMaster, k.ourMaster), "flow", ME, "OTHER");
    assert.equal(own.ok ? "ok" : own.code, "m.user_mismatch");
  });
});

describe("QR key roles: what the shower learns once the scan is reciprocated", () => {
  it("0x00: their master key (key2); 0x01: their device key (key2); 0x02: the master key (key2)", () => {
    assert.deepEqual(shownVerifies(code(0, k.ourMaster, k.bobMaster), BOB, "BDEV"), {
      devices: [],
      masterKeys: [{ userId: BOB, key: k.bobMaster }],
    });
    assert.deepEqual(shownVerifies(code(1, k.ourMaster, k.otherOwnDevice), ME, "OTHER"), {
      devices: [{ userId: ME, deviceId: "OTHER", ed25519: k.otherOwnDevice }],
      masterKeys: [],
    });
    assert.deepEqual(shownVerifies(code(2, k.ourDevice, k.ourMaster), ME, "OTHER"), {
      devices: [],
      masterKeys: [{ userId: ME, key: k.ourMaster }],
    });
  });

  it("the shower cannot confirm before the other side reciprocated the scan", () => {
    const p = Pair.make();
    const master = { a: key32(), b: key32() };
    for (const s of [p.a, p.b]) {
      s.masters.set(p.a.userId, master.a);
      s.masters.set(p.b.userId, master.b);
    }
    p.a.ownMasterTrusted = true;
    const { ka } = p.requestAccepted();
    assert.ok(p.a.machine.qrBytes(ka, p.a.env));
    assert.throws(
      () => p.a.machine.confirmQrScanned(ka, p.now),
      (e) => e instanceof VerificationError && e.code === "WRONG_STATE",
    );
    const s = p.a.machine.snapshot(ka);
    assert.equal(s?.verified, undefined);
    assert.notEqual(s?.phase, "done");
  });

  for (const [name, theirs, ours] of [
    ["a requester that only shows (Element Web)", "m.qr_code.show.v1", "m.qr_code.scan.v1"],
    ["a requester that only scans", "m.qr_code.scan.v1", "m.qr_code.show.v1"],
  ] as const) {
    it(`our ready answers ${name} with the QR method that pairs with it, and the code is scanned`, () => {
      const p = Pair.make();
      const master = { a: key32(), b: key32() };
      for (const s of [p.a, p.b]) {
        s.masters.set(p.a.userId, master.a);
        s.masters.set(p.b.userId, master.b);
        s.ownMasterTrusted = true;
      }
      // Alice's client offers one half of QR only.
      p.a.machine.requestToDevice(p.b.userId, [p.b.deviceId], p.a.env, p.now);
      p.deliver((m) =>
        m.eventType === "m.key.verification.request"
          ? { ...m, content: { ...m.content, methods: ["m.sas.v1", theirs, "m.reciprocate.v1"] } }
          : m,
      );
      const kb = p.b.machine.takeIncoming()[0]?.key as string;
      p.b.machine.accept(kb, p.b.env, p.now);
      let readyMethods: unknown;
      p.deliver((m) => {
        if (m.eventType === "m.key.verification.ready") readyMethods = m.content.methods;
        return m;
      });
      assert.deepEqual(readyMethods, ["m.sas.v1", ours, "m.reciprocate.v1"]);
      const ka = p.flowOf(p.a);
      const [shower, ks, scanner, kc] =
        theirs === "m.qr_code.show.v1" ? [p.a, ka, p.b, kb] : [p.b, kb, p.a, ka];
      const bytes = shower.machine.qrBytes(ks, shower.env);
      assert.ok(bytes, "the side that shows has a code: the other side said it scans");
      scanner.machine.scanQr(kc, bytes, scanner.env, p.now);
      p.deliver();
      shower.machine.confirmQrScanned(ks, p.now);
      p.deliver();
      assert.equal(p.a.machine.snapshot(ka)?.phase, "done", JSON.stringify(p.a.machine.snapshot(ka)?.cancel));
      assert.equal(p.b.machine.snapshot(kb)?.phase, "done", JSON.stringify(p.b.machine.snapshot(kb)?.cancel));
    });
  }
});
