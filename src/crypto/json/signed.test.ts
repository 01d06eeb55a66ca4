import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  concatBytes,
  decodeBase64,
  ed25519PublicKey,
  ed25519Sign,
  encodeBase64,
  randomBytes,
  utf8Decode,
} from "../primitives/index.ts";
import { SignedJsonError, signingBytes, signJson, verifySignedJson } from "./signed.ts";

// Matrix specification, appendices "Cryptographic Test Vectors": seed, server name, key ID and
// the expected signatures of {} and {"one":1,"two":"Two"}.
// The published seed's last character carries non-zero leftover bits, so our strict decoder
// (like vodozemac's) refuses it; Buffer's lenient decoder reads the 32 bytes the spec means.
const SPEC_SEED_BASE64 = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1";
const SPEC_SEED = new Uint8Array(Buffer.from(SPEC_SEED_BASE64, "base64"));
const SERVER = "domain";
const KEY_ID = "ed25519:1";

function signer(seed: Uint8Array) {
  const pub = ed25519PublicKey(seed);
  const secret = concatBytes(seed, pub);
  return { publicKey: encodeBase64(pub), sign: (m: Uint8Array) => encodeBase64(ed25519Sign(secret, m)) };
}

describe("signed JSON", () => {
  const spec = signer(SPEC_SEED);

  it("the spec's seed is non-canonical base64, which decodeBase64 refuses", () => {
    assert.equal(SPEC_SEED.length, 32);
    assert.throws(() => decodeBase64(SPEC_SEED_BASE64), { name: "CryptoPrimitiveError", code: "BAD_BASE64" });
  });

  it("reproduces the specification's JSON signing vectors", () => {
    const empty = signJson({}, SERVER, KEY_ID, spec.sign);
    assert.deepEqual(empty, {
      signatures: {
        domain: {
          "ed25519:1":
            "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ",
        },
      },
    });
    const data = signJson({ one: 1, two: "Two" }, SERVER, KEY_ID, spec.sign);
    assert.deepEqual(data, {
      one: 1,
      two: "Two",
      signatures: {
        domain: {
          "ed25519:1":
            "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw",
        },
      },
    });
    assert.equal(verifySignedJson(empty, SERVER, KEY_ID, spec.publicKey), true);
    assert.equal(verifySignedJson(data, SERVER, KEY_ID, spec.publicKey), true);
  });

  it("excludes signatures and unsigned from the signed bytes, keeps them in the output, and does not mutate", () => {
    const input = { b: 2, a: 1, unsigned: { age: 5 }, signatures: { other: { "ed25519:X": "sig" } } };
    const before = structuredClone(input);
    assert.equal(utf8Decode(signingBytes(input)), '{"a":1,"b":2}');
    const signed = signJson(input, "@alice:example.org", "ed25519:DEV", spec.sign);
    assert.deepEqual(input, before);
    assert.deepEqual(signed.unsigned, { age: 5 });
    assert.equal(signed.signatures.other?.["ed25519:X"], "sig");
    assert.equal(verifySignedJson(signed, "@alice:example.org", "ed25519:DEV", spec.publicKey), true);
    // unsigned may change in transit without breaking the signature; signed content may not.
    assert.equal(
      verifySignedJson(
        { ...signed, unsigned: { age: 99 } },
        "@alice:example.org",
        "ed25519:DEV",
        spec.publicKey,
      ),
      true,
    );
    assert.equal(
      verifySignedJson({ ...signed, a: 3 }, "@alice:example.org", "ed25519:DEV", spec.publicKey),
      false,
    );
  });

  it("adds a second signature next to the first", () => {
    const other = signer(randomBytes(32));
    const once = signJson({ x: "y" }, "@a:b", "ed25519:ONE", spec.sign);
    const twice = signJson(once, "@a:b", "ed25519:TWO", other.sign);
    assert.equal(verifySignedJson(twice, "@a:b", "ed25519:ONE", spec.publicKey), true);
    assert.equal(verifySignedJson(twice, "@a:b", "ed25519:TWO", other.publicKey), true);
    assert.equal(verifySignedJson(twice, "@a:b", "ed25519:TWO", spec.publicKey), false);
  });

  it("returns false for wrong entity, key ID, key, algorithm, or malformed parts", () => {
    const signed = signJson({ x: 1 }, "@a:b", "ed25519:DEV", spec.sign);
    const sig = signed.signatures["@a:b"]!["ed25519:DEV"]!;
    const cases: [unknown, string, string, string][] = [
      [signed, "@c:d", "ed25519:DEV", spec.publicKey],
      [signed, "@a:b", "ed25519:OTHER", spec.publicKey],
      [signed, "@a:b", "curve25519:DEV", spec.publicKey],
      [signed, "@a:b", "ed25519:DEV", encodeBase64(new Uint8Array(32))],
      [signed, "@a:b", "ed25519:DEV", "not base64!"],
      [signed, "@a:b", "ed25519:DEV", encodeBase64(new Uint8Array(31))],
      [
        { ...signed, signatures: { "@a:b": { "ed25519:DEV": `${sig}A` } } },
        "@a:b",
        "ed25519:DEV",
        spec.publicKey,
      ],
      [{ ...signed, signatures: { "@a:b": { "ed25519:DEV": 5 } } }, "@a:b", "ed25519:DEV", spec.publicKey],
      [{ ...signed, signatures: { "@a:b": "x" } }, "@a:b", "ed25519:DEV", spec.publicKey],
      [{ ...signed, signatures: null }, "@a:b", "ed25519:DEV", spec.publicKey],
      [{ ...signed, x: 1.5 }, "@a:b", "ed25519:DEV", spec.publicKey],
      [{ x: 1 }, "@a:b", "ed25519:DEV", spec.publicKey],
      [null, "@a:b", "ed25519:DEV", spec.publicKey],
      [[signed], "@a:b", "ed25519:DEV", spec.publicKey],
      ["string", "@a:b", "ed25519:DEV", spec.publicKey],
      [
        { ...signed, signatures: Object.create({ "@a:b": signed.signatures["@a:b"] }) },
        "@a:b",
        "ed25519:DEV",
        spec.publicKey,
      ],
    ];
    for (const [obj, entity, keyId, key] of cases) {
      assert.equal(verifySignedJson(obj, entity, keyId, key), false, JSON.stringify([entity, keyId, key]));
    }
  });

  it("never throws, whatever object arrives", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.anything()),
        fc.string({ maxLength: 90 }),
        (value, sig) => {
          const withSig =
            value !== null && typeof value === "object" && !Array.isArray(value)
              ? { ...value, signatures: { "@a:b": { "ed25519:DEV": sig } } }
              : value;
          assert.equal(verifySignedJson(withSig, "@a:b", "ed25519:DEV", spec.publicKey), false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("refuses to sign non-objects, malformed signatures blocks and content without a canonical form", () => {
    assert.throws(
      () => signJson([] as unknown as Record<string, unknown>, "e", "ed25519:K", spec.sign),
      (e: unknown) => e instanceof SignedJsonError && e.code === "BAD_OBJECT",
    );
    assert.throws(
      () => signJson({ signatures: { e: "x" } }, "e", "ed25519:K", spec.sign),
      (e: unknown) => e instanceof SignedJsonError && e.code === "BAD_OBJECT",
    );
    assert.throws(() => signJson({ f: 0.5 }, "e", "ed25519:K", spec.sign), { name: "CanonicalJsonError" });
  });
});
