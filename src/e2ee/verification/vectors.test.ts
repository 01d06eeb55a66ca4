// Known answers: the SAS commitment (matrix-rust-sdk's vector), the SAS HKDF info and the MAC
// inputs (libolm outputs for fixed keys, test/vectors/sas), and the QR layout (the spec's example).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { decodeBase64, encodeBase64 } from "../../crypto/primitives/index.ts";
import { sasFromSecret } from "../../crypto/sas/sas.ts";
import { decodeQrCode, encodeQrCode } from "./qr-code.ts";
import { checkMac, keyIdList, macContent, macInfo, sasCommitment, sasInfo } from "./sas-crypto.ts";

const read = (path: string) => JSON.parse(readFileSync(new URL(path, import.meta.url), "utf8"));
const vectors = read("../../../test/vectors/verification/verification.json");
const libolm = read("../../../test/vectors/sas/libolm-sas.json") as {
  alice: { secretKey: string; publicKey: string };
  bob: { secretKey: string; publicKey: string };
  bytes: { info: string; count: number; bytes: string }[];
  macs: { input: string; info: string; v2: string; legacy: string }[];
};
const hex = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (b) => Number.parseInt(b, 16));

describe("SAS known answers", () => {
  it("commitment = b64(SHA-256(key ‖ canonical JSON of the start)) (matrix-rust-sdk vector)", () => {
    const c = vectors.commitment;
    assert.equal(sasCommitment(c.publicKey, c.start), c.commitment);
    // Key order in the object does not matter (canonical JSON), one changed field does.
    const reordered = Object.fromEntries(Object.entries(c.start).reverse());
    assert.equal(sasCommitment(c.publicKey, reordered), c.commitment);
    assert.notEqual(sasCommitment(c.publicKey, { ...c.start, from_device: "OTHER" }), c.commitment);
  });

  const parties = {
    startUser: "@alice:example.org",
    startDevice: "ALICEDEVICE",
    startKey: libolm.alice.publicKey,
    acceptUser: "@bob:example.org",
    acceptDevice: "BOBDEVICE",
    acceptKey: libolm.bob.publicKey,
    flowId: "txn-1",
  };
  const macParties = {
    senderUser: "@alice:example.org",
    senderDevice: "ALICEDEVICE",
    receiverUser: "@bob:example.org",
    receiverDevice: "BOBDEVICE",
    flowId: "txn-1",
  };

  it("builds the spec's HKDF info, whose bytes match libolm's", () => {
    assert.equal(sasInfo(parties), libolm.bytes[0]?.info);
  });

  it("builds the MAC info and the sorted key-ID list libolm's MACs were made over", () => {
    assert.equal(macInfo(macParties, "KEY_IDS"), libolm.macs[1]?.info);
    assert.equal(keyIdList(["ed25519:MASTERKEYBASE64", "ed25519:ALICEDEVICE"]), libolm.macs[2]?.input);
    assert.equal(macInfo(macParties, "ed25519:ALICEDEVICE"), `${libolm.macs[0]?.info}ed25519:ALICEDEVICE`);
  });

  it("MAC content: the keys MAC equals libolm's, in v2 and legacy form, and checks on the other side", () => {
    const alice = sasFromSecret(decodeBase64(libolm.alice.secretKey));
    const bob = sasFromSecret(decodeBase64(libolm.bob.secretKey));
    alice.setTheirPublicKey(bob.publicKey);
    bob.setTheirPublicKey(alice.publicKey);
    const keys = { "ed25519:ALICEDEVICE": "someEd25519Key", "ed25519:MASTERKEYBASE64": "MASTERKEYBASE64" };
    const v2 = macContent(alice, "hkdf-hmac-sha256.v2", macParties, keys);
    assert.equal(v2.keys, libolm.macs[2]?.v2);
    const legacy = macContent(alice, "hkdf-hmac-sha256", macParties, keys);
    assert.equal(legacy.keys, libolm.macs[2]?.legacy);
    assert.deepEqual(checkMac(bob, "hkdf-hmac-sha256.v2", macParties, v2, keys), {
      ok: true,
      verified: ["ed25519:ALICEDEVICE", "ed25519:MASTERKEYBASE64"],
    });
    // The legacy MAC does not pass as v2, a changed key does not pass at all.
    assert.equal(checkMac(bob, "hkdf-hmac-sha256.v2", macParties, legacy, keys).ok, false);
    assert.equal(
      checkMac(bob, "hkdf-hmac-sha256.v2", macParties, v2, { ...keys, "ed25519:ALICEDEVICE": "other" }).ok,
      false,
    );
  });
});

describe("QR code layout (spec worked example)", () => {
  const q = vectors.qr;
  const flowId = `!ABCD${"x".repeat(0x2d - 5)}`;
  const key1 = encodeBase64(Uint8Array.from({ length: 32 }, (_, i) => i));
  const key2 = encodeBase64(Uint8Array.from({ length: 32 }, (_, i) => 0x10 + i));
  const data = { mode: 0 as const, flowId, key1, key2, secret: q.secret };

  it("encodes header, mode, length, ID, keys and secret at their offsets", () => {
    const bytes = encodeQrCode(data);
    assert.deepEqual(bytes.subarray(0, 7), hex(q.header));
    assert.equal(bytes[7], q.mode);
    assert.deepEqual(bytes.subarray(8, 10), hex(q.idLengthHex));
    assert.deepEqual(bytes.subarray(10, 15), hex(q.idPrefixHex));
    const keysAt = 10 + 0x2d;
    assert.ok(encodeBase64(bytes.subarray(keysAt, keysAt + 32)).startsWith(q.key1Prefix));
    assert.ok(encodeBase64(bytes.subarray(keysAt + 32, keysAt + 64)).startsWith(q.key2Prefix));
    assert.deepEqual(bytes.subarray(keysAt + 64), hex("2021222324252627"));
    assert.equal(bytes.length, keysAt + 64 + 8);
    assert.deepEqual(decodeQrCode(bytes), data);
  });

  it("refuses malformed codes with BAD_QR_CODE", () => {
    const good = encodeQrCode(data);
    const cases: Uint8Array[] = [
      new Uint8Array(0),
      good.subarray(0, 20),
      Uint8Array.from(good, (b, i) => (i === 0 ? 0x4e : b)), // not MATRIX
      Uint8Array.from(good, (b, i) => (i === 6 ? 0x01 : b)), // version 1
      Uint8Array.from(good, (b, i) => (i === 7 ? 0x03 : b)), // unknown mode
      good.subarray(0, good.length - 1), // secret shorter than 8 bytes
      Uint8Array.from(good, (b, i) => (i === 8 ? 0xff : b)), // length past the end
    ];
    for (const c of cases)
      assert.throws(() => decodeQrCode(c), { name: "VerificationError", code: "BAD_QR_CODE" });
  });
});
