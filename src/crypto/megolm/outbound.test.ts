import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inspect } from "node:util";
import { decodeBase64, ed25519Verify, utf8Decode } from "../primitives/index.ts";
import { InboundGroupSession } from "./inbound.ts";
import { decodeMegolmMessage } from "./message.ts";
import { OutboundGroupSession, type OutboundGroupSessionPickle } from "./outbound.ts";
import { MAX_MESSAGE_INDEX } from "./ratchet.ts";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe("OutboundGroupSession", () => {
  it("starts at index 0 and counts one per message", () => {
    const s = OutboundGroupSession.create();
    assert.equal(s.messageIndex, 0);
    assert.equal(decodeBase64(s.sessionId).length, 32);
    for (let i = 0; i < 3; i++) {
      const raw = decodeBase64(s.encrypt(`m${i}`));
      assert.equal(decodeMegolmMessage(raw).messageIndex, i);
    }
    assert.equal(s.messageIndex, 3);
  });

  it("signs every message with the session key (the session ID)", () => {
    const s = OutboundGroupSession.create();
    const raw = decodeBase64(s.encrypt(new Uint8Array([1, 2, 3])));
    const sigAt = raw.length - 64;
    assert.ok(ed25519Verify(decodeBase64(s.sessionId), raw.subarray(0, sigAt), raw.subarray(sigAt)));
  });

  it("plaintexts around the shared buffers' sizes, as strings and bytes, decrypt to themselves", () => {
    const s = OutboundGroupSession.create();
    const r = InboundGroupSession.fromSessionKey(s.sessionKey());
    const texts: string[] = [];
    for (const n of [0, 1, 15, 16, 1407, 1408, 2047, 2048, 2049, 4100, 9000]) {
      texts.push("a".repeat(n), "\u20ac".repeat(n), "\u{1F600}".repeat(n >> 1));
    }
    const messages = texts.map((t) => s.encrypt(t));
    const bytes = texts.map((t) => new TextEncoder().encode(t));
    const fromBytes = bytes.map((b) => s.encrypt(b));
    // Decrypted after all were encrypted: no message depends on a buffer a later one reused.
    texts.forEach((t, i) => {
      assert.equal(utf8Decode(r.decrypt(messages[i]!).plaintext), t);
      assert.equal(utf8Decode(r.decrypt(fromBytes[i]!).plaintext), t);
      assert.deepEqual(bytes[i], new TextEncoder().encode(t), "the caller's bytes are left as they were");
    });
  });

  it("refuses a lone surrogate in a plaintext string, short or long", () => {
    const s = OutboundGroupSession.create();
    assert.equal(
      codeOf(() => s.encrypt("a\uD800")),
      "BAD_ARGUMENT",
    );
    assert.equal(
      codeOf(() => s.encrypt(`${"a".repeat(3000)}\uDC00`)),
      "BAD_ARGUMENT",
    );
    assert.equal(s.messageIndex, 0);
  });

  it("two sessions differ; the same plaintext never gives the same ciphertext twice", () => {
    const a = OutboundGroupSession.create();
    const b = OutboundGroupSession.create();
    assert.notEqual(a.sessionId, b.sessionId);
    assert.notEqual(a.encrypt("x"), a.encrypt("x"));
  });

  it("session key taken later cannot decrypt earlier messages", () => {
    const s = OutboundGroupSession.create();
    const first = s.encrypt("early");
    const inbound = InboundGroupSession.fromSessionKey(s.sessionKey());
    assert.equal(inbound.firstKnownIndex, 1);
    assert.equal(
      codeOf(() => inbound.decrypt(first)),
      "UNKNOWN_MESSAGE_INDEX",
    );
    assert.equal(utf8Decode(inbound.decrypt(s.encrypt("late")).plaintext), "late");
  });

  it("sessionKeyFrom: a signed session key at an earlier index, from an export of the same session", () => {
    const s = OutboundGroupSession.create();
    const copy = InboundGroupSession.fromSessionKey(s.sessionKey());
    const first = s.encrypt("early");
    s.encrypt("later");
    const again = InboundGroupSession.fromSessionKey(s.sessionKeyFrom(copy.exportAt(0)));
    assert.equal(again.firstKnownIndex, 0);
    assert.equal(again.signingKeyVerified, true);
    assert.equal(utf8Decode(again.decrypt(first).plaintext), "early");
    assert.equal(s.messageIndex, 2, "the session itself is unchanged");

    const other = InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey());
    assert.equal(
      codeOf(() => s.sessionKeyFrom(other.exportAt(0))),
      "BAD_SESSION_KEY",
    );
    assert.equal(
      codeOf(() => s.sessionKeyFrom("not a key")),
      "BAD_SESSION_KEY",
    );
  });

  it("pickles round-trip mid-stream and continue identically", () => {
    const s = OutboundGroupSession.create();
    const inbound = InboundGroupSession.fromSessionKey(s.sessionKey());
    s.encrypt("a");
    const pickle = JSON.parse(JSON.stringify(s.toPickle())) as OutboundGroupSessionPickle;
    const restored = OutboundGroupSession.fromPickle(pickle);
    assert.equal(restored.sessionId, s.sessionId);
    assert.equal(restored.messageIndex, 1);
    // Deterministic from here on: AES-CBC, HMAC and Ed25519 all are.
    assert.equal(restored.encrypt("b"), s.encrypt("b"));
    assert.equal(restored.sessionKey(), s.sessionKey());
    assert.equal(inbound.decrypt(restored.encrypt("c")).messageIndex, 2);
  });

  it("toPickleAt: the pickle the session will have at a later index, the session unchanged", () => {
    const s = OutboundGroupSession.create();
    s.encrypt("a");
    const ahead = s.toPickleAt(300);
    assert.equal(ahead.messageIndex, 300);
    assert.equal(s.messageIndex, 1);
    assert.deepEqual(s.toPickleAt(1), s.toPickle());
    for (let i = 1; i < 300; i++) s.encrypt("x");
    assert.deepEqual(ahead, s.toPickle());
    const restored = OutboundGroupSession.fromPickle(ahead);
    assert.equal(restored.encrypt("b"), s.encrypt("b"));
    assert.equal(
      codeOf(() => s.toPickleAt(5)),
      "BAD_ARGUMENT",
    );
    assert.equal(
      codeOf(() => s.toPickleAt(MAX_MESSAGE_INDEX + 1)),
      "BAD_ARGUMENT",
    );
    assert.equal(
      codeOf(() => s.toPickleAt(1.5 + s.messageIndex)),
      "BAD_ARGUMENT",
    );
  });

  it("messages after toPickleAt (states kept ahead) are those of a session that never called it", () => {
    const s = OutboundGroupSession.create();
    for (let i = 0; i < 250; i++) s.encrypt("warm"); // the reservations below cross index 256
    const plain = OutboundGroupSession.fromPickle(s.toPickle());
    // Reservations as the engine makes them, and irregular ones: none, past the kept states,
    // again before the kept states are used up, at the current index.
    const reserveAt: Record<number, number> = {
      0: 32,
      5: 0,
      32: 64,
      40: 10,
      41: 200,
      60: 1,
      100: 65,
      170: 64,
    };
    for (let n = 0; n < 300; n++) {
      const distance = reserveAt[n];
      if (distance !== undefined) {
        const pickle = s.toPickleAt(s.messageIndex + distance);
        assert.deepEqual(
          pickle,
          OutboundGroupSession.fromPickle(plain.toPickle()).toPickleAt(plain.messageIndex + distance),
        );
      }
      assert.equal(s.encrypt(`m${n}`), plain.encrypt(`m${n}`), `message ${n}`);
      assert.deepEqual(s.toPickle(), plain.toPickle());
    }
  });

  it("refuses malformed pickles with BAD_PICKLE", () => {
    const good = OutboundGroupSession.create().toPickle();
    const bad: unknown[] = [
      null,
      [],
      "x",
      { ...good, version: 2 },
      { ...good, ratchet: good.ratchet.slice(4) },
      { ...good, ratchet: 5 },
      { ...good, messageIndex: -1 },
      { ...good, messageIndex: 1.5 },
      { ...good, messageIndex: MAX_MESSAGE_INDEX + 1 },
      { ...good, signingSeed: "!!" },
      { ...good, signingSeed: undefined },
    ];
    for (const p of bad) {
      assert.equal(
        codeOf(() => OutboundGroupSession.fromPickle(p as OutboundGroupSessionPickle)),
        "BAD_PICKLE",
      );
    }
  });

  it("stops before the 32-bit index would wrap", () => {
    const p = OutboundGroupSession.create().toPickle();
    const s = OutboundGroupSession.fromPickle({ ...p, messageIndex: MAX_MESSAGE_INDEX - 1 });
    const inbound = InboundGroupSession.fromSessionKey(s.sessionKey());
    assert.equal(inbound.decrypt(s.encrypt("last")).messageIndex, MAX_MESSAGE_INDEX - 1);
    assert.equal(
      codeOf(() => s.encrypt("one too many")),
      "SESSION_EXHAUSTED",
    );
  });

  it("rejects plaintext that is neither bytes nor encodable text", () => {
    const s = OutboundGroupSession.create();
    assert.equal(
      codeOf(() => s.encrypt("\ud800")),
      "BAD_ARGUMENT",
    );
    assert.equal(
      codeOf(() => s.encrypt(5 as unknown as string)),
      "BAD_ARGUMENT",
    );
    assert.equal(s.messageIndex, 0);
  });

  it("shows no secrets in JSON, inspect or toString", () => {
    const s = OutboundGroupSession.create();
    const p = s.toPickle();
    for (const text of [JSON.stringify(s), inspect(s), String(s)]) {
      assert.ok(text.includes(s.sessionId));
      assert.ok(!text.includes(p.signingSeed));
      assert.ok(!text.includes(p.ratchet.slice(0, 16)));
    }
  });
});
