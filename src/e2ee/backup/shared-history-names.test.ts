// The shared-history flag in our backup records: matrix-rust-sdk (Element) reads it only under
// `org.matrix.msc3061.shared_history` (and, since April 2026, `m.shared_history`), never under the
// spec's `shared_history`, which was all we wrote: a session Element restored from our backup
// lost the flag (and with it, being shared with users invited later).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decryptKeyBackupData } from "../../crypto/backup/index.ts";
import { PkDecryption } from "../../crypto/pk/index.ts";
import { backedUpSharedAndNot } from "../test-support/shared-history-backup.ts";

const ROOM = "!r:example.org";

describe("the shared-history flag in backup records", () => {
  it("is written under the spec's name and matrix-rust-sdk's, only for a shared session", async () => {
    const { machine, shared, notShared, batch, privateKey } = await backedUpSharedAndNot(ROOM);
    const decryption = PkDecryption.fromPrivateKey(privateKey);
    const sessions = (
      JSON.parse(JSON.stringify(batch.body)) as { rooms: Record<string, { sessions: object }> }
    ).rooms[ROOM]?.sessions as Record<
      string,
      { session_data: { ephemeral: string; ciphertext: string; mac: string } }
    >;
    const plaintext = (sessionId: string) => {
      const record = sessions[sessionId];
      assert.ok(record);
      return JSON.parse(decryption.decryptString(record.session_data)) as Record<string, unknown>;
    };
    const flags = (json: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(json).filter(([name]) => name.includes("shared_history")));
    // The spec's name, and the one every matrix-rust-sdk reads; not both of rust's (a serde alias:
    // both at once fail its parse as a duplicate field).
    assert.deepEqual(flags(plaintext(shared.session_id)), {
      shared_history: true,
      "org.matrix.msc3061.shared_history": true,
    });
    assert.deepEqual(flags(plaintext(notShared.session_id)), {});
    // Our own restore reads it back.
    const record = sessions[shared.session_id];
    assert.equal(decryptKeyBackupData(decryption, record).key.shared_history, true);
    await machine.close();
  });
});
