// Anyone in a room can send events naming sessions we lack; each is looked up in the key backup
// before our other devices are asked. The lookups waiting stay within MAX_BACKUP_LOOKUPS (the rest
// go to our devices as key requests, themselves bounded), and a session is looked up once.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PkDecryption } from "../../crypto/pk/index.ts";
import { MemoryCryptoStore } from "../../store/index.ts";
import { OlmMachine } from "../machine.ts";
import { MAX_BACKUP_LOOKUPS } from "./key-backup.ts";

const ROOM = "!room:x";

describe("backup lookups for events naming made-up sessions", () => {
  it(`wait at most MAX_BACKUP_LOOKUPS (${MAX_BACKUP_LOOKUPS}) at once; the others are asked of our devices`, async () => {
    const store = await MemoryCryptoStore.open({ userId: "@a:x", deviceId: "A" });
    const m = await OlmMachine.open({ userId: "@a:x", deviceId: "A", store });
    const key = PkDecryption.create();
    await m.backup.useVersion(
      {
        version: "1",
        algorithm: "m.megolm_backup.v1.curve25519-aes-sha2",
        auth_data: { public_key: key.publicKey },
      },
      key.exportPrivateKey(),
    );
    const extra = 20;
    const events = Array.from({ length: MAX_BACKUP_LOOKUPS + extra }, (_, i) => ({
      event: {
        event_id: `$e${i}`,
        sender: "@mallory:x",
        type: "m.room.encrypted",
        content: {
          algorithm: "m.megolm.v1.aes-sha2",
          ciphertext: "AwgA",
          session_id: `made-up-${i}`,
          device_id: "M",
        },
      },
      roomId: ROOM,
    }));
    const outcomes = await m.tryDecryptRoomEvents(events);
    assert.ok(outcomes.every((o) => !o.ok && o.error.code === "UNKNOWN_SESSION"));
    assert.equal((await m.backup.lookupRequests()).length, MAX_BACKUP_LOOKUPS);
    assert.equal((await store.getOutgoingKeyRequests()).length, extra);
    // The same events again: nothing more is looked up or asked.
    await m.tryDecryptRoomEvents(events);
    assert.equal((await m.backup.lookupRequests()).length, MAX_BACKUP_LOOKUPS);
    assert.equal((await store.getOutgoingKeyRequests()).length, extra);
    await m.close();
  });
});
