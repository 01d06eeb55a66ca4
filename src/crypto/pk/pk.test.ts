import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inspect } from "node:util";
import {
  decodeBase64,
  encodeBase64,
  hkdfSha256,
  hmacSha256,
  utf8Decode,
  x25519,
  x25519PublicKey,
} from "../primitives/index.ts";
import { PkDecryption, type PkDecryptionPickle } from "./pk-decryption.ts";
import { encryptWithEphemeral, PkEncryption, type PkMessage } from "./pk-encryption.ts";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe("PK encryption (m.megolm_backup.v1.curve25519-aes-sha2)", () => {
  const recipient = PkDecryption.create();

  it("round-trips strings and bytes; every message has a fresh ephemeral key", () => {
    const enc = new PkEncryption(recipient.publicKey);
    assert.equal(enc.publicKey, recipient.publicKey);
    const a = enc.encrypt('{"session_key":"…"}');
    const b = enc.encrypt('{"session_key":"…"}');
    assert.notEqual(a.ephemeral, b.ephemeral);
    assert.equal(recipient.decryptString(a), '{"session_key":"…"}');
    assert.deepEqual(recipient.decrypt(enc.encrypt(new Uint8Array([0, 1, 2]))), new Uint8Array([0, 1, 2]));
    assert.equal(recipient.decryptString(enc.encrypt("")), "");
  });

  it("MACs the empty string, as libolm does (not the ciphertext)", () => {
    const eph = new Uint8Array(32).fill(7);
    const msg = encryptWithEphemeral(decodeBase64(recipient.publicKey), eph, "payload");
    const shared = x25519(eph, decodeBase64(recipient.publicKey));
    const okm = hkdfSha256(shared, new Uint8Array(0), new Uint8Array(0), 80);
    const expected = hmacSha256(okm.subarray(32, 64), new Uint8Array(0)).subarray(0, 8);
    assert.equal(msg.mac, encodeBase64(expected));
    assert.equal(msg.ephemeral, encodeBase64(x25519PublicKey(eph)));
    // Hence a swapped ciphertext under the same ephemeral key passes the MAC (and decrypts).
    const other = encryptWithEphemeral(decodeBase64(recipient.publicKey), eph, "other");
    assert.equal(recipient.decryptString({ ...msg, ciphertext: other.ciphertext }), "other");
  });

  it("rejects the wrong key with BAD_MAC and broken fields with typed codes", () => {
    const msg = new PkEncryption(recipient.publicKey).encrypt("secret");
    const stranger = PkDecryption.create();
    assert.equal(
      codeOf(() => stranger.decrypt(msg)),
      "BAD_MAC",
    );
    const cases: [unknown, string][] = [
      [null, "BAD_MESSAGE_FORMAT"],
      ["x", "BAD_MESSAGE_FORMAT"],
      [{ ...msg, ciphertext: 5 }, "BAD_MESSAGE_FORMAT"],
      [{ ...msg, ciphertext: "***" }, "BAD_MESSAGE_FORMAT"],
      [{ ...msg, mac: msg.mac.slice(0, 6) }, "BAD_MESSAGE_FORMAT"],
      [{ ...msg, mac: undefined }, "BAD_MESSAGE_FORMAT"],
      [{ ...msg, ephemeral: msg.ephemeral.slice(4) }, "BAD_KEY"],
      [{ ...msg, ephemeral: encodeBase64(new Uint8Array(32)) }, "NON_CONTRIBUTORY_KEY"],
      [{ ...msg, ciphertext: msg.ciphertext.slice(0, 12) }, "DECRYPTION_FAILED"],
      [{ ...msg, ciphertext: "" }, "DECRYPTION_FAILED"],
    ];
    for (const [m, code] of cases)
      assert.equal(
        codeOf(() => recipient.decrypt(m as PkMessage)),
        code,
      );
    assert.equal(recipient.decryptString(msg), "secret");
  });

  it("decryptString refuses non-UTF-8 plaintext", () => {
    const msg = new PkEncryption(recipient.publicKey).encrypt(new Uint8Array([0xff, 0xfe]));
    assert.equal(
      codeOf(() => recipient.decryptString(msg)),
      "BAD_PLAINTEXT",
    );
  });

  it("validates keys and arguments", () => {
    assert.equal(
      codeOf(() => new PkEncryption("abc")),
      "BAD_KEY",
    );
    assert.equal(
      codeOf(() => new PkEncryption(3 as unknown as string)),
      "BAD_KEY",
    );
    assert.equal(
      codeOf(() => PkDecryption.fromPrivateKey(new Uint8Array(31))),
      "BAD_KEY",
    );
    assert.equal(
      codeOf(() => new PkEncryption(recipient.publicKey).encrypt("\udc00")),
      "BAD_ARGUMENT",
    );
    assert.equal(
      codeOf(() => new PkEncryption(encodeBase64(new Uint8Array(32))).encrypt("x")),
      "NON_CONTRIBUTORY_KEY",
    );
  });

  it("private key export, fromPrivateKey and pickles give the same key pair", () => {
    const copy = PkDecryption.fromPrivateKey(recipient.exportPrivateKey());
    assert.equal(copy.publicKey, recipient.publicKey);
    const restored = PkDecryption.fromPickle(
      JSON.parse(JSON.stringify(recipient.toPickle())) as PkDecryptionPickle,
    );
    assert.equal(restored.publicKey, recipient.publicKey);
    const msg = new PkEncryption(recipient.publicKey).encrypt("x");
    assert.equal(utf8Decode(restored.decrypt(msg)), "x");
    for (const bad of [
      null,
      { version: 2, privateKey: "" },
      { version: 1 },
      { version: 1, privateKey: "AAAA" },
    ]) {
      assert.equal(
        codeOf(() => PkDecryption.fromPickle(bad as PkDecryptionPickle)),
        "BAD_PICKLE",
      );
    }
  });

  it("shows no secrets in JSON, inspect or toString", () => {
    const priv = recipient.toPickle().privateKey;
    for (const text of [JSON.stringify(recipient), inspect(recipient), String(recipient)]) {
      assert.ok(text.includes(recipient.publicKey));
      assert.ok(!text.includes(priv));
    }
  });
});
