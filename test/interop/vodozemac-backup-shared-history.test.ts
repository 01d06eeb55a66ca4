// Our backup records' shared-history flag as matrix-rust-sdk reads it (its crypto as shipped in
// @matrix-org/matrix-sdk-crypto-wasm, the engine inside matrix-js-sdk and Element): a session
// restored there from our backup, or imported from our key export, keeps the flag, and one not
// shared stays so. With only the spec's `shared_history` (all we wrote before), Element took every
// session as not shared.
import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeBase64 } from "../../src/crypto/primitives/index.ts";
import {
  backedUpSharedAndNot,
  memoryMachine,
  roomKeyEntry,
} from "../../src/e2ee/test-support/shared-history-backup.ts";
import { loadVodozemac } from "../support/vodozemac.ts";

const ROOM = "!r:example.org";

test("matrix-rust-sdk restores the shared-history flag from our backup records", async () => {
  const wasm = await loadVodozemac();
  const { machine, shared, notShared, batch, privateKey } = await backedUpSharedAndNot(ROOM);
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
  const machine = await memoryMachine();
  const sessions = [true, false].map((shared) => roomKeyEntry(ROOM, shared));
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
