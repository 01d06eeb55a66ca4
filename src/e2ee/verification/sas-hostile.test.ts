// SAS against a hostile other device or server: a device ID that is a cross-signing key (the
// key/device confusion of Albrecht et al. 2022), key IDs we do not know in a MAC, a MAC injected
// from another device, and the whole-exchange timeout while the users compare.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Sas } from "../../crypto/sas/index.ts";
import { SAS_TIMEOUT_MS } from "./constants.ts";
import { checkMac, type MacParties, macContent } from "./sas-crypto.ts";
import { key32, Pair, Side } from "./test-support/pair.ts";

/** Alice requests to-device, Bob accepts, Alice starts SAS: both at "keys_exchanged". */
function sasStarted(p: Pair): { ka: string; kb: string } {
  const { ka, kb } = p.requestAccepted();
  p.a.machine.startSas(ka, p.a.env, p.now);
  p.deliver();
  assert.equal(p.a.machine.snapshot(ka)?.sas?.stage, "keys_exchanged");
  return { ka, kb };
}

function confirmBoth(p: Pair, ka: string, kb: string): void {
  p.a.machine.confirm(ka, p.a.env, p.now);
  p.deliver();
  p.b.machine.confirm(kb, p.b.env, p.now);
  p.deliver();
}

describe("SAS against a hostile peer", () => {
  for (const sameUser of [false, true]) {
    it(`a device whose ID is ${sameUser ? "our" : "their"} master key: its device key is never taken for the master key`, () => {
      const master = key32();
      const a = new Side("@alice:example.org", "ALICEDEV");
      // The server named the device after the master key it publishes for the user; the device
      // MACs its own Ed25519 key under `ed25519:<device ID>`, which reads as the master key's ID.
      const b = new Side(sameUser ? a.userId : "@bob:example.org", master);
      a.know(b);
      b.know(a);
      a.masters.set(b.userId, master);
      a.ownMasterTrusted = true;
      const p = new Pair(a, b);
      const { ka, kb } = sasStarted(p);
      confirmBoth(p, ka, kb);
      const s = p.a.machine.snapshot(ka);
      assert.notEqual(s?.phase, "done");
      assert.deepEqual(s?.verified?.masterKeys ?? [], []);
      assert.equal(s?.cancel?.code, "m.key_mismatch");
    });
  }

  it("a honest exchange with the same identities still verifies (the check above is not a blanket refusal)", () => {
    const master = key32();
    const p = Pair.make();
    p.a.masters.set(p.b.userId, master);
    p.b.masters.set(p.b.userId, master);
    p.b.ownMasterTrusted = true;
    const { ka, kb } = sasStarted(p);
    confirmBoth(p, ka, kb);
    const s = p.a.machine.snapshot(ka);
    assert.equal(s?.phase, "done", JSON.stringify(s?.cancel));
    assert.deepEqual(s?.verified?.masterKeys, [{ userId: p.b.userId, key: master }]);
  });

  it("a device that does not trust its own published master key never vouches for it (SAS MAC, QR mode 0x00)", () => {
    // The master key the server lists for Bob may be the server's own: until Bob's device trusts
    // it, its MAC covers only its device key, and it shows no code naming it as Bob's.
    const master = key32();
    const p = Pair.make();
    for (const side of [p.a, p.b]) {
      side.masters.set(p.a.userId, key32());
      side.masters.set(p.b.userId, master);
    }
    p.a.ownMasterTrusted = true;
    const { ka, kb } = p.requestAccepted();
    assert.equal(p.b.machine.qrBytes(kb, p.b.env), undefined);
    assert.ok(p.a.machine.qrBytes(ka, p.a.env), "the side that trusts its master key shows a code");
    p.a.machine.startSas(ka, p.a.env, p.now);
    p.deliver();
    confirmBoth(p, ka, kb);
    const bobMac = p.log.find((e) => e.from === p.b.deviceId && e.type === "m.key.verification.mac");
    assert.deepEqual(Object.keys(bobMac?.content.mac as object), [`ed25519:${p.b.deviceId}`]);
    const s = p.a.machine.snapshot(ka);
    assert.equal(s?.phase, "done", JSON.stringify(s?.cancel));
    assert.deepEqual(s?.verified?.masterKeys, []);
    assert.deepEqual(s?.verified?.devices, [
      { userId: p.b.userId, deviceId: p.b.deviceId, ed25519: p.b.ed25519 },
    ]);
  });

  it("key IDs we do not know are not reported verified; a MAC of unknown keys only verifies nothing", () => {
    const [ours, theirs] = [Sas.create(), Sas.create()];
    ours.setTheirPublicKey(theirs.publicKey);
    theirs.setTheirPublicKey(ours.publicKey);
    const parties: MacParties = {
      senderUser: "@b:x",
      senderDevice: "BDEV",
      receiverUser: "@a:x",
      receiverDevice: "ADEV",
      flowId: "flow",
    };
    const device = key32();
    const method = "hkdf-hmac-sha256.v2";
    const both = macContent(theirs, method, parties, { "ed25519:BDEV": device, "ed25519:EXTRA": key32() });
    const check = checkMac(ours, method, parties, both, { "ed25519:BDEV": device });
    assert.deepEqual(check, { ok: true, verified: ["ed25519:BDEV"] });
    const unknownOnly = macContent(theirs, method, parties, { "ed25519:EXTRA": key32() });
    assert.equal(checkMac(ours, method, parties, unknownOnly, { "ed25519:BDEV": device }).ok, false);
  });

  it("key IDs named like Object.prototype members (toString, constructor) are unknown keys, not a crash", () => {
    const [ours, theirs] = [Sas.create(), Sas.create()];
    ours.setTheirPublicKey(theirs.publicKey);
    theirs.setTheirPublicKey(ours.publicKey);
    const parties: MacParties = {
      senderUser: "@b:x",
      senderDevice: "BDEV",
      receiverUser: "@a:x",
      receiverDevice: "ADEV",
      flowId: "flow",
    };
    const device = key32();
    const method = "hkdf-hmac-sha256.v2";
    for (const keyId of ["toString", "constructor", "hasOwnProperty"]) {
      // The other device (it knows the shared secret) MACs a key list with such an ID in it.
      const content = macContent(theirs, method, parties, { "ed25519:BDEV": device, [keyId]: key32() });
      const check = checkMac(ours, method, parties, content, { "ed25519:BDEV": device });
      assert.deepEqual(check, { ok: true, verified: ["ed25519:BDEV"] }, keyId);
    }
  });

  it("a MAC from another device is dropped, not held: the real MAC still completes the flow", () => {
    const p = Pair.make({ sameUser: true });
    const { ka, kb } = sasStarted(p);
    const flowId = kb.split("|")[1] as string;
    p.b.machine.receiveToDevice(
      {
        type: "m.key.verification.mac",
        sender: p.a.userId,
        content: { transaction_id: flowId, mac: { "ed25519:ALICEDEV": key32() }, keys: key32() },
        senderDevice: "MALLORY",
      },
      p.b.env,
      p.now,
    );
    confirmBoth(p, ka, kb);
    for (const [side, key] of [
      [p.a, ka],
      [p.b, kb],
    ] as const) {
      const s = side.machine.snapshot(key);
      assert.equal(s?.phase, "done", JSON.stringify(s?.cancel));
    }
  });

  it("the whole exchange times out 5 minutes after its start, even while the users compare", () => {
    const p = Pair.make();
    const start = p.now;
    const { ka } = sasStarted(p);
    p.a.machine.tick(start + SAS_TIMEOUT_MS);
    assert.equal(p.a.machine.snapshot(ka)?.phase, "started");
    p.a.machine.tick(start + SAS_TIMEOUT_MS + 1);
    assert.equal(p.a.machine.snapshot(ka)?.cancel?.code, "m.timeout");
  });
});
