// Room keys from an export file or a key backup are imported as they are; what the store keeps of
// them must fit its bounds whatever the entry says. A forwarding chain longer than the store keeps
// (MAX_STORED_LIST_LENGTH entries) passed every check and made the store refuse the whole step:
// every import of that file, every restore of that backup (anyone who can write to the backup can
// add a record) and every background lookup of that session failed, for good. Then one of up to
// 10 000 entries was kept whole (megabytes per stored key), where a key forwarded to us over Olm
// keeps at most MAX_FORWARDING_CHAIN entries and the forwarder: one bound now holds for both.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encryptKeyBackupData } from "../../crypto/backup/index.ts";
import { InboundGroupSession, OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { PkDecryption, PkEncryption } from "../../crypto/pk/index.ts";
import { MemoryCryptoStore } from "../../store/index.ts";
import { MAX_STORED_LIST_LENGTH } from "../../store/validate.ts";
import { MAX_FORWARDING_CHAIN } from "../limits.ts";
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

const KEPT = MAX_FORWARDING_CHAIN + 1;

async function exportedChains(m: OlmMachine): Promise<Map<string, string[]>> {
  return new Map((await m.exportRoomKeys()).map((k) => [k.session_id, k.forwarding_curve25519_key_chain]));
}

describe("room keys whose forwarding chain is longer than a forwarded key's", () => {
  it("an export entry keeps its key and the last entries of its chain, as many as a forwarded key's", async () => {
    const m = await machine();
    const long = entry(0);
    long.forwarding_curve25519_key_chain = Array.from({ length: 100 }, (_, i) => `k${i}`);
    const keys = [entry(MAX_STORED_LIST_LENGTH + 1), long, entry(KEPT), entry(2)];
    const result = await m.importRoomKeys(keys);
    assert.deepEqual([result.imported, result.total], [4, 4]);
    const chains = await exportedChains(m);
    assert.equal(chains.get(keys[0]?.session_id ?? "")?.length, KEPT);
    assert.deepEqual(chains.get(long.session_id), long.forwarding_curve25519_key_chain.slice(-KEPT));
    // A key forwarded to us over Olm (its chain and the forwarder) comes back whole from an export.
    assert.equal(chains.get(keys[2]?.session_id ?? "")?.length, KEPT);
    assert.equal(chains.get(keys[3]?.session_id ?? "")?.length, 2);
  });

  it("a backup record keeps its key and the last entries of its chain; the rest of the backup is restored", async () => {
    const m = await machine();
    const backupKey = PkDecryption.create();
    const encryption = new PkEncryption(backupKey.publicKey);
    const meta = { firstMessageIndex: 0, forwardedCount: 0, isVerified: false };
    const sessions: Record<string, unknown> = {};
    const long = entry(0);
    long.forwarding_curve25519_key_chain = Array.from({ length: 100 }, (_, i) => `k${i}`);
    const keys = [entry(MAX_STORED_LIST_LENGTH + 1), long, entry(0)];
    for (const { room_id: _, session_id, ...key } of keys) {
      sessions[session_id] = encryptKeyBackupData(encryption, key, meta);
    }
    const result = await m.backup.restore(
      { rooms: { [ROOM]: { sessions } } },
      { version: "1", privateKey: backupKey.exportPrivateKey() },
    );
    assert.equal(result.imported, 3);
    const chains = await exportedChains(m);
    assert.equal(chains.get(keys[0]?.session_id ?? "")?.length, KEPT);
    assert.deepEqual(chains.get(long.session_id), long.forwarding_curve25519_key_chain.slice(-KEPT));
    assert.deepEqual(chains.get(keys[2]?.session_id ?? ""), []);
  });
});
