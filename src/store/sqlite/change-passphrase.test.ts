import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import { StoreCipher } from "../cipher/store-cipher.ts";
import { StoreError, StoreKeyError, StoreLockedError } from "../errors.ts";
import { DEFAULT_SQLITE_FILE_NAME, SqliteCryptoStore } from "./sqlite-store.ts";
import { SqliteStatements } from "./statements.ts";

const ALICE = "@alice:example.org";
const DEVICE = "ALICEDEVICE";
const KDF = 1000;
const dirs: string[] = [];
const newDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), "keyroom-passphrase-"));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const isKeyError = (code: string) => (e: unknown) => e instanceof StoreKeyError && e.code === code;

async function newStore(directory: string, passphrase = "old"): Promise<SqliteCryptoStore> {
  const store = await SqliteCryptoStore.open({
    userId: ALICE,
    deviceId: DEVICE,
    directory,
    passphrase,
    kdfIterations: KDF,
  });
  await store.saveChanges({ secrets: { s: "v" } });
  return store;
}

/** The stored key header, read straight from the file. */
function headerOf(directory: string): string {
  const db = new Database(join(directory, DEFAULT_SQLITE_FILE_NAME), { readonly: true });
  try {
    return (db.prepare("SELECT value FROM meta WHERE key = 'store_key'").get() as { value: string }).value;
  } finally {
    db.close();
  }
}

async function opensWith(directory: string, passphrase: string): Promise<void> {
  const store = await SqliteCryptoStore.open({ userId: ALICE, directory, passphrase });
  try {
    assert.equal(await store.getSecret("s"), "v");
  } finally {
    await store.close();
  }
}

describe("SqliteCryptoStore.changePassphrase", () => {
  it("re-wraps the same store key: the new passphrase opens the records, the old one is WRONG_KEY", async () => {
    const directory = newDir();
    const store = await newStore(directory);
    const before = JSON.parse(headerOf(directory));
    await store.changePassphrase("old", "new", { kdfIterations: KDF + 1 });
    // Still usable in this instance (the store key did not change).
    await store.saveChanges({ secrets: { t: "w" } });
    assert.equal(await store.getSecret("s"), "v");
    await store.close();
    const after = JSON.parse(headerOf(directory));
    assert.equal(after.kind, "passphrase");
    assert.equal(after.iterations, KDF + 1);
    assert.notEqual(after.salt, before.salt, "a fresh salt");
    await opensWith(directory, "new");
    await assert.rejects(
      SqliteCryptoStore.open({ userId: ALICE, directory, passphrase: "old" }),
      isKeyError("WRONG_KEY"),
    );
  });

  it("a wrong old passphrase, an empty new one or a non-passphrase store change nothing", async () => {
    const directory = newDir();
    const store = await newStore(directory);
    const header = headerOf(directory);
    await assert.rejects(store.changePassphrase("wrong", "new"), isKeyError("WRONG_KEY"));
    await assert.rejects(
      store.changePassphrase("old", ""),
      (e) => e instanceof StoreError && e.code === "BAD_OPTION",
    );
    assert.equal(headerOf(directory), header);
    await store.close();
    await opensWith(directory, "old");

    const keyFileStore = await SqliteCryptoStore.open({
      userId: ALICE,
      deviceId: DEVICE,
      directory: newDir(),
    });
    await assert.rejects(keyFileStore.changePassphrase("", "new"), isKeyError("KEY_KIND_MISMATCH"));
    await keyFileStore.close();
  });

  it("a failure between deriving the new key and writing it leaves the old passphrase working", async (t) => {
    const directory = newDir();
    const store = await newStore(directory);
    const header = headerOf(directory);
    // Throws inside the one write transaction, right after the new header is written: it rolls back.
    const original = SqliteStatements.prototype.setMeta;
    const setMeta = t.mock.method(
      SqliteStatements.prototype,
      "setMeta",
      function (this: SqliteStatements, key: string, value: string): void {
        original.call(this, key, value);
        if (key === "store_key") throw new Error("simulated crash");
      },
    );
    await assert.rejects(
      store.changePassphrase("old", "new", { kdfIterations: KDF }),
      (e) => e instanceof StoreError && e.code === "BACKEND",
    );
    setMeta.mock.restore();
    // And one thrown as the derivation finishes, before the write.
    const derive = t.mock.method(StoreCipher, "changePassphrase", async () => {
      throw new Error("simulated crash");
    });
    await assert.rejects(store.changePassphrase("old", "new"), (e) => e instanceof StoreError);
    derive.mock.restore();
    // The instance goes on saving (the rolled-back fence moved nothing).
    await store.saveChanges({ secrets: { t: "w" } });
    await store.close();
    assert.equal(headerOf(directory), header);
    await opensWith(directory, "old");
    await assert.rejects(
      SqliteCryptoStore.open({ userId: ALICE, directory, passphrase: "new" }),
      isKeyError("WRONG_KEY"),
    );
  });

  it("takes the lease: refused (STALE) while another instance holds it, allowed under one's own", async () => {
    const directory = newDir();
    const holder = await newStore(directory);
    const other = await SqliteCryptoStore.open({ userId: ALICE, directory, passphrase: "old" });
    assert.ok(await holder.tryAcquireLease(60_000));
    await assert.rejects(
      other.changePassphrase("old", "new"),
      (e) => e instanceof StoreLockedError && e.code === "STALE",
    );
    await holder.changePassphrase("old", "new", { kdfIterations: KDF });
    await holder.close();
    await other.close();
    await opensWith(directory, "new");
  });
});
