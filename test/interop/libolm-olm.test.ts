// Olm interop with libolm, an implementation we did not write: sessions started on either side,
// long conversations with ratchet turns, out-of-order delivery, limits, one-time and fallback
// keys, pickling mid-conversation, matchesInboundSession and Ed25519 signatures. Runs against
// every libolm build present (npm @towns-protocol/olm, Debian libjs-olm).
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import fc from "fast-check";
import { Account, MAX_MESSAGE_GAP, type OlmMessage, Session } from "../../src/crypto/olm/index.ts";
import { decodeBase64, ed25519Verify, utf8Decode, utf8Encode } from "../../src/crypto/primitives/index.ts";
import { type Libolm, loadDebianLibolm, loadLibolm } from "../support/libolm.ts";
import { prng, shuffle } from "../support/random.ts";

type OlmAccount = InstanceType<Libolm["Account"]>;
type OlmSession = InstanceType<Libolm["Session"]>;

function text(i: number, random: () => number): string {
  const pieces = [
    "hello",
    "ünïcödé ✓",
    "🔐",
    '{"type":"m.room_key"}',
    "x".repeat(Math.floor(random() * 300)),
  ];
  return `${i}:${pieces[i % pieces.length]}`;
}

const peers: { name: string; load: () => Promise<Libolm | null> }[] = [
  { name: "npm @towns-protocol/olm", load: loadLibolm },
  { name: "Debian libjs-olm", load: loadDebianLibolm },
];

