// Web Crypto's AES-256-CTR and SHA-256 (used for attachments in browsers) give exactly what both
// back ends give, including a counter that wraps past 2^64 and 2^128; so do the per-message HKDF,
// HMAC and AES-CBC decryption (Megolm in browsers), refusals included; the asynchronous PBKDF2 and
// the store-key wrap round-trip.
import assert from "node:assert/strict";
import { createCipheriv } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { backend as noble } from "./backend-noble.ts";
import { backend as node } from "./backend-node.ts";
import { CryptoPrimitiveError } from "./errors.ts";
import { subtleCrypto, webAes256Ctr, webSha256 } from "./web-crypto.ts";
import { generateNonExtractableKey, openWithCryptoKey, sealWithCryptoKey } from "./web-key.ts";

const subtle = subtleCrypto();
if (subtle === undefined) throw new Error("Node 20+ has Web Crypto");
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });

describe("Web Crypto primitives", () => {
  it("AES-256-CTR and SHA-256 equal both back ends on random inputs", async () => {
    await fc.assert(
      fc.asyncProperty(bytes(32), bytes(16), fc.uint8Array({ maxLength: 2000 }), async (key, iv, data) => {
        const web = await webAes256Ctr(subtle, key, iv, data);
        assert.deepEqual(web, noble.aes256Ctr(key, iv, data));
        assert.deepEqual(web, node.aes256Ctr(key, iv, data));
        assert.deepEqual(await webSha256(subtle, data), noble.sha256(data));
      }),
      { numRuns: 40 },
    );
  });

  it("the counter carries across the whole 128-bit block, as in the back ends", async () => {
    const key = new Uint8Array(32).fill(7);
    const data = new Uint8Array(64).fill(1);
    for (const iv of [
      Uint8Array.from([...new Uint8Array(8), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]),
      new Uint8Array(16).fill(0xff),
    ]) {
      assert.deepEqual(await webAes256Ctr(subtle, key, iv, data), noble.aes256Ctr(key, iv, data));
    }
  });

  it("asynchronous PBKDF2 equals the synchronous one on both back ends", async () => {
    const password = new TextEncoder().encode("correct horse");
    const salt = new Uint8Array(32).fill(3);
    const expected = node.pbkdf2Sha512(password, salt, 1000, 32);
    assert.deepEqual(await noble.pbkdf2Sha512Async(password, salt, 1000, 32), expected);
    assert.deepEqual(await node.pbkdf2Sha512Async(password, salt, 1000, 32), expected);
    assert.deepEqual(
      await noble.pbkdf2Sha512Async(new Uint8Array(0), salt, 10, 16),
      node.pbkdf2Sha512(new Uint8Array(0), salt, 10, 16),
    );
  });

  it("a non-extractable key seals and opens; another key or a flipped bit does not open", async () => {
    const key = await generateNonExtractableKey();
    assert.equal(key.extractable, false);
    const sealed = await sealWithCryptoKey(key, new Uint8Array([1, 2, 3]));
    assert.deepEqual(await openWithCryptoKey(key, sealed), new Uint8Array([1, 2, 3]));
    assert.equal(await openWithCryptoKey(await generateNonExtractableKey(), sealed), undefined);
    const flipped = sealed.slice();
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 1;
    assert.equal(await openWithCryptoKey(key, flipped), undefined);
    assert.equal(await openWithCryptoKey(key, sealed.subarray(0, 10)), undefined);
  });
});

describe("HKDF, HMAC-SHA-256 and AES-256-CBC through Web Crypto (the noble back end's async forms)", () => {
  it("HKDF equals the back ends on random inputs, empty ones too", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 200 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.integer({ min: 0, max: 300 }),
        async (ikm, salt, info, n) => {
          assert.deepEqual(
            await noble.hkdfSha256Async(ikm, salt, info, n),
            node.hkdfSha256(ikm, salt, info, n),
          );
          assert.deepEqual(
            await node.hkdfSha256Async(ikm, salt, info, n),
            node.hkdfSha256(ikm, salt, info, n),
          );
        },
      ),
      { numRuns: 60 },
    );
    // Too long an output: the same refusal as the synchronous form.
    const tooLong = [new Uint8Array(1), new Uint8Array(0), new Uint8Array(0), 255 * 32 + 1] as const;
    assert.throws(() => node.hkdfSha256(...tooLong), { code: "BAD_ARGUMENT" });
    await assert.rejects(noble.hkdfSha256Async(...tooLong), { code: "BAD_ARGUMENT" });
  });

  it("HMAC equals the back ends on random keys and data, an empty key too", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 100 }),
        fc.uint8Array({ maxLength: 300 }),
        async (key, data) => {
          assert.deepEqual(await noble.hmacSha256Async(key, data), node.hmacSha256(key, data));
          assert.deepEqual(await node.hmacSha256Async(key, data), node.hmacSha256(key, data));
        },
      ),
      { numRuns: 60 },
    );
  });

  /** Same plaintext, or the same CryptoPrimitiveError code, from every form. */
  async function sameCbc(key: Uint8Array, iv: Uint8Array, ct: Uint8Array): Promise<void> {
    const outcome = async (f: () => Uint8Array | Promise<Uint8Array>) => {
      try {
        return { ok: await f() };
      } catch (e) {
        assert.ok(e instanceof CryptoPrimitiveError, String(e));
        return { code: e.code };
      }
    };
    const expected = await outcome(() => node.aes256CbcDecrypt(key, iv, ct));
    assert.deepEqual(await outcome(() => noble.aes256CbcDecryptAsync(key, iv, ct)), expected);
    assert.deepEqual(await outcome(() => node.aes256CbcDecryptAsync(key, iv, ct)), expected);
  }

  it("AES-CBC decryption equals the back ends: random ciphertexts (mostly bad pads), valid ones, bad lengths", async () => {
    await fc.assert(
      fc.asyncProperty(bytes(32), bytes(16), fc.uint8Array({ maxLength: 100 }), async (key, iv, data) => {
        await sameCbc(key, iv, data);
        await sameCbc(key, iv, node.aes256CbcEncrypt(key, iv, data));
      }),
      { numRuns: 60 },
    );
    await sameCbc(new Uint8Array(31), new Uint8Array(16), new Uint8Array(16));
    await sameCbc(new Uint8Array(32), new Uint8Array(15), new Uint8Array(16));
    await sameCbc(new Uint8Array(32), new Uint8Array(16), new Uint8Array(0));
  });

  it("AES-CBC padding: every pad length, valid and with one wrong byte", async () => {
    const key = new Uint8Array(32).fill(7);
    const iv = new Uint8Array(16).fill(9);
    for (let n = 0; n <= 20; n++) {
      for (let wrong = 0; wrong <= Math.min(n, 16); wrong++) {
        const plain = new Uint8Array(32).fill(0xaa);
        plain.fill(n & 0xff, 32 - Math.min(Math.max(n, 1), 16));
        plain[31] = n;
        if (wrong > 0) plain[32 - wrong] = (plain[32 - wrong]! + 1) & 0xff;
        const c = createCipheriv("aes-256-cbc", key, iv);
        c.setAutoPadding(false);
        await sameCbc(key, iv, new Uint8Array(c.update(plain)));
      }
    }
  });
});
