// Known-answer tests against a transcript recorded from libolm with fixed randomness
// (test/vectors/megolm/libolm-megolm.json, provenance inside): a Keyroom session holding the same
// ratchet and signing seed must produce the same session ID, session keys and messages byte for
// byte, decrypt libolm's messages, and export the same v1 keys at every index.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { decodeBase64, encodeBase64, utf8Decode } from "../primitives/index.ts";
import { InboundGroupSession } from "./inbound.ts";
import { OutboundGroupSession } from "./outbound.ts";

interface Vectors {
  ratchet: string;
  signingSeed: string;
  sessionId: string;
  sessionKeys: { index: number; key: string }[];
  messages: { index: number; plaintext: string; body: string }[];
  exports: { index: number; key: string }[];
  libolmPickles: { key: string; pickle: string; firstKnownIndex: number; signingKeyVerified: boolean }[];
}

const vectors = JSON.parse(
  readFileSync(new URL("../../../test/vectors/megolm/libolm-megolm.json", import.meta.url), "utf8"),
) as Vectors;

describe("Megolm known-answer vectors (libolm)", () => {
  it("an outbound session from libolm's random bytes matches libolm byte for byte", () => {
    const session = OutboundGroupSession.fromPickle({
      version: 1,
      ratchet: vectors.ratchet,
      messageIndex: 0,
      signingSeed: vectors.signingSeed,
    });
    assert.equal(session.sessionId, vectors.sessionId);
    assert.equal(session.sessionKey(), vectors.sessionKeys[0]?.key);
    assert.ok(
      vectors.messages.some((m) => m.index === 300),
      "the vector file holds messages up to index 300",
    );
    for (const m of vectors.messages) {
      while (session.messageIndex < m.index) session.encrypt("filler");
      if (m.index === 300) assert.equal(session.sessionKey(), vectors.sessionKeys[1]?.key);
      assert.equal(session.encrypt(m.plaintext), m.body, `message ${m.index}`);
    }
  });

  it("decrypts every libolm message and exports the same keys at every index", () => {
    const inbound = InboundGroupSession.fromSessionKey(vectors.sessionKeys[0]!.key);
    assert.equal(inbound.sessionId, vectors.sessionId);
    for (const m of [...vectors.messages].reverse()) {
      const r = inbound.decrypt(m.body);
      assert.equal(r.messageIndex, m.index);
      assert.equal(utf8Decode(r.plaintext), m.plaintext);
    }
    assert.ok(vectors.exports.length > 0, "the vector file holds exports");
    for (const e of vectors.exports) {
      assert.equal(inbound.exportAt(e.index), e.key, `export at ${e.index}`);
      const imported = InboundGroupSession.fromExport(e.key);
      assert.equal(imported.firstKnownIndex, e.index);
      assert.equal(imported.exportAtFirstKnownIndex(), e.key);
    }
    const at300 = InboundGroupSession.fromSessionKey(vectors.sessionKeys[1]!.key);
    assert.equal(at300.firstKnownIndex, 300);
    assert.equal(utf8Decode(at300.decrypt(vectors.messages.at(-1)!.body).plaintext), "at index 300");
  });

  it("imports libolm's pickles of inbound sessions", () => {
    assert.ok(vectors.libolmPickles.length > 0, "the vector file holds pickles");
    for (const p of vectors.libolmPickles) {
      const session = InboundGroupSession.fromLibolmPickle(p.pickle, p.key);
      assert.equal(session.sessionId, vectors.sessionId);
      assert.equal(session.firstKnownIndex, p.firstKnownIndex);
      assert.equal(session.signingKeyVerified, p.signingKeyVerified);
      assert.equal(
        session.exportAtFirstKnownIndex(),
        vectors.exports.find((e) => e.index === p.firstKnownIndex)?.key,
      );
      assert.equal(session.decrypt(vectors.messages.at(-1)!.body).messageIndex, 300);
      assert.throws(() => InboundGroupSession.fromLibolmPickle(p.pickle, `${p.key}!`), {
        code: "BAD_PICKLE",
      });
      const tampered = decodeBase64(p.pickle);
      tampered[20]! ^= 1;
      assert.throws(() => InboundGroupSession.fromLibolmPickle(encodeBase64(tampered), p.key), {
        code: "BAD_PICKLE",
      });
    }
    assert.throws(() => InboundGroupSession.fromLibolmPickle("%%", "k"), { code: "BAD_PICKLE" });
    assert.throws(() => InboundGroupSession.fromLibolmPickle("AAAA", "k"), { code: "BAD_PICKLE" });
  });
});
