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

  it("lists no unpublished keys without reading the published ones (asked on every engine pass)", () => {
    const store = new OneTimeKeyStore();
    let reads = 0;
    for (let i = 1; i <= MAX_ONE_TIME_KEYS; i++) {
      const key = makeCurveKey(i, randomBytes(32), true, randomBytes(32));
      let published = key.published;
      Object.defineProperty(key, "published", {
        get: () => {
          reads++;
          return published;
        },
        set: (v: boolean) => {
          published = v;
        },
      });
      store.add(key);
    }
    reads = 0;
    assert.deepEqual(store.unpublished(), {});
    assert.equal(reads, 0);
  });

  it("keeps its unpublished keys exact through adds, drops, uses, publishing and replacing", () => {
    const store = new OneTimeKeyStore();
    const model = new Map<string, { keyId: string; published: boolean }>();
    const expected = () =>
      Object.fromEntries([...model].filter(([, k]) => !k.published).map(([pub, k]) => [k.keyId, pub]));
    let id = 0;
    // A fixed pseudo-random walk, so a failure reproduces.
    let seed = 7;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let step = 0; step < 2000; step++) {
      const op = next(10);
      if (op < 6) {
        const key = makeCurveKey(++id, randomBytes(32), next(2) === 0, randomBytes(32));
        if (model.size >= MAX_ONE_TIME_KEYS) model.delete(model.keys().next().value as string);
        store.add(key);
        model.set(key.publicKeyBase64, { keyId: key.keyId, published: key.published });
      } else if (op < 8 && model.size > 0) {
        const pub = [...model.keys()][next(model.size)] as string;
        store.remove(pub);
        model.delete(pub);
      } else if (op === 8) {
        store.markAllPublished();
        for (const k of model.values()) k.published = true;
      } else {
        assert.equal(store.removeUnpublished(), Object.keys(expected()).length);
        for (const [pub, k] of model) if (!k.published) model.delete(pub);
      }
      assert.deepEqual(store.unpublished(), expected());
    }
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
