import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { arg, MAX_QUOTED_INPUT, parseArgs, parseDuration, quoteInput, tokenize, usageOf } from "./args.ts";

test("typed arguments parse, with rest verbatim and quotes grouping words", () => {
  const specs = { delay: arg.duration(), count: arg.int({ min: 1, max: 10 }).default(1), text: arg.rest() };
  const r = parseArgs(specs, ' 5m 3  tea  "and" biscuits');
  assert.deepEqual(r, { ok: true, values: { delay: 300_000, count: 3, text: 'tea  "and" biscuits' } });
  const q = parseArgs({ who: arg.user(), what: arg.string() }, '@a:b.c "two words"');
  assert.deepEqual(q, { ok: true, values: { who: "@a:b.c", what: "two words" } });
});

test("a quote inside a word is text; a quote opening a token groups; a backslash makes a quote literal", () => {
  const two = { a: arg.string(), b: arg.string() };
  assert.deepEqual(parseArgs(two, "don't stop"), { ok: true, values: { a: "don't", b: "stop" } });
  assert.deepEqual(parseArgs(two, "l'école Bob's"), { ok: true, values: { a: "l'école", b: "Bob's" } });
  assert.deepEqual(parseArgs(two, 'x "he said \\"hi\\""'), {
    ok: true,
    values: { a: "x", b: 'he said "hi"' },
  });
  assert.deepEqual(parseArgs(two, "\u201ctwo words\u201d C:\\dir"), {
    ok: true,
    values: { a: "two words", b: "C:\\dir" },
  });
  assert.deepEqual(parseArgs(two, "'a b' '' "), { ok: true, values: { a: "a b", b: "" } });
});

test("a user argument takes a mention pill's text, quoted or as whole words, for its user ID", () => {
  const specs = { who: arg.user(), rest: arg.rest().optional() };
  const pills = [
    { text: "Al", userId: "@al:x.org" },
    { text: "Al Bo", userId: "@albo:x.org" },
  ];
  assert.deepEqual(parseArgs(specs, "Al Bo says hi", pills), {
    ok: true,
    values: { who: "@albo:x.org", rest: "says hi" },
  });
  assert.deepEqual(parseArgs(specs, '"Al Bo" hi', pills), {
    ok: true,
    values: { who: "@albo:x.org", rest: "hi" },
  });
  assert.deepEqual(parseArgs(specs, "Al", pills), {
    ok: true,
    values: { who: "@al:x.org", rest: undefined },
  });
  assert.equal(parseArgs(specs, "Alan", pills).ok, false, "whole words only");
  assert.equal(parseArgs(specs, "Al Bo", []).ok, false, "no pill, no user");
  assert.deepEqual(parseArgs({ text: arg.string() }, "Al", pills), { ok: true, values: { text: "Al" } });
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

test("usage answers quote at most MAX_QUOTED_INPUT characters of the input, well-formed and on one line", () => {
  // An emoji across the cut: half of its surrogate pair made the answer one no server accepts.
  const problem = (s: string) => {
    const r = parseArgs({ n: arg.int() }, s);
    return r.ok ? "" : r.problem;
  };
  assert.equal(problem(`${"x".repeat(39)}😀`), `<n>: expected a whole number, got "${"x".repeat(39)}…"`);
  assert.equal(quoteInput("a\u202eb\nc\u0000"), "a\\u202eb\\u000ac\\u0000");
  assert.equal(quoteInput("\ud800"), "\ufffd");
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 300 }), (s) => {
      for (const text of [quoteInput(s), problem(s), problem(`1 ${s}`)]) {
        assert.ok(text.isWellFormed());
        assert.doesNotMatch(text, /[\p{Cc}\u202a-\u202e\u2066-\u2069]/u);
        assert.ok(text.length <= 60 + MAX_QUOTED_INPUT * 6, "bounded, escapes included");
      }
    }),
    { seed: 20261207, numRuns: 500 },
  );
});
