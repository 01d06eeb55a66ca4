import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { randomBytes } from "../../primitives/index.ts";
import { FallbackKeys } from "./fallback-keys.ts";
import { makeCurveKey } from "./one-time-keys.ts";

describe("fallback keys", () => {
  it("rotation keeps the previous key usable until forgotten", () => {
    const keys = new FallbackKeys();
    assert.deepEqual(keys.unpublished(), {});
    const first = makeCurveKey(1, randomBytes(32), false);
    keys.rotate(first);
    assert.deepEqual(keys.unpublished(), { AAAAAQ: first.publicKeyBase64 });
    keys.markPublished();
    assert.deepEqual(keys.unpublished(), {});
    const second = makeCurveKey(2, randomBytes(32), false);
    keys.rotate(second);
    assert.deepEqual(keys.unpublished(), { AAAAAg: second.publicKeyBase64 });
    assert.equal(keys.get(first.publicKeyBase64), first);
    assert.equal(keys.get(second.publicKeyBase64), second);
    keys.forgetOld();
    assert.equal(keys.get(first.publicKeyBase64), undefined);
    assert.ok(
      first.secretKey.every((b) => b === 0),
      "forgotten key wiped",
    );
    assert.equal(keys.get(second.publicKeyBase64), second);
  });

  it("a third rotation drops the oldest key", () => {
    const keys = new FallbackKeys();
    const k = [1, 2, 3].map((id) => makeCurveKey(id, randomBytes(32), false));
    for (const key of k) keys.rotate(key);
    assert.equal(keys.get(k[0]?.publicKeyBase64 ?? ""), undefined);
    assert.ok(keys.get(k[1]?.publicKeyBase64 ?? "") !== undefined);
  });

  it("round-trips through its pickle", () => {
    const keys = new FallbackKeys();
    keys.rotate(makeCurveKey(1, randomBytes(32), true));
    keys.rotate(makeCurveKey(2, randomBytes(32), false));
    const p = keys.toPickle();
    const back = FallbackKeys.fromPickle(JSON.parse(JSON.stringify(p)), "f");
    assert.deepEqual(back.toPickle(), p);
    assert.deepEqual(back.unpublished(), keys.unpublished());
  });
});
