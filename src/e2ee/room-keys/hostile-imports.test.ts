// Room keys from an export file or a key backup are imported as they are; what the store keeps of
// them must fit its bounds whatever the entry says. A forwarding chain longer than the store keeps
// (MAX_STORED_LIST_LENGTH entries) passed every check and made the store refuse the whole step:
// every import of that file, every restore of that backup (anyone who can write to the backup can
// add a record) and every background lookup of that session failed, for good.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encryptKeyBackupData } from "../../crypto/backup/index.ts";
import { InboundGroupSession, OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { PkDecryption, PkEncryption } from "../../crypto/pk/index.ts";
import { MemoryCryptoStore } from "../../store/index.ts";
import { MAX_STORED_LIST_LENGTH } from "../../store/validate.ts";
import { OlmMachine } from "../machine.ts";

const ROOM = "!room:x";

async function machine(): Promise<OlmMachine> {
  const store = await MemoryCryptoStore.open({ userId: "@a:x", deviceId: "A" });
  return OlmMachine.open({ userId: "@a:x", deviceId: "A", store });
}

/**
 * A room key as an export entry, its forwarding chain `chain` entries long (of one character: a
 * backup record of 10 001 of them still fits within `MAX_BACKUP_CIPHERTEXT_LENGTH`).
 */
function entry(chain: number) {
  const session = InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey());
  return {
    algorithm: "m.megolm.v1.aes-sha2",
    room_id: ROOM,
    sender_key: "c".repeat(43),
    session_id: session.sessionId,
    session_key: session.exportAtFirstKnownIndex(),
    sender_claimed_keys: { ed25519: "e".repeat(43) },
    forwarding_curve25519_key_chain: Array.from({ length: chain }, () => "k"),
  };
}

describe("room keys whose forwarding chain the store could not keep", () => {
  it("an export entry with an overlong chain is skipped; the rest of the file is imported", async () => {
    const m = await machine();
    const keys = [entry(MAX_STORED_LIST_LENGTH + 1), entry(2)];
    const result = await m.importRoomKeys(keys);
    assert.deepEqual([result.imported, result.total], [1, 2]);
    assert.deepEqual(
      (await m.exportRoomKeys()).map((k) => k.session_id),
      [keys[1]?.session_id],
    );
  });

  it("a backup record with an overlong chain is skipped; the rest of the backup is restored", async () => {
    const m = await machine();
    const backupKey = PkDecryption.create();
    const encryption = new PkEncryption(backupKey.publicKey);
    const meta = { firstMessageIndex: 0, forwardedCount: 0, isVerified: false };
    const sessions: Record<string, unknown> = {};
    const keys = [entry(MAX_STORED_LIST_LENGTH + 1), entry(0)];
    for (const { room_id: _, session_id, ...key } of keys) {
      sessions[session_id] = encryptKeyBackupData(encryption, key, meta);
    }
    const result = await m.backup.restore(
      { rooms: { [ROOM]: { sessions } } },
      { version: "1", privateKey: backupKey.exportPrivateKey() },
    );
    assert.equal(result.imported, 1);
    assert.deepEqual(
      (await m.exportRoomKeys()).map((k) => k.session_id),
      [keys[1]?.session_id],
    );
  });
});
