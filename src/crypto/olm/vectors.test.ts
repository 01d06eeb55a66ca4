// Known-answer tests against transcripts recorded from libolm with fixed randomness
// (test/vectors/olm/, provenance inside each file): Keyroom, fed the same random bytes, must
// produce the same keys, signature, session ID and every message byte for byte.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { decodeBase64, utf8Decode } from "../primitives/index.ts";
import { Account, type AccountPickle, outboundSessionFromRandom } from "./account/account.ts";
import type { OlmMessage } from "./message/olm-message.ts";
import { encryptWithRatchetSecret, type Session } from "./session/session.ts";

interface Vectors {
  alice: { random: string; identityKeys: { curve25519: string; ed25519: string } };
  bob: {
    random: string;
    identityKeys: { curve25519: string; ed25519: string };
    oneTimeKeyRandom: string;
    oneTimeKeys: Record<string, string>;
    fallbackKeyRandom: string;
    fallbackKey: Record<string, string>;
  };
  signature: { message: string; signature: string };
  session: { oneTimeKeyId: string; outboundRandom: string; sessionId: string };
  messages: { from: "alice" | "bob"; random: string; plaintext: string; type: 0 | 1; body: string }[];
}

const vectors = JSON.parse(
  readFileSync(new URL("../../../test/vectors/olm/libolm-session.json", import.meta.url), "utf8"),
) as Vectors;

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64").replace(/=+$/, "");

/** libolm's account randomness is the Ed25519 seed followed by the Curve25519 secret. */
function accountFromLibolmRandom(random: string, oneTimeKeyRandom = "", fallbackRandom = ""): Account {
  const r = decodeBase64(random);
  const otk = oneTimeKeyRandom === "" ? new Uint8Array(0) : decodeBase64(oneTimeKeyRandom);
  const oneTimeKeys = [];
  for (let i = 0; i * 32 < otk.length; i++) {
    oneTimeKeys.push({ id: i + 1, secretKey: b64(otk.subarray(i * 32, i * 32 + 32)), published: false });
  }
  const fallback =
    fallbackRandom === ""
      ? null
      : { id: oneTimeKeys.length + 1, secretKey: fallbackRandom, published: false };
  const pickle: AccountPickle = {
    version: 1,
    ed25519Seed: b64(r.subarray(0, 32)),
    curve25519SecretKey: b64(r.subarray(32, 64)),
    lastKeyId: oneTimeKeys.length + (fallback === null ? 0 : 1),
    oneTimeKeys,
    fallbackKeys: { current: fallback, previous: null },
  };
  return Account.fromPickle(pickle);
}

describe("Olm known answers from libolm (test/vectors/olm/libolm-session.json)", () => {
  const alice = accountFromLibolmRandom(vectors.alice.random);
  const bob = accountFromLibolmRandom(
    vectors.bob.random,
    vectors.bob.oneTimeKeyRandom,
    vectors.bob.fallbackKeyRandom,
  );

  it("derives the same identity keys, one-time key IDs and fallback key", () => {
    assert.deepEqual({ ...alice.identityKeys }, vectors.alice.identityKeys);
    assert.deepEqual({ ...bob.identityKeys }, vectors.bob.identityKeys);
    assert.deepEqual(bob.oneTimeKeys(), vectors.bob.oneTimeKeys);
    assert.deepEqual(bob.fallbackKey(), vectors.bob.fallbackKey);
  });

  it("produces the same Ed25519 signature", () => {
    assert.equal(alice.sign(vectors.signature.message), vectors.signature.signature);
  });

  it("replays the whole transcript byte for byte, and each side decrypts the other's messages", () => {
    const otk = vectors.bob.oneTimeKeys[vectors.session.oneTimeKeyId];
    assert.ok(otk !== undefined);
    const aliceSession = outboundSessionFromRandom(
      alice,
      vectors.bob.identityKeys.curve25519,
      otk,
      decodeBase64(vectors.session.outboundRandom),
    );
    assert.equal(aliceSession.sessionId, vectors.session.sessionId);
    let bobSession: Session | undefined;
    assert.ok(vectors.messages.length > 0, "the vector file holds a transcript");
    for (const [i, m] of vectors.messages.entries()) {
      const sender = m.from === "alice" ? aliceSession : bobSession;
      assert.ok(sender !== undefined, `message ${i} has a sender`);
      const secret = m.random === "" ? null : decodeBase64(m.random);
      const sent = encryptWithRatchetSecret(sender, m.plaintext, secret);
      assert.deepEqual(sent, { type: m.type, body: m.body }, `message ${i} matches libolm's bytes`);
      const wire: OlmMessage = { type: m.type, body: m.body };
      if (m.from === "alice" && bobSession === undefined) {
        const inbound = bob.createInboundSession(vectors.alice.identityKeys.curve25519, wire);
        bobSession = inbound.session;
        assert.equal(bobSession.sessionId, vectors.session.sessionId);
        assert.equal(utf8Decode(inbound.plaintext), m.plaintext);
        assert.equal(bob.oneTimeKeys()[vectors.session.oneTimeKeyId], undefined, "used one-time key removed");
      } else {
        const receiver = m.from === "alice" ? bobSession : aliceSession;
        assert.ok(receiver !== undefined);
        assert.equal(utf8Decode(receiver.decrypt(wire)), m.plaintext, `message ${i} decrypts`);
      }
    }
  });
});
