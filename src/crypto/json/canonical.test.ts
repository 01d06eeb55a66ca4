import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  CanonicalJsonError,
  canonicalJson,
  compareCodePoints,
  MAX_CANONICAL_JSON_DEPTH,
} from "./canonical.ts";

const isCode = (code: string) => (e: unknown) => e instanceof CanonicalJsonError && e.code === code;

describe("canonicalJson", () => {
  it("produces the Matrix specification's examples (appendices, Canonical JSON)", () => {
    const examples: [string, string][] = [
      ["{}", "{}"],
      ['{\n    "one": 1,\n    "two": "Two"\n}', '{"one":1,"two":"Two"}'],
      ['{\n    "b": "2",\n    "a": "1"\n}', '{"a":"1","b":"2"}'],
      ['{"b":"2","a":"1"}', '{"a":"1","b":"2"}'],
      [
        '{"auth":{"success":true,"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"medium":"email","address":"john.doe@example.org"},{"medium":"msisdn","address":"123456789"}]}}}',
        '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}',
      ],
      ['{"a": "日本語"}', '{"a":"日本語"}'],
      ['{"本": 2, "日": 1}', '{"日":1,"本":2}'],
      ['{"a": "\\u65E5"}', '{"a":"日"}'],
      ['{"a": null}', '{"a":null}'],
      ['{"a": -0, "b": 1e10}', '{"a":0,"b":10000000000}'],
    ];
    for (const [input, expected] of examples) {
      assert.equal(canonicalJson(JSON.parse(input)), expected, input);
    }
  });

  it("escapes exactly what the grammar escapes", () => {
    assert.equal(canonicalJson('"\\'), '"\\"\\\\"');
    assert.equal(canonicalJson("\b\t\n\f\r"), '"\\b\\t\\n\\f\\r"');
    assert.equal(canonicalJson("\u0000\u0001\u000b\u000e\u001f"), '"\\u0000\\u0001\\u000b\\u000e\\u001f"');
    // DEL, U+2028/2029, non-ASCII and astral characters stay raw; "/" is not escaped.
    assert.equal(canonicalJson("\u007f\u2028\u2029é/\u{1F600}"), '"\u007f\u2028\u2029é/\u{1F600}"');
  });

  it("sorts keys by code point, not UTF-16 code unit", () => {
    // U+FB01 sorts before U+1F600 by code point, though its code unit (0xFB01) is above 0xD83D.
    const obj = { "\u{1F600}": 1, "\uFB01": 2, a: 3, "": 4, ab: 5 };
    assert.equal(canonicalJson(obj), '{"":4,"a":3,"ab":5,"\uFB01":2,"\u{1F600}":1}');
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" }), (a, b) => {
        const byCodePoint = (s: string) => Array.from(s, (c) => c.codePointAt(0)!);
        const x = byCodePoint(a);
        const y = byCodePoint(b);
        let expected = 0;
        for (let i = 0; i < Math.min(x.length, y.length) && expected === 0; i++)
          expected = Math.sign(x[i]! - y[i]!);
        if (expected === 0) expected = Math.sign(x.length - y.length);
        assert.equal(Math.sign(compareCodePoints(a, b)), expected);
      }),
    );
  });

  it("accepts the integer range edges and rejects everything beyond", () => {
    assert.equal(canonicalJson([2 ** 53 - 1, -(2 ** 53) + 1, 0]), "[9007199254740991,-9007199254740991,0]");
    for (const n of [2 ** 53, -(2 ** 53), 1.5, -0.1, Number.NaN, Number.POSITIVE_INFINITY, 1e300]) {
      assert.throws(() => canonicalJson({ n }), isCode("BAD_NUMBER"), String(n));
    }
  });

  it("rejects values JSON cannot carry, lone surrogates, and excessive nesting", () => {
    assert.throws(() => canonicalJson([undefined]), isCode("BAD_VALUE"));
    assert.throws(() => canonicalJson({ f: () => 1 }), isCode("BAD_VALUE"));
    assert.throws(() => canonicalJson({ d: new Date(0) }), isCode("BAD_VALUE"));
    assert.throws(() => canonicalJson({ b: 1n }), isCode("BAD_VALUE"));
    assert.throws(() => canonicalJson({ s: Symbol("x") }), isCode("BAD_VALUE"));
    assert.throws(() => canonicalJson({ s: "a\uD800" }), isCode("BAD_STRING"));
    assert.throws(() => canonicalJson({ "\uDC00": 1 }), isCode("BAD_STRING"));
    let deep: unknown = 1;
    for (let i = 0; i < MAX_CANONICAL_JSON_DEPTH; i++) deep = [deep];
    assert.equal(canonicalJson(deep).length, MAX_CANONICAL_JSON_DEPTH * 2 + 1);
    assert.throws(() => canonicalJson([deep]), isCode("TOO_DEEP"));
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => canonicalJson(cyclic), isCode("TOO_DEEP"));
  });

  it("skips undefined members and accepts null-prototype objects", () => {
    const obj = Object.assign(Object.create(null) as Record<string, unknown>, { b: 1, a: undefined });
    assert.equal(canonicalJson(obj), '{"b":1}');
  });

  it("is a fixed point of JSON.parse for any JSON value, and equals a sorted JSON.stringify", () => {
    // A reference encoder built differently: JSON.stringify for scalars, explicit sorting by
    // code points (via Array.from) for keys. (Re-sorting an object and calling JSON.stringify
    // does not work: JavaScript enumerates integer-like keys first.)
    const byCodePoints = (a: string, b: string) => {
      const x = Array.from(a, (c) => c.codePointAt(0)!);
      const y = Array.from(b, (c) => c.codePointAt(0)!);
      for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
      return x.length - y.length;
    };
    const reference = (v: unknown): string => {
      if (Array.isArray(v)) return `[${v.map(reference).join(",")}]`;
      if (v !== null && typeof v === "object") {
        const rec = v as Record<string, unknown>;
        const keys = Object.keys(rec).sort(byCodePoints);
        return `{${keys.map((k) => `${JSON.stringify(k)}:${reference(rec[k])}`).join(",")}}`;
      }
      return JSON.stringify(v);
    };
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => {
        let text: string;
        try {
          text = canonicalJson(value);
        } catch (e) {
          // fast-check's JSON values include floats and -0 edge cases; those must fail as BAD_NUMBER.
          assert.ok(isCode("BAD_NUMBER")(e), String(e));
          return;
        }
        assert.equal(canonicalJson(JSON.parse(text)), text);
        assert.equal(text, reference(value));
      }),
      { numRuns: 300 },
    );
  });
});
