// Ed25519 verify through Web Crypto (the JavaScript back end's ed25519VerifyAsync; Node 20's Web
// Crypto has Ed25519, so the code browsers run runs here) gives exactly the verdicts of the
// synchronous back ends, on random and on crafted signatures.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { backend as noble } from "./backend-noble.ts";
import { backend as node } from "./backend-node.ts";
import { craftedEd25519Cases } from "./test-support/ed25519-crafted.ts";
import { subtleCrypto } from "./web-crypto.ts";
import { createWebEd25519Verify } from "./web-ed25519.ts";

const subtle = subtleCrypto();
if (subtle === undefined) throw new Error("Node 20+ has Web Crypto");
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });

/** Web Crypto with its calls counted. */
function countingSubtle(inner: SubtleCrypto = subtle as SubtleCrypto) {
  const counts = { importKey: 0, verify: 0 };
  const wrapped = {
    importKey: (...args: Parameters<SubtleCrypto["importKey"]>) => {
      counts.importKey++;
      return inner.importKey(...args);
    },
    verify: (...args: Parameters<SubtleCrypto["verify"]>) => {
      counts.verify++;
      return inner.verify(...args);
    },
  } as unknown as SubtleCrypto;
  return { subtle: wrapped, counts };
}

async function sameVerdict(
  pub: Uint8Array,
  msg: Uint8Array,
  sig: Uint8Array,
  label: string,
): Promise<boolean> {
  const expected = node.ed25519Verify(pub, msg, sig);
  assert.equal(noble.ed25519Verify(pub, msg, sig), expected, `${label}: noble`);
  assert.equal(await noble.ed25519VerifyAsync(pub, msg, sig), expected, `${label}: Web Crypto`);
  assert.equal(await node.ed25519VerifyAsync(pub, msg, sig), expected, `${label}: node async`);
  return expected;
}

