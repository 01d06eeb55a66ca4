// The damaged rows the key backup passes over unmarked are remembered for the rest of the process,
// at most MAX_SKIPPED_DAMAGED_SESSIONS of them; past that a damaged row is marked backed up, so the
// batches still get past it. That path had no test: a store with more damaged rows than the bound
// is simulated here (test-support/simulated-damaged-rows.ts; real ones would take some 10 000
// sealed rows).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryCryptoStore } from "../../store/index.ts";
import { OlmMachine } from "../machine.ts";
import { roomKeyEntry } from "../test-support/shared-history-backup.ts";
import { DAMAGED_ROOM, withDamagedRows } from "../test-support/simulated-damaged-rows.ts";
import { MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP, MAX_SKIPPED_DAMAGED_SESSIONS } from "./key-backup.ts";

const USER = "@a:example.org";
const GOOD_ROOM = "!b-good:example.org";

const uploadedIds = (batch: { body: { rooms: Record<string, { sessions: Record<string, unknown> }> } }) =>
  Object.values(batch.body.rooms).flatMap((r) => Object.keys(r.sessions));

describe("key backup past MAX_SKIPPED_DAMAGED_SESSIONS damaged rows", () => {
  it("passes over the first ones unmarked, marks each later one once, and uploads every good key", async () => {
    const past = MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP + 50;
    // The first damaged row is one a good copy later replaces.
    const replacement = roomKeyEntry(DAMAGED_ROOM, false);
    const damaged = [
      replacement.session_id,
      ...Array.from(
        { length: MAX_SKIPPED_DAMAGED_SESSIONS + past - 1 },
        (_, i) => `d${String(i).padStart(6, "0")}`,
      ),
    ];
    const all = [...damaged];
    const memory = await MemoryCryptoStore.open({ userId: USER, deviceId: "A" });
    const s = withDamagedRows(memory, damaged);
    const machine = await OlmMachine.open({ userId: USER, deviceId: "A", store: s.store });
    try {
      const good = [roomKeyEntry(GOOD_ROOM, false), roomKeyEntry(GOOD_ROOM, false)];
      await machine.importRoomKeys(good);
      const { request } = await machine.backup.prepareVersion();
      await machine.backup.versionCreated(request.id, { version: "1" });
      s.named.length = 0;

      const uploaded: string[] = [];
      // Every step but the last gets on by a batch or by the bound on damaged rows.
      const steps = Math.ceil(damaged.length / MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP) + 5;
      for (let step = 0; step < steps; step++) {
        const batch = await machine.backup.nextUpload();
        if (batch !== undefined) {
          uploaded.push(...uploadedIds(batch));
          await machine.backup.uploaded(batch.id);
        } else if (!machine.backup.pendingWork().uploads) break;
      }
      assert.deepEqual(uploaded.sort(), good.map((k) => k.session_id).sort());
      assert.equal(await machine.backup.nextUpload(), undefined);
      assert.equal(machine.backup.pendingWork().uploads, false);
      assert.ok(
        s.named.every((n) => n <= MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP),
        s.named.join(", "),
      );
      // Each damaged row named once in this process: the first ones skipped, the later ones marked.
      assert.equal(
        s.named.reduce((a, b) => a + b, 0),
        damaged.length,
      );
      const marked = [...s.marks.keys()].sort();
      assert.deepEqual(marked, all.slice(MAX_SKIPPED_DAMAGED_SESSIONS).sort());
      assert.ok([...s.marks.values()].every((n) => n === 1));

      // A good copy replaces a damaged row passed over: it goes up, and its place among those
      // passed over is free again for the next damaged row, which is not marked; the one after is.
      await machine.importRoomKeys([replacement]);
      damaged.push("e-new1", "e-new2");
      const batch = await machine.backup.nextUpload();
      assert.ok(batch);
      assert.deepEqual(uploadedIds(batch), [replacement.session_id]);
      await machine.backup.uploaded(batch.id);
      assert.equal(await machine.backup.nextUpload(), undefined);
      assert.equal(s.marks.has("e-new1"), false);
      assert.equal(s.marks.get("e-new2"), 1);
    } finally {
      await machine.close();
    }
  });
});
