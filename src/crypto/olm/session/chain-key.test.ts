import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { advanceChainKey, deriveMessageKey } from "./chain-key.ts";

// Expected values computed independently with Python's hmac/hashlib for C = bytes 0x00..0x1f.
const CHAIN_KEY = Uint8Array.from({ length: 32 }, (_, i) => i);
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("chain key", () => {
  it("advances with HMAC-SHA-256(C, 0x02)", () => {
    assert.equal(
      hex(advanceChainKey(CHAIN_KEY)),
      "4304c22c84a53755ab08ead8d97a8d429be5efa480682d7ad1da27f73e1fbe1d",
    );
  });

  it("derives the message key with HMAC-SHA-256(C, 0x01)", () => {
    assert.equal(
      hex(deriveMessageKey(CHAIN_KEY)),
      "9b4c8120a4823a95f47cde17a244f4507244ee6e3957d1fab9fa29b44d3829b7",
    );
  });

  it("does not modify its input", () => {
    const copy = CHAIN_KEY.slice();
    advanceChainKey(copy);
    deriveMessageKey(copy);
    assert.deepEqual(copy, CHAIN_KEY);
  });
});
