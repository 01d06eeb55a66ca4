import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  base64Implementations,
  decodeArmouredBase64,
  decodeBase64,
  decodeBase64Scratch,
  decodeBase64Url,
  encodeBase64,
} from "./base64.ts";
import { CryptoPrimitiveError } from "./errors.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const isBadBase64 = (e: unknown) => e instanceof CryptoPrimitiveError && e.code === "BAD_BASE64";

const implementations = Object.entries(base64Implementations).filter(
  (entry): entry is [string, NonNullable<(typeof entry)[1]>] => entry[1] !== undefined,
);

it("uses the native codec on Node", () => {
  assert.ok(base64Implementations.native !== undefined);
  assert.equal(encodeBase64, base64Implementations.native.encodeBase64);
});

const outcome = (decode: (s: string) => Uint8Array, s: string): Uint8Array | "BAD_BASE64" => {
  try {
    return decode(s);
  } catch (e) {
    assert.ok(isBadBase64(e), String(e));
    return "BAD_BASE64";
  }
};

it("native and portable decoders accept exactly the same strings, long ones included", () => {
  const { native, portable } = base64Implementations;
  assert.ok(native !== undefined);
  // Valid encodings of up to 400 bytes (both sides of the length where decodeBase64 switches),
  // padded or not, with one character replaced, inserted or removed, or the alphabets swapped.
  const damaged = fc
    .tuple(
      fc.uint8Array({ maxLength: 400 }),
      fc.boolean(),
      fc.nat(),
      fc.constantFrom(..."A/+-_=. \n\u00e9\u0000"),
      fc.constantFrom("keep", "replace", "insert", "remove", "swap"),
    )
    .map(([b, pad, at, ch, how]) => {
      let s = Buffer.from(b).toString("base64");
      if (!pad) s = s.replace(/=+$/, "");
      const i = s.length === 0 ? 0 : at % s.length;
      if (how === "replace") return s.slice(0, i) + ch + s.slice(i + 1);
      if (how === "insert") return s.slice(0, i) + ch + s.slice(i);
      if (how === "remove") return s.slice(0, i) + s.slice(i + 1);
      if (how === "swap") return s.replace(/\+/g, "-").replace(/\//g, "_");
      return s;
    });
  fc.assert(
    fc.property(damaged, (s) => {
      const expected = outcome(portable.decodeBase64, s);
      assert.deepEqual(outcome(native.decodeBase64, s), expected);
      assert.deepEqual(outcome(decodeBase64, s), expected);
      const url = s.replace(/\+/g, "-").replace(/\//g, "_");
      const expectedUrl = outcome(portable.decodeBase64Url, url);
      assert.deepEqual(outcome(native.decodeBase64Url, url), expectedUrl);
      assert.deepEqual(outcome(decodeBase64Url, url), expectedUrl);
    }),
    { numRuns: 3000 },
  );
});

it("the native decoder returns a plain array of its own, not a view into Node's pool", () => {
  const out = decodeBase64(Buffer.from(new Uint8Array(200).fill(7)).toString("base64"));
  assert.equal(out.byteOffset, 0);
  assert.equal(out.buffer.byteLength, 200);
  assert.ok(!Buffer.isBuffer(out));
});

for (const [name, { decodeBase64, decodeBase64Url, encodeBase64, encodeBase64Url }] of implementations)
  describe(`base64 (${name})`, () => {
    it("RFC 4648 section 10 vectors, without padding", () => {
      const cases: [string, string][] = [
        ["", ""],
        ["f", "Zg"],
        ["fo", "Zm8"],
        ["foo", "Zm9v"],
        ["foob", "Zm9vYg"],
        ["fooba", "Zm9vYmE"],
        ["foobar", "Zm9vYmFy"],
      ];
      for (const [plain, b64] of cases) {
        assert.equal(encodeBase64(bytes(plain)), b64);
        assert.deepEqual(decodeBase64(b64), bytes(plain));
        const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
        assert.deepEqual(decodeBase64(padded), bytes(plain));
      }
    });

    it("uses +/ in the standard alphabet and -_ in the URL-safe one", () => {
      const b = new Uint8Array([0xfb, 0xff, 0xbf]);
      assert.equal(encodeBase64(b), "+/+/");
      assert.equal(encodeBase64Url(b), "-_-_");
      assert.deepEqual(decodeBase64Url("-_-_"), b);
      assert.throws(() => decodeBase64("-_-_"), isBadBase64);
      assert.throws(() => decodeBase64Url("+/+/"), isBadBase64);
    });

    it("rejects impossible lengths, stray characters, partial padding and non-canonical trailing bits", () => {
      for (const s of [
        "A",
        "AAAAA",
        "Zg=",
        "Zg===",
        "Z===",
        "Zm9v=",
        "=Zm9",
        "Zm 9v",
        "Zm9v\n",
        "Zm9vé",
        "Zm9v\u{1F600}",
        "Zh",
        "Zm9",
        "Zm9vYh==",
        "Zm=v",
      ]) {
        assert.throws(() => decodeBase64(s), isBadBase64, JSON.stringify(s));
      }
    });

    it("never echoes the input in its error message", () => {
      const secret = "c2VjcmV0a2V5bWF0ZXJpYWw!";
      assert.throws(
        () => decodeBase64(secret),
        (e: unknown) => e instanceof CryptoPrimitiveError && !e.message.includes("c2VjcmV0"),
      );
    });

    it("agrees with Node's Buffer encoder (unpadded) on random bytes, and round-trips", () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
          const std = encodeBase64(b);
          assert.equal(std, Buffer.from(b).toString("base64").replace(/=+$/, ""));
          assert.equal(encodeBase64Url(b), Buffer.from(b).toString("base64url"));
          assert.deepEqual(decodeBase64(std), b);
          assert.deepEqual(decodeBase64Url(encodeBase64Url(b)), b);
        }),
        { numRuns: 500 },
      );
    });

    it("decoding arbitrary strings either fails with BAD_BASE64 or yields the canonical form back", () => {
      const alphabetish = fc.string({
        unit: fc.constantFrom(
          ..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n.é\u0000",
        ),
        maxLength: 40,
      });
      fc.assert(
        fc.property(fc.oneof(alphabetish, fc.string({ unit: "grapheme", maxLength: 20 })), (s) => {
          for (const [decode, encode] of [
            [decodeBase64, encodeBase64],
            [decodeBase64Url, encodeBase64Url],
          ] as const) {
            let out: Uint8Array;
            try {
              out = decode(s);
            } catch (e) {
              assert.ok(isBadBase64(e), String(e));
              continue;
            }
            assert.equal(encode(out), s.replace(/=+$/, ""));
          }
        }),
        { numRuns: 2000 },
      );
    });

    it("rejects non-strings with a typed error", () => {
      assert.throws(() => decodeBase64(42 as unknown as string), isBadBase64);
      assert.throws(
        () => encodeBase64("abc" as unknown as Uint8Array),
        (e: unknown) => e instanceof CryptoPrimitiveError && e.code === "BAD_ARGUMENT",
      );
    });
  });

