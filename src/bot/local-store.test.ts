import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { MAX_HANDLED_EVENTS, MemoryLocalStore, SqliteLocalStore } from "./local-store.ts";

test("local stores: handled events survive a reopen, the oldest are forgotten past the bound; key-value data", async () => {
  const dir = await mkdtemp(join(tmpdir(), "keyroom-local-"));
  try {
    const path = join(dir, "bot.sqlite3");
    let store = await SqliteLocalStore.open(path);
    for (let i = 0; i < MAX_HANDLED_EVENTS + 1_000; i++) store.markHandled(`$e${i}`);
    store.set("k", { a: [1, 2] });
    store.close();
    store = await SqliteLocalStore.open(path);
    assert.equal(store.isHandled(`$e${MAX_HANDLED_EVENTS + 999}`), true, "kept across a reopen");
    assert.equal(store.isHandled("$e0"), false, "the oldest forgotten");
    assert.deepEqual(store.get("k"), { a: [1, 2] });
    store.delete("k");
    assert.equal(store.get("k"), undefined);
    store.close();
    const memory = new MemoryLocalStore();
    for (let i = 0; i < MAX_HANDLED_EVENTS + 10; i++) memory.markHandled(`$e${i}`);
    assert.equal(memory.isHandled("$e0"), false);
    assert.equal(memory.isHandled(`$e${MAX_HANDLED_EVENTS + 9}`), true);
    memory.set("k", { a: [1, 2] });
    assert.deepEqual(memory.get("k"), { a: [1, 2] });
    memory.delete("k");
    assert.equal(memory.get("k"), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
