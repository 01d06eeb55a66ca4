import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeBase64, randomBytes } from "../../primitives/index.ts";
import { OlmError } from "../errors.ts";
import { checkKeyCount, MAX_ONE_TIME_KEYS, makeCurveKey, OneTimeKeyStore } from "./one-time-keys.ts";

describe("one-time key store", () => {
  it("lists unpublished keys by key ID, and none once published", () => {
    const store = new OneTimeKeyStore();
    const a = makeCurveKey(1, randomBytes(32), false);
    const b = makeCurveKey(2, randomBytes(32), false);
    store.add(a);
    store.add(b);
    assert.deepEqual(store.unpublished(), { AAAAAQ: a.publicKeyBase64, AAAAAg: b.publicKeyBase64 });
    store.markAllPublished();
    assert.deepEqual(store.unpublished(), {});
    assert.equal(store.get(a.publicKeyBase64), a, "published keys stay usable");
  });

  it(`drops the oldest key beyond MAX_ONE_TIME_KEYS (${MAX_ONE_TIME_KEYS})`, () => {
    const store = new OneTimeKeyStore();
    const keys = Array.from({ length: MAX_ONE_TIME_KEYS + 3 }, (_, i) =>
      makeCurveKey(i + 1, randomBytes(32), false),
    );
    for (const k of keys) store.add(k);
    assert.equal(store.size, MAX_ONE_TIME_KEYS);
    for (const k of keys.slice(0, 3)) assert.equal(store.get(k.publicKeyBase64), undefined);
    assert.ok(store.get(keys[3]?.publicKeyBase64 ?? "") !== undefined);
  });

  it("removes and wipes a used key", () => {
    const store = new OneTimeKeyStore();
    const k = makeCurveKey(1, randomBytes(32), true);
    store.add(k);
    store.remove(k.publicKeyBase64);
    assert.equal(store.size, 0);
    assert.ok(k.secretKey.every((b) => b === 0));
  });

  it("round-trips through its pickle and refuses duplicates", () => {
    const store = new OneTimeKeyStore();
    store.add(makeCurveKey(7, randomBytes(32), false));
    store.add(makeCurveKey(8, randomBytes(32), true));
    const pickle = store.toPickle();
    const back = OneTimeKeyStore.fromPickle(JSON.parse(JSON.stringify(pickle)), "k");
    assert.deepEqual(back.toPickle(), pickle);
    assert.deepEqual(back.unpublished(), store.unpublished());
    assert.throws(
      () => OneTimeKeyStore.fromPickle([pickle[0], pickle[0]], "k"),
      (e) => e instanceof OlmError && e.code === "BAD_PICKLE",
    );
  });

  it(`reads pickles of up to MAX_ONE_TIME_KEYS (${MAX_ONE_TIME_KEYS}) keys and refuses more`, () => {
    const entry = (id: number) => ({
      id,
      secretKey: encodeBase64(randomBytes(32)),
      publicKey: encodeBase64(randomBytes(32)),
      published: true,
    });
    const full = Array.from({ length: MAX_ONE_TIME_KEYS }, (_, i) => entry(i + 1));
    assert.equal(OneTimeKeyStore.fromPickle(full, "k").size, MAX_ONE_TIME_KEYS);
    assert.throws(
      () => OneTimeKeyStore.fromPickle([...full, entry(MAX_ONE_TIME_KEYS + 1)], "k"),
      (e) => e instanceof OlmError && e.code === "BAD_PICKLE",
    );
  });

  it("keeps each public key in the pickle, and computes it for older pickles without one", () => {
    const key = makeCurveKey(3, randomBytes(32), true);
    const store = new OneTimeKeyStore();
    store.add(key);
    const [entry] = store.toPickle();
    assert.equal(entry?.publicKey, key.publicKeyBase64);
    const { publicKey: _, ...older } = entry ?? {};
    assert.ok(OneTimeKeyStore.fromPickle([older], "k").get(key.publicKeyBase64) !== undefined);
    assert.throws(
      () => OneTimeKeyStore.fromPickle([{ ...entry, publicKey: "AAAA" }], "k"),
      (e) => e instanceof OlmError && e.code === "BAD_PICKLE",
    );
  });

  it("refuses key counts that are not non-negative integers", () => {
    for (const n of [-1, 1.5, Number.NaN, 2 ** 33]) {
      assert.throws(
        () => checkKeyCount(n),
        (e) => e instanceof OlmError && e.code === "BAD_ARGUMENT",
      );
    }
    checkKeyCount(0);
  });
});
