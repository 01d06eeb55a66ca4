// SqliteClientStore opened by two processes at once on a new profile: the migration takes the
// write lock and reads the schema version again under it, so the second finds the work done.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { SqliteClientStore } from "./sqlite-store.ts";

const dir = await mkdtemp(join(tmpdir(), "keyroom-client-sqlite-"));
after(() => rm(dir, { recursive: true, force: true }));

const session = { homeserverUrl: "https://hs", userId: "@a:hs", deviceId: "D", accessToken: "tok" };

/** Another process opens the store at `path` (creating and migrating it), saves `session`, closes. */
function otherProcessOpens(path: string): void {
  const store = fileURLToPath(new URL("./sqlite-store.ts", import.meta.url));
  const script = `
    const { SqliteClientStore } = await import(${JSON.stringify(store)});
    const s = await SqliteClientStore.open(${JSON.stringify(path)});
    await s.saveSession(${JSON.stringify(session)});
    await s.close();`;
  const run = spawnSync(
    process.execPath,
    ["--conditions=source", "--import", "tsx", "--input-type=module", "--eval", script],
    { cwd: fileURLToPath(new URL("../../..", import.meta.url)), encoding: "utf8" },
  );
  assert.equal(run.status, 0, `the other process failed: ${run.stderr}`);
}

describe("SqliteClientStore", () => {
  it("two processes opening a new file at once: the second finds the migration done, not a failure", async () => {
    const path = join(dir, "race", "client.sqlite3");
    // This process has read the schema version (none yet) when the other one opens the file and
    // migrates it; only then does this one's migration transaction begin. The other runs to its
    // end (spawnSync) while this one waits at that point: the order is fixed, not raced.
    const prototype = Database.prototype as { transaction: Database.Database["transaction"] };
    const transaction = prototype.transaction;
    let interleaved = false;
    prototype.transaction = function (this: Database.Database, ...args) {
      if (!interleaved) {
        interleaved = true;
        assert.equal(this.pragma("user_version", { simple: true }), 0, "not migrated yet");
        otherProcessOpens(path);
      }
      return transaction.apply(this, args);
    } as Database.Database["transaction"];
    let store: SqliteClientStore;
    try {
      store = await SqliteClientStore.open(path);
    } finally {
      prototype.transaction = transaction;
    }
    assert.ok(interleaved);
    try {
      assert.deepEqual(await store.loadSession(), session, "the other process's store, kept as it was");
      await store.saveSync({ nextBatch: "s1", rooms: [], accountData: [] });
      assert.equal((await store.loadSync())?.nextBatch, "s1");
    } finally {
      await store.close();
    }
  });
});
