// MSC3202 data in a transaction: one malformed entry (a homeserver's bug, or a count of 1e400) is
// dropped — that device reads as unchanged — instead of the whole transaction being refused, which
// the homeserver would retry for ever while every virtual user waited.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  MAX_TXN_EVENTS,
  TXN_DEVICE_LISTS,
  TXN_DEVICE_LISTS_STABLE,
  TXN_FALLBACK_KEYS,
  TXN_FALLBACK_KEYS_STABLE,
  TXN_OTK_COUNTS,
  TXN_OTK_COUNTS_STABLE,
  TXN_TO_DEVICE,
  TXN_TO_DEVICE_STABLE,
} from "../wire/appservice.ts";
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

// Synapse sends the prefixed names; newer homeservers may send the unprefixed ones.
describe("transactions: unstable and unprefixed field names", () => {
  const UNSTABLE = [TXN_TO_DEVICE, TXN_DEVICE_LISTS, TXN_OTK_COUNTS, TXN_FALLBACK_KEYS] as const;
  const STABLE = [
    TXN_TO_DEVICE_STABLE,
    TXN_DEVICE_LISTS_STABLE,
    TXN_OTK_COUNTS_STABLE,
    TXN_FALLBACK_KEYS_STABLE,
  ] as const;
  const toDevice = (n: number) => ({
    type: "m.room.encrypted",
    sender: "@s:x",
    content: { n },
    to_user_id: "@a:x",
    to_device_id: "A",
  });
  const body = (names: readonly string[], n: number) => ({
    events: [],
    [names[0] as string]: [toDevice(n)],
    [names[1] as string]: { changed: [`@c${n}:x`], left: [`@d${n}:x`] },
    [names[2] as string]: { "@a:x": { A: { signed_curve25519: n } } },
    [names[3] as string]: { "@a:x": { A: [`alg${n}`] } },
  });
  const expectRead = (raw: unknown, n: number) => {
    const txn = parseTransaction(raw);
    assert.deepEqual(txn.toDevice, [toDevice(n)]);
    assert.deepEqual(txn.deviceLists, { changed: [`@c${n}:x`], left: [`@d${n}:x`] });
    assert.deepEqual(txn.oneTimeKeyCounts, { "@a:x": { A: { signed_curve25519: n } } });
    assert.deepEqual(txn.unusedFallbackKeyTypes, { "@a:x": { A: [`alg${n}`] } });
  };

  it("reads the prefixed names", () => expectRead(body(UNSTABLE, 1), 1));
  it("reads the unprefixed names", () => expectRead(body(STABLE, 2), 2));
  it("prefers the unprefixed names when both are present", () => {
    expectRead({ ...body(UNSTABLE, 1), ...body(STABLE, 2) }, 2);
  });

  it("bounds the unprefixed names as the prefixed ones", () => {
    for (const name of [TXN_TO_DEVICE, TXN_TO_DEVICE_STABLE]) {
      const raw = { events: [], [name]: new Array(MAX_TXN_EVENTS + 1).fill(toDevice(0)) };
      assert.throws(() => parseTransaction(raw), AppserviceError, name);
    }
    for (const names of [UNSTABLE, STABLE]) {
      const txn = parseTransaction({
        events: [],
        [names[0]]: [{ type: "m.room.encrypted" }, toDevice(3)],
        [names[2]]: { "@a:x": { A: { signed_curve25519: -1 }, B: { signed_curve25519: 3 } } },
      });
      assert.deepEqual(txn.toDevice, [toDevice(3)]);
      assert.deepEqual(txn.oneTimeKeyCounts, { "@a:x": { B: { signed_curve25519: 3 } } });
      assert.throws(() => parseTransaction({ events: [], [names[1]]: { changed: "@a:x" } }), AppserviceError);
    }
  });
});
