import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import type { OutboundGroupSessionPickle } from "../../crypto/megolm/index.ts";
import { pickle } from "../conformance/samples.ts";
import { sample } from "../conformance.ts";
import {
  BOOT_START_TOLERANCE_MS,
  currentBootId,
  markClosed,
  markOpen,
  OPEN_STATE_KEY,
} from "./durability.ts";
import { DEFAULT_SQLITE_FILE_NAME, SqliteCryptoStore } from "./sqlite-store.ts";

const ALICE = "@alice:example.org";
const DEVICE = "ALICEDEVICE";
const ROOM = "!room:example.org";
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const ratchet = {
  roomId: ROOM,
  sessionId: "o1",
  pickle: pickle<OutboundGroupSessionPickle>("ratchet"),
  messageCount: 5,
};

describe("SQLite durability policy", () => {
  /** Saves an outbound session, closes, then rewrites the open state as a run that never closed. */
  async function storeLeftOpen(bootId: string | null): Promise<string> {
    const directory = mkdtempSync(join(tmpdir(), "keyroom-durability-"));
    dirs.push(directory);
    const store = await SqliteCryptoStore.open({ userId: ALICE, deviceId: DEVICE, directory });
    await store.saveChanges({ outboundGroupSessions: [sample.outbound(ROOM, "o1", 4)] });
    await store.saveChanges({ outboundGroupSessionUpdates: [ratchet], nextBatch: "s7" });
    await store.close();
    const db = new Database(join(directory, DEFAULT_SQLITE_FILE_NAME));
    db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").run(
      OPEN_STATE_KEY,
      JSON.stringify({ open: true, bootId }),
    );
    db.close();
    return directory;
  }

  it("keeps outbound sessions after a clean close and after a crash in the same boot", async () => {
    const directory = mkdtempSync(join(tmpdir(), "keyroom-durability-"));
    dirs.push(directory);
    let store = await SqliteCryptoStore.open({ userId: ALICE, deviceId: DEVICE, directory });
    await store.saveChanges({ outboundGroupSessions: [sample.outbound(ROOM, "o1", 4)] });
    await store.saveChanges({ outboundGroupSessionUpdates: [ratchet] });
    await store.close();
    store = await SqliteCryptoStore.open({ userId: ALICE, deviceId: DEVICE, directory });
    assert.equal((await store.getOutboundGroupSession(ROOM))?.messageCount, 5);
    await store.close();

    const boot = currentBootId();
    if (boot === undefined) return; // no boot ID here: the next test covers this platform
    const crashed = await storeLeftOpen(boot);
    store = await SqliteCryptoStore.open({ userId: ALICE, deviceId: DEVICE, directory: crashed });
    assert.equal((await store.getOutboundGroupSession(ROOM))?.messageCount, 5);
    assert.equal(await store.getNextBatch(), "s7", "a crash in the same boot keeps the sync token");
    await store.close();
  });

  it("discards outbound sessions left open in another boot (a power loss may have undone ratchets)", async () => {
    for (const bootId of ["another-boot", null]) {
      const directory = await storeLeftOpen(bootId);
      const store = await SqliteCryptoStore.open({ userId: ALICE, deviceId: DEVICE, directory });
      assert.equal(await store.getOutboundGroupSession(ROOM), undefined);
      // The token may be behind a client's saved position (token-only commits are not synced): a
      // client sharing the store must not take it for another process's progress.
      assert.equal(await store.getNextBatch(), undefined);
      // Discarding is itself recorded: a clean close then a reopen keeps what was saved since.
      await store.saveChanges({ outboundGroupSessions: [sample.outbound(ROOM, "o2", 0)] });
      await store.close();
      const again = await SqliteCryptoStore.open({ userId: ALICE, deviceId: DEVICE, directory });
      assert.equal((await again.getOutboundGroupSession(ROOM))?.sessionId, "o2");
      await again.close();
    }
  });

  it("without a boot ID, the boot is told by when it started: a kill in the same boot costs nothing, a reboot discards", async () => {
    // macOS and Windows have no boot ID. Telling every open of a store counted open from a power
    // loss made one killed process cost a new session per room at every open from then on.
    const directory = mkdtempSync(join(tmpdir(), "keyroom-durability-"));
    dirs.push(directory);
    const store = await SqliteCryptoStore.open({ userId: ALICE, deviceId: DEVICE, directory });
    await store.close();
    const db = new Database(join(directory, DEFAULT_SQLITE_FILE_NAME));
    const boot = 1_800_000_000_000;
    try {
      assert.equal(markOpen(db, undefined, undefined, boot), false, "closed cleanly: nothing to discard");
      // That instance is killed (never closes); opens in the same boot, the clock corrected a little.
      assert.equal(markOpen(db, undefined, undefined, boot + 1000), false, "same boot: a kill loses nothing");
      const corrected = boot + 1000 - BOOT_START_TOLERANCE_MS;
      assert.equal(
        markOpen(db, undefined, undefined, corrected),
        false,
        "each reading is compared with the last",
      );
      markClosed(db);
      // A reboot: every instance counted open is gone, and a power loss may have undone ratchets.
      const reboot = corrected + BOOT_START_TOLERANCE_MS + 1;
      assert.equal(markOpen(db, undefined, undefined, reboot), true, "another boot: discards");
      markClosed(db);
      assert.equal(
        markOpen(db, undefined, undefined, reboot),
        false,
        "the instances of the earlier boot are no longer counted",
      );
    } finally {
      db.close();
    }
  });

  it("where the boot was not recorded, an open that discards keeps counting the instances still open", async () => {
    // A record of an older version, without a boot: those instances may still be open (and sending
    // on ratchet reservations not yet on the disk). Once one of them closes, the store must not
    // count none open while another still sends, or the open after a power loss would keep
    // outbound sessions behind indexes already used.
    const directory = await storeLeftOpen(null);
    const db = new Database(join(directory, DEFAULT_SQLITE_FILE_NAME));
    const boot = 1_800_000_000_000;
    try {
      assert.equal(markOpen(db, undefined, undefined, boot), true, "cannot tell the boot: discards");
      markClosed(db); // this instance closes; the one of the record may still be open
      assert.equal(
        markOpen(db, undefined, undefined, boot + BOOT_START_TOLERANCE_MS + 1),
        true,
        "the instance of the record never closed: a power loss may have followed",
      );
    } finally {
      db.close();
    }
  });
});
