import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  concatBytes,
  constantTimeEqual,
  constantTimeEqualAt,
  utf8Decode,
  utf8Encode,
  utf8EncodeInto,
  wipe,
} from "./bytes.ts";
import { CryptoPrimitiveError } from "./errors.ts";

const isCode = (code: string) => (e: unknown) => e instanceof CryptoPrimitiveError && e.code === code;

describe("constantTimeEqualAt", () => {
  it("compares a prefix of one array with a range of another, as slices would", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }),
        fc.uint8Array({ maxLength: 80 }),
        fc.integer({ min: -2, max: 90 }),
        fc.integer({ min: 0, max: 45 }),
        (a, b, offset, length) => {
          const inBounds = offset >= 0 && length <= a.length && offset + length <= b.length;
          const expected =
            inBounds &&
            Buffer.from(a.subarray(0, length)).equals(Buffer.from(b.subarray(offset, offset + length)));
          assert.equal(constantTimeEqualAt(a, b, offset, length), expected);
          if (b.length >= length && a.length >= length) {
            const copy = b.slice();
            copy.set(a.subarray(0, length), 0);
            assert.equal(constantTimeEqualAt(a, copy, 0, length), true);
          }
        },
      ),
    );
  });
});

describe("constantTimeEqual", () => {
  it("is true exactly for equal byte strings", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 64 }), (a, b) => {
        assert.equal(constantTimeEqual(a, b), Buffer.from(a).equals(Buffer.from(b)));
        assert.equal(constantTimeEqual(a, a.slice()), true);
      }),
    );
  });
  it("detects a difference in any single bit at any position", () => {
    const a = new Uint8Array(32).map((_, i) => i * 7);
    for (let i = 0; i < 32; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const b = a.slice();
        b[i]! ^= 1 << bit;
        assert.equal(constantTimeEqual(a, b), false);
      }
    }
  });
  it("is false for different lengths, including a prefix", () => {
    assert.equal(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2, 0])), false);
    assert.equal(constantTimeEqual(new Uint8Array(0), new Uint8Array(0)), true);
  });
  it("refuses non-Uint8Array operands", () => {
    assert.throws(
      () => constantTimeEqual("ab" as unknown as Uint8Array, new Uint8Array(2)),
      isCode("BAD_ARGUMENT"),
    );
  });
});

describe("byte helpers", () => {
  it("concatBytes joins in order into a fresh array", () => {
    const a = new Uint8Array([1, 2]);
    const out = concatBytes(a, new Uint8Array(0), new Uint8Array([3]));
    assert.deepEqual(out, new Uint8Array([1, 2, 3]));
    out[0] = 9;
    assert.equal(a[0], 1);
    assert.deepEqual(concatBytes(), new Uint8Array(0));
  });
  it("wipe zeroes in place", () => {
    const a = new Uint8Array([1, 2, 3]);
    wipe(a);
    assert.deepEqual(a, new Uint8Array(3));
  });
});

describe("UTF-8", () => {
  it("round-trips any well-formed string, keeping a leading BOM", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), (s) => {
        assert.equal(utf8Decode(utf8Encode(s)), s);
      }),
    );
    assert.equal(utf8Decode(utf8Encode("\uFEFFx")), "\uFEFFx");
  });
  it("refuses malformed UTF-8 and lone surrogates with BAD_UTF8", () => {
    for (const bad of [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80]]) {
      assert.throws(() => utf8Decode(new Uint8Array(bad)), isCode("BAD_UTF8"));
    }
    assert.throws(() => utf8Encode("a\uD800b"), isCode("BAD_UTF8"));
    assert.throws(() => utf8Encode("\uDC00"), isCode("BAD_UTF8"));
    assert.deepEqual(utf8Encode("\u{1F600}"), new Uint8Array([0xf0, 0x9f, 0x98, 0x80]));
  });
  it("utf8EncodeInto writes what utf8Encode returns, and refuses what it refuses", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (s) => {
        const out = new Uint8Array(3 * s.length + 2).fill(0xaa);
        let expected: Uint8Array | string;
        try {
          expected = utf8Encode(s);
        } catch (e) {
          expected = (e as CryptoPrimitiveError).code;
        }
        let got: Uint8Array | string;
        try {
          got = out.slice(0, utf8EncodeInto(s, out));
        } catch (e) {
          got = (e as CryptoPrimitiveError).code;
        }
        assert.deepEqual(got, expected);
      }),
    );
    assert.throws(() => utf8EncodeInto("abc", new Uint8Array(8)), isCode("BAD_LENGTH"));
    assert.throws(() => utf8EncodeInto("a\uD800", new Uint8Array(6)), isCode("BAD_UTF8"));
  });
});
