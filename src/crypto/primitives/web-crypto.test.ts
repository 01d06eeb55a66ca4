// Web Crypto's AES-256-CTR and SHA-256 (used for attachments in browsers) give exactly what both
// back ends give, including a counter that wraps past 2^64 and 2^128; the asynchronous PBKDF2 and
// the store-key wrap round-trip.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { backend as noble } from "./backend-noble.ts";
import { backend as node } from "./backend-node.ts";
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
