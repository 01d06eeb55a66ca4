// Known-answer tests against payloads recorded from libolm's PkEncryption with fixed keys
// (test/vectors/pk/libolm-pk.json, provenance inside).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { decodeBase64 } from "../primitives/index.ts";
import { PkDecryption } from "./pk-decryption.ts";
import { encryptWithEphemeral } from "./pk-encryption.ts";

interface Vectors {
  privateKey: string;
  publicKey: string;
  messages: {
    ephemeralSecret: string;
    plaintext: string;
    ciphertext: string;
    mac: string;
    ephemeral: string;
  }[];
}

const vectors = JSON.parse(
  readFileSync(new URL("../../../test/vectors/pk/libolm-pk.json", import.meta.url), "utf8"),
) as Vectors;

describe("PK encryption known-answer vectors (libolm)", () => {
  const decryption = PkDecryption.fromPrivateKey(decodeBase64(vectors.privateKey));

  it("derives libolm's public key", () => {
    assert.equal(decryption.publicKey, vectors.publicKey);
  });

  it("encrypts exactly as libolm with the same ephemeral key, and decrypts libolm's payloads", () => {
    assert.ok(vectors.messages.length > 0, "the vector file holds messages");
    for (const m of vectors.messages) {
      const ours = encryptWithEphemeral(
        decodeBase64(vectors.publicKey),
        decodeBase64(m.ephemeralSecret),
        m.plaintext,
      );
      assert.deepEqual(ours, { ciphertext: m.ciphertext, mac: m.mac, ephemeral: m.ephemeral });
      assert.equal(decryption.decryptString(m), m.plaintext);
    }
  });
});
