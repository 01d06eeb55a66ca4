import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { inspect } from "node:util";
import { decodeBase64, encodeBase64, utf8Decode } from "../../primitives/index.ts";
import { Account } from "../account/account.ts";
import { OlmError } from "../errors.ts";
import type { OlmMessage } from "../message/olm-message.ts";
import { Session } from "./session.ts";

const isCode = (code: string) => (e: unknown) => e instanceof OlmError && e.code === code;

function pair(): { alice: Session; bob: Session; aliceAccount: Account; bobAccount: Account } {
  const aliceAccount = Account.create();
  const bobAccount = Account.create();
  bobAccount.generateOneTimeKeys(1);
  const otk = Object.values(bobAccount.oneTimeKeys())[0] ?? "";
  const alice = aliceAccount.createOutboundSession(bobAccount.identityKeys.curve25519, otk);
  const { session: bob } = bobAccount.createInboundSession(
    aliceAccount.identityKeys.curve25519,
    alice.encrypt("hi"),
  );
  return { alice, bob, aliceAccount, bobAccount };
}

function tamper(m: OlmMessage, at: number): OlmMessage {
  const bytes = decodeBase64(m.body);
  const i = at < 0 ? bytes.length + at : at;
  bytes[i] = (bytes[i] as number) ^ 0x01;
  return { type: m.type, body: encodeBase64(bytes) };
}

describe("Session", () => {
  it("both ends share the session ID SHA-256(I_A || E_A || E_B)", () => {
    const { alice, bob, aliceAccount } = pair();
    assert.equal(alice.sessionId, bob.sessionId);
    const pre = alice.encrypt("x");
    const body = decodeBase64(pre.body);
    // Pre-key layout: one-time key at 3..35, base key at 37..69.
    const otk = body.subarray(3, 35);
    const base = body.subarray(37, 69);
    const expected = createHash("sha256")
      .update(decodeBase64(aliceAccount.identityKeys.curve25519))
      .update(base)
      .update(otk)
      .digest();
    assert.equal(alice.sessionId, encodeBase64(expected));
  });

  it("sends pre-key messages until it has received one, then normal messages", () => {
    const { alice, bob } = pair();
    assert.equal(alice.hasReceivedMessage, false);
    assert.equal(bob.hasReceivedMessage, true);
    assert.equal(alice.encrypt("again").type, 0);
    assert.equal(bob.encrypt("reply").type, 1);
    alice.decrypt(bob.encrypt("reply 2"));
    assert.equal(alice.hasReceivedMessage, true);
    assert.equal(alice.encrypt("now normal").type, 1);
  });

  it("string and byte plaintexts are the same thing", () => {
    const { alice, bob } = pair();
    assert.equal(utf8Decode(bob.decrypt(alice.encrypt(new TextEncoder().encode("bytes ✓")))), "bytes ✓");
    assert.equal(utf8Decode(bob.decrypt(alice.encrypt("text ✓"))), "text ✓");
  });

  it("a failed decrypt changes nothing: the pickle is identical and the next valid message decrypts", () => {
    const { alice, bob } = pair();
    alice.decrypt(bob.encrypt("turn"));
    for (const at of [-1, -9, 40]) {
      // Same chain (skipped keys would be derived) and a new chain (root key would move).
      const next = bob.encrypt(`m${at}`);
      const before = JSON.stringify(alice.toPickle());
      assert.throws(
        () => alice.decrypt(tamper(next, at)),
        (e) => e instanceof OlmError,
      );
      assert.equal(JSON.stringify(alice.toPickle()), before);
      assert.equal(utf8Decode(alice.decrypt(next)), `m${at}`);
      const reply = alice.encrypt("ratchet");
      const beforeBob = JSON.stringify(bob.toPickle());
      assert.throws(() => bob.decrypt(tamper(reply, -2)), isCode("BAD_MESSAGE_MAC"));
      assert.equal(JSON.stringify(bob.toPickle()), beforeBob);
      bob.decrypt(reply);
    }
  });

  it("decrypts a message once: a replay is refused", () => {
    const { alice, bob } = pair();
    const m = alice.encrypt("once");
    bob.decrypt(m);
    assert.throws(() => bob.decrypt(m), isCode("BAD_MESSAGE_KEY_ID"));
  });

  it("round-trips through a JSON pickle mid-conversation", () => {
    const { alice, bob } = pair();
    const inFlight = bob.encrypt("in flight");
    const restored = Session.fromPickle(JSON.parse(JSON.stringify(alice.toPickle())));
    assert.equal(restored.sessionId, alice.sessionId);
    assert.equal(utf8Decode(restored.decrypt(inFlight)), "in flight");
    assert.equal(utf8Decode(bob.decrypt(restored.encrypt("after"))), "after");
  });

  it("refuses malformed pickles with BAD_PICKLE", () => {
    const { alice } = pair();
    const p = alice.toPickle();
    const bad: unknown[] = [
      null,
      [],
      { ...p, version: 2 },
      { ...p, baseKey: "short" },
      { ...p, receivedMessage: "yes" },
      { ...p, ratchet: { ...p.ratchet, rootKey: 5 } },
      { ...p, ratchet: { ...p.ratchet, senderChain: { ...p.ratchet.senderChain, chainIndex: -1 } } },
    ];
    for (const b of bad) assert.throws(() => Session.fromPickle(b as typeof p), isCode("BAD_PICKLE"));
  });

  it("matchesInboundSession: pre-key messages of this session only; normal messages never", () => {
    const { alice, bob, aliceAccount } = pair();
    const id = aliceAccount.identityKeys.curve25519;
    assert.equal(bob.matchesInboundSession(id, alice.encrypt("p")), true);
    assert.equal(
      bob.matchesInboundSession(Account.create().identityKeys.curve25519, alice.encrypt("p")),
      false,
    );
    const other = pair();
    assert.equal(bob.matchesInboundSession(id, other.alice.encrypt("p")), false);
    assert.equal(bob.matchesInboundSession(id, bob.encrypt("n")), false);
    assert.throws(() => bob.matchesInboundSession(id, { type: 0, body: "Aw" }), isCode("BAD_MESSAGE_FORMAT"));
    assert.throws(() => bob.matchesInboundSession("nope", alice.encrypt("p")), isCode("BAD_KEY"));
  });

  it("shows only its ID in JSON, inspect and toString", () => {
    const { alice } = pair();
    const secrets = alice.toPickle().ratchet;
    const shown = [JSON.stringify(alice), inspect(alice), String(alice)];
    for (const s of shown) {
      assert.ok(s.includes(alice.sessionId));
      assert.ok(!s.includes(secrets.rootKey));
      assert.ok(!s.includes(secrets.senderChain?.chainKey ?? "-"));
    }
    assert.deepEqual(JSON.parse(shown[0] ?? ""), { sessionId: alice.sessionId, hasReceivedMessage: false });
  });
});
