/**
 * A local attacker with the store file (SQLite): every kind of damage is a typed error on open or
 * on read, never a silently new identity; what the damage did not touch still works.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import type { EncryptedRoomEvent } from "../../src/e2ee/decryption/room-events.ts";
import { OlmMachine } from "../../src/e2ee/machine.ts";
import type { OutgoingRequest } from "../../src/e2ee/requests.ts";
import { FakeHomeserver, TestClient } from "../../src/e2ee/test-support/fake-homeserver.ts";
import { StoreError, StoreKeyError, StoreMismatchError } from "../../src/store/errors.ts";
import { DEFAULT_SQLITE_FILE_NAME, SqliteCryptoStore } from "../../src/store/sqlite/sqlite-store.ts";
import { MEMBERS, ROOM } from "./world.ts";

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Bob on a SQLite store, with two of Alice's sessions decrypted. */
async function bobOnSqlite() {
  const directory = mkdtempSync(join(tmpdir(), "keyroom-hostile-"));
  dirs.push(directory);
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
  let store = await SqliteCryptoStore.open({ userId: "@bob:x", deviceId: "B", directory });
  let machine = await OlmMachine.open({ userId: "@bob:x", deviceId: "B", store });
  hs.device("@bob:x", "B");
  const flush = async () => {
    for (let round = 0; round < 10; round++) {
      const requests: OutgoingRequest[] = await machine.outgoingRequests();
      if (requests.length === 0) return;
      for (const r of requests) await machine.markRequestAsSent(r, hs.handle("@bob:x", "B", r));
    }
  };
  const sync = async () => {
    await machine.receiveSyncChanges(hs.syncFor("@bob:x", "B"));
    await flush();
  };
  await flush();
  await machine.updateTrackedUsers(["@alice:x"]);
  await sync();
  const events: EncryptedRoomEvent[] = [];
  for (const body of ["one", "two"]) {
    await alice.machine.discardRoomKey(ROOM);
    events.push(await alice.sendMessage(ROOM, MEMBERS, body));
    await sync();
    assert.equal(
      (await machine.decryptRoomEvent(events.at(-1) as EncryptedRoomEvent, ROOM)).content.body,
      body,
    );
  }
  const identity = machine.identityKeys;
  await machine.close();
  await store.close();
  const path = join(directory, DEFAULT_SQLITE_FILE_NAME);
  const reopen = async (options: { userId?: string; deviceId?: string } = {}) => {
    store = await SqliteCryptoStore.open({ userId: "@bob:x", deviceId: "B", directory, ...options });
    machine = await OlmMachine.open({ userId: "@bob:x", deviceId: "B", store });
    return machine;
  };
  const close = async () => {
    await machine.close();
    await store.close();
  };
  return { directory, path, events, identity, reopen, close };
}

const isStoreError = (code: string) => (e: unknown) =>
  (e instanceof StoreError || e instanceof StoreKeyError || e instanceof StoreMismatchError) &&
  e.code === code;

describe("hostile input: store files", () => {
  const openFails: [string, string, (b: Awaited<ReturnType<typeof bobOnSqlite>>) => void][] = [
    ["the database truncated to zero bytes", "CORRUPT", (b) => truncateSync(b.path, 0)],
    ["the database truncated to its first page", "BACKEND", (b) => truncateSync(b.path, 100)],
    [
      "the database overwritten with garbage",
      "BACKEND",
      (b) => writeFileSync(b.path, Buffer.alloc(8192, 0x5a)),
    ],
    ["the key file deleted", "KEY_FILE_MISSING", (b) => unlinkSync(`${b.path}.key`)],
    [
      "the key file replaced by another key",
      "WRONG_KEY",
      (b) => writeFileSync(`${b.path}.key`, Buffer.alloc(32, 7).toString("base64"), { mode: 0o600 }),
    ],
    ["the key file readable by others", "KEY_FILE_INSECURE", (b) => chmodSync(`${b.path}.key`, 0o644)],
    ["the key file truncated", "KEY_FILE_MALFORMED", (b) => truncateSync(`${b.path}.key`, 5)],
  ];
  for (const [name, code, damage] of openFails) {
    it(`${name} → ${code} on open, never a new identity`, async () => {
      const bob = await bobOnSqlite();
      damage(bob);
      await assert.rejects(bob.reopen(), isStoreError(code));
    });
  }

  it("the store opened as another device → DEVICE_MISMATCH", async () => {
    const bob = await bobOnSqlite();
    await assert.rejects(bob.reopen({ deviceId: "OTHER" }), isStoreError("DEVICE_MISMATCH"));
    const machine = await bob.reopen();
    assert.deepEqual(machine.identityKeys, bob.identity);
    await bob.close();
  });

  it("one session's ciphertext swapped into another's row → read as absent (damaged) for it, the other still decrypts", async () => {
    const bob = await bobOnSqlite();
    const [one, two] = bob.events as [EncryptedRoomEvent, EncryptedRoomEvent];
    const id = (e: EncryptedRoomEvent) => (e.content as { session_id: string }).session_id;
    const db = new Database(bob.path);
    db.prepare(
      "UPDATE inbound_group_sessions SET pickle = (SELECT pickle FROM inbound_group_sessions WHERE session_id = ?) WHERE session_id = ?",
    ).run(id(two), id(one));
    db.close();
    const machine = await bob.reopen();
    assert.deepEqual(machine.identityKeys, bob.identity);
    // The row fails its MAC: a typed decryption failure naming the damage, not a store error.
    await assert.rejects(machine.decryptRoomEvent(one, ROOM), {
      code: "UNKNOWN_SESSION",
      message: /damaged/,
    });
    assert.equal((await machine.decryptRoomEvent(two, ROOM)).content.body, "two");
    await bob.close();
  });

  it("one session's row deleted → UNKNOWN_SESSION for it, the other still decrypts", async () => {
    const bob = await bobOnSqlite();
    const [one, two] = bob.events as [EncryptedRoomEvent, EncryptedRoomEvent];
    const db = new Database(bob.path);
    db.prepare("DELETE FROM inbound_group_sessions WHERE session_id = ?").run(
      (one.content as { session_id: string }).session_id,
    );
    db.close();
    const machine = await bob.reopen();
    await assert.rejects(machine.decryptRoomEvent(one, ROOM), { code: "UNKNOWN_SESSION" });
    assert.equal((await machine.decryptRoomEvent(two, ROOM)).content.body, "two");
    await bob.close();
  });
});
