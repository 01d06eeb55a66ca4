// Megolm interop with libolm, an implementation we did not write: session keys (v2) and exported
// keys (v1) moving both ways, decryption at arbitrary indexes up to 2^24, late imports refusing
// earlier messages, hundreds of messages out of order, pickles mid-stream, and tampering rejected
// on both sides. Runs against every libolm build present (npm @towns-protocol/olm, Debian libjs-olm).
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { InboundGroupSession, MegolmError, OutboundGroupSession } from "../../src/crypto/megolm/index.ts";
import { decodeBase64, encodeBase64, utf8Decode } from "../../src/crypto/primitives/index.ts";
import { type Libolm, loadDebianLibolm, loadLibolm } from "../support/libolm.ts";
import { prng, shuffle } from "../support/random.ts";

function text(i: number): string {
  const pieces = [
    "",
    "hello",
    "ünïcödé ✓ 🔐",
    '{"type":"m.room.message","content":{"body":"hi"}}',
    "x".repeat(i % 97),
  ];
  return `${i}:${pieces[i % pieces.length]}`;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof MegolmError) return e.code;
    return e instanceof Error ? e.message : String(e);
  }
  return undefined;
}

/**
 * A Keyroom sender at `index` of the same session, built through public APIs only: the ratchet
 * comes from a v1 export at that index, the signing seed from the sender's pickle.
 */
function senderAt(
  sender: OutboundGroupSession,
  inbound: InboundGroupSession,
  index: number,
): OutboundGroupSession {
  const exported = decodeBase64(inbound.exportAt(index));
  return OutboundGroupSession.fromPickle({
    ...sender.toPickle(),
    ratchet: encodeBase64(exported.subarray(5, 133)),
    messageIndex: index,
  });
}

const FAR_INDEXES = [0, 1, 255, 256, 65_535, 65_536, 100_000, 16_777_216];

const peers: { name: string; load: () => Promise<Libolm | null> }[] = [
  { name: "npm @towns-protocol/olm", load: loadLibolm },
  { name: "Debian libjs-olm", load: loadDebianLibolm },
];

