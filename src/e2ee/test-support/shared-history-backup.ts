// Room keys flagged shared history or not, imported into a machine and uploaded to a new backup
// version: for tests of how the flag is written in our backup records and key exports.
import assert from "node:assert/strict";
import { InboundGroupSession, OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { PkDecryption } from "../../crypto/pk/index.ts";
import { MemoryCryptoStore } from "../../store/index.ts";
import { OlmMachine } from "../machine.ts";

/** A key-export entry of a new session in `roomId`, flagged shared history when `shared`. */
export function roomKeyEntry(roomId: string, shared: boolean) {
  const session = InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey());
  return {
    algorithm: "m.megolm.v1.aes-sha2",
    room_id: roomId,
    sender_key: PkDecryption.create().publicKey,
    session_id: session.sessionId,
    session_key: session.exportAtFirstKnownIndex(),
    sender_claimed_keys: {},
    forwarding_curve25519_key_chain: [],
    ...(shared ? { shared_history: true } : {}),
  };
}

/** A new machine on a memory store. */
export async function memoryMachine(): Promise<OlmMachine> {
  const store = await MemoryCryptoStore.open({ userId: "@a:example.org", deviceId: "A" });
  return OlmMachine.open({ userId: "@a:example.org", deviceId: "A", store });
}

/**
 * A machine holding a session of `roomId` flagged shared history and one not, both in the first
 * upload to a new backup version "1"; with that version's private key.
 */
export async function backedUpSharedAndNot(roomId: string) {
  const machine = await memoryMachine();
  const shared = roomKeyEntry(roomId, true);
  const notShared = roomKeyEntry(roomId, false);
  await machine.importRoomKeys([shared, notShared]);
  const { request } = await machine.backup.prepareVersion();
  await machine.backup.versionCreated(request.id, { version: "1" });
  const batch = await machine.backup.nextUpload();
  assert.ok(batch);
  const privateKey = await machine.backup.exportPrivateKey();
  assert.ok(privateKey);
  return { machine, shared, notShared, batch, privateKey };
}
