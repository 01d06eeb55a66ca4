// Backup PK encryption and the SAS primitive against libolm, an implementation we did not write:
// payloads both ways, key pairs shared through raw private keys, wrong keys refused, and SAS bytes
// and both MAC variants equal on both sides. Runs against every libolm build present.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { PkDecryption, PkEncryption, PkError } from "../../src/crypto/pk/index.ts";
import { encodeBase64 } from "../../src/crypto/primitives/index.ts";
import { Sas } from "../../src/crypto/sas/index.ts";
import { type Libolm, loadDebianLibolm, loadLibolm } from "../support/libolm.ts";

const PLAINTEXTS = [
  "",
  "x",
  "sixteen bytes!!!",
  '{"algorithm":"m.megolm.v1.aes-sha2","sender_key":"k","session_key":"AQAAAAAA","sender_claimed_keys":{}}',
  "ünïcödé ✓ 🔐".repeat(40),
];

const peers: { name: string; load: () => Promise<Libolm | null> }[] = [
  { name: "npm @towns-protocol/olm", load: loadLibolm },
  { name: "Debian libjs-olm", load: loadDebianLibolm },
];

for (const peer of peers) {
  describe(`PK encryption and SAS interop with libolm (${peer.name})`, () => {
    let Olm: Libolm | null = null;
    before(async () => {
      Olm = await peer.load();
      if (Olm === null)
        console.log(`SKIPPED: libolm (${peer.name}) is not available; PK/SAS interop not tested`);
    });

    function olm(t: { skip: (msg: string) => void }): Libolm | null {
      if (Olm === null) t.skip(`libolm (${peer.name}) not available`);
      return Olm;
    }

    it("libolm PkEncryption → Keyroom PkDecryption", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      const ours = PkDecryption.create();
      const theirs = new lib.PkEncryption();
      theirs.set_recipient_key(ours.publicKey);
      for (const p of PLAINTEXTS) assert.equal(ours.decryptString(theirs.encrypt(p)), p);
      // For another key the MAC fails, as in libolm.
      const m = theirs.encrypt("for someone else");
      assert.throws(
        () => PkDecryption.create().decrypt(m),
        (e) => e instanceof PkError && e.code === "BAD_MAC",
      );
      theirs.free();
    });

    it("Keyroom PkEncryption → libolm PkDecryption", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      const theirs = new lib.PkDecryption();
      const publicKey = theirs.generate_key();
      const ours = new PkEncryption(publicKey);
      for (const p of PLAINTEXTS) {
        const m = ours.encrypt(p);
        assert.equal(theirs.decrypt(m.ephemeral, m.mac, m.ciphertext), p);
      }
      const other = new lib.PkDecryption();
      other.generate_key();
      const m = ours.encrypt("not for you");
      assert.throws(() => other.decrypt(m.ephemeral, m.mac, m.ciphertext), /BAD_MESSAGE_MAC/);
      theirs.free();
      other.free();
    });

    it("the same private key gives the same public key on both sides", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      const theirs = new lib.PkDecryption();
      const theirPublic = theirs.generate_key();
      assert.equal(PkDecryption.fromPrivateKey(theirs.get_private_key()).publicKey, theirPublic);
      const ours = PkDecryption.create();
      const again = new lib.PkDecryption();
      assert.equal(again.init_with_private_key(ours.exportPrivateKey()), ours.publicKey);
      const m = new lib.PkEncryption();
      m.set_recipient_key(ours.publicKey);
      const payload = m.encrypt("shared key");
      assert.equal(again.decrypt(payload.ephemeral, payload.mac, payload.ciphertext), "shared key");
      assert.equal(ours.decryptString(payload), "shared key");
      theirs.free();
      again.free();
      m.free();
    });

    it("SAS bytes and both MAC variants are equal on both sides", (t) => {
      const lib = olm(t);
      if (lib === null) return;
      for (let round = 0; round < 5; round++) {
        const ours = Sas.create();
        const theirs = new lib.SAS();
        ours.setTheirPublicKey(theirs.get_pubkey());
        theirs.set_their_key(ours.publicKey);
        const info = `MATRIX_KEY_VERIFICATION_SAS|@a:x|A|${ours.publicKey}|@b:y|B|${theirs.get_pubkey()}|txn${round}`;
        for (const count of [5, 6, 32, 100]) {
          assert.equal(
            encodeBase64(ours.generateBytes(info, count)),
            encodeBase64(theirs.generate_bytes(info, count)),
          );
        }
        for (const input of ["", "ed25519:ABCDEF", "ed25519:A,ed25519:MASTER", "🔐".repeat(50)]) {
          const macInfo = `MATRIX_KEY_VERIFICATION_MAC|${round}|${input.length}`;
          const v2 = theirs.calculate_mac_fixed_base64(input, macInfo);
          const legacy = theirs.calculate_mac(input, macInfo);
          assert.equal(ours.calculateMac(input, macInfo), v2);
          assert.equal(ours.calculateMacLegacy(input, macInfo), legacy);
          assert.ok(ours.verifyMac("hkdf-hmac-sha256.v2", input, macInfo, v2));
          assert.ok(ours.verifyMac("hkdf-hmac-sha256", input, macInfo, legacy));
          assert.ok(!ours.verifyMac("hkdf-hmac-sha256.v2", input, macInfo, legacy));
        }
        theirs.free();
      }
    });
  });
}
