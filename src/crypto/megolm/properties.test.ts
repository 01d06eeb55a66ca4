// Property tests (fast-check): whatever arrives — random strings, random bytes, mutated messages,
// session keys or pickles — Megolm throws only `MegolmError`, and a failed decryption leaves the
// session able to decrypt what it could before.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  decodeBase64,
  ed25519PublicKey,
  ed25519Sign,
  encodeBase64,
  utf8Decode,
} from "../primitives/index.ts";
import { MegolmError } from "./errors.ts";
import { InboundGroupSession, type InboundGroupSessionPickle } from "./inbound.ts";
import { encodeMegolmMessage } from "./message.ts";
import { OutboundGroupSession, type OutboundGroupSessionPickle } from "./outbound.ts";

/** Runs `fn`; passes when it returns or throws a MegolmError, fails on any other exception. */
function onlyMegolmErrors(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (e instanceof MegolmError) return true;
    throw e;
  }
}

type MutationValue =
  | { kind: "flip"; at: number; mask: number }
  | { kind: "truncate"; at: number }
  | { kind: "extend"; extra: Uint8Array }
  | { kind: "splice"; at: number; extra: Uint8Array };

/** A valid message mutated by flips, truncation, extension or a splice. */
const mutation: fc.Arbitrary<MutationValue> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("extend" as const), extra: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
  fc.record({ kind: fc.constant("splice" as const), at: fc.nat(), extra: fc.uint8Array({ maxLength: 20 }) }),
);

function mutate(
  bytes: Uint8Array,
  m: fc.Arbitrary<unknown> extends never ? never : MutationValue,
): Uint8Array {
  const out = bytes.slice();
  switch (m.kind) {
    case "flip":
      out[m.at % out.length]! ^= m.mask;
      return out;
    case "truncate":
      return out.subarray(0, m.at % out.length);
    case "extend":
      return new Uint8Array([...out, ...m.extra]);
    case "splice": {
      const at = m.at % out.length;
      return new Uint8Array([...out.subarray(0, at), ...m.extra, ...out.subarray(at + 1)]);
    }
  }
}

