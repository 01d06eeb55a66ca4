// Regenerates the backup PK-encryption known-answer vectors in this folder from libolm
// (npm @towns-protocol/olm). Run: node --conditions=source --import tsx test/vectors/pk/generate.ts
//
// libolm's wasm build draws its random bytes through Node's `crypto.randomBytes`, looked up at call
// time; a queue of fixed bytes makes each encryption's ephemeral key deterministic. Nothing of
// Keyroom is used here.
import { writeFileSync } from "node:fs";
import { loadLibolm } from "../../support/libolm.ts";
import { b64, fixedBytes, queueRandom } from "../fixed-random.ts";

const Olm = await loadLibolm();
if (Olm === null) throw new Error("libolm is not available");

const privateKey = fixedBytes("pk backup private key", 32);
const decryption = new Olm.PkDecryption();
const publicKey = decryption.init_with_private_key(new Uint8Array(privateKey));

const plaintexts = [
  "",
  '{"algorithm":"m.megolm.v1.aes-sha2","sender_key":"abc","session_key":"AQAAAA","sender_claimed_keys":{}}',
  "non-ASCII ✓ 🐶",
];
const messages = plaintexts.map((plaintext, i) => {
  const ephemeralRandom = fixedBytes(`pk ephemeral ${i}`, 32);
  const encryption = new Olm.PkEncryption();
  encryption.set_recipient_key(publicKey);
  queueRandom(ephemeralRandom);
  const m = encryption.encrypt(plaintext);
  if (decryption.decrypt(m.ephemeral, m.mac, m.ciphertext) !== plaintext)
    throw new Error("libolm round trip failed");
  return { ephemeralSecret: b64(ephemeralRandom), plaintext, ...m };
});

const vectors = {
  description:
    "m.megolm_backup.v1.curve25519-aes-sha2 payloads made by libolm's PkEncryption for a fixed private key, with " +
    "fixed ephemeral keys. libolm's MAC is HMAC-SHA-256 of the empty string under the derived MAC key.",
  provenance: {
    generator: "test/vectors/pk/generate.ts",
    library: `libolm ${Olm.get_library_version().join(".")} (npm @towns-protocol/olm)`,
    randomness: "private key = SHA-256('pk backup private key/0'); ephemeral i = SHA-256('pk ephemeral i/0')",
  },
  privateKey: b64(privateKey),
  publicKey,
  messages,
};
writeFileSync(new URL("./libolm-pk.json", import.meta.url), `${JSON.stringify(vectors, null, 2)}\n`);
console.log(`wrote ${messages.length} messages`);
