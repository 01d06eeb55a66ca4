import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inspect } from "node:util";
import { decodeBase64, ed25519Verify, encodeBase64, utf8Decode, utf8Encode } from "../../primitives/index.ts";
import { OlmError } from "../errors.ts";
import { Account } from "./account.ts";
import { MAX_ONE_TIME_KEYS, ONE_TIME_KEYS_TO_PUBLISH } from "./one-time-keys.ts";

const isCode = (code: string) => (e: unknown) => e instanceof OlmError && e.code === code;

describe("Account", () => {
  it("has 32-byte Curve25519 and Ed25519 identity keys in unpadded base64", () => {
    const a = Account.create();
    assert.match(a.identityKeys.curve25519, /^[A-Za-z0-9+/]{43}$/);
    assert.match(a.identityKeys.ed25519, /^[A-Za-z0-9+/]{43}$/);
    assert.notEqual(Account.create().identityKeys.curve25519, a.identityKeys.curve25519);
  });

  it("signs strings (as UTF-8) and bytes with its Ed25519 key", () => {
    const a = Account.create();
    const sig = a.sign("ünïcödé");
    assert.equal(sig, a.sign(utf8Encode("ünïcödé")));
    const pub = decodeBase64(a.identityKeys.ed25519);
    assert.equal(ed25519Verify(pub, utf8Encode("ünïcödé"), decodeBase64(sig)), true);
    assert.equal(ed25519Verify(pub, utf8Encode("other"), decodeBase64(sig)), false);
  });

  it("generates one-time keys with libolm's IDs, shared with fallback keys", () => {
    const a = Account.create();
    a.generateOneTimeKeys(2);
    assert.deepEqual(Object.keys(a.oneTimeKeys()).sort(), ["AAAAAQ", "AAAAAg"]);
    a.generateFallbackKey();
    assert.deepEqual(Object.keys(a.fallbackKey()), ["AAAAAw"]);
    a.markKeysAsPublished();
    assert.deepEqual(a.oneTimeKeys(), {});
    assert.deepEqual(a.fallbackKey(), {});
    a.generateOneTimeKeys(1);
    assert.deepEqual(Object.keys(a.oneTimeKeys()), ["AAAABA"]);
  });

  it("replaces unpublished keys refused by a server with new ones numbered past a skip", () => {
    const a = Account.create();
    a.generateOneTimeKeys(2);
    a.generateFallbackKey();
    a.markKeysAsPublished(); // keys 1 and 2, fallback 3
    const published = a.toPickle().oneTimeKeys.map((k) => k.publicKey);
    a.generateOneTimeKeys(2); // keys 4 and 5, unpublished
    a.generateFallbackKey(); // fallback 6, unpublished; 3 becomes the previous one
    const refused = a.oneTimeKeys();
    assert.equal(a.replaceUnpublishedKeys(1000, { fallback: false }), 2);
    // Counter 6 + 1000: the new keys are 1007 and 1008; the fallback key is kept.
    assert.deepEqual(Object.keys(a.oneTimeKeys()).sort(), ["AAAD7w", "AAAD8A"]);
    for (const key of Object.values(a.oneTimeKeys())) assert.ok(!Object.values(refused).includes(key));
    assert.deepEqual(Object.keys(a.fallbackKey()), ["AAAABg"]);
    const kept = a.toPickle();
    assert.deepEqual(
      kept.oneTimeKeys.filter((k) => k.published).map((k) => k.publicKey),
      published,
      "published keys stay",
    );
    assert.equal(kept.fallbackKeys.previous?.id, 3, "the previous fallback key stays");
    const oldFallback = a.fallbackKey().AAAABg;
    assert.equal(a.replaceUnpublishedKeys(0, { fallback: true }), 2);
    assert.deepEqual(Object.keys(a.fallbackKey()), ["AAAD8w"]); // 1008 + 2 new keys, then 1011
    assert.notEqual(a.fallbackKey().AAAD8w, oldFallback);
    assert.equal(a.toPickle().fallbackKeys.previous?.id, 3);
    // Nothing unpublished: nothing replaced, the counter still moves.
    a.markKeysAsPublished();
    assert.equal(a.replaceUnpublishedKeys(10, { fallback: true }), 0);
    assert.deepEqual(a.fallbackKey(), {});
    a.generateOneTimeKeys(1);
    assert.deepEqual(Object.keys(a.oneTimeKeys()), ["AAAD/g"]); // 1011 + 10 + 1
    assert.throws(() => a.replaceUnpublishedKeys(-1, { fallback: false }), isCode("BAD_ARGUMENT"));
  });

  it(`keeps MAX_ONE_TIME_KEYS (${MAX_ONE_TIME_KEYS}) one-time keys, dropping the oldest beyond`, () => {
    const a = Account.create();
    // libolm's figure, half of which callers keep on the server (vodozemac's 50).
    assert.equal(a.maxNumberOfOneTimeKeys, 2 * ONE_TIME_KEYS_TO_PUBLISH);
    a.generateOneTimeKeys(MAX_ONE_TIME_KEYS);
    const full = Object.keys(a.oneTimeKeys());
    assert.equal(full.length, MAX_ONE_TIME_KEYS);
    assert.ok(full.includes("AAAAAQ"), "key 1 kept while the account is not over capacity");
    a.generateOneTimeKeys(50);
    const ids = Object.keys(a.oneTimeKeys());
    assert.equal(ids.length, MAX_ONE_TIME_KEYS);
    assert.ok(!ids.includes("AAAAAQ") && !ids.includes("AAAAMg"), "keys 1..50 dropped");
    assert.ok(ids.includes("AAAAMw") && ids.includes("AAATug"), "keys 51..5050 kept");
    // A huge request costs no more than MAX_ONE_TIME_KEYS keys, and IDs still advance (to 1 005 051).
    a.generateOneTimeKeys(1_000_000);
    assert.equal(Object.keys(a.oneTimeKeys()).length, MAX_ONE_TIME_KEYS);
    a.generateFallbackKey();
    assert.deepEqual(Object.keys(a.fallbackKey()), ["AA9V+w"]);
    assert.throws(() => a.generateOneTimeKeys(-1), isCode("BAD_ARGUMENT"));
  });

  it("starts a session on a key made 150 generations of replacements ago, and after a reload", () => {
    const alice = Account.create();
    const bob = Account.create();
    bob.generateOneTimeKeys(ONE_TIME_KEYS_TO_PUBLISH);
    bob.markKeysAsPublished();
    // Alice claims Bob's oldest key: its pre-key message comes much later.
    bob.generateOneTimeKeys(1);
    const [claimed] = Object.values(bob.oneTimeKeys());
    assert.ok(claimed !== undefined);
    bob.markKeysAsPublished();
    // 150 generations: each time other peers claimed keys they never used, and Bob made replacements.
    for (let generation = 0; generation < 150; generation++) {
      bob.generateOneTimeKeys(10);
      bob.markKeysAsPublished();
    }
    const reloaded = Account.fromPickle(JSON.parse(JSON.stringify(bob.toPickle())));
    const outbound = alice.createOutboundSession(bob.identityKeys.curve25519, claimed);
    const message = outbound.encrypt(utf8Encode("late"));
    for (const account of [bob, reloaded]) {
      const { plaintext } = account.createInboundSession(alice.identityKeys.curve25519, message);
      assert.equal(utf8Decode(plaintext), "late");
    }
  });

  it("builds inbound sessions from pre-key messages, consuming one-time keys only on success", () => {
    const alice = Account.create();
    const bob = Account.create();
    bob.generateOneTimeKeys(1);
    const [[keyId, otk]] = Object.entries(bob.oneTimeKeys()) as [[string, string]];
    const out = alice.createOutboundSession(bob.identityKeys.curve25519, otk);
    const m = out.encrypt("hello");
    assert.throws(
      () => bob.createInboundSession(Account.create().identityKeys.curve25519, m),
      isCode("MISMATCHED_IDENTITY_KEY"),
    );
    assert.throws(
      () => bob.createInboundSession(alice.identityKeys.curve25519, { type: 1, body: m.body }),
      isCode("BAD_MESSAGE_TYPE"),
    );
    const body = decodeBase64(m.body);
    body[body.length - 3] = (body[body.length - 3] as number) ^ 4;
    assert.throws(
      () => bob.createInboundSession(alice.identityKeys.curve25519, { type: 0, body: encodeBase64(body) }),
      isCode("BAD_MESSAGE_MAC"),
    );
    assert.equal(bob.oneTimeKeys()[keyId], otk, "a failed message does not burn the key");
    const { session, plaintext } = bob.createInboundSession(alice.identityKeys.curve25519, m);
    assert.equal(utf8Decode(plaintext), "hello");
    assert.equal(session.sessionId, out.sessionId);
    assert.deepEqual(bob.oneTimeKeys(), {});
    assert.throws(
      () => bob.createInboundSession(alice.identityKeys.curve25519, m),
      isCode("MISSING_ONE_TIME_KEY"),
    );
  });

  it("keeps fallback keys after use", () => {
    const bob = Account.create();
    bob.generateFallbackKey();
    const fallback = Object.values(bob.fallbackKey())[0] ?? "";
    for (let i = 0; i < 3; i++) {
      const alice = Account.create();
      const m = alice.createOutboundSession(bob.identityKeys.curve25519, fallback).encrypt(`hi ${i}`);
      assert.equal(
        utf8Decode(bob.createInboundSession(alice.identityKeys.curve25519, m).plaintext),
        `hi ${i}`,
      );
    }
  });

  it("refuses malformed keys with BAD_KEY and low-order keys with NON_CONTRIBUTORY_KEY", () => {
    const a = Account.create();
    const b = Account.create().identityKeys.curve25519;
    assert.throws(() => a.createOutboundSession("not base64!", b), isCode("BAD_KEY"));
    assert.throws(() => a.createOutboundSession(b, "AAAA"), isCode("BAD_KEY"));
    assert.throws(
      () => a.createOutboundSession(b, encodeBase64(new Uint8Array(32))),
      isCode("NON_CONTRIBUTORY_KEY"),
    );
  });

  it("round-trips through a JSON pickle, and refuses malformed ones", () => {
    const a = Account.create();
    a.generateOneTimeKeys(3);
    a.generateFallbackKey();
    a.markKeysAsPublished();
    a.generateOneTimeKeys(2);
    const back = Account.fromPickle(JSON.parse(JSON.stringify(a.toPickle())));
    assert.deepEqual(back.identityKeys, a.identityKeys);
    assert.deepEqual(back.oneTimeKeys(), a.oneTimeKeys());
    assert.deepEqual(back.toPickle(), a.toPickle());
    assert.equal(back.sign("x"), a.sign("x"));
    const p = a.toPickle();
    for (const bad of [
      { ...p, version: 0 },
      { ...p, ed25519Seed: "" },
      { ...p, lastKeyId: -1 },
      { ...p, oneTimeKeys: {} },
    ]) {
      assert.throws(() => Account.fromPickle(bad as typeof p), isCode("BAD_PICKLE"));
    }
  });

  it("shows only public keys in JSON, inspect and toString", () => {
    const a = Account.create();
    a.generateOneTimeKeys(1);
    const p = a.toPickle();
    for (const s of [JSON.stringify(a), inspect(a), String(a)]) {
      assert.ok(s.includes(a.identityKeys.curve25519));
      assert.ok(!s.includes(p.curve25519SecretKey) && !s.includes(p.ed25519Seed));
      assert.ok(!s.includes(p.oneTimeKeys[0]?.secretKey ?? "-"));
    }
  });
});