it("native and portable encoders agree on random bytes", () => {
  const { native, portable } = base64Implementations;
  assert.ok(native !== undefined);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), fc.nat(8), (b, offset) => {
      // A view into a larger buffer, as callers pass subarrays.
      const view = new Uint8Array(b.length + offset * 2).subarray(offset, offset + b.length);
      view.set(b);
      assert.equal(native.encodeBase64(view), portable.encodeBase64(b));
      assert.equal(native.encodeBase64Url(view), portable.encodeBase64Url(b));
    }),
    { numRuns: 500 },
  );
});

describe("decodeBase64Scratch", () => {
  const verdict = (f: () => Uint8Array): Uint8Array | string => {
    try {
      return f().slice();
    } catch (e) {
      assert.ok(e instanceof CryptoPrimitiveError);
      return e.code;
    }
  };
  it("decodes and refuses exactly as decodeBase64, into the scratch when the bytes fit", () => {
    const scratch = new Uint8Array(48);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b).toString("base64")),
          fc.string({ maxLength: 80 }),
          // Canonical texts with one character changed: Node's own decoder skips or maps most of
          // these (the other alphabet, whitespace, padding inside, a non-ASCII character), the
          // scratch decoder must still refuse them as the lookup tables do.
          fc
            .tuple(
              fc.uint8Array({ minLength: 1, maxLength: 48 }),
              fc.nat(),
              fc.constantFrom("-", "_", "=", " ", "\n", "\u00e9", "\u0100", "A", "B", "Q", "g", "+", "/"),
              fc.boolean(),
            )
            .map(([b, at, c, padded]) => {
              const text = padded ? Buffer.from(b).toString("base64") : encodeBase64(b);
              const i = at % text.length;
              return text.slice(0, i) + c + text.slice(i + 1);
            }),
        ),
        (text) => {
          assert.deepEqual(
            verdict(() => decodeBase64Scratch(text, scratch)),
            verdict(() => decodeBase64(text)),
          );
        },
      ),
    );
    const fits = decodeBase64Scratch("AAECAwQ", scratch);
    assert.equal(fits.buffer, scratch.buffer);
    assert.deepEqual(fits, new Uint8Array([0, 1, 2, 3, 4]));
    const long = decodeBase64Scratch("A".repeat(68), scratch);
    assert.notEqual(long.buffer, scratch.buffer);
    assert.equal(long.length, 51);
    const native = decodeBase64Scratch("A".repeat(2000), new Uint8Array(4096));
    assert.equal(native.length, 1500, "long texts fit a large scratch too");
    assert.equal(native.buffer.byteLength, 4096);
  });
});

describe("decodeArmouredBase64", () => {
  it("decodes base64 spread over lines, padded or not, as decodeBase64 does without the whitespace", () =>
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.integer({ min: 1, max: 97 }), (data, width) => {
        const text = encodeBase64(data);
        const padded = text + "=".repeat((4 - (text.length % 4)) % 4);
        const lines = (padded.match(new RegExp(`.{1,${width}}`, "g")) ?? []).join("\r\n");
        assert.deepEqual(decodeArmouredBase64(`\n${lines}\n`), data);
        assert.deepEqual(decodeArmouredBase64(text), data);
      }),
    ));

  it("refuses characters outside the standard alphabet and padding before the end", () => {
    for (const text of ["ab-c", "ab_c", "ab=c", "YQ==YQ", "YQ=\n=a", "a\u00e9bc", "ab.c"]) {
      assert.throws(() => decodeArmouredBase64(text), isBadBase64, text);
    }
  });
});
