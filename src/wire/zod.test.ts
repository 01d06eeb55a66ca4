// The wire schemas moved from classic zod to zod/mini (for the browser bundle's size): the issues
// they report, messages included, must read as before. Classic zod is still a dependency (the bot's
// config file), so the two are compared side by side here. Classic zod is imported only in the second
// test: loading it installs its messages, which would hide their absence from the first.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as z from "./zod.ts";

const wellFormed = (s: string) => s.isWellFormed();

/** Each pair: the same schema written both ways. */
const pairsWith = (classic: typeof import("zod").z) =>
  [
    [z.string().check(z.minLength(1), z.maxLength(3)), classic.string().min(1).max(3)],
    [z.number().check(z.int(), z.nonnegative()), classic.number().int().nonnegative()],
    [z.number().check(z.int(), z.positive()), classic.number().int().positive()],
    [z.string().check(z.regex(/^[a-z]+$/)), classic.string().regex(/^[a-z]+$/)],
    [z.string().check(z.startsWith("mxc://")), classic.string().startsWith("mxc://")],
    [
      z.string().check(z.refine(wellFormed, "not well-formed Unicode")),
      classic.string().refine(wellFormed, "not well-formed Unicode"),
    ],
    [
      z.looseObject({ a: z.string(), b: z.optional(z.array(z.string()).check(z.maxLength(1))) }),
      classic.looseObject({ a: classic.string(), b: classic.array(classic.string()).max(1).optional() }),
    ],
    [z.record(z.string(), z.boolean()), classic.record(classic.string(), classic.boolean())],
    [z.nullable(z.string().check(z.url())), classic.string().url().nullable()],
  ] as const;

const inputs: unknown[] = [
  undefined,
  null,
  1,
  -1,
  1.5,
  "",
  "abcd",
  "ab",
  "AB",
  "mxc://x",
  "\uD800",
  "not a url",
  "https://example.org",
  [],
  {},
  { a: 1 },
  { a: "x", b: ["1", "2"] },
  { a: "x", b: ["1"], c: true },
  { k: "v" },
];

describe("wire schemas on zod/mini", () => {
  it("report zod's English messages (installed by wire/zod.ts, as classic zod does)", () => {
    const r = z.string().check(z.minLength(2)).safeParse(1);
    assert.equal(r.success, false);
    assert.equal(r.error?.issues[0]?.message, "Invalid input: expected string, received number");
    const short = z.string().check(z.minLength(2)).safeParse("a");
    assert.equal(short.error?.issues[0]?.message, "Too small: expected string to have >=2 characters");
  });

  it("accept, reject and report exactly as the classic schemas did", async () => {
    const { z: classic } = await import("zod");
    for (const [mini, old] of pairsWith(classic)) {
      for (const input of inputs) {
        const a = mini.safeParse(input);
        const b = old.safeParse(input);
        assert.equal(a.success, b.success, `${JSON.stringify(input)}`);
        if (a.success && b.success) assert.deepEqual(a.data, b.data);
        else assert.deepEqual(a.error?.issues, b.error?.issues, `${JSON.stringify(input)}`);
      }
    }
  });
});
