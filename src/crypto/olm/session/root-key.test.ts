import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { advanceRootKey, deriveInitialKeys } from "./root-key.ts";

// Expected values computed independently with Python (RFC 5869 HKDF written out over hmac/hashlib).
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const seq = (from: number, n: number) => Uint8Array.from({ length: n }, (_, i) => from + i);

describe("root key", () => {
  it("R0 || C0,0 = HKDF(no salt, S, 'OLM_ROOT', 64)", () => {
    const { rootKey, chainKey } = deriveInitialKeys(seq(0, 96));
    assert.equal(hex(rootKey), "61b3da11cad2745430970d3a1cde37dcbe966cda08355d72fe46bd5511cb4d79");
    assert.equal(hex(chainKey), "663e327639bb0d895275e63b2cc6d76cb614a0e7601283e0926ff40b163525aa");
  });

  it("Ri || Ci,0 = HKDF(salt Ri-1, ECDH secret, 'OLM_RATCHET', 64)", () => {
    const { rootKey, chainKey } = advanceRootKey(seq(32, 32), seq(64, 32));
    assert.equal(hex(rootKey), "2b9b1527fce697735e17e134e84994a6d0fdb5dc4b3b82fe64657a7cc50bf5b8");
    assert.equal(hex(chainKey), "f462991e26aaf9eec6f884241ccfe12bd2a5a403eeee6d6a506efc01b346dfa3");
  });
});
