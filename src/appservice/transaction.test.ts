// MSC3202 data in a transaction: one malformed entry (a homeserver's bug, or a count of 1e400) is
// dropped — that device reads as unchanged — instead of the whole transaction being refused, which
// the homeserver would retry for ever while every virtual user waited.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TXN_DEVICE_LISTS, TXN_FALLBACK_KEYS, TXN_OTK_COUNTS } from "../wire/appservice.ts";
import { AppserviceError } from "./errors.ts";
import { parseTransaction } from "./transaction.ts";

const parse = (text: string) => parseTransaction(JSON.parse(text));

describe("transactions: MSC3202 entries", () => {
  it("drops a malformed count, fallback list or user ID and keeps the rest", () => {
    const txn = parse(
      `{"events":[],` +
        `"${TXN_OTK_COUNTS}":{"@a:x":{"A":{"signed_curve25519":50},"B":{"signed_curve25519":-1},` +
        `"C":{"signed_curve25519":1e400},"D":"many"},"@b:x":7,"__proto__":{"E":{"signed_curve25519":1}}},` +
        `"${TXN_FALLBACK_KEYS}":{"@a:x":{"A":["signed_curve25519"],"B":"signed_curve25519","C":[5,"x"]}},` +
        `"${TXN_DEVICE_LISTS}":{"changed":["@c:x",5,null],"left":[{"u":1},"@d:x"]}}`,
    );
    // A device whose counts are malformed is left out (unchanged), not read as holding none.
    assert.deepEqual(txn.oneTimeKeyCounts, { "@a:x": { A: { signed_curve25519: 50 } } });
    assert.equal(Object.getPrototypeOf(txn.oneTimeKeyCounts), Object.prototype);
    assert.deepEqual(txn.unusedFallbackKeyTypes, { "@a:x": { A: ["signed_curve25519"], C: ["x"] } });
    assert.deepEqual(txn.deviceLists, { changed: ["@c:x"], left: ["@d:x"] });
  });

  it("still refuses maps and lists that are not maps and lists", () => {
    for (const bad of [
      `{"events":[],"${TXN_OTK_COUNTS}":[]}`,
      `{"events":[],"${TXN_FALLBACK_KEYS}":"x"}`,
      `{"events":[],"${TXN_DEVICE_LISTS}":{"changed":"@a:x"}}`,
    ]) {
      assert.throws(() => parse(bad), AppserviceError, bad);
    }
  });
});
