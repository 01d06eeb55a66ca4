// Regenerates the Olm known-answer vectors in this folder from libolm (npm @towns-protocol/olm).
// Run: node --conditions=source --import tsx test/vectors/olm/generate.ts
//
// libolm's wasm build draws every random byte through Node's `crypto.randomBytes`, looked up at
// call time; replacing it with a queue of fixed bytes makes each libolm call deterministic, and
// the bytes fed in are recorded next to its outputs. Nothing of Keyroom is used here.
import { writeFileSync } from "node:fs";
import { loadLibolm } from "../../support/libolm.ts";
import { feed, feedOnDemand } from "../fixed-random.ts";

const maybeOlm = await loadLibolm();
if (maybeOlm === null) throw new Error("libolm is not available");
const Olm = maybeOlm;

const alice = new Olm.Account();
const aliceRandom = feed("alice account", 64);
alice.create();
const bob = new Olm.Account();
const bobRandom = feed("bob account", 64);
bob.create();
const bobOneTimeKeyRandom = feed("bob one-time keys", 64);
bob.generate_one_time_keys(2);
const bobFallbackRandom = feed("bob fallback key", 32);
bob.generate_fallback_key();
const bobOneTimeKeys = JSON.parse(bob.one_time_keys()).curve25519 as Record<string, string>;
const bobFallbackKey = JSON.parse(bob.unpublished_fallback_key()).curve25519 as Record<string, string>;
const aliceKeys = JSON.parse(alice.identity_keys()) as { curve25519: string; ed25519: string };
const bobKeys = JSON.parse(bob.identity_keys()) as { curve25519: string; ed25519: string };

const signedMessage = '{"algorithms":["m.olm.v1.curve25519-aes-sha2"],"device_id":"ALICE"}';
const aliceSignature = alice.sign(signedMessage);

// Alice starts a session with Bob's first one-time key (the lowest key ID).
const otkId = Object.keys(bobOneTimeKeys).sort()[0] as string;
const aliceSession = new Olm.Session();
const outboundRandom = feed("alice outbound session", 64);
aliceSession.create_outbound(alice, bobKeys.curve25519, bobOneTimeKeys[otkId] as string);

type Sent = { from: "alice" | "bob"; random: string; plaintext: string; type: number; body: string };
const messages: Sent[] = [];
let bobSession: InstanceType<typeof Olm.Session> | undefined;

function send(from: "alice" | "bob", plaintext: string, n: number): void {
  const session = from === "alice" ? aliceSession : bobSession;
  if (session === undefined) throw new Error("no session");
  // libolm asks for 32 bytes only when it starts a new sending chain.
  let m!: { type: number; body: string };
  const random = feedOnDemand(`${from} message ${n}`, () => {
    m = session.encrypt(plaintext);
  });
  messages.push({ from, random, plaintext, type: m.type, body: m.body });
  if (from === "alice") {
    if (bobSession === undefined) {
      bobSession = new Olm.Session();
      bobSession.create_inbound_from(bob, aliceKeys.curve25519, m.body);
    }
    if (bobSession.decrypt(m.type, m.body) !== plaintext) throw new Error("libolm round trip failed");
  } else if (aliceSession.decrypt(m.type, m.body) !== plaintext) {
    throw new Error("libolm round trip failed");
  }
}

// Three pre-key messages, then ratchet turns both ways, including an empty and a 3-block plaintext.
const script: ["alice" | "bob", string][] = [
  ["alice", "Hello, Bob!"],
  ["alice", ""],
  ["alice", "A third message on the first chain, long enough to need three AES blocks."],
  ["bob", "Hi Alice."],
  ["bob", "Second on Bob's first chain."],
  ["alice", "Alice's second chain."],
  ["bob", "Bob's second chain."],
  ["alice", "Alice's third chain, ✓ non-ASCII."],
];
for (const [i, [from, text]] of script.entries()) send(from, text, i);

const vectors = {
  description:
    "Olm session between two libolm accounts built from fixed randomness: account keys, one-time and fallback " +
    "keys, an Ed25519 signature, the session ID, and every message (pre-key and normal, both directions).",
  provenance: {
    generator: "test/vectors/olm/generate.ts",
    library: `libolm ${Olm.get_library_version().join(".")} (npm @towns-protocol/olm)`,
    randomness:
      "every libolm random draw replaced by SHA-256(label/0) || SHA-256(label/1) ..., recorded below as base64",
    randomLayout: {
      account: "64 bytes: Ed25519 seed, then Curve25519 secret key",
      oneTimeKeys: "32 bytes per key: Curve25519 secret key",
      outboundSession: "64 bytes: base key secret, then first ratchet key secret",
      message: "32 bytes (new ratchet key secret) when the sender starts a new chain, otherwise none",
    },
  },
  alice: { random: aliceRandom, identityKeys: aliceKeys },
  bob: {
    random: bobRandom,
    identityKeys: bobKeys,
    oneTimeKeyRandom: bobOneTimeKeyRandom,
    oneTimeKeys: bobOneTimeKeys,
    fallbackKeyRandom: bobFallbackRandom,
    fallbackKey: bobFallbackKey,
  },
  signature: { signer: "alice", message: signedMessage, signature: aliceSignature },
  session: {
    oneTimeKeyId: otkId,
    outboundRandom,
    sessionId: aliceSession.session_id(),
  },
  messages,
};

writeFileSync(new URL("./libolm-session.json", import.meta.url), `${JSON.stringify(vectors, null, 2)}\n`);
console.log(`wrote ${messages.length} messages`);
