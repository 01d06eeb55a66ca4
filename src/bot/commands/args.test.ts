import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { arg, parseArgs, parseDuration, tokenize, usageOf } from "./args.ts";

test("typed arguments parse, with rest verbatim and quotes grouping words", () => {
  const specs = { delay: arg.duration(), count: arg.int({ min: 1, max: 10 }).default(1), text: arg.rest() };
  const r = parseArgs(specs, ' 5m 3  tea  "and" biscuits');
  assert.deepEqual(r, { ok: true, values: { delay: 300_000, count: 3, text: 'tea  "and" biscuits' } });
  const q = parseArgs({ who: arg.user(), what: arg.string() }, '@a:b.c "two words"');
  assert.deepEqual(q, { ok: true, values: { who: "@a:b.c", what: "two words" } });
});

test("usage problems name the argument and what was expected", () => {
  const specs = { delay: arg.duration(), text: arg.rest() };
  assert.deepEqual(parseArgs(specs, ""), { ok: false, problem: "missing <delay>" });
  const bad = parseArgs(specs, "soon tea");
  assert.equal(bad.ok, false);
  assert.match(bad.ok ? "" : bad.problem, /^<delay>: expected a duration like 90s/);
  assert.deepEqual(parseArgs({ n: arg.int() }, "1 2"), { ok: false, problem: 'unexpected "2"' });
  assert.deepEqual(parseArgs({ c: arg.choice(["yes", "no"]) }, "maybe"), {
    ok: false,
    problem: '<c>: expected one of yes, no, got "maybe"',
  });
  assert.equal(
    usageOf({ delay: arg.duration(), n: arg.int().optional(), text: arg.rest() }),
    "<delay:duration> [n:number] <text...>",
  );
});

test("durations", () => {
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("90s"), 90_000);
  assert.equal(parseDuration("0s"), undefined);
  assert.equal(parseDuration("5"), undefined);
  assert.equal(parseDuration("400d"), undefined, "over a year");
});

test("the tokenizer and the parser never throw on any input", () => {
  const specs = { a: arg.int(), b: arg.duration().optional(), c: arg.rest().optional() };
  fc.assert(
    fc.property(fc.string({ unit: "grapheme", maxLength: 200 }), (s) => {
      tokenize(s);
      const r = parseArgs(specs, s);
      assert.ok(r.ok || typeof r.problem === "string");
    }),
  );
});
