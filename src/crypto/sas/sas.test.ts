import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inspect } from "node:util";
import { encodeBase64, hkdfSha256, hmacSha256, x25519 } from "../primitives/index.ts";
import { SAS_EMOJI } from "./emoji.ts";
import { libolmInPlaceBase64 } from "./libolm-base64.ts";
import { Sas, sasFromSecret } from "./sas.ts";
import { sasDecimals, sasEmoji, sasEmojiIndexes } from "./short-auth-string.ts";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

function pair(): [Sas, Sas] {
  const a = Sas.create();
  const b = Sas.create();
  a.setTheirPublicKey(b.publicKey);
  b.setTheirPublicKey(a.publicKey);
  return [a, b];
}

describe("SAS", () => {
  it("both sides derive the same bytes and MACs", () => {
    const [a, b] = pair();
    const info = "MATRIX_KEY_VERIFICATION_SAS|@a:x|A|key|@b:x|B|key|txn";
    assert.deepEqual(a.generateBytes(info, 6), b.generateBytes(info, 6));
    assert.notDeepEqual(a.generateBytes(info, 6), a.generateBytes(`${info}!`, 6));
    for (const method of ["hkdf-hmac-sha256.v2", "hkdf-hmac-sha256"] as const) {
      const mac = a.calculateMacWith(method, "ed25519:KEY", "MAC|info");
      assert.equal(mac.length, 43);
      assert.ok(b.verifyMac(method, "ed25519:KEY", "MAC|info", mac));
      assert.ok(!b.verifyMac(method, "ed25519:KEY", "MAC|other", mac));
      assert.ok(!b.verifyMac(method, "ed25519:KEY", "MAC|info", `${mac}A`));
      assert.ok(!b.verifyMac(method, "ed25519:KEY", "MAC|info", 5 as unknown as string));
    }
  });

  it("computes bytes and the v2 MAC as HKDF/HMAC over the X25519 secret", () => {
    const secretA = new Uint8Array(32).fill(1);
    const secretB = new Uint8Array(32).fill(2);
    const a = sasFromSecret(secretA);
    const b = sasFromSecret(secretB);
    a.setTheirPublicKey(b.publicKey);
    const shared = x25519(secretB, Buffer.from(a.publicKey, "base64"));
    const empty = new Uint8Array(0);
    const enc = new TextEncoder();
    assert.deepEqual(a.generateBytes("info", 10), hkdfSha256(shared, empty, enc.encode("info"), 10));
    const key = hkdfSha256(shared, empty, enc.encode("mi"), 32);
    const mac = hmacSha256(key, enc.encode("input"));
    assert.equal(a.calculateMac("input", "mi"), encodeBase64(mac));
    assert.equal(a.calculateMacLegacy("input", "mi"), libolmInPlaceBase64(mac));
  });

  it("enforces the order of operations and validates input", () => {
    const a = Sas.create();
    assert.equal(
      codeOf(() => a.generateBytes("i", 6)),
      "THEIR_KEY_NOT_SET",
    );
    assert.equal(
      codeOf(() => a.calculateMac("x", "i")),
      "THEIR_KEY_NOT_SET",
    );
    assert.equal(
      codeOf(() => a.setTheirPublicKey("short")),
      "BAD_KEY",
    );
    assert.equal(
      codeOf(() => a.setTheirPublicKey(encodeBase64(new Uint8Array(31)))),
      "BAD_KEY",
    );
    assert.equal(
      codeOf(() => a.setTheirPublicKey(encodeBase64(new Uint8Array(32)))),
      "NON_CONTRIBUTORY_KEY",
    );
    assert.equal(
      codeOf(() => a.setTheirPublicKey(1 as unknown as string)),
      "BAD_KEY",
    );
    a.setTheirPublicKey(Sas.create().publicKey);
    assert.equal(
      codeOf(() => a.setTheirPublicKey(Sas.create().publicKey)),
      "THEIR_KEY_ALREADY_SET",
    );
    assert.equal(
      codeOf(() => a.generateBytes("i", 0)),
      "BAD_ARGUMENT",
    );
    assert.equal(
      codeOf(() => a.generateBytes("i", 8161)),
      "BAD_ARGUMENT",
    );
    assert.equal(
      codeOf(() => a.generateBytes("\ud800", 6)),
      "BAD_ARGUMENT",
    );
    assert.equal(
      codeOf(() => a.calculateMacWith("hmac-sha256" as "hkdf-hmac-sha256", "x", "i")),
      "BAD_ARGUMENT",
    );
    assert.equal(a.generateBytes("i", 8160).length, 8160);
  });

  it("shows only public keys", () => {
    const [a] = pair();
    for (const t of [JSON.stringify(a), inspect(a), String(a)]) {
      assert.ok(t.includes(a.publicKey));
      assert.ok(t.includes(a.theirPublicKey as string));
    }
  });
});

