import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { randomBytes, utf8Decode, utf8Encode, x25519PublicKey } from "../../primitives/index.ts";
import { OlmError } from "../errors.ts";
import { decodeMessage } from "../message/message.ts";
import { DoubleRatchet, MAX_RECEIVER_CHAINS } from "./double-ratchet.ts";

function pair(): { alice: DoubleRatchet; bob: DoubleRatchet } {
  const shared = randomBytes(96);
  const secret = randomBytes(32);
  const alice = DoubleRatchet.alice(shared, secret, x25519PublicKey(secret));
  // Bob learns Alice's first ratchet key from her first message.
  const first = decodeMessage(alice.encrypt(utf8Encode("0"), null));
  const bob = DoubleRatchet.bob(shared, first.ratchetKey.slice());
  assert.equal(utf8Decode(bob.decrypt(first)), "0");
  return { alice, bob };
}

const send = (from: DoubleRatchet, to: DoubleRatchet, text: string) =>
  assert.equal(utf8Decode(to.decrypt(decodeMessage(from.encrypt(utf8Encode(text), null)))), text);

describe("double ratchet", () => {
  it("each reply after receiving starts a new chain under a new ratchet key", () => {
    const { alice, bob } = pair();
    const b1 = decodeMessage(bob.encrypt(utf8Encode("b1"), null));
    const b2 = decodeMessage(bob.encrypt(utf8Encode("b2"), null));
    assert.deepEqual(b1.ratchetKey, b2.ratchetKey);
    assert.deepEqual([b1.chainIndex, b2.chainIndex], [0, 1]);
    assert.equal(utf8Decode(alice.decrypt(b1)), "b1");
    assert.equal(utf8Decode(alice.decrypt(b2)), "b2");
    const a = decodeMessage(alice.encrypt(utf8Encode("a"), null));
    assert.notDeepEqual(a.ratchetKey, b1.ratchetKey);
    assert.equal(a.chainIndex, 0);
    assert.equal(utf8Decode(bob.decrypt(a)), "a");
  });

  it(`keeps at most MAX_RECEIVER_CHAINS (${MAX_RECEIVER_CHAINS}) receiving chains`, () => {
    const { alice, bob } = pair();
    const held = decodeMessage(bob.encrypt(utf8Encode("held"), null));
    for (let i = 0; i < MAX_RECEIVER_CHAINS + 2; i++) {
      send(bob, alice, `b${i}`);
      send(alice, bob, `a${i}`);
    }
    assert.equal(alice.toPickle().receiverChains.length, MAX_RECEIVER_CHAINS);
    assert.throws(
      () => alice.decrypt(held),
      (e) => e instanceof OlmError && e.code === "BAD_MESSAGE_MAC",
    );
  });

  it("a responder that has not sent refuses a message on an unknown ratchet key", () => {
    const { bob } = pair();
    const stranger = DoubleRatchet.alice(randomBytes(96), randomBytes(32), x25519PublicKey(randomBytes(32)));
    const m = decodeMessage(stranger.encrypt(utf8Encode("?"), null));
    assert.throws(
      () => bob.decrypt(m),
      (e) => e instanceof OlmError && e.code === "UNKNOWN_RATCHET_KEY",
    );
  });

  it("refuses a pickle with neither chain, or too many receiving chains", () => {
    const { alice } = pair();
    const p = alice.toPickle();
    assert.throws(
      () => DoubleRatchet.fromPickle({ ...p, senderChain: null, receiverChains: [] }, "r"),
      (e) => e instanceof OlmError && e.code === "BAD_PICKLE",
    );
    const { bob } = pair();
    const chain = bob.toPickle().receiverChains[0];
    assert.throws(
      () =>
        DoubleRatchet.fromPickle({ ...p, receiverChains: Array(MAX_RECEIVER_CHAINS + 1).fill(chain) }, "r"),
      (e) => e instanceof OlmError && e.code === "BAD_PICKLE",
    );
  });
});
