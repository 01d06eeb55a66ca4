// The SQLite lease's generation, instance by instance on one file (a clock of its own, so expiry
// is a step, not a wait): taking the lease raises nothing, a hold's first save does, in the save's
// transaction, and an instance reloads (a stale grant) exactly when someone else saved since.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import { StoreLockedError } from "../errors.ts";
import { LEASE_KEY, SqliteLease } from "./lease.ts";

const BOOT = "boot";
const LEASE_MS = 10_000;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** One file; `open` gives an instance on a connection of its own, as another process would. */
function file() {
  const dir = mkdtempSync(join(tmpdir(), "keyroom-lease-"));
  dirs.push(dir);
  const path = join(dir, "lease.db");
  const setup = new Database(path);
  setup.pragma("journal_mode = WAL");
  setup.exec("CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)");
  setup.exec("CREATE TABLE data (n INTEGER NOT NULL)");
  setup.close();
  let time = 1_000_000;
  const clock = {
    now: () => time,
    pass: (ms: number) => {
      time += ms;
    },
  };
  const connections: Database.Database[] = [];
  after(() => {
    for (const db of connections) db.close();
  });
  let n = 0;
  /** `boot`: the operating system's boot the instance runs in (see `holderName`). */
  const open = (boot = BOOT) => {
    const db = new Database(path);
    connections.push(db);
    // Every process of this boot is alive: only the expiry frees a lease here.
    const lease = new SqliteLease(db, `${boot}:${process.pid}:${++n}`, path, boot, () => true, clock.now);
    const tx = <T>(fn: () => T): T => db.transaction(fn).immediate();
    tx(() => lease.open());
    return {
      take: () => tx(() => lease.acquire(LEASE_MS)),
      release: () => tx(() => lease.release()),
      /** A save as the store makes it: fenced, written, committed (or rolled back when `fail`). */
      save: (fail = false) => {
        const fenced = tx(() => {
          const f = lease.fence();
          db.prepare("INSERT INTO data (n) VALUES (1)").run();
          if (fail) throw new Error("rolled back");
          return f;
        });
        lease.committed(fenced);
      },
    };
  };
  const generation = (): number => {
    const db = new Database(path, { readonly: true });
    try {
      const row = db.prepare("SELECT value FROM meta WHERE key = ?").get(LEASE_KEY) as
        | { value: string }
        | undefined;
      return row === undefined ? 0 : (JSON.parse(row.value) as { generation: number }).generation;
    } finally {
      db.close();
    }
  };
  return { open, clock, generation };
}

const stale = (e: unknown): boolean => e instanceof StoreLockedError && e.code === "STALE";

describe("SqliteLease generation", () => {
  it("holds that saved nothing make nobody reload", () => {
    const { open, generation } = file();
    const a = open();
    const b = open();
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(a.take(), { stale: false }, `a's turn ${i}`);
      a.release();
      assert.deepEqual(b.take(), { stale: false }, `b's turn ${i}: a saved nothing`);
      b.release();
    }
    assert.equal(generation(), 0, "no take raised it");
    // b, whose view is as new as anyone's, may still save outside the lease.
    b.save();
    assert.deepEqual(a.take(), { stale: true });
  });

  it("a hold that saved makes the next other holder reload, once; the saver itself does not", () => {
    const { open, generation } = file();
    const a = open();
    const b = open();
    a.take();
    a.save();
    assert.equal(generation(), 1, "raised by the first save of the hold, in its transaction");
    a.save();
    a.save();
    assert.equal(generation(), 1, "not again in the same hold");
    a.release();
    assert.deepEqual(b.take(), { stale: true }, "a saved since b last saw the store");
    b.release();
    assert.deepEqual(a.take(), { stale: false }, "only a's own saves since");
    a.save();
    a.release();
    assert.equal(generation(), 2, "a new hold raises it again at its first save");
    assert.deepEqual(b.take(), { stale: true });
    assert.deepEqual(a.take(), undefined, "held by b");
    b.release();
    assert.deepEqual(a.take(), { stale: false });
  });

  it("a holder that dies after saving leaves the generation raised; one that saved nothing does not", () => {
    const { open, clock } = file();
    const a = open();
    const b = open();
    a.take();
    a.save();
    // a is gone without releasing: b waits out the expiry.
    assert.equal(b.take(), undefined);
    clock.pass(LEASE_MS + 1);
    assert.deepEqual(b.take(), { stale: true });
    // b, in turn, dies having saved nothing.
    clock.pass(LEASE_MS + 1);
    const c = open();
    assert.deepEqual(c.take(), { stale: false }, "c opened after a's save, and nobody saved since");
  });

  it("a rolled-back save raises nothing, and moves nobody's view", () => {
    const { open, generation } = file();
    const a = open();
    const b = open();
    a.take();
    assert.throws(() => a.save(true), /rolled back/);
    assert.equal(generation(), 0);
    a.release();
    assert.deepEqual(b.take(), { stale: false });
    b.release();
    a.take();
    a.save();
    assert.equal(generation(), 1, "a's next save still raises it");
    a.release();
    assert.deepEqual(b.take(), { stale: true });
  });

  it("an instance opened during a hold that saved reloads iff the holder saves again after", () => {
    const { open } = file();
    const a = open();
    a.take();
    a.save();
    // c reads the store (the generation a raised) while a holds it and may save more under it.
    const c = open();
    a.save();
    a.release();
    assert.deepEqual(c.take(), { stale: true }, "a saved after c opened");
    c.release();
    a.take();
    a.save();
    const d = open();
    a.release();
    assert.deepEqual(d.take(), { stale: false }, "a saved nothing after d opened");
  });

  it("a holder past its expiry may not save once another took the lease, saved or not", () => {
    const { open, clock } = file();
    const a = open();
    const b = open();
    a.take();
    a.save();
    clock.pass(LEASE_MS + 1);
    assert.deepEqual(b.take(), { stale: true });
    assert.throws(() => a.save(), stale, "b holds it now");
    b.save();
    b.release();
    assert.throws(() => a.save(), stale, "b saved since");
    assert.deepEqual(a.take(), { stale: true });
    a.release();
    // Another took the lease from a stalled holder and let it go having saved nothing: a's view is
    // still the store's, so its save (outside the lease now) is allowed, and makes b reload.
    a.take();
    clock.pass(LEASE_MS + 1);
    assert.deepEqual(b.take(), { stale: false });
    b.release();
    a.save();
    assert.deepEqual(b.take(), { stale: true });
  });

  it("a lease left by a process of an earlier boot is free at once, whatever the clock says", () => {
    const { open, clock } = file();
    const before = open("earlier-boot");
    before.take();
    before.save();
    // The machine lost power and came back with its clock behind (no RTC, time restored from the
    // last save): by this clock the old lease runs long, but no process of that boot is left.
    clock.pass(-3_600_000);
    const after = open("this-boot");
    assert.deepEqual(after.take(), { stale: false }, "opened after the old holder's save");
    after.save();
    after.release();
  });
});
