import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as primitives from "./index.ts";

describe("primitives/index", () => {
  it("binds the back end the package conditions select (node under --conditions=source on Node)", () => {
    const forced = process.execArgv.includes("--conditions=keyroom-noble");
    assert.equal(primitives.backendName, forced ? "noble" : "node");
  });
  it("exposes working bound functions", () => {
    const seed = primitives.randomBytes(32);
    const pub = primitives.ed25519PublicKey(seed);
    const msg = primitives.utf8Encode("hello");
    const sig = primitives.ed25519Sign(primitives.concatBytes(seed, pub), msg);
    assert.equal(primitives.ed25519Verify(pub, msg, sig), true);
    assert.equal(primitives.encodeBase64(primitives.sha256(new Uint8Array(0))).length, 43);
    const a = primitives.randomBytes(32);
    const b = primitives.randomBytes(32);
    assert.deepEqual(
      primitives.x25519(a, primitives.x25519PublicKey(b)),
      primitives.x25519(b, primitives.x25519PublicKey(a)),
    );
  });
  it("throws CryptoPrimitiveError with a code", () => {
    assert.throws(
      () => primitives.aes256Ctr(new Uint8Array(1), new Uint8Array(16), new Uint8Array(0)),
      (e: unknown) => e instanceof primitives.CryptoPrimitiveError && e.code === "BAD_LENGTH",
    );
  });
});
