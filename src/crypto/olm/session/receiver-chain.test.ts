import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OlmError } from "../errors.ts";
import { advanceChainKey, deriveMessageKey } from "./chain-key.ts";
import { MAX_MESSAGE_GAP, MAX_SKIPPED_MESSAGE_KEYS, ReceiverChain } from "./receiver-chain.ts";

const START = new Uint8Array(32).fill(9);
const isCode = (code: string) => (e: unknown) => e instanceof OlmError && e.code === code;

/** M(i) by walking the chain directly. */
function messageKeyAt(index: number): Uint8Array {
  let c: Uint8Array = START;
  for (let i = 0; i < index; i++) c = advanceChainKey(c);
  return deriveMessageKey(c);
}

const chain = () => new ReceiverChain(new Uint8Array(32).fill(1), START.slice(), 0);

describe("receiver chain", () => {
  it("derives the key for the next index and moves on only when committed", () => {
    const c = chain();
    const lookup = c.lookup(0);
    assert.deepEqual(lookup.messageKey, messageKeyAt(0));
    assert.equal(c.chainIndex, 0);
    ReceiverChain.discard(lookup);
    assert.deepEqual(c.lookup(0).messageKey, messageKeyAt(0), "discarding changed nothing");
    c.commit(c.lookup(0));
    assert.equal(c.chainIndex, 1);
    assert.throws(() => c.lookup(0), isCode("BAD_MESSAGE_KEY_ID"));
  });

  it("keeps skipped keys for out-of-order messages, each usable once", () => {
    const c = chain();
    c.commit(c.lookup(5));
    assert.equal(c.skippedKeyCount, 5);
    for (const i of [3, 0, 4]) {
      const l = c.lookup(i);
      assert.deepEqual(l.messageKey, messageKeyAt(i));
      c.commit(l);
    }
    assert.equal(c.skippedKeyCount, 2);
    assert.throws(() => c.lookup(3), isCode("BAD_MESSAGE_KEY_ID"));
    assert.deepEqual(c.lookup(6).messageKey, messageKeyAt(6));
  });

  it(`keeps at most MAX_SKIPPED_MESSAGE_KEYS (${MAX_SKIPPED_MESSAGE_KEYS}), the newest`, () => {
    const c = chain();
    c.commit(c.lookup(100));
    assert.equal(c.skippedKeyCount, MAX_SKIPPED_MESSAGE_KEYS);
    assert.throws(() => c.lookup(100 - MAX_SKIPPED_MESSAGE_KEYS - 1), isCode("BAD_MESSAGE_KEY_ID"));
    assert.deepEqual(
      c.lookup(100 - MAX_SKIPPED_MESSAGE_KEYS).messageKey,
      messageKeyAt(100 - MAX_SKIPPED_MESSAGE_KEYS),
    );
    c.commit(c.lookup(110));
    assert.equal(c.skippedKeyCount, MAX_SKIPPED_MESSAGE_KEYS);
    assert.throws(() => c.lookup(100 - MAX_SKIPPED_MESSAGE_KEYS), isCode("BAD_MESSAGE_KEY_ID"));
  });

  it(`refuses a jump of more than MAX_MESSAGE_GAP (${MAX_MESSAGE_GAP}) and allows exactly that`, () => {
    const c = chain();
    c.commit(c.lookup(10));
    assert.throws(() => c.lookup(11 + MAX_MESSAGE_GAP + 1), isCode("MESSAGE_INDEX_TOO_FAR"));
    assert.deepEqual(c.lookup(11 + MAX_MESSAGE_GAP).messageKey, messageKeyAt(11 + MAX_MESSAGE_GAP));
  });

  it("round-trips through its pickle, skipped keys included", () => {
    const c = chain();
    c.commit(c.lookup(3));
    const back = ReceiverChain.fromPickle(JSON.parse(JSON.stringify(c.toPickle())), "chain");
    assert.deepEqual(back.toPickle(), c.toPickle());
    assert.deepEqual(back.lookup(1).messageKey, messageKeyAt(1));
    const bad = { ...c.toPickle(), skippedKeys: [{ index: 7, key: c.toPickle().chainKey }] };
    assert.throws(() => ReceiverChain.fromPickle(bad, "chain"), isCode("BAD_PICKLE"));
  });
});