for (const peer of peers) {
  describe(`Megolm interop with libolm (${peer.name})`, () => {
    let Olm: Libolm | null = null;
    before(async () => {
      Olm = await peer.load();
      if (Olm === null)
        console.log(`SKIPPED: libolm (${peer.name}) is not available; Megolm interop not tested`);
    });

    function olm(t: { skip: (msg: string) => void }): Libolm | null {
      if (Olm === null) t.skip(`libolm (${peer.name}) not available`);
      return Olm;
    }

    it("Keyroom outbound → libolm inbound: 300 messages, shuffled, via the v2 session key", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      const ours = OutboundGroupSession.create();
      const theirs = new lib.InboundGroupSession();
      theirs.create(ours.sessionKey());
      assert.equal(theirs.session_id(), ours.sessionId);
      assert.equal(theirs.first_known_index(), 0);
      const sent = Array.from({ length: 300 }, (_, i) => ({ i, body: ours.encrypt(text(i)) }));
      for (const { i, body } of shuffle(sent, prng(1))) {
        const r = theirs.decrypt(body);
        assert.equal(r.message_index, i);
        assert.equal(r.plaintext, text(i));
      }
      theirs.free();
    });

    it("libolm outbound → Keyroom inbound: 300 messages, shuffled and repeated", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      const theirs = new lib.OutboundGroupSession();
      theirs.create();
      const ours = InboundGroupSession.fromSessionKey(theirs.session_key());
      assert.equal(ours.sessionId, theirs.session_id());
      const sent = Array.from({ length: 300 }, (_, i) => ({ i, body: theirs.encrypt(text(i)) }));
      assert.equal(theirs.message_index(), 300);
      const order = shuffle([...sent, ...sent.slice(0, 20)], prng(2));
      for (const { i, body } of order) {
        const r = ours.decrypt(body);
        assert.equal(r.messageIndex, i);
        assert.equal(utf8Decode(r.plaintext), text(i));
      }
      // A session key taken mid-stream starts at that index, on both sides.
      const late = InboundGroupSession.fromSessionKey(theirs.session_key());
      assert.equal(late.firstKnownIndex, 300);
      assert.equal(
        codeOf(() => late.decrypt(sent[299]!.body)),
        "UNKNOWN_MESSAGE_INDEX",
      );
      theirs.free();
    });

    it("v1 exports are identical and import both ways at arbitrary indexes", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      const sender = OutboundGroupSession.create();
      const ours = InboundGroupSession.fromSessionKey(sender.sessionKey());
      const theirs = new lib.InboundGroupSession();
      theirs.create(sender.sessionKey());
      for (const index of FAR_INDEXES) {
        const ourExport = ours.exportAt(index);
        assert.equal(theirs.export_session(index), ourExport, `export at ${index}`);

        const theirImport = new lib.InboundGroupSession();
        theirImport.import_session(ourExport);
        assert.equal(theirImport.session_id(), sender.sessionId);
        assert.equal(theirImport.first_known_index(), index);
        const ourImport = InboundGroupSession.fromExport(theirs.export_session(index));
        assert.equal(ourImport.firstKnownIndex, index);

        // A message at exactly this index and one further on, decrypted by every copy.
        const far = senderAt(sender, ours, index);
        const atIndex = far.encrypt(`at ${index}`);
        const later = senderAt(sender, ours, index + 300).encrypt(`at ${index + 300}`);
        for (const [body, at] of [
          [atIndex, index],
          [later, index + 300],
        ] as const) {
          assert.deepEqual(theirImport.decrypt(body), { plaintext: `at ${at}`, message_index: at });
          assert.deepEqual(theirs.decrypt(body), { plaintext: `at ${at}`, message_index: at });
          assert.equal(utf8Decode(ourImport.decrypt(body).plaintext), `at ${at}`);
          assert.equal(ours.decrypt(body).messageIndex, at);
        }
        if (index > 0) {
          // Imported later, neither side can go back.
          const earlier = senderAt(sender, ours, index - 1).encrypt("earlier");
          assert.match(codeOf(() => theirImport.decrypt(earlier)) ?? "", /UNKNOWN_MESSAGE_INDEX/);
          assert.equal(
            codeOf(() => ourImport.decrypt(earlier)),
            "UNKNOWN_MESSAGE_INDEX",
          );
          assert.equal(utf8Decode(ours.decrypt(earlier).plaintext), "earlier");
        }
        theirImport.free();
      }
      theirs.free();
    });

    it("libolm exports from a libolm sender import into Keyroom", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      const sender = new lib.OutboundGroupSession();
      sender.create();
      const relay = new lib.InboundGroupSession();
      relay.create(sender.session_key());
      const bodies = Array.from({ length: 40 }, (_, i) => sender.encrypt(text(i)));
      const ours = InboundGroupSession.fromExport(relay.export_session(17));
      assert.equal(ours.signingKeyVerified, false);
      assert.equal(ours.firstKnownIndex, 17);
      for (let i = 17; i < 40; i++) assert.equal(utf8Decode(ours.decrypt(bodies[i]!).plaintext), text(i));
      assert.equal(
        codeOf(() => ours.decrypt(bodies[16]!)),
        "UNKNOWN_MESSAGE_INDEX",
      );
      // The signed key taken now (index 40) is the same session but worse; merged, the result
      // is signed and starts at 17.
      const signed = InboundGroupSession.fromSessionKey(sender.session_key());
      assert.equal(signed.compare(ours), "worse");
      const merged = signed.merge(ours);
      assert.ok(merged !== null);
      assert.equal(merged.firstKnownIndex, 17);
      assert.equal(merged.signingKeyVerified, true);
      sender.free();
      relay.free();
    });

    it("pickles mid-stream continue the same conversation", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      let ours = OutboundGroupSession.create();
      const theirs = new lib.InboundGroupSession();
      theirs.create(ours.sessionKey());
      const theirSender = new lib.OutboundGroupSession();
      theirSender.create();
      let ourReceiver = InboundGroupSession.fromSessionKey(theirSender.session_key());
      for (let i = 0; i < 120; i++) {
        if (i % 40 === 39) {
          ours = OutboundGroupSession.fromPickle(JSON.parse(JSON.stringify(ours.toPickle())));
          ourReceiver = InboundGroupSession.fromPickle(JSON.parse(JSON.stringify(ourReceiver.toPickle())));
        }
        assert.deepEqual(theirs.decrypt(ours.encrypt(text(i))), { plaintext: text(i), message_index: i });
        assert.equal(utf8Decode(ourReceiver.decrypt(theirSender.encrypt(text(i))).plaintext), text(i));
      }
      theirs.free();
      theirSender.free();
    });

    it("libolm pickles of inbound sessions import into Keyroom and keep decrypting", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      const sender = new lib.OutboundGroupSession();
      sender.create();
      const theirs = new lib.InboundGroupSession();
      theirs.create(sender.session_key());
      const bodies = Array.from({ length: 50 }, (_, i) => sender.encrypt(text(i)));
      for (const b of bodies.slice(0, 30)) theirs.decrypt(b);
      for (const key of ["pickle key", new Uint8Array(32).fill(9)]) {
        // libolm's binding zeroes a Uint8Array key after use: hand it a copy.
        const ours = InboundGroupSession.fromLibolmPickle(
          theirs.pickle(typeof key === "string" ? key : key.slice()),
          key,
        );
        assert.equal(ours.sessionId, theirs.session_id());
        assert.equal(ours.firstKnownIndex, 0);
        assert.equal(ours.signingKeyVerified, true);
        for (const [i, b] of bodies.entries()) assert.equal(utf8Decode(ours.decrypt(b).plaintext), text(i));
        assert.equal(ours.exportAt(40), theirs.export_session(40));
      }
      const relayed = new lib.InboundGroupSession();
      relayed.import_session(theirs.export_session(10));
      const fromExport = InboundGroupSession.fromLibolmPickle(relayed.pickle("k"), "k");
      assert.equal(fromExport.firstKnownIndex, 10);
      assert.equal(fromExport.signingKeyVerified, false);
      assert.equal(
        codeOf(() => InboundGroupSession.fromLibolmPickle(relayed.pickle("k"), "K")),
        "BAD_PICKLE",
      );
      sender.free();
      theirs.free();
      relayed.free();
    });

    it("each side rejects the other's tampered messages and stays usable", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      const ours = OutboundGroupSession.create();
      const theirs = new lib.InboundGroupSession();
      theirs.create(ours.sessionKey());
      const good = decodeBase64(ours.encrypt("good"));
      for (const at of [0, 3, good.length - 70, good.length - 1]) {
        const bad = good.slice();
        bad[at]! ^= 0x04;
        assert.throws(() => theirs.decrypt(encodeBase64(bad)));
      }
      assert.equal(theirs.decrypt(encodeBase64(good)).plaintext, "good");

      const theirSender = new lib.OutboundGroupSession();
      theirSender.create();
      const receiver = InboundGroupSession.fromSessionKey(theirSender.session_key());
      const theirGood = decodeBase64(theirSender.encrypt("theirs"));
      // Version byte, ciphertext tag, ciphertext, MAC, signature.
      const expected = [
        "BAD_MESSAGE_VERSION",
        "BAD_MESSAGE_FORMAT",
        "BAD_SIGNATURE",
        "BAD_SIGNATURE",
        "BAD_SIGNATURE",
      ];
      for (const [k, at] of [0, 3, 6, theirGood.length - 70, theirGood.length - 1].entries()) {
        const bad = theirGood.slice();
        bad[at]! ^= 0x04;
        assert.equal(
          codeOf(() => receiver.decrypt(encodeBase64(bad))),
          expected[k],
        );
      }
      assert.equal(utf8Decode(receiver.decrypt(encodeBase64(theirGood)).plaintext), "theirs");
      theirs.free();
      theirSender.free();
    });
  });
}
