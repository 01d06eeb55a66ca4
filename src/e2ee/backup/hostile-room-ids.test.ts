// A room ID that is an `Object.prototype` name (`__proto__`) is an ID like any other to the store:
// a hostile backup answer (or key file) can bring one. Building an upload batch with it used to
// walk into the prototype and throw a TypeError, on every batch from then on: nothing was backed up
// again. It goes up as its own room.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InboundGroupSession, OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { PkDecryption, PkEncryption } from "../../crypto/pk/index.ts";
import { MemoryCryptoStore } from "../../store/index.ts";
import { OlmMachine } from "../machine.ts";
import { backupRecord } from "../test-support/backup-records.ts";

describe("key backup uploads of rooms named like Object.prototype members", () => {
  it("a session restored under __proto__ is uploaded under that room, with the others", async () => {
    const store = await MemoryCryptoStore.open({ userId: "@a:example.org", deviceId: "A" });
    const machine = await OlmMachine.open({ userId: "@a:example.org", deviceId: "A", store });
    const { request } = await machine.backup.prepareVersion();
    await machine.backup.versionCreated(request.id, { version: "1" });
    // An older version, under another key, whose answer names the rooms.
    const old = PkDecryption.create();
    const record = (session: InboundGroupSession) =>
      JSON.stringify(backupRecord(new PkEncryption(old.publicKey), session));
    const rooms = ["__proto__", "constructor", "!r:example.org"];
    const sessions = rooms.map(() =>
      InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey()),
    );
    // JSON.parse keeps "__proto__" as an own key, as a server's answer does.
    const body: unknown = JSON.parse(
      `{"rooms":{${rooms
        .map(
          (room, i) =>
            `"${room}":{"sessions":{"${sessions[i]?.sessionId}":${record(sessions[i] as InboundGroupSession)}}}`,
        )
        .join(",")}}}`,
    );
    const result = await machine.backup.restore(body, { version: "0", privateKey: old.exportPrivateKey() });
    assert.equal(result.imported, 3);

    const batch = await machine.backup.nextUpload();
    assert.ok(batch);
    const sent = JSON.parse(JSON.stringify(batch.body)) as { rooms: Record<string, { sessions: object }> };
    assert.deepEqual(Object.keys(sent.rooms).sort(), [...rooms].sort());
    for (const [i, room] of rooms.entries()) {
      assert.deepEqual(Object.keys(sent.rooms[room]?.sessions ?? {}), [sessions[i]?.sessionId]);
    }
    assert.equal(await machine.backup.uploaded(batch.id), 3);
    assert.equal(await machine.backup.nextUpload(), undefined);
    await machine.close();
  });
});
