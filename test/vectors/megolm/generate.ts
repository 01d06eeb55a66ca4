// Regenerates the Megolm known-answer vectors in this folder from libolm (npm @towns-protocol/olm).
// Run: node --conditions=source --import tsx test/vectors/megolm/generate.ts
//
// libolm's wasm build draws its random bytes through Node's `crypto.randomBytes`, looked up at call
// time; a queue of fixed bytes makes session creation deterministic (Megolm encryption itself uses
// no randomness). Nothing of Keyroom is used here.
import { createPrivateKey, createPublicKey } from "node:crypto";
import { writeFileSync } from "node:fs";
import { loadLibolm } from "../../support/libolm.ts";
import { b64, fixedBytes, queueRandom } from "../fixed-random.ts";

/** Ed25519 public key of a 32-byte seed, through node:crypto's PKCS#8 import. */
function ed25519Public(seed: Uint8Array): string {
  const der = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]);
  const spki = createPublicKey(createPrivateKey({ key: der, format: "der", type: "pkcs8" })).export({
    format: "der",
    type: "spki",
  });
  return b64(spki.subarray(spki.length - 32));
}

const Olm = await loadLibolm();
if (Olm === null) throw new Error("libolm is not available");

const random = fixedBytes("megolm outbound session", 160);
queueRandom(random);
const outbound = new Olm.OutboundGroupSession();
outbound.create();
const sessionId = outbound.session_id();
// Check (rather than assume) where libolm puts the ratchet and the Ed25519 seed.
const ratchet = random.subarray(0, 128);
const signingSeed = random.subarray(128, 160);
if (ed25519Public(signingSeed) !== sessionId) throw new Error("unexpected libolm random layout");

const sessionKeyAt0 = outbound.session_key();
const inbound = new Olm.InboundGroupSession();
inbound.create(sessionKeyAt0);

const plaintexts = [
  "",
  "Hello, room!",
  '{"type":"m.room.message","content":{"msgtype":"m.text","body":"three AES blocks of JSON here"}}',
  "non-ASCII ✓ ünïcödé 🐶",
];
const messages: { index: number; plaintext: string; body: string }[] = [];
function send(plaintext: string): void {
  const index = outbound.message_index();
  const body = outbound.encrypt(plaintext);
  const r = inbound.decrypt(body);
  if (r.plaintext !== plaintext || r.message_index !== index) throw new Error("libolm round trip failed");
  messages.push({ index, plaintext, body });
}
for (const p of plaintexts) send(p);
while (outbound.message_index() < 300) outbound.encrypt("filler");
const sessionKeyAt300 = outbound.session_key();
send("at index 300");

const exportIndexes = [0, 1, 255, 256, 300, 65_536, 100_000, 16_777_216];
const exports = exportIndexes.map((index) => ({ index, key: inbound.export_session(index) }));

// libolm pickles (no randomness: the IV comes from the key): the signed session after decrypting
// up to index 300, and an unverified import at index 256.
const PICKLE_KEY = "keyroom test pickle key";
const imported = new Olm.InboundGroupSession();
imported.import_session(inbound.export_session(256));
const libolmPickles = [
  { key: PICKLE_KEY, pickle: inbound.pickle(PICKLE_KEY), firstKnownIndex: 0, signingKeyVerified: true },
  { key: PICKLE_KEY, pickle: imported.pickle(PICKLE_KEY), firstKnownIndex: 256, signingKeyVerified: false },
];

const vectors = {
  description:
    "Megolm outbound session built by libolm from fixed randomness: session ID, v2 session keys at index 0 and " +
    "300, messages at indexes 0-3 and 300, v1 exports from a libolm inbound session at several indexes, and " +
    "libolm pickles (version 2) of inbound sessions.",
  provenance: {
    generator: "test/vectors/megolm/generate.ts",
    library: `libolm ${Olm.get_library_version().join(".")} (npm @towns-protocol/olm)`,
    randomness:
      "libolm's one random draw (160 bytes) replaced by SHA-256('megolm outbound session/0') || /1 ...",
    randomLayout: "160 bytes: Megolm ratchet R0..R3 (128), then the Ed25519 seed (32)",
  },
  ratchet: b64(ratchet),
  signingSeed: b64(signingSeed),
  sessionId,
  sessionKeys: [
    { index: 0, key: sessionKeyAt0 },
    { index: 300, key: sessionKeyAt300 },
  ],
  messages,
  exports,
  libolmPickles,
};
writeFileSync(new URL("./libolm-megolm.json", import.meta.url), `${JSON.stringify(vectors, null, 2)}\n`);
console.log(`wrote ${messages.length} messages, ${exports.length} exports`);
