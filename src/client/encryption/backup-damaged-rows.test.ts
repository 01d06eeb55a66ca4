// The engine's backup step reads past at most MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP damaged inbound
// session rows and then hands out no batch, the next step going on after them. uploadPending (the
// background work after each sync runs it) stopped at such a step: with more damaged rows than one
// step reads past before the good keys, those went up only after later syncs, one step each (a
// hundred syncs for 10 000 damaged rows). It now goes on to the next step while the engine has
// work, and stops when the store passes over nothing it was told to skip, or after
// MAX_BACKUP_STEPS_WITHOUT_BATCH such steps in a row.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP,
  MAX_SKIPPED_DAMAGED_SESSIONS,
} from "../../e2ee/backup/key-backup.ts";
import { OlmMachine } from "../../e2ee/machine.ts";
import { roomKeyEntry } from "../../e2ee/test-support/shared-history-backup.ts";
import { withDamagedRows } from "../../e2ee/test-support/simulated-damaged-rows.ts";
import { MemoryCryptoStore } from "../../store/index.ts";
import type { HttpClient, RequestOptions } from "../http.ts";
import { testKeyBackup } from "../test-support/key-backup.ts";
import { MAX_BACKUP_STEPS_WITHOUT_BATCH } from "./backup.ts";

const USER = "@a:example.org";
const GOOD_ROOM = "!b-good:example.org";

async function setUp(damagedRows: number, contract: { honorSkip?: boolean; honorMarks?: boolean } = {}) {
  const damaged = Array.from({ length: damagedRows }, (_, i) => `d${String(i).padStart(6, "0")}`);
  const memory = await MemoryCryptoStore.open({ userId: USER, deviceId: "A" });
  const s = withDamagedRows(memory, damaged, contract);
  const machine = await OlmMachine.open({ userId: USER, deviceId: "A", store: s.store });
  const good = [roomKeyEntry(GOOD_ROOM, false), roomKeyEntry(GOOD_ROOM, false)];
  await machine.importRoomKeys(good);
  const { request } = await machine.backup.prepareVersion();
  await machine.backup.versionCreated(request.id, { version: "1" });
  const uploaded: string[] = [];
  const http = {
    async request(opts: RequestOptions<never>) {
      assert.equal(opts.method, "PUT");
      const body = opts.body as { rooms: Record<string, { sessions: Record<string, unknown> }> };
      for (const room of Object.values(body.rooms)) uploaded.push(...Object.keys(room.sessions));
      return {};
    },
  } as unknown as HttpClient;
  const backup = testKeyBackup(machine, http);
  return { machine, backup, uploaded, good: good.map((k) => k.session_id).sort(), s };
}

describe("uploadPending past damaged rows", () => {
  it("uploads every good key in one call, however many steps the damaged rows before them take", async () => {
    const t = await setUp(MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP * 3 + 7);
    try {
      assert.equal(await t.backup.uploadPending(), t.good.length);
      assert.deepEqual(t.uploaded.sort(), t.good);
      assert.equal(t.s.marks.size, 0, "no damaged row marked");
      assert.equal(await t.backup.uploadPending(), 0);
    } finally {
      await t.machine.close();
    }
  });

  it("stops when the store names again the damaged rows it was told to skip", async () => {
    const t = await setUp(MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP * 3, { honorSkip: false });
    try {
      assert.equal(await t.backup.uploadPending(), 0);
      // The first step met them, the second met only those again: nothing more was asked.
      assert.deepEqual(t.s.named, [
        MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP,
        MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP,
      ]);
      assert.equal(t.machine.backup.pendingWork().uploads, false);
    } finally {
      await t.machine.close();
    }
  });

  it("runs at most MAX_BACKUP_STEPS_WITHOUT_BATCH steps without a batch (a store that never marks its damaged rows)", async () => {
    // Past MAX_SKIPPED_DAMAGED_SESSIONS the steps mark the rows they meet; marks this store drops.
    const t = await setUp(MAX_SKIPPED_DAMAGED_SESSIONS + MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP, {
      honorMarks: false,
    });
    try {
      assert.equal(await t.backup.uploadPending(), 0);
      assert.equal(t.s.named.length, MAX_BACKUP_STEPS_WITHOUT_BATCH);
    } finally {
      await t.machine.close();
    }
  });
});
