import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { inspect } from "node:util";
import fc from "fast-check";
import { decodeBase64, encodeBase64, generateNonExtractableKey } from "../../crypto/primitives/index.ts";
import { StoreError, StoreKeyError } from "../errors.ts";
import {
  addToCounter,
  MAX_STORE_KDF_ITERATIONS,
  rowAd,
  STORE_KDF_ITERATIONS,
  StoreCipher,
  type StoreKeyHeader,
} from "./store-cipher.ts";

const isKeyError =
  (code: string) =>
  (e: unknown): boolean =>
    e instanceof StoreKeyError && e.code === code;

describe("StoreCipher", () => {
  let cipher: StoreCipher;
  let header: StoreKeyHeader;
  before(async () => {
    ({ cipher, header } = await StoreCipher.create({
      kind: "passphrase",
      passphrase: "pass",
      iterations: 1000,
    }));
  });

  it("round-trips JSON values, with a fresh IV each time", () => {
    const value = { version: 1, key: "AAAA", list: [1, "two", null, true] };
    const a = cipher.encrypt(value, rowAd("inbound", "!r", "s"));
    const b = cipher.encrypt(value, rowAd("inbound", "!r", "s"));
    assert.notEqual(a, b);
    assert.deepEqual(cipher.decrypt(a, rowAd("inbound", "!r", "s")), value);
    assert.equal(cipher.decrypt(cipher.encrypt("text", "x"), "x"), "text");
  });

  it("never reuses an IV, across refills of the IV pool", () => {
    const ivs = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const sealed = decodeBase64(cipher.encrypt(i, "x"));
      ivs.add(Buffer.from(sealed.subarray(1, 17)).toString("hex"));
      assert.equal(cipher.decrypt(encodeBase64(sealed), "x"), i);
    }
    assert.equal(ivs.size, 300);
  });

  it("refuses another row's associated data, flipped bits, truncation and non-strings", () => {
    const sealed = cipher.encrypt({ a: 1 }, rowAd("inbound", "!r", "s1"));
    assert.throws(() => cipher.decrypt(sealed, rowAd("inbound", "!r", "s2")), isKeyError("TAMPERED"));
    const bytes = decodeBase64(sealed);
    for (const i of [0, 1, 20, bytes.length - 1]) {
      const copy = bytes.slice();
      copy[i] = (copy[i] ?? 0) ^ 1;
      assert.throws(
        () => cipher.decrypt(encodeBase64(copy), rowAd("inbound", "!r", "s1")),
        isKeyError("TAMPERED"),
      );
    }
    assert.throws(() => cipher.decrypt(encodeBase64(bytes.subarray(0, 40)), "x"), isKeyError("TAMPERED"));
    assert.throws(() => cipher.decrypt(42, "x"), isKeyError("TAMPERED"));
    assert.throws(() => cipher.decrypt("not base64!", "x"), isKeyError("TAMPERED"));
  });

  it("encryptMany seals each value on its own counter blocks: each opens alone, bound to its row", () => {
    const values = Array.from({ length: 40 }, (_, i) => ({
      // Non-ASCII text (longer in UTF-8 than in UTF-16 units) in some of them, once more than the
      // batch's first buffer has room for.
      value: {
        i,
        text: i === 5 ? "ü".repeat(2000) : i % 4 === 1 ? `é😀${"ü".repeat(i)}` : "x".repeat(i * 3),
      },
      ad: rowAd("inbound", "!r", `s${i}`),
    }));
    const sealed = cipher.encryptMany(values);
    assert.equal(sealed.length, values.length);
    const counters = new Set<bigint>();
    for (const [i, s] of sealed.entries()) {
      const { value, ad } = values[i] as (typeof values)[number];
      assert.deepEqual(cipher.decrypt(s, ad), value);
      assert.throws(() => cipher.decrypt(s, rowAd("inbound", "!r", "other")), isKeyError("TAMPERED"));
      // Every counter block any value used is distinct from every other value's.
      const bytes = decodeBase64(s);
      const iv = BigInt(`0x${Buffer.from(bytes.subarray(1, 17)).toString("hex")}`);
      const blocks = Math.ceil((bytes.length - 1 - 16 - 32) / 16);
      for (let b = 0n; b < BigInt(blocks); b++) {
        const block = (iv + b) % 2n ** 128n;
        assert.ok(!counters.has(block), "a counter block was used twice");
        counters.add(block);
      }
    }
    assert.deepEqual(cipher.encryptMany([]), []);
    const [one] = cipher.encryptMany([{ value: "one", ad: "x" }]);
    assert.equal(cipher.decrypt(one, "x"), "one");
  });

  it("addToCounter adds as AES-CTR counts: 128-bit big-endian, carrying across bytes, wrapping", () => {
    const asBig = (b: Uint8Array) => BigInt(`0x${Buffer.from(b).toString("hex")}`);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.nat(2 ** 40), (iv, n) => {
        assert.equal(asBig(addToCounter(iv, n)), (asBig(iv) + BigInt(n)) % 2n ** 128n);
      }),
    );
    assert.deepEqual(addToCounter(new Uint8Array(16).fill(0xff), 1), new Uint8Array(16));
    const edge = new Uint8Array(16);
    edge[15] = 0xff;
    edge[14] = 0xff;
    assert.equal(asBig(addToCounter(edge, 1)), 0x10000n);
  });

  it("decrypt throws only StoreKeyError whatever it is given", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.uint8Array({ maxLength: 200 }).map(encodeBase64)), (s) => {
        try {
          cipher.decrypt(s, "ad");
          return false; // a random string never authenticates
        } catch (e) {
          return e instanceof StoreKeyError && e.code === "TAMPERED";
        }
      }),
    );
  });

  it("unlocks with the passphrase and refuses a wrong one", async () => {
    const again = await StoreCipher.unlock(header, { kind: "passphrase", passphrase: "pass" });
    assert.deepEqual(again.decrypt(cipher.encrypt([1, 2], "x"), "x"), [1, 2]);
    await assert.rejects(
      StoreCipher.unlock(header, { kind: "passphrase", passphrase: "Pass" }),
      isKeyError("WRONG_KEY"),
    );
    await assert.rejects(StoreCipher.unlock(header, { kind: "none" }), isKeyError("KEY_KIND_MISMATCH"));
  });

  it("refuses an empty passphrase for a new store; a store made with one before still opens with it", async () => {
    await assert.rejects(
      StoreCipher.create({ kind: "passphrase", passphrase: "", iterations: 1000 }),
      (e) => e instanceof StoreError && e.code === "BAD_OPTION",
    );
    // The header an older Keyroom wrote for "", built here from the format itself.
    const crypto = await import("node:crypto");
    const salt = Buffer.alloc(32, 3);
    const storeKey = Buffer.alloc(32, 9);
    const derived = crypto.pbkdf2Sync(Buffer.alloc(0), salt, 1000, 32, "sha512");
    const derive = (info: string) =>
      Buffer.from(crypto.hkdfSync("sha256", derived, Buffer.alloc(32), Buffer.from(info), 32));
    const iv = crypto.randomBytes(16);
    const aes = crypto.createCipheriv("aes-256-ctr", derive("keyroom store cipher v1: aes-256-ctr"), iv);
    const ct = Buffer.concat([aes.update(storeKey), aes.final()]);
    const ad = Buffer.from("keyroom store key");
    const head = Buffer.alloc(5);
    head[0] = 1;
    head.writeUInt32BE(ad.length, 1);
    const mac = crypto
      .createHmac("sha256", derive("keyroom store cipher v1: hmac-sha-256"))
      .update(Buffer.concat([head, ad, iv, ct]))
      .digest();
    const old: StoreKeyHeader = {
      version: 1,
      kind: "passphrase",
      salt: encodeBase64(salt),
      iterations: 1000,
      wrappedKey: encodeBase64(Buffer.concat([Buffer.of(1), iv, ct, mac])),
    };
    const opened = await StoreCipher.unlock(old, { kind: "passphrase", passphrase: "" });
    const none = await StoreCipher.unlock(
      { version: 1, kind: "none", storeKey: encodeBase64(storeKey) },
      { kind: "none" },
    );
    assert.equal(opened.decrypt(none.encrypt("same key", "x"), "x"), "same key");
  });

  it("uses STORE_KDF_ITERATIONS by default", async () => {
    const created = await StoreCipher.create({ kind: "passphrase", passphrase: "p" });
    assert.equal(created.header.kind === "passphrase" && created.header.iterations, STORE_KDF_ITERATIONS);
  });

  it("raw keys, and the unprotected mode, round-trip", async () => {
    const key = new Uint8Array(32).fill(1);
    const k = await StoreCipher.create({ kind: "key", key });
    const v = k.cipher.encrypt("v", "x");
    assert.equal((await StoreCipher.unlock(k.header, { kind: "key", key })).decrypt(v, "x"), "v");
    await assert.rejects(
      StoreCipher.unlock(k.header, { kind: "key", key: new Uint8Array(32) }),
      isKeyError("WRONG_KEY"),
    );
    await assert.rejects(
      StoreCipher.create({ kind: "key", key: new Uint8Array(16) }),
      isKeyError("WRONG_KEY"),
    );
    const n = await StoreCipher.create({ kind: "none" });
    assert.equal(
      (await StoreCipher.unlock(n.header, { kind: "none" })).decrypt(n.cipher.encrypt(1, "a"), "a"),
      1,
    );
  });

  it("keeps the sealed format: version, IV, AES-256-CTR, HMAC over version, AD length and bytes, IV, ciphertext", async () => {
    // An independent implementation of the format (node:crypto), so stores written before stay
    // readable whatever the cipher's code does in place: small values and ones past its scratch.
    const crypto = await import("node:crypto");
    const storeKey = Buffer.alloc(32, 7);
    const header: StoreKeyHeader = { version: 1, kind: "none", storeKey: encodeBase64(storeKey) };
    const c = await StoreCipher.unlock(header, { kind: "none" });
    const derive = (info: string) =>
      Buffer.from(crypto.hkdfSync("sha256", storeKey, Buffer.alloc(32), Buffer.from(info), 32));
    const enc = derive("keyroom store cipher v1: aes-256-ctr");
    const mac = derive("keyroom store cipher v1: hmac-sha-256");
    const macOf = (ad: string, iv: Buffer, ct: Buffer) => {
      const adBytes = Buffer.from(ad, "utf8");
      const head = Buffer.alloc(5);
      head[0] = 1;
      head.writeUInt32BE(adBytes.length, 1);
      return crypto
        .createHmac("sha256", mac)
        .update(Buffer.concat([head, adBytes, iv, ct]))
        .digest();
    };
    for (const [value, ad] of [
      [{ ratchet: "AAAA", n: 1 }, rowAd("inbound", "!room:example.org", "session")],
      [{ big: "x".repeat(6000) }, rowAd("queued", "é".repeat(3000))],
    ] as const) {
      const iv = crypto.randomBytes(16);
      const cipherAes = crypto.createCipheriv("aes-256-ctr", enc, iv);
      const ct = Buffer.concat([cipherAes.update(JSON.stringify(value)), cipherAes.final()]);
      const sealed = Buffer.concat([Buffer.of(1), iv, ct, macOf(ad, iv, ct)]).toString("base64");
      assert.deepEqual(c.decrypt(sealed.replace(/=+$/, ""), ad), value);
      // And what it seals, the independent side opens.
      const ours = Buffer.from(decodeBase64(c.encrypt(value, ad)));
      const oursIv = ours.subarray(1, 17);
      const oursCt = ours.subarray(17, ours.length - 32);
      assert.equal(ours[0], 1);
      assert.deepEqual(ours.subarray(ours.length - 32), macOf(ad, oursIv, oursCt));
      const d = crypto.createDecipheriv("aes-256-ctr", enc, oursIv);
      assert.deepEqual(JSON.parse(Buffer.concat([d.update(oursCt), d.final()]).toString("utf8")), value);
    }
  });

  it("a non-extractable Web Crypto key wraps the store key; another such key does not open it", async () => {
    const key = await generateNonExtractableKey();
    assert.equal(key.extractable, false);
    const w = await StoreCipher.create({ kind: "webcrypto", key });
    assert.equal(w.header.kind, "webcrypto");
    assert.equal(JSON.stringify(w.header).includes("storeKey"), false);
    const v = w.cipher.encrypt({ secret: 1 }, "x");
    const again = await StoreCipher.unlock(structuredClone(w.header), {
      kind: "webcrypto",
      key: structuredClone(key),
    });
    assert.deepEqual(again.decrypt(v, "x"), { secret: 1 });
    await assert.rejects(
      StoreCipher.unlock(w.header, { kind: "webcrypto", key: await generateNonExtractableKey() }),
      isKeyError("WRONG_KEY"),
    );
    await assert.rejects(StoreCipher.unlock(w.header, { kind: "none" }), isKeyError("KEY_KIND_MISMATCH"));
  });

  it("validates stored headers", async () => {
    const bad: unknown[] = [
      null,
      "x",
      { version: 2, kind: "none", storeKey: "" },
      { version: 1, kind: "weird" },
      { version: 1, kind: "none", storeKey: "AAAA" },
      { ...header, iterations: 0 },
      { ...header, iterations: MAX_STORE_KDF_ITERATIONS + 1 },
      { ...header, iterations: 1.5 },
      { ...header, salt: 5 },
    ];
    for (const h of bad) {
      await assert.rejects(
        StoreCipher.unlock(h, { kind: "passphrase", passphrase: "pass" }),
        (e) =>
          e instanceof StoreKeyError && (e.code === "BAD_KEY_PARAMETERS" || e.code === "KEY_KIND_MISMATCH"),
      );
    }
  });

  it("never shows key material", () => {
    assert.equal(JSON.stringify(cipher), '{"kind":"passphrase"}');
    assert.equal(inspect(cipher), "StoreCipher { kind: passphrase }");
  });
});