describe("libolm's in-place base64", () => {
  it("matches correct base64 for the first group only, then diverges", () => {
    const bytes = Uint8Array.from({ length: 32 }, (_, i) => i * 37 + 11);
    const good = encodeBase64(bytes);
    const legacy = libolmInPlaceBase64(bytes);
    assert.equal(legacy.length, 43);
    assert.equal(legacy.slice(0, 4), good.slice(0, 4));
    assert.notEqual(legacy, good);
  });

  it("equals correct base64 when nothing is overwritten before it is read", () => {
    for (const n of [0, 1, 2, 3]) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => 200 - i);
      assert.equal(libolmInPlaceBase64(bytes), encodeBase64(bytes));
    }
  });
});

describe("SAS short authentication strings", () => {
  it("has the spec's 64 distinct emoji in order", () => {
    assert.equal(SAS_EMOJI.length, 64);
    assert.equal(new Set(SAS_EMOJI.map((e) => e.emoji)).size, 64);
    assert.deepEqual(SAS_EMOJI[0], { index: 0, emoji: "🐶", description: "Dog", unicode: "U+1F436" });
    assert.equal(SAS_EMOJI[21]?.emoji, "\u2601\ufe0f");
    assert.equal(SAS_EMOJI[36]?.description, "Thumbs Up");
    assert.equal(SAS_EMOJI[63]?.description, "Pin");
    for (const e of SAS_EMOJI) {
      const points = [...e.emoji].map((c) => `U+${c.codePointAt(0)?.toString(16).toUpperCase()}`).join("");
      assert.equal(points, e.unicode);
    }
  });

  it("splits bytes into 13-bit decimals + 1000 and 6-bit emoji indexes", () => {
    assert.deepEqual(sasDecimals(new Uint8Array([0, 0, 0, 0, 0])), [1000, 1000, 1000]);
    assert.deepEqual(sasDecimals(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff])), [9191, 9191, 9191]);
    // 0b0000000000001 | 0b0000000000010 | 0b0000000000011 then a spare bit.
    assert.deepEqual(sasDecimals(new Uint8Array([0x00, 0x08, 0x00, 0x80, 0x06])), [1001, 1002, 1003]);
    assert.deepEqual(sasEmojiIndexes(new Uint8Array([0, 0, 0, 0, 0, 0])), [0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(
      sasEmojiIndexes(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])),
      [63, 63, 63, 63, 63, 63, 63],
    );
    // 000001 000010 000011 000100 000101 000110 000111 + 6 spare bits.
    const bytes = new Uint8Array([0x04, 0x20, 0xc4, 0x14, 0x61, 0xc0]);
    assert.deepEqual(sasEmojiIndexes(bytes), [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(
      sasEmoji(bytes).map((e) => e.description),
      ["Cat", "Lion", "Horse", "Unicorn", "Pig", "Elephant", "Rabbit"],
    );
    assert.equal(
      codeOf(() => sasDecimals(new Uint8Array(4))),
      "BAD_ARGUMENT",
    );
    assert.equal(
      codeOf(() => sasEmoji(new Uint8Array(5))),
      "BAD_ARGUMENT",
    );
  });
});
