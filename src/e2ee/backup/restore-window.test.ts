// A restore through a decryptor (worker threads on Node) hands it the records of one step beyond
// the step being imported, not the whole answer at once: the decrypted keys of a backup of
// 100 000 sessions used to be held in memory together, waiting for their turn to be imported.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InboundGroupSession, OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { PkDecryption, PkEncryption } from "../../crypto/pk/index.ts";
import { MemoryCryptoStore } from "../../store/index.ts";
import { OlmMachine } from "../machine.ts";
import { IMPORT_BATCH_SIZE } from "../room-keys/import.ts";
import { backupRecord } from "../test-support/backup-records.ts";
import { RESTORE_DECRYPT_AHEAD } from "./api.ts";
import { type BackupRecordsDecryptor, RESTORE_DECRYPT_CHUNK } from "./restore.ts";

describe("restore through a decryptor", () => {
  it("sends no more than one step ahead of the import, and imports everything", async () => {
    const backupKey = PkDecryption.create();
    const encryption = new PkEncryption(backupKey.publicKey);
    const count = 2 * IMPORT_BATCH_SIZE + RESTORE_DECRYPT_CHUNK + 7;
    const sessions: Record<string, unknown> = {};
    for (let i = 0; i < count; i++) {
      const session = InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey());
      sessions[session.sessionId] = backupRecord(encryption, session);
    }
    let sent = 0;
    let imported = 0;
    let mostAhead = 0;
    const decryptor: BackupRecordsDecryptor = async (key, data) => {
      sent += data.length;
      mostAhead = Math.max(mostAhead, sent - imported);
      const decryption = PkDecryption.fromPrivateKey(key);
      return data.map((d) => decryption.decryptString(d));
    };
    const store = await MemoryCryptoStore.open({ userId: "@a:example.org", deviceId: "A" });
    const machine = await OlmMachine.open({ userId: "@a:example.org", deviceId: "A", store });
    const result = await machine.backup.restore(
      { rooms: { "!r:example.org": { sessions } } },
      {
        version: "1",
        privateKey: backupKey.exportPrivateKey(),
        decryptor,
        onProgress: (done) => {
          imported = done;
        },
      },
    );
    assert.deepEqual([result.imported, result.total, result.failed], [count, count, 0]);
    assert.equal(sent, count);
    // The step being imported and the one after it, never the whole answer.
    assert.equal(mostAhead, IMPORT_BATCH_SIZE + RESTORE_DECRYPT_AHEAD);
    assert.ok(mostAhead < count);
    await machine.close();
  });
});
