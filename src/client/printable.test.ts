import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { printable, printableJson } from "./printable.ts";

/** Any character a terminal acts on or reorders text by. */
const UNSAFE = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/u;

/** Strings rich in controls: ESC sequences, OSC 52, C1 CSI, DEL, bidi overrides, lone surrogates. */
const hostile = fc.oneof(
  fc.string({ unit: "binary" }),
  fc.constantFrom(
    "\u001b]52;c;aGk=\u0007",
    "\u001b[2J\u001b[H",
    "\u009b31m",
    "a\u007fb",
    "\u202eevil",
    "\u2066x\u2069",
    "\ud800",
  ),
);

describe("printable", () => {
  it("leaves no control or bidirectional control, and changes nothing else (property)", () => {
    fc.assert(
      fc.property(hostile, (s) => {
        const out = printable(s);
        assert.ok(!UNSAFE.test(out), JSON.stringify(out));
        assert.equal(
          out.replace(/\\u[0-9a-f]{4}/g, ""),
          s.replace(/[\p{Cc}\u202a-\u202e\u2066-\u2069]/gu, "").replace(/\\u[0-9a-f]{4}/g, ""),
        );
      }),
    );
    assert.equal(printable("\u001b]52;c;aGk=\u0007 ok"), "\\u001b]52;c;aGk=\\u0007 ok");
    assert.equal(printable("plain text, émoji 🎉"), "plain text, émoji 🎉");
  });

  it("printableJson is the same JSON value, with no control or bidirectional control (property)", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.dictionary(hostile, hostile), (v, strings) => {
        for (const value of [v, strings]) {
          const out = printableJson(value);
          assert.ok(!UNSAFE.test(out));
          assert.deepEqual(JSON.parse(out), JSON.parse(JSON.stringify(value)));
        }
      }),
    );
    assert.equal(printableJson(undefined), "undefined");
  });
});