describe("Ed25519 verify through Web Crypto", () => {
  it("Node's Web Crypto passes the self-test, and keys are imported once", async () => {
    const { subtle: counted, counts } = countingSubtle();
    const verify = createWebEd25519Verify(counted, noble.ed25519Verify);
    const seed = new Uint8Array(32).fill(4);
    const pub = noble.ed25519PublicKey(seed);
    const msg = new Uint8Array([1, 2, 3]);
    const sig = noble.ed25519Sign(new Uint8Array([...seed, ...pub]), msg);
    assert.equal(await verify(pub, msg, sig), true);
    assert.equal(await verify(pub, msg, sig), true);
    // Self-test: one import, two verifies; then one import for the key and a verify per call.
    assert.deepEqual(counts, { importKey: 2, verify: 4 });
  });

  it("the key cache is bounded: the least recently used key is imported again", async () => {
    const { subtle: counted, counts } = countingSubtle();
    const size = 8; // the mechanism; the browsers' bound is ED25519_WEB_KEY_CACHE_SIZE
    const verify = createWebEd25519Verify(counted, noble.ed25519Verify, size);
    const msg = new Uint8Array([9]);
    const signed = (i: number) => {
      const seed = new Uint8Array(32);
      seed[0] = i & 0xff;
      seed[1] = i >> 8;
      const pub = noble.ed25519PublicKey(seed);
      return { pub, sig: noble.ed25519Sign(new Uint8Array([...seed, ...pub]), msg) };
    };
    const first = signed(0);
    assert.equal(await verify(first.pub, msg, first.sig), true);
    const imports = counts.importKey;
    for (let i = 1; i <= size; i++) {
      const s = signed(i);
      assert.equal(await verify(s.pub, msg, s.sig), true);
    }
    assert.equal(counts.importKey, imports + size);
    assert.equal(await verify(first.pub, msg, first.sig), true);
    assert.equal(counts.importKey, imports + size + 1, "evicted, imported again");
  });

  it("keys used in turn are each imported once, and a key's cached import judges every signature", async () => {
    const { subtle: counted, counts } = countingSubtle();
    const verify = createWebEd25519Verify(counted, noble.ed25519Verify);
    const msg = new Uint8Array([5, 6]);
    const signers = [1, 2].map((i) => {
      const seed = new Uint8Array(32).fill(i);
      const pub = noble.ed25519PublicKey(seed);
      return { pub, sig: noble.ed25519Sign(new Uint8Array([...seed, ...pub]), msg) };
    });
    for (let round = 0; round < 3; round++) {
      for (const [i, { pub, sig }] of signers.entries()) {
        assert.equal(await verify(pub, msg, sig), true);
        // The same key again (the cached last key), with the other key's signature and a tampered one.
        assert.equal(await verify(pub, msg, signers[1 - i]!.sig), false);
        const bad = sig.slice();
        bad[40]! ^= 1;
        assert.equal(await verify(pub, msg, bad), false);
        // A copy of the key in another buffer, and the key's buffer changed after use.
        assert.equal(await verify(pub.slice(), msg, sig), true);
      }
    }
    const changed = signers[0]!.pub.slice();
    assert.equal(await verify(changed, msg, signers[0]!.sig), true);
    changed[0]! ^= 1;
    assert.equal(await verify(changed, msg, signers[0]!.sig), false);
    // The self-test's import, one per key (the changed key fails the key checks or imports once).
    assert.ok(counts.importKey <= 4, `${counts.importKey} imports`);
  });

  it("an engine that fails the self-test (cofactored, or no Ed25519) is not used", async () => {
    const cofactored = {
      importKey: subtle.importKey.bind(subtle),
      verify: async () => true,
    } as unknown as SubtleCrypto;
    const { subtle: counted, counts } = countingSubtle(cofactored);
    const verify = createWebEd25519Verify(counted, noble.ed25519Verify);
    const junk = new Uint8Array(64).fill(1);
    assert.equal(await verify(noble.ed25519PublicKey(new Uint8Array(32)), new Uint8Array(1), junk), false);
    assert.equal(counts.verify, 2, "only the self-test asked the engine");
    const none = {
      importKey: () => Promise.reject(new Error("NotSupportedError")),
    } as unknown as SubtleCrypto;
    const withoutEd25519 = createWebEd25519Verify(none, noble.ed25519Verify);
    const seed = new Uint8Array(32).fill(8);
    const pub = noble.ed25519PublicKey(seed);
    const sig = noble.ed25519Sign(new Uint8Array([...seed, ...pub]), junk);
    assert.equal(await withoutEd25519(pub, junk, sig), true);
  });

  it("random and mutated signatures, random keys: the back ends' verdicts", async () => {
    await fc.assert(
      fc.asyncProperty(
        bytes(32),
        fc.uint8Array({ maxLength: 300 }),
        fc.integer({ min: 0, max: 63 }),
        bytes(64),
        async (seed, msg, flip, junk) => {
          const pub = node.ed25519PublicKey(seed);
          const sig = node.ed25519Sign(new Uint8Array([...seed, ...pub]), msg);
          assert.equal(await sameVerdict(pub, msg, sig, "valid"), true);
          const bad = sig.slice();
          bad[flip]! ^= 0x20;
          assert.equal(await sameVerdict(pub, msg, bad, "flipped"), false);
          await sameVerdict(pub, msg, junk, "junk signature");
          await sameVerdict(junk.subarray(0, 32), msg, sig, "junk key");
        },
      ),
      { numRuns: 60 },
    );
  });

  it("crafted signatures: mixed-order keys, small-order and torsioned R, S >= L, non-canonical encodings", async () => {
    let mixedAccepted = 0;
    for (const c of craftedEd25519Cases()) {
      const verdict = await sameVerdict(c.publicKey, c.message, c.signature, c.label);
      if (c.expected !== undefined) assert.equal(verdict, c.expected, c.label);
      if (c.label.startsWith("mixed-order key") && verdict) mixedAccepted++;
    }
    assert.ok(mixedAccepted > 0 && mixedAccepted < 48, "the mixed-order case exercised both verdicts");
    const valid = craftedEd25519Cases().find((c) => c.label === "valid");
    assert.ok(valid !== undefined);
    assert.equal(
      await noble.ed25519VerifyAsync("x" as unknown as Uint8Array, valid.message, valid.signature),
      false,
    );
  });
});
