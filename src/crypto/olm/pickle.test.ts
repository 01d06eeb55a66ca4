import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OlmError } from "./errors.ts";
import {
  pickleArray,
  pickleBoolean,
  pickleBytes,
  pickleInteger,
  pickleObject,
  pickleVersion,
} from "./pickle.ts";

const bad = (f: () => unknown) =>
  assert.throws(
    f,
    (e) => e instanceof OlmError && e.code === "BAD_PICKLE" && !e.message.includes("c2VjcmV0"),
  );

describe("pickle field readers", () => {
  it("accept well-formed fields", () => {
    assert.deepEqual(pickleObject({ a: 1 }, "o"), { a: 1 });
    assert.deepEqual(pickleArray([1], "a", 1), [1]);
    assert.deepEqual([...pickleBytes("AQI", 2, "b")], [1, 2]);
    assert.equal(pickleInteger(7, 10, "i"), 7);
    assert.equal(pickleBoolean(false, "f"), false);
    pickleVersion({ version: 1 }, 1, "x");
  });

  it("refuse malformed fields with BAD_PICKLE, without echoing the value", () => {
    bad(() => pickleObject(null, "o"));
    bad(() => pickleObject([], "o"));
    bad(() => pickleArray([1, 2], "a", 1));
    bad(() => pickleArray({}, "a", 1));
    bad(() => pickleBytes("c2VjcmV0", 2, "b"));
    bad(() => pickleBytes("***", 2, "b"));
    bad(() => pickleBytes(5, 2, "b"));
    bad(() => pickleInteger(1.5, 10, "i"));
    bad(() => pickleInteger(11, 10, "i"));
    bad(() => pickleInteger("1", 10, "i"));
    bad(() => pickleBoolean(0, "f"));
    bad(() => pickleVersion({ version: 2 }, 1, "x"));
  });
});