describe("Megolm properties", () => {
  const sender = OutboundGroupSession.create();
  const sessionKey = sender.sessionKey();
  const receiver = InboundGroupSession.fromSessionKey(sessionKey);
  const good = sender.encrypt("the good message");
  const goodBytes = decodeBase64(good);

  it("decrypt throws only MegolmError for random strings and random bytes", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (s) => onlyMegolmErrors(() => receiver.decrypt(s))),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (b) =>
        onlyMegolmErrors(() => receiver.decrypt(encodeBase64(b))),
      ),
      { numRuns: 300 },
    );
    // Random payloads behind a valid version byte and a plausible layout reach the deeper checks.
    fc.assert(
      fc.property(
        fc.nat({ max: 2 ** 32 - 1 }),
        fc.uint8Array({ maxLength: 64 }),
        fc.uint8Array({ minLength: 72, maxLength: 72 }),
        (i, ct, tail) =>
          onlyMegolmErrors(() => {
            const varint: number[] = [];
            for (let v = i; ; v = Math.floor(v / 128)) {
              if (v < 128) {
                varint.push(v);
                break;
              }
              varint.push((v % 128) | 0x80);
            }
            receiver.decrypt(
              encodeBase64(new Uint8Array([3, 0x08, ...varint, 0x12, ct.length, ...ct, ...tail])),
            );
          }),
      ),
      { numRuns: 200 },
    );
  });

  it("mutated messages fail with MegolmError and leave the session usable", () => {
    fc.assert(
      fc.property(mutation, (m) => {
        const bad = mutate(goodBytes, m);
        let decrypted = false;
        try {
          receiver.decrypt(encodeBase64(bad));
          decrypted = true;
        } catch (e) {
          if (!(e instanceof MegolmError)) throw e;
        }
        // Only an unchanged message may decrypt (a splice can re-insert the same byte).
        if (decrypted) assert.deepEqual(bad, goodBytes);
        assert.equal(utf8Decode(receiver.decrypt(good).plaintext), "the good message");
      }),
      { numRuns: 400 },
    );
  });

  it("correctly signed messages with random index, ciphertext and MAC fail cleanly and move nothing", () => {
    const seed = decodeBase64(sender.toPickle().signingSeed);
    const secret = new Uint8Array([...seed, ...ed25519PublicKey(seed)]);
    fc.assert(
      fc.property(
        fc.oneof(fc.nat({ max: 300 }), fc.nat({ max: 2 ** 32 - 1 })),
        fc.uint8Array({ maxLength: 48 }),
        fc.uint8Array({ minLength: 8, maxLength: 8 }),
        (index, ciphertext, mac) => {
          const { bytes, macOffset } = encodeMegolmMessage(index, ciphertext);
          bytes.set(mac, macOffset);
          bytes.set(ed25519Sign(secret, bytes.subarray(0, macOffset + 8)), macOffset + 8);
          assert.throws(
            () => receiver.decrypt(encodeBase64(bytes)),
            (e) => e instanceof MegolmError && ["BAD_MAC", "UNKNOWN_MESSAGE_INDEX"].includes(e.code),
          );
          assert.equal(utf8Decode(receiver.decrypt(good).plaintext), "the good message");
        },
      ),
      { numRuns: 150 },
    );
    assert.equal(receiver.decrypt(sender.encrypt("still in step")).messageIndex, 1);
  });

  it("session keys, exports and pickles from random or mutated input throw only MegolmError", () => {
    const exported = decodeBase64(receiver.exportAtFirstKnownIndex());
    const key = decodeBase64(sessionKey);
    fc.assert(
      fc.property(mutation, (m) => {
        onlyMegolmErrors(() => InboundGroupSession.fromSessionKey(encodeBase64(mutate(key, m))));
        return onlyMegolmErrors(() => InboundGroupSession.fromExport(encodeBase64(mutate(exported, m))));
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 320 }), (s) => {
        onlyMegolmErrors(() => InboundGroupSession.fromSessionKey(s));
        return onlyMegolmErrors(() => InboundGroupSession.fromExport(s));
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 500 }), fc.uint8Array({ maxLength: 400 }).map(encodeBase64)),
        (s) => onlyMegolmErrors(() => InboundGroupSession.fromLibolmPickle(s, "key")),
      ),
      { numRuns: 200 },
    );
    const outboundPickle = sender.toPickle();
    const inboundPickle = receiver.toPickle();
    fc.assert(
      fc.property(
        fc.jsonValue(),
        fc.constantFrom(
          "ratchet",
          "messageIndex",
          "signingSeed",
          "firstKnownIndex",
          "signingKey",
          "signingKeyVerified",
          "version",
        ),
        (value, field) => {
          onlyMegolmErrors(() =>
            OutboundGroupSession.fromPickle(value as unknown as OutboundGroupSessionPickle),
          );
          onlyMegolmErrors(() =>
            InboundGroupSession.fromPickle(value as unknown as InboundGroupSessionPickle),
          );
          onlyMegolmErrors(() =>
            OutboundGroupSession.fromPickle({
              ...outboundPickle,
              [field]: value,
            } as OutboundGroupSessionPickle),
          );
          return onlyMegolmErrors(() =>
            InboundGroupSession.fromPickle({ ...inboundPickle, [field]: value } as InboundGroupSessionPickle),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it("any delivery order decrypts every message to its own index", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.nat({ max: 5000 }),
        fc.infiniteStream(fc.nat()),
        (count, start, picks) => {
          const s = OutboundGroupSession.fromPickle({
            ...OutboundGroupSession.create().toPickle(),
            messageIndex: start,
          });
          const r = InboundGroupSession.fromSessionKey(s.sessionKey());
          const sent = Array.from({ length: count }, (_, i) => ({
            index: start + i,
            body: s.encrypt(`#${i}`),
          }));
          const it = picks[Symbol.iterator]();
          const order = sent.slice();
          for (let i = order.length - 1; i > 0; i--) {
            const j = (it.next().value as number) % (i + 1);
            [order[i], order[j]] = [order[j]!, order[i]!];
          }
          for (const m of order) {
            const d = r.decrypt(m.body);
            assert.equal(d.messageIndex, m.index);
            assert.equal(utf8Decode(d.plaintext), `#${m.index - start}`);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it("pickles round-trip at any point of a conversation", () => {
    fc.assert(
      fc.property(fc.nat({ max: 30 }), fc.nat({ max: 30 }), (before, after) => {
        const s = OutboundGroupSession.create();
        const r = InboundGroupSession.fromSessionKey(s.sessionKey());
        for (let i = 0; i < before; i++) r.decrypt(s.encrypt("x"));
        const s2 = OutboundGroupSession.fromPickle(JSON.parse(JSON.stringify(s.toPickle())));
        const r2 = InboundGroupSession.fromPickle(JSON.parse(JSON.stringify(r.toPickle())));
        for (let i = 0; i < after; i++) {
          const a = s.encrypt(`m${i}`);
          assert.equal(s2.encrypt(`m${i}`), a);
          assert.equal(r2.decrypt(a).messageIndex, before + i);
        }
        assert.equal(r2.exportAtFirstKnownIndex(), r.exportAtFirstKnownIndex());
      }),
      { numRuns: 30 },
    );
  });
});
