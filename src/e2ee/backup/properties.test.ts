// The backup's edges take the server's word: whatever a `room_keys` answer holds, they answer with
// typed results or `KeyBackupError`, never anything else, and a bad record never spoils the rest.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { PkDecryption, PkEncryption } from "../../crypto/pk/index.ts";
import { MemoryCryptoStore } from "../../store/index.ts";
import { OlmMachine } from "../machine.ts";
import { backupRecord } from "../test-support/backup-records.ts";
import { KeyBackupError } from "./errors.ts";
import { backupRecords, decryptBackupRecord } from "./restore.ts";

const key = PkDecryption.create();
const onlyTyped = (e: unknown): boolean => e instanceof KeyBackupError;

describe("key backup edges (fast-check)", () => {
  it("backupRecords and decryptBackupRecord never throw anything but KeyBackupError", () => {
    fc.assert(
      fc.property(
        fc.jsonValue(),
        fc.option(fc.string(), { nil: undefined }),
        fc.option(fc.string(), { nil: undefined }),
        (body, roomId, sessionId) => {
          try {
            const scope = {
              ...(roomId !== undefined ? { roomId } : {}),
              ...(sessionId !== undefined ? { sessionId } : {}),
            };
            for (const r of backupRecords(body, scope)) assert.equal(decryptBackupRecord(key, r), undefined);
          } catch (e) {
            assert.ok(onlyTyped(e), String(e));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("checkVersion and useVersion take any server answer: typed result or KeyBackupError", async () => {
    const store = await MemoryCryptoStore.open({ userId: "@a:example.org", deviceId: "A" });
    const machine = await OlmMachine.open({ userId: "@a:example.org", deviceId: "A", store });
    const version = fc.record({
      version: fc.oneof(fc.string(), fc.integer()),
      algorithm: fc.oneof(fc.constant("m.megolm_backup.v1.curve25519-aes-sha2"), fc.string()),
      auth_data: fc.oneof(
        fc.jsonValue(),
        fc.record({
          public_key: fc.oneof(fc.constant(key.publicKey), fc.string()),
          signatures: fc.jsonValue(),
        }),
      ),
    });
    await fc.assert(
      fc.asyncProperty(fc.oneof(version, fc.jsonValue()), async (body) => {
        for (const call of [
          () => machine.backup.checkVersion(body),
          () => machine.backup.useVersion(body, key.exportPrivateKey()),
        ]) {
          try {
            await call();
          } catch (e) {
            assert.ok(onlyTyped(e), String(e));
          }
        }
      }),
      { numRuns: 150 },
    );
    await machine.close();
  });

  it("a restore counts records that do not decrypt and imports the rest", async () => {
    const store = await MemoryCryptoStore.open({ userId: "@a:example.org", deviceId: "A" });
    const machine = await OlmMachine.open({ userId: "@a:example.org", deviceId: "A", store });
    const { InboundGroupSession, OutboundGroupSession } = await import("../../crypto/megolm/index.ts");
    const session = InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey());
    const good = backupRecord(new PkEncryption(key.publicKey), session);
    const foreign = backupRecord(new PkEncryption(PkDecryption.create().publicKey), session, {});
    const body = {
      rooms: {
        "!r:example.org": {
          sessions: {
            [session.sessionId]: good,
            other: foreign,
            junk: { session_data: { ciphertext: 1 } },
            alsoJunk: "not a record",
          },
        },
        "!bad:example.org": "not a room",
      },
    };
    const result = await machine.backup.restore(body, { version: "1", privateKey: key.exportPrivateKey() });
    assert.deepEqual([result.imported, result.total, result.failed], [1, 4, 3]);
    // A record filed under another session's ID is not imported under it.
    const misfiled = { rooms: { "!r:example.org": { sessions: { wrongId: good } } } };
    const again = await machine.backup.restore(misfiled, {
      version: "1",
      privateKey: key.exportPrivateKey(),
    });
    assert.deepEqual([again.imported, again.failed], [0, 0]);
    await machine.close();
  });
});
