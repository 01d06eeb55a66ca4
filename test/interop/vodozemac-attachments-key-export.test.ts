// Encrypted attachments and key export files against matrix-rust-sdk's crypto (vodozemac), as shipped in
// @matrix-org/matrix-sdk-crypto-wasm — the engine inside matrix-js-sdk and Element.
import assert from "node:assert/strict";
import { test } from "node:test";
import { decryptAttachment, encryptAttachment } from "../../src/crypto/attachments/index.ts";
import {
  decryptKeyExport,
  type ExportedRoomKey,
  encryptKeyExport,
  parseExportedRoomKey,
} from "../../src/crypto/key-export/index.ts";
import { loadLibolm } from "../support/libolm.ts";
import { loadVodozemac } from "../support/vodozemac.ts";

/** Real exported Megolm sessions (vodozemac checks them), made by libolm so that no Keyroom code is involved. */
async function sampleKeys(): Promise<ExportedRoomKey[]> {
  const olm = await loadLibolm();
  assert.ok(olm, "libolm is a dev dependency and must load");
  const account = new olm.Account();
  account.create();
  const identity = JSON.parse(account.identity_keys()) as { curve25519: string; ed25519: string };
  account.free();
  return ["!a:example.org", "!b:example.org"].map((roomId) => {
    const outbound = new olm.OutboundGroupSession();
    outbound.create();
    const inbound = new olm.InboundGroupSession();
    inbound.create(outbound.session_key());
    const key: ExportedRoomKey = {
      algorithm: "m.megolm.v1.aes-sha2",
      room_id: roomId,
      sender_key: identity.curve25519,
      session_id: outbound.session_id(),
      session_key: inbound.export_session(0),
      sender_claimed_keys: { ed25519: identity.ed25519 },
      forwarding_curve25519_key_chain: [],
    };
    outbound.free();
    inbound.free();
    return key;
  });
}

test("attachments encrypted by Keyroom decrypt in vodozemac's SDK and the reverse", async () => {
  const wasm = await loadVodozemac();
  const data = new Uint8Array(70_001).map((_, i) => (i * 7 + 3) & 0xff);

  const ours = encryptAttachment(data);
  const theirs = new wasm.EncryptedAttachment(ours.ciphertext, JSON.stringify(ours.info));
  assert.deepEqual(wasm.Attachment.decrypt(theirs), data);

  const fromThem = wasm.Attachment.encrypt(data);
  const info: unknown = JSON.parse(fromThem.mediaEncryptionInfo as string);
  assert.deepEqual(decryptAttachment(fromThem.encryptedData, info), data);
});

test("key export files move both ways between Keyroom and vodozemac's SDK", async () => {
  const wasm = await loadVodozemac();
  const sample = await sampleKeys();

  const ours = encryptKeyExport(sample, "a passphrase", { rounds: 1000 });
  const readByThem: unknown = JSON.parse(wasm.OlmMachine.decryptExportedRoomKeys(ours, "a passphrase"));
  assert.ok(Array.isArray(readByThem));
  assert.deepEqual(readByThem.map(parseExportedRoomKey), sample);

  const theirs = wasm.OlmMachine.encryptExportedRoomKeys(JSON.stringify(sample), "another one", 1000);
  assert.deepEqual(decryptKeyExport(theirs, "another one").map(parseExportedRoomKey), sample);
  assert.throws(() => decryptKeyExport(theirs, "wrong"), { code: "BAD_PASSPHRASE" });
});
