import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeKeyId, MAX_KEY_ID, nextKeyId, skipKeyIds } from "./key-id.ts";

describe("key IDs", () => {
  it("are unpadded base64 of 4 big-endian bytes, as libolm prints them", () => {
    assert.equal(encodeKeyId(1), "AAAAAQ");
    assert.equal(encodeKeyId(2), "AAAAAg");
    assert.equal(encodeKeyId(0x9a), "AAAAmg");
    assert.equal(encodeKeyId(MAX_KEY_ID), "/////w");
  });

  it("count up and wrap like a uint32", () => {
    assert.equal(nextKeyId(0), 1);
    assert.equal(nextKeyId(MAX_KEY_ID), 0);
    assert.equal(skipKeyIds(7, 5000), 5007);
    assert.equal(skipKeyIds(MAX_KEY_ID - 1, 3), 1);
  });
});
