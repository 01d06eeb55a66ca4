// Regenerates the SAS known-answer vectors in this folder from libolm
// (npm @towns-protocol/olm). Run: node --conditions=source --import tsx test/vectors/sas/generate.ts
//
// libolm's wasm build draws its random bytes through Node's `crypto.randomBytes`, looked up at call
// time; a queue of fixed bytes makes the SAS key pairs deterministic. Nothing of Keyroom
// is used here.
import { writeFileSync } from "node:fs";
import { loadLibolm } from "../../support/libolm.ts";
import { b64, fixedBytes, queueRandom } from "../fixed-random.ts";

const Olm = await loadLibolm();
if (Olm === null) throw new Error("libolm is not available");

const aliceSecret = fixedBytes("sas alice", 32);
queueRandom(aliceSecret);
const alice = new Olm.SAS();
const bobSecret = fixedBytes("sas bob", 32);
queueRandom(bobSecret);
const bob = new Olm.SAS();
alice.set_their_key(bob.get_pubkey());
bob.set_their_key(alice.get_pubkey());

const info =
  "MATRIX_KEY_VERIFICATION_SAS|@alice:example.org|ALICEDEVICE|" +
  `${alice.get_pubkey()}|@bob:example.org|BOBDEVICE|${bob.get_pubkey()}|txn-1`;
const bytes = [5, 6, 32].map((count) => ({ info, count, bytes: b64(alice.generate_bytes(info, count)) }));
for (const b of bytes) {
  if (b64(bob.generate_bytes(b.info, b.count)) !== b.bytes) throw new Error("libolm sides disagree");
}

const macInfo = "MATRIX_KEY_VERIFICATION_MAC@alice:example.orgALICEDEVICE@bob:example.orgBOBDEVICEtxn-1";
const inputs = ["", "ed25519:ALICEDEVICE", "ed25519:ALICEDEVICE,ed25519:MASTERKEYBASE64", "x".repeat(200)];
const macs = inputs.map((input) => {
  // As in m.key.verification.mac: per-key MACs use the key ID as info suffix, the key list "KEY_IDS".
  const macInfoFor = input === "" ? macInfo : `${macInfo}KEY_IDS`;
  return {
    input,
    info: macInfoFor,
    v2: alice.calculate_mac_fixed_base64(input, macInfoFor),
    legacy: alice.calculate_mac(input, macInfoFor),
  };
});
// Empty input and empty info, the case vodozemac checks against libolm.
macs.push({
  input: "",
  info: "",
  v2: alice.calculate_mac_fixed_base64("", ""),
  legacy: alice.calculate_mac("", ""),
});

const vectors = {
  description:
    "SAS between two libolm OlmSAS objects with fixed key pairs: public keys, HKDF bytes, and MACs in both the " +
    "v2 (calculate_mac_fixed_base64, hkdf-hmac-sha256.v2) and legacy (calculate_mac, hkdf-hmac-sha256) forms.",
  provenance: {
    generator: "test/vectors/sas/generate.ts",
    library: `libolm ${Olm.get_library_version().join(".")} (npm @towns-protocol/olm)`,
    randomness: "secret keys = SHA-256('sas alice/0') and SHA-256('sas bob/0')",
  },
  alice: { secretKey: b64(aliceSecret), publicKey: alice.get_pubkey() },
  bob: { secretKey: b64(bobSecret), publicKey: bob.get_pubkey() },
  bytes,
  macs,
};
writeFileSync(new URL("./libolm-sas.json", import.meta.url), `${JSON.stringify(vectors, null, 2)}\n`);
console.log(`wrote ${bytes.length} byte strings and ${macs.length} MAC pairs`);
