// Property tests (fast-check): whatever bytes arrive, the Olm decoders and decryptors throw only
// OlmError, and a failed decrypt leaves the session exactly as it was.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { decodeBase64, encodeBase64, utf8Decode } from "../primitives/index.ts";
import { Account } from "./account/account.ts";
import { OlmError } from "./errors.ts";
import { decodeMessage } from "./message/message.ts";
import type { OlmMessage } from "./message/olm-message.ts";
import { decodePreKeyMessage } from "./message/prekey-message.ts";
import { readFields } from "./message/protobuf-varint.ts";
import { Session } from "./session/session.ts";

const RUNS = { numRuns: 300 };

function onlyOlmError(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof OlmError)) throw e;
  }
}

/** Byte strings near the real format: version 3 first, then protobuf-ish noise. */
const olmish = fc.oneof(
  fc.uint8Array({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 200 }).map((b) => Uint8Array.of(3, ...b)),
  fc
    .array(
      fc.oneof(
        fc
          .tuple(fc.constantFrom(0x0a, 0x12, 0x1a, 0x22), fc.uint8Array({ maxLength: 40 }))
          .map(([t, b]) => [t, b.length, ...b]),
        fc.tuple(fc.constantFrom(0x10, 0x08, 0x28), fc.nat(3000)).map(([t, n]) => [t, n & 0x7f, n >> 7]),
      ),
      { maxLength: 6 },
    )
    .map((fields) => Uint8Array.from([3, ...fields.flat(), 1, 2, 3, 4, 5, 6, 7, 8])),
);

/** Applies one random corruption to a byte string. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), byte: fc.nat(255) }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), byte: fc.nat(255) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(bytes: Uint8Array, m: Mutation): Uint8Array {
  const at = bytes.length === 0 ? 0 : m.at % bytes.length;
  switch (m.kind) {
    case "flip": {
      const out = bytes.slice();
      out[at] = (out[at] ?? 0) ^ (1 << m.bit);
      return out;
    }
    case "truncate":
      return bytes.slice(0, at);
    case "insert":
      return Uint8Array.from([...bytes.subarray(0, at), m.byte, ...bytes.subarray(at)]);
    case "delete":
      return Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(at + 1)]);
    case "set": {
      const out = bytes.slice();
      out[at] = m.byte;
      return out;
    }
  }
}

function conversation(): { alice: Session; bob: Session; aliceAccount: Account; bobAccount: Account } {
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

describe("Olm decoders under random input", () => {
  it("readFields, decodeMessage and decodePreKeyMessage throw only OlmError", () => {
    fc.assert(
      fc.property(olmish, (bytes) => {
        onlyOlmError(() => readFields(bytes, () => {}));
        onlyOlmError(() => decodeMessage(bytes));
        onlyOlmError(() => decodePreKeyMessage(bytes));
      }),
      { numRuns: 2000 },
    );
  });
});

describe("Session.decrypt under random and mutated messages", () => {
  it("random values and random { type, body }: only OlmError, and the session is unchanged", () => {
    const { alice, bob, aliceAccount } = conversation();
    const before = JSON.stringify(bob.toPickle());
    const body = fc.oneof(
      fc.string(),
      olmish.map((b) => encodeBase64(b)),
    );
    fc.assert(
      fc.property(fc.constantFrom(0, 1, 2, -1), body, fc.anything(), (type, b, junk) => {
        onlyOlmError(() => bob.decrypt(junk as OlmMessage));
        onlyOlmError(() => bob.decrypt({ type, body: b } as OlmMessage));
        onlyOlmError(() =>
          bob.matchesInboundSession(aliceAccount.identityKeys.curve25519, { type, body: b } as OlmMessage),
        );
      }),
      RUNS,
    );
    assert.equal(JSON.stringify(bob.toPickle()), before);
    assert.equal(utf8Decode(bob.decrypt(alice.encrypt("still fine"))), "still fine");
  });

  it("mutated valid messages (pre-key and normal, same and new chain): OlmError or the true plaintext; failures change nothing", () => {
    const { alice, bob } = conversation();
    let n = 0;
    fc.assert(
      fc.property(fc.boolean(), fc.boolean(), mutation, (fromAlice, turn, m) => {
        const [sender, receiver] = fromAlice ? [alice, bob] : [bob, alice];
        if (turn) receiver.decrypt(sender.encrypt("turn the ratchet"));
        const text = `message ${n++}`;
        const sent = (turn ? receiver : sender).encrypt(text);
        const target = turn ? sender : receiver;
        const corrupted: OlmMessage = {
          type: sent.type,
          body: encodeBase64(mutate(decodeBase64(sent.body), m)),
        };
        const before = JSON.stringify(target.toPickle());
        let accepted = false;
        try {
          // Only the unauthenticated outer pre-key header may change without the MAC noticing.
          assert.equal(utf8Decode(target.decrypt(corrupted)), text);
          accepted = true;
        } catch (e) {
          if (!(e instanceof OlmError)) throw e;
          assert.equal(JSON.stringify(target.toPickle()), before);
        }
        if (!accepted) assert.equal(utf8Decode(target.decrypt(sent)), text);
      }),
      RUNS,
    );
  });
});

describe("Account.createInboundSession under mutated pre-key messages", () => {
  it("throws only OlmError and never consumes the one-time key on failure", () => {
    const fresh = () => {
      const bob = Account.create();
      bob.generateOneTimeKeys(1);
      const otk = Object.values(bob.oneTimeKeys())[0] ?? "";
      const alice = Account.create();
      const pre = alice.createOutboundSession(bob.identityKeys.curve25519, otk).encrypt("pre-key");
      return { bob, alice, pre };
    };
    let scenario = fresh();
    fc.assert(
      fc.property(mutation, (m) => {
        const { bob, alice, pre } = scenario;
        const corrupted: OlmMessage = { type: 0, body: encodeBase64(mutate(decodeBase64(pre.body), m)) };
        const keysBefore = JSON.stringify(bob.oneTimeKeys());
        try {
          // Only the unauthenticated outer header may change without the MAC noticing, and then
          // the plaintext is the real one; the key is used up, so start a new scenario.
          const { plaintext } = bob.createInboundSession(alice.identityKeys.curve25519, corrupted);
          assert.equal(utf8Decode(plaintext), "pre-key");
          scenario = fresh();
        } catch (e) {
          if (!(e instanceof OlmError)) throw e;
          assert.equal(JSON.stringify(bob.oneTimeKeys()), keysBefore);
        }
      }),
      RUNS,
    );
  });
});

describe("fromPickle under random input", () => {
  it("Account.fromPickle and Session.fromPickle throw only OlmError(BAD_PICKLE)", () => {
    const { alice } = conversation();
    const account = Account.create();
    account.generateOneTimeKeys(2);
    const sessionPickle = alice.toPickle() as unknown as Record<string, unknown>;
    const accountPickle = account.toPickle() as unknown as Record<string, unknown>;
    const check = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        if (!(e instanceof OlmError) || e.code !== "BAD_PICKLE") throw e;
      }
    };
    fc.assert(
      fc.property(
        fc.anything(),
        fc.constantFrom(...Object.keys(sessionPickle)),
        fc.constantFrom(...Object.keys(accountPickle)),
        (junk, sk, ak) => {
          check(() => Session.fromPickle(junk as never));
          check(() => Account.fromPickle(junk as never));
          check(() => Session.fromPickle({ ...sessionPickle, [sk]: junk } as never));
          check(() => Account.fromPickle({ ...accountPickle, [ak]: junk } as never));
        },
      ),
      RUNS,
    );
  });
});
