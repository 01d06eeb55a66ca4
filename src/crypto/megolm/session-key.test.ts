import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeBase64, encodeBase64 } from "../primitives/index.ts";
import { OutboundGroupSession } from "./outbound.ts";
import {
  decodeExportedKey,
  decodeSessionKey,
  EXPORTED_KEY_LENGTH,
  SESSION_KEY_LENGTH,
} from "./session-key.ts";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe("Megolm session keys", () => {
  const session = OutboundGroupSession.create();
  session.encrypt("advance to index 1");
  const key = session.sessionKey();
  const raw = decodeBase64(key);

  it("v2 key: version 2, big-endian index, ratchet, signing key, signature", () => {
    assert.equal(raw.length, SESSION_KEY_LENGTH);
    assert.equal(raw[0], 2);
    assert.deepEqual([...raw.subarray(1, 5)], [0, 0, 0, 1]);
    assert.equal(encodeBase64(raw.subarray(133, 165)), session.sessionId);
    const decoded = decodeSessionKey(key);
    assert.equal(decoded.ratchet.counter, 1);
    assert.equal(encodeBase64(decoded.signingKey), session.sessionId);
  });

  it("rejects a flipped bit anywhere as a bad signature or a bad key", () => {
    for (const i of [0, 1, 4, 5, 100, 133, 164, 165, 228]) {
      const bad = raw.slice();
      bad[i]! ^= 0x01;
      const code = codeOf(() => decodeSessionKey(encodeBase64(bad)));
      assert.ok(code === "BAD_SIGNATURE" || code === "BAD_SESSION_KEY", `byte ${i}: ${code}`);
    }
  });

  it("rejects wrong lengths, versions and encodings", () => {
    assert.equal(
      codeOf(() => decodeSessionKey(encodeBase64(raw.subarray(0, 228)))),
      "BAD_SESSION_KEY",
    );
    assert.equal(
      codeOf(() => decodeSessionKey(`${key}AA`)),
      "BAD_SESSION_KEY",
    );
    assert.equal(
      codeOf(() => decodeSessionKey("not base64!")),
      "BAD_SESSION_KEY",
    );
    assert.equal(
      codeOf(() => decodeSessionKey("")),
      "BAD_SESSION_KEY",
    );
    assert.equal(
      codeOf(() => decodeSessionKey(7 as unknown as string)),
      "BAD_SESSION_KEY",
    );
    const asExport = raw.slice(0, EXPORTED_KEY_LENGTH);
    asExport[0] = 1;
    assert.equal(
      codeOf(() => decodeSessionKey(encodeBase64(asExport))),
      "BAD_SESSION_KEY",
    );
    assert.equal(decodeExportedKey(encodeBase64(asExport)).ratchet.counter, 1);
    assert.equal(
      codeOf(() => decodeExportedKey(key)),
      "BAD_SESSION_KEY",
    );
  });
});