for (const peer of peers) {
  describe(`Olm interop with libolm (${peer.name})`, () => {
    let Olm: Libolm | null = null;
    before(async () => {
      Olm = await peer.load();
      if (Olm === null)
        console.log(`SKIPPED: libolm (${peer.name}) is not available; Olm interop not tested`);
    });

    function olm(t: { skip: (msg: string) => void }): Libolm | null {
      if (Olm === null) t.skip(`libolm (${peer.name}) not available`);
      return Olm;
    }

    function libolmAccount(lib: Libolm): { account: OlmAccount; curve25519: string; ed25519: string } {
      const account = new lib.Account();
      account.create();
      const keys = JSON.parse(account.identity_keys()) as { curve25519: string; ed25519: string };
      return { account, ...keys };
    }

    function libolmOneTimeKey(account: OlmAccount): string {
      account.generate_one_time_keys(1);
      const keys = JSON.parse(account.one_time_keys()).curve25519 as Record<string, string>;
      account.mark_keys_as_published();
      const key = Object.values(keys)[0];
      assert.ok(key !== undefined);
      return key;
    }

    function firstKey(keys: Record<string, string>): [string, string] {
      const entry = Object.entries(keys)[0];
      assert.ok(entry !== undefined);
      return entry;
    }

    /** Keyroom Alice → libolm Bob, first message already delivered. */
    function keyroomToLibolm(lib: Libolm): {
      ours: Session;
      theirs: OlmSession;
      alice: Account;
      bob: OlmAccount;
    } {
      const bob = libolmAccount(lib);
      const alice = Account.create();
      const ours = alice.createOutboundSession(bob.curve25519, libolmOneTimeKey(bob.account));
      const first = ours.encrypt("first");
      assert.equal(first.type, 0);
      const theirs = new lib.Session();
      theirs.create_inbound_from(bob.account, alice.identityKeys.curve25519, first.body);
      assert.equal(theirs.decrypt(first.type, first.body), "first");
      bob.account.remove_one_time_keys(theirs);
      return { ours, theirs, alice, bob: bob.account };
    }

    /** libolm Alice → Keyroom Bob, first message already delivered. */
    function libolmToKeyroom(lib: Libolm): {
      ours: Session;
      theirs: OlmSession;
      bob: Account;
      alice: OlmAccount;
    } {
      const alice = libolmAccount(lib);
      const bob = Account.create();
      bob.generateOneTimeKeys(1);
      const [, otk] = firstKey(bob.oneTimeKeys());
      bob.markKeysAsPublished();
      const theirs = new lib.Session();
      theirs.create_outbound(alice.account, bob.identityKeys.curve25519, otk);
      const first = theirs.encrypt("first");
      const { session, plaintext } = bob.createInboundSession(alice.curve25519, first);
      assert.equal(utf8Decode(plaintext), "first");
      return { ours: session, theirs, bob, alice: alice.account };
    }

    /** Random interleaving of both directions, in order; returns the number of messages sent. */
    function converse(ours: Session, theirs: OlmSession, count: number, seed: number): number {
      const random = prng(seed);
      for (let i = 0; i < count; i++) {
        const burst = 1 + Math.floor(random() * 4);
        for (let b = 0; b < burst; b++) {
          const p = text(i * 10 + b, random);
          if (i % 2 === 0) {
            const m = ours.encrypt(p);
            assert.equal(theirs.decrypt(m.type, m.body), p);
          } else {
            const m = theirs.encrypt(p);
            assert.equal(utf8Decode(ours.decrypt(m as OlmMessage)), p);
          }
        }
      }
      return count;
    }

    it("Keyroom outbound → libolm inbound: same session ID, hundreds of messages both ways", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      const { ours, theirs } = keyroomToLibolm(lib);
      assert.equal(ours.sessionId, theirs.session_id());
      // Until libolm replies, Keyroom keeps sending pre-key messages that libolm accepts.
      for (let i = 0; i < 3; i++) {
        const m = ours.encrypt(`again ${i}`);
        assert.equal(m.type, 0);
        assert.ok(theirs.matches_inbound(m.body));
        assert.equal(theirs.decrypt(m.type, m.body), `again ${i}`);
      }
      converse(ours, theirs, 200, 1);
      assert.equal(ours.hasReceivedMessage, true);
      assert.equal(ours.encrypt("normal now").type, 1);
    });

    it("libolm outbound → Keyroom inbound: same session ID, hundreds of messages both ways", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      const { ours, theirs } = libolmToKeyroom(lib);
      assert.equal(ours.sessionId, theirs.session_id());
      // libolm's further pre-key messages decrypt on the Keyroom session too.
      const again = theirs.encrypt("second pre-key");
      assert.equal(again.type, 0);
      assert.equal(utf8Decode(ours.decrypt(again)), "second pre-key");
      converse(ours, theirs, 200, 2);
    });

    it("binary-safe: every byte value survives Keyroom → libolm (as UTF-8 text) and back", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      const { ours, theirs } = keyroomToLibolm(lib);
      const all = Array.from({ length: 0x800 }, (_, i) => String.fromCodePoint(i + 1)).join("");
      const m = ours.encrypt(utf8Encode(all));
      assert.equal(theirs.decrypt(m.type, m.body), all);
      const r = theirs.encrypt(all);
      assert.equal(utf8Decode(ours.decrypt(r as OlmMessage)), all);
    });

    it("out-of-order delivery within the limits, both directions and across ratchet turns", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      const random = prng(3);
      const { ours, theirs } = libolmToKeyroom(lib);
      for (let round = 0; round < 4; round++) {
        // libolm → Keyroom: 40 messages on one chain, delivered shuffled.
        const fromThem = Array.from({ length: 40 }, (_, i) => ({
          p: `them ${round}/${i}`,
          m: theirs.encrypt(`them ${round}/${i}`),
        }));
        for (const { p, m } of shuffle(fromThem, random))
          assert.equal(utf8Decode(ours.decrypt(m as OlmMessage)), p);
        // Keyroom → libolm: libolm keeps 40 skipped keys in all, so shuffle 30.
        const fromUs = Array.from({ length: 30 }, (_, i) => ({
          p: `us ${round}/${i}`,
          m: ours.encrypt(`us ${round}/${i}`),
        }));
        for (const { p, m } of shuffle(fromUs, random)) assert.equal(theirs.decrypt(m.type, m.body), p);
      }
      // A message from an older libolm chain, held back across two ratchet turns, still decrypts.
      const late = theirs.encrypt("late");
      const next = ours.encrypt("turn");
      theirs.decrypt(next.type, next.body);
      const newer = theirs.encrypt("newer");
      assert.equal(utf8Decode(ours.decrypt(newer as OlmMessage)), "newer");
      assert.equal(utf8Decode(ours.decrypt(late as OlmMessage)), "late");
      // A replayed message is refused (its key was used).
      assert.throws(() => ours.decrypt(late as OlmMessage), { name: "OlmError", code: "BAD_MESSAGE_KEY_ID" });
    });

    it(`refuses a message more than MAX_MESSAGE_GAP (${MAX_MESSAGE_GAP}) ahead, accepts one exactly at it`, (t) => {
      const lib = olm(t);
      if (lib === null) return;
      const { ours, theirs } = libolmToKeyroom(lib);
      // Turn the ratchet so libolm starts a fresh chain at index 0.
      const turn = ours.encrypt("turn");
      theirs.decrypt(turn.type, turn.body);
      const sent: OlmMessage[] = [];
      for (let i = 0; i <= MAX_MESSAGE_GAP + 1; i++) sent.push(theirs.encrypt(`m${i}`) as OlmMessage);
      const tooFar = sent[MAX_MESSAGE_GAP + 1] as OlmMessage;
      assert.throws(() => ours.decrypt(tooFar), { name: "OlmError", code: "MESSAGE_INDEX_TOO_FAR" });
      assert.equal(utf8Decode(ours.decrypt(sent[MAX_MESSAGE_GAP] as OlmMessage)), `m${MAX_MESSAGE_GAP}`);
      // The refusal left the session intact, and the gap message after it now decrypts.
      assert.equal(utf8Decode(ours.decrypt(tooFar)), `m${MAX_MESSAGE_GAP + 1}`);
      assert.equal(
        utf8Decode(ours.decrypt(sent[MAX_MESSAGE_GAP - 1] as OlmMessage)),
        `m${MAX_MESSAGE_GAP - 1}`,
      );
    });

    it("one-time keys: removed after use on both sides, kept when a forged message fails", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      // Keyroom side: a tampered pre-key message does not burn the key; the real one does.
      const alice = libolmAccount(lib);
      const bob = Account.create();
      bob.generateOneTimeKeys(2);
      const [keyId, otk] = firstKey(bob.oneTimeKeys());
      const outbound = new lib.Session();
      outbound.create_outbound(alice.account, bob.identityKeys.curve25519, otk);
      const m = outbound.encrypt("hi") as OlmMessage;
      const bytes = decodeBase64(m.body);
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
      const forged: OlmMessage = { type: 0, body: Buffer.from(bytes).toString("base64").replace(/=+$/, "") };
      assert.throws(() => bob.createInboundSession(alice.curve25519, forged), { code: "BAD_MESSAGE_MAC" });
      assert.equal(bob.oneTimeKeys()[keyId], otk);
      bob.createInboundSession(alice.curve25519, m);
      assert.equal(bob.oneTimeKeys()[keyId], undefined);
      assert.equal(Object.keys(bob.oneTimeKeys()).length, 1);
      assert.throws(() => bob.createInboundSession(alice.curve25519, m), { code: "MISSING_ONE_TIME_KEY" });

      // libolm side: the key Keyroom used is gone from libolm's list after remove_one_time_keys.
      const carol = libolmAccount(lib);
      carol.account.generate_one_time_keys(2);
      const carolKeys = JSON.parse(carol.account.one_time_keys()).curve25519 as Record<string, string>;
      const [carolKeyId, carolOtk] = firstKey(carolKeys);
      const dave = Account.create();
      const s = dave.createOutboundSession(carol.curve25519, carolOtk);
      const pre = s.encrypt("hello carol");
      const inbound = new lib.Session();
      inbound.create_inbound_from(carol.account, dave.identityKeys.curve25519, pre.body);
      carol.account.remove_one_time_keys(inbound);
      const left = JSON.parse(carol.account.one_time_keys()).curve25519 as Record<string, string>;
      assert.equal(left[carolKeyId], undefined);
      assert.equal(Object.keys(left).length, 1);
      assert.equal(inbound.decrypt(pre.type, pre.body), "hello carol");
    });

    it("fallback keys: sessions both ways, and a Keyroom fallback key serves several sessions", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      // libolm → Keyroom fallback key, twice, then after rotation (the old key still works).
      const bob = Account.create();
      bob.generateFallbackKey();
      const [, fallback] = firstKey(bob.fallbackKey());
      bob.markKeysAsPublished();
      assert.deepEqual(bob.fallbackKey(), {});
      for (let i = 0; i < 2; i++) {
        const alice = libolmAccount(lib);
        const out = new lib.Session();
        out.create_outbound(alice.account, bob.identityKeys.curve25519, fallback);
        const { session, plaintext } = bob.createInboundSession(
          alice.curve25519,
          out.encrypt(`via fallback ${i}`),
        );
        assert.equal(utf8Decode(plaintext), `via fallback ${i}`);
        const reply = session.encrypt("ack");
        assert.equal(out.decrypt(reply.type, reply.body), "ack");
      }
      bob.generateFallbackKey();
      const late = libolmAccount(lib);
      const lateOut = new lib.Session();
      lateOut.create_outbound(late.account, bob.identityKeys.curve25519, fallback);
      const lateMsg = lateOut.encrypt("to the previous fallback key") as OlmMessage;
      assert.equal(
        utf8Decode(bob.createInboundSession(late.curve25519, lateMsg).plaintext),
        "to the previous fallback key",
      );
      bob.forgetOldFallbackKey();
      assert.throws(() => bob.createInboundSession(late.curve25519, lateMsg), {
        code: "MISSING_ONE_TIME_KEY",
      });

      // Keyroom → libolm fallback key.
      const carol = libolmAccount(lib);
      carol.account.generate_fallback_key();
      const carolFallback = firstKey(JSON.parse(carol.account.unpublished_fallback_key()).curve25519);
      const dave = Account.create();
      const s = dave.createOutboundSession(carol.curve25519, carolFallback[1]);
      const pre = s.encrypt("to your fallback key");
      const inbound = new lib.Session();
      inbound.create_inbound_from(carol.account, dave.identityKeys.curve25519, pre.body);
      assert.equal(inbound.decrypt(pre.type, pre.body), "to your fallback key");
      converse(s, inbound, 20, 4);
    });

    it("Keyroom sessions and accounts pickled mid-conversation carry on with libolm", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      let { ours, theirs } = keyroomToLibolm(lib);
      const random = prng(5);
      for (let round = 0; round < 10; round++) {
        converse(ours, theirs, 5, 100 + round);
        // Leave a message in flight each way across the pickle, and skipped keys behind.
        const inFlight = theirs.encrypt(`in flight ${round}`);
        const skipped = theirs.encrypt(`skipped ${round}`);
        const fromUs = ours.encrypt(`ours in flight ${round}`);
        ours = Session.fromPickle(JSON.parse(JSON.stringify(ours.toPickle())));
        if (random() < 0.5) {
          assert.equal(utf8Decode(ours.decrypt(inFlight as OlmMessage)), `in flight ${round}`);
          assert.equal(utf8Decode(ours.decrypt(skipped as OlmMessage)), `skipped ${round}`);
        } else {
          assert.equal(utf8Decode(ours.decrypt(skipped as OlmMessage)), `skipped ${round}`);
          assert.equal(utf8Decode(ours.decrypt(inFlight as OlmMessage)), `in flight ${round}`);
        }
        assert.equal(theirs.decrypt(fromUs.type, fromUs.body), `ours in flight ${round}`);
      }
      // An account pickled with unused one-time keys still accepts a pre-key message.
      const bob = Account.create();
      bob.generateOneTimeKeys(5);
      bob.generateFallbackKey();
      const [, otk] = firstKey(bob.oneTimeKeys());
      const restored = Account.fromPickle(JSON.parse(JSON.stringify(bob.toPickle())));
      assert.deepEqual(restored.identityKeys, bob.identityKeys);
      assert.deepEqual(restored.oneTimeKeys(), bob.oneTimeKeys());
      const alice = libolmAccount(lib);
      theirs = new lib.Session();
      theirs.create_outbound(alice.account, restored.identityKeys.curve25519, otk);
      const { plaintext } = restored.createInboundSession(alice.curve25519, theirs.encrypt("after unpickle"));
      assert.equal(utf8Decode(plaintext), "after unpickle");
    });

    it("matchesInboundSession agrees with libolm's matches_inbound_from on the other end of the session", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      // Both ends of a session hold the same three keys (I_A, E_A, E_B), so Keyroom's end and
      // libolm's end must give the same verdict on every (identity key, pre-key message) probe.
      const bob = Account.create();
      bob.generateOneTimeKeys(2);
      const [otk1, otk2] = Object.values(bob.oneTimeKeys());
      assert.ok(otk1 !== undefined && otk2 !== undefined);
      const alice = libolmAccount(lib);
      const mallory = libolmAccount(lib);
      const aliceOut = new lib.Session();
      aliceOut.create_outbound(alice.account, bob.identityKeys.curve25519, otk1);
      const aliceOther = new lib.Session();
      aliceOther.create_outbound(alice.account, bob.identityKeys.curve25519, otk2);
      const malloryOut = new lib.Session();
      malloryOut.create_outbound(mallory.account, bob.identityKeys.curve25519, otk1);
      const first = aliceOut.encrypt("1") as OlmMessage;
      const ours = bob.createInboundSession(alice.curve25519, first).session;
      const probes: [string, OlmMessage][] = [
        [alice.curve25519, first],
        [alice.curve25519, aliceOut.encrypt("2") as OlmMessage],
        [alice.curve25519, aliceOther.encrypt("3") as OlmMessage],
        [alice.curve25519, malloryOut.encrypt("4") as OlmMessage],
        [mallory.curve25519, first],
        [mallory.curve25519, malloryOut.encrypt("5") as OlmMessage],
      ];
      const verdicts = probes.map(([id, m]) => ours.matchesInboundSession(id, m));
      assert.deepEqual(
        verdicts,
        probes.map(([id, m]) => aliceOut.matches_inbound_from(id, m.body)),
      );
      assert.deepEqual(verdicts, [true, true, false, false, false, false]);

      // The reverse: a Keyroom outbound session against libolm's inbound end.
      const { ours: kOut, theirs: lIn, alice: kAlice } = keyroomToLibolm(lib);
      const carol = Account.create();
      const carolMsg = carol.createOutboundSession(bob.identityKeys.curve25519, otk2).encrypt("c");
      const reverse: [string, OlmMessage][] = [
        [kAlice.identityKeys.curve25519, kOut.encrypt("again")],
        [carol.identityKeys.curve25519, carolMsg],
        [carol.identityKeys.curve25519, kOut.encrypt("again 2")],
      ];
      const ourVerdicts = reverse.map(([id, m]) => kOut.matchesInboundSession(id, m));
      assert.deepEqual(
        ourVerdicts,
        reverse.map(([id, m]) => lIn.matches_inbound_from(id, m.body)),
      );
      assert.deepEqual(ourVerdicts, [true, false, false]);
      // Normal messages never match.
      const normal = lIn.encrypt("normal") as OlmMessage;
      assert.equal(normal.type, 1);
      assert.equal(kOut.matchesInboundSession(kAlice.identityKeys.curve25519, normal), false);
    });

    it("random schedules (fast-check): bursts both ways, drops, shuffled bursts, pickles; all within limits decrypt", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      // One step: a side sends a burst of up to 30 messages (under libolm's 40 skipped keys in all);
      // the other side receives them shuffled, minus some dropped; Keyroom may be pickled first.
      const step = fc.record({
        keyroomSends: fc.boolean(),
        count: fc.integer({ min: 1, max: 30 }),
        order: fc.array(fc.nat(), { minLength: 30, maxLength: 30 }),
        dropped: fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }),
        pickle: fc.boolean(),
      });
      fc.assert(
        fc.property(fc.boolean(), fc.array(step, { minLength: 1, maxLength: 12 }), (keyroomStarts, steps) => {
          let { ours, theirs } = keyroomStarts ? keyroomToLibolm(lib) : libolmToKeyroom(lib);
          for (const [n, s] of steps.entries()) {
            const sent = Array.from({ length: s.count }, (_, i) => {
              const p = `${n}/${i}`;
              return { p, m: s.keyroomSends ? ours.encrypt(p) : (theirs.encrypt(p) as OlmMessage) };
            });
            const delivered = sent
              .map((x, i) => ({
                ...x,
                key: s.order[i] ?? 0,
                drop: (s.dropped[i] ?? false) && i < s.count - 1,
              }))
              .filter((x) => !x.drop)
              .sort((a, b) => a.key - b.key);
            if (s.pickle) ours = Session.fromPickle(JSON.parse(JSON.stringify(ours.toPickle())));
            for (const { p, m } of delivered) {
              if (s.keyroomSends) assert.equal(theirs.decrypt(m.type, m.body), p);
              else assert.equal(utf8Decode(ours.decrypt(m)), p);
            }
          }
          theirs.free();
        }),
        { numRuns: 25 },
      );
    });

    it("Ed25519: Account.sign verifies in libolm, and libolm's signatures verify in Keyroom", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      const utility = new lib.Utility();
      const ours = Account.create();
      const theirs = libolmAccount(lib);
      for (const message of ["", "plain", '{"device_id":"DEV","keys":{}}', "ünïcödé ✓"]) {
        utility.ed25519_verify(ours.identityKeys.ed25519, message, ours.sign(message));
        assert.equal(ours.sign(utf8Encode(message)), ours.sign(message));
        const sig = theirs.account.sign(message);
        assert.equal(
          ed25519Verify(decodeBase64(theirs.ed25519), utf8Encode(message), decodeBase64(sig)),
          true,
        );
        assert.equal(
          ed25519Verify(decodeBase64(theirs.ed25519), utf8Encode(`${message}!`), decodeBase64(sig)),
          false,
        );
      }
      assert.throws(() => utility.ed25519_verify(ours.identityKeys.ed25519, "other", ours.sign("plain")));
      utility.free();
    });
  });
}
