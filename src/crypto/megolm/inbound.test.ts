import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inspect } from "node:util";
import { aes256CbcEncrypt, decodeBase64, encodeBase64, utf8Decode } from "../primitives/index.ts";
import { InboundGroupSession, type InboundGroupSessionPickle } from "./inbound.ts";
import { OutboundGroupSession } from "./outbound.ts";
import { forge, senderAt } from "./test-support/forge.ts";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

const text = (r: { plaintext: Uint8Array }): string => utf8Decode(r.plaintext);

describe("InboundGroupSession", () => {
  it("decrypts in order, out of order, repeated, and earlier after later", () => {
    const out = OutboundGroupSession.create();
    const inbound = InboundGroupSession.fromSessionKey(out.sessionKey());
    assert.equal(inbound.sessionId, out.sessionId);
    assert.equal(inbound.firstKnownIndex, 0);
    assert.equal(inbound.signingKeyVerified, true);
    const msgs = Array.from({ length: 300 }, (_, i) => out.encrypt(`message ${i}`));
    for (const i of [0, 1, 2, 299, 5, 256, 255, 299, 0, 100]) {
      const r = inbound.decrypt(msgs[i]!);
      assert.equal(r.messageIndex, i);
      assert.equal(text(r), `message ${i}`);
    }
  });

  it("keeps its first-index export and pickle after decrypting later messages", () => {
    const out = OutboundGroupSession.create();
    const first = out.sessionKey();
    const msgs = Array.from({ length: 3 }, (_, i) => out.encrypt(`message ${i}`));
    const inbound = InboundGroupSession.fromExport(InboundGroupSession.fromSessionKey(first).exportAt(0));
    const exported = inbound.exportAtFirstKnownIndex();
    const pickle = JSON.stringify(inbound.toPickle());
    assert.equal(text(inbound.decrypt(msgs[2]!)), "message 2");
    assert.equal(text(inbound.decrypt(msgs[1]!)), "message 1");
    assert.equal(inbound.exportAtFirstKnownIndex(), exported);
    assert.equal(JSON.stringify(inbound.toPickle()), pickle);
    assert.equal(text(inbound.decrypt(msgs[0]!)), "message 0");
  });

  it("reaches far indexes and exports at any index ≥ the first known one", () => {
    const out = OutboundGroupSession.create();
    const inbound = InboundGroupSession.fromSessionKey(out.sessionKey());
    const far = senderAt(out, 100_000);
    assert.equal(text(inbound.decrypt(far.encrypt("far"))), "far");
    const exported = InboundGroupSession.fromExport(inbound.exportAt(65_536));
    assert.equal(exported.firstKnownIndex, 65_536);
    assert.equal(exported.signingKeyVerified, false);
    assert.equal(exported.decrypt(far.encrypt("later")).messageIndex, 100_001);
    assert.equal(
      codeOf(() => exported.exportAt(65_535)),
      "UNKNOWN_MESSAGE_INDEX",
    );
    assert.equal(
      codeOf(() => inbound.exportAt(-1)),
      "BAD_ARGUMENT",
    );
    assert.equal(
      codeOf(() => inbound.exportAt(2 ** 32)),
      "BAD_ARGUMENT",
    );
    assert.equal(exported.exportAtFirstKnownIndex(), inbound.exportAt(65_536));
  });

  it("reports each failure with its code and stays usable", () => {
    const out = OutboundGroupSession.create();
    const inbound = InboundGroupSession.fromSessionKey(out.sessionKey());
    const good = out.encrypt("good");
    const raw = decodeBase64(good);
    const tampered = raw.slice();
    tampered[8]! ^= 1;
    assert.equal(
      codeOf(() => inbound.decrypt(encodeBase64(tampered))),
      "BAD_SIGNATURE",
    );
    assert.equal(
      codeOf(() =>
        inbound.decrypt(forge(out, 7, (k) => aes256CbcEncrypt(k.aesKey, k.iv, new Uint8Array(3)), true)),
      ),
      "BAD_MAC",
    );
    // One block whose last byte decrypts to 0x00: valid MAC and signature, invalid padding.
    const badPadding = forge(out, 9, (k) =>
      aes256CbcEncrypt(k.aesKey, k.iv, new Uint8Array(16)).subarray(0, 16),
    );
    assert.equal(
      codeOf(() => inbound.decrypt(badPadding)),
      "DECRYPTION_FAILED",
    );
    const emptyCiphertext = forge(out, 10, () => new Uint8Array(0));
    assert.equal(
      codeOf(() => inbound.decrypt(emptyCiphertext)),
      "DECRYPTION_FAILED",
    );
    assert.equal(
      codeOf(() => inbound.decrypt("%%%")),
      "BAD_MESSAGE_FORMAT",
    );
    assert.equal(
      codeOf(() => inbound.decrypt(undefined as unknown as string)),
      "BAD_MESSAGE_FORMAT",
    );
    const other = OutboundGroupSession.create();
    assert.equal(
      codeOf(() => inbound.decrypt(other.encrypt("x"))),
      "BAD_SIGNATURE",
    );
    // The failed far-ahead attempts did not move the session: index 1 still decrypts.
    assert.equal(text(inbound.decrypt(out.encrypt("next"))), "next");
    assert.equal(text(inbound.decrypt(good)), "good");
  });

  it("compares and merges copies of one session", () => {
    const out = OutboundGroupSession.create();
    const full = InboundGroupSession.fromSessionKey(out.sessionKey());
    for (let i = 0; i < 10; i++) out.encrypt("x");
    const later = InboundGroupSession.fromExport(full.exportAt(10));
    const laterSigned = InboundGroupSession.fromSessionKey(out.sessionKey());
    assert.equal(full.compare(later), "better");
    assert.equal(later.compare(full), "worse");
    assert.equal(later.compare(laterSigned), "equal");
    assert.equal(full.connected(laterSigned), true);

    const forgedRatchet = decodeBase64(later.exportAtFirstKnownIndex());
    forgedRatchet[50]! ^= 1;
    const forged = InboundGroupSession.fromExport(encodeBase64(forgedRatchet));
    assert.equal(forged.sessionId, full.sessionId);
    assert.equal(full.compare(forged), "unconnected");
    assert.equal(full.merge(forged), null);
    assert.equal(
      full.compare(InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey())),
      "unconnected",
    );

    const unverifiedEarly = InboundGroupSession.fromExport(full.exportAt(0));
    const merged = laterSigned.merge(unverifiedEarly);
    assert.ok(merged);
    assert.equal(merged.firstKnownIndex, 0);
    assert.equal(merged.signingKeyVerified, true);
    assert.equal(merged.exportAtFirstKnownIndex(), full.exportAtFirstKnownIndex());
  });

  it("pickles round-trip, keeping the first known index and trust", () => {
    const out = OutboundGroupSession.create();
    const first = out.encrypt("0");
    const inbound = InboundGroupSession.fromExport(
      InboundGroupSession.fromSessionKey(out.sessionKey()).exportAtFirstKnownIndex(),
    );
    const second = out.encrypt("1");
    inbound.decrypt(second);
    const restored = InboundGroupSession.fromPickle(
      JSON.parse(JSON.stringify(inbound.toPickle())) as InboundGroupSessionPickle,
    );
    assert.equal(restored.firstKnownIndex, 1);
    assert.equal(restored.signingKeyVerified, false);
    assert.equal(text(restored.decrypt(second)), "1");
    assert.equal(
      codeOf(() => restored.decrypt(first)),
      "UNKNOWN_MESSAGE_INDEX",
    );
  });

  it("refuses malformed pickles and session keys with typed codes", () => {
    const good = InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey()).toPickle();
    for (const p of [
      undefined,
      { ...good, version: 0 },
      { ...good, ratchet: "AAAA" },
      { ...good, firstKnownIndex: "0" },
      { ...good, signingKey: good.signingKey.slice(1) },
      { ...good, signingKeyVerified: 1 },
    ]) {
      assert.equal(
        codeOf(() => InboundGroupSession.fromPickle(p as InboundGroupSessionPickle)),
        "BAD_PICKLE",
      );
    }
    assert.equal(
      codeOf(() => InboundGroupSession.fromSessionKey("AAAA")),
      "BAD_SESSION_KEY",
    );
    assert.equal(
      codeOf(() => InboundGroupSession.fromExport("AAAA")),
      "BAD_SESSION_KEY",
    );
  });

  it("shows no secrets in JSON, inspect or toString", () => {
    const out = OutboundGroupSession.create();
    const inbound = InboundGroupSession.fromSessionKey(out.sessionKey());
    const ratchet = inbound.toPickle().ratchet;
    for (const t of [JSON.stringify(inbound), inspect(inbound), String(inbound)]) {
      assert.ok(t.includes(inbound.sessionId));
      assert.ok(!t.includes(ratchet.slice(0, 16)));
    }
  });
});
