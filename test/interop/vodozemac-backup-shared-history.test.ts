// Our backup records' shared-history flag as matrix-rust-sdk reads it (its crypto as shipped in
// @matrix-org/matrix-sdk-crypto-wasm, the engine inside matrix-js-sdk and Element): a session
// restored there from our backup, or imported from our key export, keeps the flag, and one not
// shared stays so. With only the spec's `shared_history` (all we wrote before), Element took every
// session as not shared.
import assert from "node:assert/strict";
import { test } from "node:test";
import { InboundGroupSession, OutboundGroupSession } from "../../src/crypto/megolm/index.ts";
import { PkDecryption } from "../../src/crypto/pk/index.ts";
import { encodeBase64 } from "../../src/crypto/primitives/index.ts";
import { OlmMachine } from "../../src/e2ee/index.ts";
import { MemoryCryptoStore } from "../../src/store/index.ts";
import { loadVodozemac } from "../support/vodozemac.ts";

const ROOM = "!r:example.org";

test("matrix-rust-sdk restores the shared-history flag from our backup records", async () => {
  const wasm = await loadVodozemac();
  const store = await MemoryCryptoStore.open({ userId: "@a:example.org", deviceId: "A" });
  const machine = await OlmMachine.open({ userId: "@a:example.org", deviceId: "A", store });
  const entry = (shared: boolean) => {
    const session = InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey());
    return {
      algorithm: "m.megolm.v1.aes-sha2",
      room_id: ROOM,
      sender_key: PkDecryption.create().publicKey,
      session_id: session.sessionId,
      session_key: session.exportAtFirstKnownIndex(),
      sender_claimed_keys: {},
      forwarding_curve25519_key_chain: [],
      ...(shared ? { shared_history: true } : {}),
    };
  };
  const shared = entry(true);
  const notShared = entry(false);
  await machine.importRoomKeys([shared, notShared]);
  const { request } = await machine.backup.prepareVersion();
  await machine.backup.versionCreated(request.id, { version: "1" });
  const batch = await machine.backup.nextUpload();
  const privateKey = await machine.backup.exportPrivateKey();
  assert.ok(batch && privateKey);
  const body = JSON.parse(JSON.stringify(batch.body)) as {
    rooms: Record<string, { sessions: Record<string, { session_data: Record<string, string> }> }>;
  };

  const rust = await wasm.OlmMachine.initialize(new wasm.UserId("@b:example.org"), new wasm.DeviceId("B"));
  const key = wasm.BackupDecryptionKey.fromBase64(encodeBase64(privateKey));
  const sessions = new Map<string, unknown>();
  for (const [sessionId, record] of Object.entries(body.rooms[ROOM]?.sessions ?? {})) {
    const { ephemeral = "", mac = "", ciphertext = "" } = record.session_data;
    sessions.set(sessionId, JSON.parse(key.decryptV1(ephemeral, mac, ciphertext)));
  }
  const result = await rust.importBackedUpRoomKeys(
    new Map([[new wasm.RoomId(ROOM), sessions]]),
    () => undefined,
    "1",
  );
  assert.equal(result.importedCount, 2);
  // Its export says how it holds each session (it writes the flag as `m.shared_history`).
  const held = JSON.parse(await rust.exportRoomKeys(() => true)) as Record<string, unknown>[];
  const flag = (sessionId: string) => held.find((k) => k.session_id === sessionId)?.["m.shared_history"];
  assert.equal(flag(shared.session_id), true);
  assert.equal(flag(notShared.session_id), false);
  key.free();
  rust.close();
  await machine.close();
});

test("matrix-rust-sdk imports the shared-history flag from our key export entries", async () => {
  const wasm = await loadVodozemac();
  const store = await MemoryCryptoStore.open({ userId: "@a:example.org", deviceId: "A" });
  const machine = await OlmMachine.open({ userId: "@a:example.org", deviceId: "A", store });
  const sessions = [true, false].map((shared) => {
    const session = InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey());
    return {
      algorithm: "m.megolm.v1.aes-sha2",
      room_id: ROOM,
      sender_key: PkDecryption.create().publicKey,
      session_id: session.sessionId,
      session_key: session.exportAtFirstKnownIndex(),
      sender_claimed_keys: {},
      forwarding_curve25519_key_chain: [],
      ...(shared ? { shared_history: true } : {}),
    };
  });
  await machine.importRoomKeys(sessions);
  const exported = await machine.exportRoomKeys();
  const rust = await wasm.OlmMachine.initialize(new wasm.UserId("@b:example.org"), new wasm.DeviceId("B"));
  const result = await rust.importExportedRoomKeys(JSON.stringify(exported), () => undefined);
  assert.equal(result.importedCount, 2);
  const held = JSON.parse(await rust.exportRoomKeys(() => true)) as Record<string, unknown>[];
  const flag = (sessionId: string | undefined) =>
    held.find((k) => k.session_id === sessionId)?.["m.shared_history"];
  assert.deepEqual([flag(sessions[0]?.session_id), flag(sessions[1]?.session_id)], [true, false]);
  rust.close();
  await machine.close();
});
