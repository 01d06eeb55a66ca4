import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeBase64, randomBytes, x25519PublicKey } from "../primitives/index.ts";
import { OlmError } from "./errors.ts";
import { bytesEqual, decodeCurve25519Key, diffieHellman } from "./keys.ts";

const isCode = (code: string) => (e: unknown) => e instanceof OlmError && e.code === code;

describe("Curve25519 key helpers", () => {
  it("decodes 32-byte unpadded base64 keys and refuses anything else with BAD_KEY", () => {
    const key = randomBytes(32);
    assert.deepEqual(decodeCurve25519Key(encodeBase64(key), "k"), key);
    for (const bad of ["", "AAAA", "not base64!", encodeBase64(new Uint8Array(33))]) {
      assert.throws(() => decodeCurve25519Key(bad, "k"), isCode("BAD_KEY"));
    }
  });

  it("agrees on a shared secret both ways and refuses low-order keys", () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    assert.deepEqual(diffieHellman(a, x25519PublicKey(b)), diffieHellman(b, x25519PublicKey(a)));
    assert.throws(() => diffieHellman(a, new Uint8Array(32)), isCode("NON_CONTRIBUTORY_KEY"));
  });

  it("compares bytes", () => {
    assert.equal(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2)), true);
    assert.equal(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3)), false);
    assert.equal(bytesEqual(Uint8Array.of(1), Uint8Array.of(1, 2)), false);
  });
});
