// Known-answer tests against outputs recorded from libolm's OlmSAS with fixed key pairs
// (test/vectors/sas/libolm-sas.json, provenance inside).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { decodeBase64, encodeBase64 } from "../primitives/index.ts";
import { sasFromSecret } from "./sas.ts";

interface Vectors {
  alice: { secretKey: string; publicKey: string };
  bob: { secretKey: string; publicKey: string };
  bytes: { info: string; count: number; bytes: string }[];
  macs: { input: string; info: string; v2: string; legacy: string }[];
}

const vectors = JSON.parse(
  readFileSync(new URL("../../../test/vectors/sas/libolm-sas.json", import.meta.url), "utf8"),
) as Vectors;

describe("SAS known-answer vectors (libolm)", () => {
  const alice = sasFromSecret(decodeBase64(vectors.alice.secretKey));
  const bob = sasFromSecret(decodeBase64(vectors.bob.secretKey));

  it("derives libolm's public keys and shared bytes on both sides", () => {
    assert.equal(alice.publicKey, vectors.alice.publicKey);
    assert.equal(bob.publicKey, vectors.bob.publicKey);
    alice.setTheirPublicKey(bob.publicKey);
    bob.setTheirPublicKey(alice.publicKey);
    assert.ok(vectors.bytes.length > 0, "the vector file holds shared bytes");
    for (const b of vectors.bytes) {
      assert.equal(encodeBase64(alice.generateBytes(b.info, b.count)), b.bytes);
      assert.equal(encodeBase64(bob.generateBytes(b.info, b.count)), b.bytes);
    }
  });

  it("computes libolm's v2 and legacy MACs", () => {
    assert.ok(vectors.macs.length > 0, "the vector file holds MACs");
    for (const m of vectors.macs) {
      assert.equal(alice.calculateMac(m.input, m.info), m.v2);
      assert.equal(alice.calculateMacLegacy(m.input, m.info), m.legacy);
      assert.ok(bob.verifyMac("hkdf-hmac-sha256.v2", m.input, m.info, m.v2));
      assert.ok(bob.verifyMac("hkdf-hmac-sha256", m.input, m.info, m.legacy));
    }
  });
});
