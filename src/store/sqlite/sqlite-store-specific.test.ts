import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  unlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { rowAd, StoreCipher } from "../cipher/store-cipher.ts";
import { sample } from "../conformance.ts";
import { StoreError, StoreKeyError, StoreLockedError } from "../errors.ts";
import { MAX_STORED_OLM_MESSAGE_HASHES, MAX_STORED_WITHHELD } from "../store.ts";
import { accountToJson } from "../validate.ts";
import { LATEST_SCHEMA_VERSION, migrate, schemaVersion } from "./migrations.ts";
import { DEFAULT_SQLITE_FILE_NAME, SqliteCryptoStore } from "./sqlite-store.ts";
import { killAndCheck } from "./test-support/crash-support.ts";

const ALICE = "@alice:example.org";
const DEVICE = "ALICEDEVICE";
const dirs: string[] = [];
const newDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), "keyroom-sqlite-"));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("SqliteCryptoStore", () => {
  it("creates the directory, honours fileName and keeps the journal in WAL mode", async () => {
    const directory = join(newDir(), "nested", "state");
    const store = await SqliteCryptoStore.open({
      userId: ALICE,
      deviceId: DEVICE,
      directory,
      fileName: "crypto.db",
    });
    assert.equal(store.path, join(directory, "crypto.db"));
    await store.close();
    const db = new Database(join(directory, "crypto.db"), { readonly: true });
    assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
    assert.equal(schemaVersion(db), LATEST_SCHEMA_VERSION);
    db.close();
    await assert.rejects(
      SqliteCryptoStore.open({ userId: ALICE, deviceId: DEVICE, directory, fileName: "../x.db" }),
      (e) => e instanceof StoreError && e.code === "BAD_OPTION",
    );
  });

  it("without a passphrase: a 0600 key file beside the database, secrets never in clear", async () => {
    const directory = newDir();
    const store = await SqliteCryptoStore.open({ userId: ALICE, deviceId: DEVICE, directory });
    const secret = "c2VjcmV0LWJhY2t1cC1rZXktdmFsdWU";
    await store.saveChanges({
      secrets: { "m.megolm_backup.v1": secret },
      inboundGroupSessions: [sample.inbound("!r:x", "g1")],
      account: sample.account(0),
    });
    await store.close();
    const keyFile = join(directory, `${DEFAULT_SQLITE_FILE_NAME}.key`);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    const raw = readFileSync(join(directory, DEFAULT_SQLITE_FILE_NAME)).toString("latin1");
    const wal = existsSync(join(directory, `${DEFAULT_SQLITE_FILE_NAME}-wal`))
      ? readFileSync(join(directory, `${DEFAULT_SQLITE_FILE_NAME}-wal`)).toString("latin1")
      : "";
    for (const needle of [secret, "inbound-g1", "account-0"]) {
      assert.ok(!raw.includes(needle) && !wal.includes(needle), `${needle} is stored in clear`);
    }
    assert.ok(raw.includes("!r:x") || wal.includes("!r:x"), "lookup columns stay in clear");
    const reopened = await SqliteCryptoStore.open({ userId: ALICE, directory });
    assert.equal(await reopened.getSecret("m.megolm_backup.v1"), secret);
    await reopened.close();

    await assert.rejects(
      SqliteCryptoStore.open({ userId: ALICE, directory, passphrase: "p" }),
      (e) => e instanceof StoreKeyError && e.code === "KEY_KIND_MISMATCH",
    );
    chmodSync(keyFile, 0o644);
    await assert.rejects(
      SqliteCryptoStore.open({ userId: ALICE, directory }),
      (e) => e instanceof StoreKeyError && e.code === "KEY_FILE_INSECURE",
    );
    unlinkSync(keyFile);
    await assert.rejects(
      SqliteCryptoStore.open({ userId: ALICE, directory }),
      (e) => e instanceof StoreKeyError && e.code === "KEY_FILE_MISSING",
    );
  });

  it("creates the database and its WAL and shm files 0600, even in a directory others can read", async () => {
    if (process.platform === "win32") return;
    const directory = newDir();
    chmodSync(directory, 0o755);
    const umask = process.umask(0o022);
    try {
      const store = await SqliteCryptoStore.open({ userId: ALICE, deviceId: DEVICE, directory });
      await store.saveChanges({ account: sample.account(0) });
      for (const suffix of ["", "-wal", "-shm"]) {
        const file = join(directory, `${DEFAULT_SQLITE_FILE_NAME}${suffix}`);
        assert.equal(statSync(file).mode & 0o077, 0, `${file} is readable by others`);
      }
      await store.close();
    } finally {
      process.umask(umask);
    }
  });

  it("opens with a caller-supplied 32-byte key and refuses another", async () => {
    const directory = newDir();
    const key = new Uint8Array(32).fill(7);
    const store = await SqliteCryptoStore.open({ userId: ALICE, deviceId: DEVICE, directory, key });
    await store.saveChanges({ secrets: { s: "v" } });
    await store.close();
    await assert.rejects(
      SqliteCryptoStore.open({ userId: ALICE, directory, key: new Uint8Array(32).fill(8) }),
      (e) => e instanceof StoreKeyError && e.code === "WRONG_KEY",
    );
    const again = await SqliteCryptoStore.open({ userId: ALICE, directory, key });
    assert.equal(await again.getSecret("s"), "v");
    await again.close();
  });

  it("detects ciphertexts moved between rows", async () => {
    const directory = newDir();
    const store = await SqliteCryptoStore.open({ userId: ALICE, deviceId: DEVICE, directory });
    await store.saveChanges({
      inboundGroupSessions: [sample.inbound("!r:x", "g1"), sample.inbound("!r:x", "g2")],
    });
    await store.close();
    const db = new Database(join(directory, DEFAULT_SQLITE_FILE_NAME));
    db.exec(
      "UPDATE inbound_group_sessions SET pickle = (SELECT pickle FROM inbound_group_sessions WHERE session_id = 'g2') WHERE session_id = 'g1'",
    );
    db.close();
    const reopened = await SqliteCryptoStore.open({ userId: ALICE, directory });
    await assert.rejects(
      reopened.getInboundGroupSession("!r:x", "g1"),
      (e) => e instanceof StoreKeyError && e.code === "TAMPERED",
    );
    assert.ok(await reopened.getInboundGroupSession("!r:x", "g2"));
    await reopened.close();
  });

  it("binds the account to the identity: one rewritten in the file is TAMPERED at open; an older account still opens", async () => {
    const directory = newDir();
    const store = await SqliteCryptoStore.open({
      userId: ALICE,
      deviceId: DEVICE,
      directory,
      passphrase: "pw",
      kdfIterations: 1000,
    });
    await store.saveChanges({ account: sample.account(0) });
    await store.close();
    const refused = async (): Promise<void> => {
      // Closed if it opens after all, so a failure does not leave the test hanging.
      const opened = await SqliteCryptoStore.open({ userId: ALICE, directory, passphrase: "pw" }).then(
        async (s) => s.close(),
        (e: unknown) => e,
      );
      assert.ok(opened instanceof StoreKeyError && opened.code === "TAMPERED", String(opened));
    };
    const path = join(directory, DEFAULT_SQLITE_FILE_NAME);
    const db = new Database(path);
    const meta = (key: string): string =>
      (db.prepare("SELECT value FROM meta WHERE key = ?").get(key) as { value: string }).value;
    const setMeta = (key: string, value: string): void => {
      db.prepare("UPDATE meta SET value = ? WHERE key = ?").run(value, key);
    };
    const identity = meta("identity");
    // Another of Alice's device IDs, for restoreDeviceId (no device ID asked for) to log in as.
    setMeta("identity", JSON.stringify({ userId: ALICE, deviceId: "OTHERDEVICE" }));
    await refused();
    // An account sealed before it was bound to the identity (as older Keyroom did) still opens.
    setMeta("identity", identity);
    const cipher = await StoreCipher.unlock(JSON.parse(meta("store_key")), {
      kind: "passphrase",
      passphrase: "pw",
    });
    setMeta("account", cipher.encrypt(accountToJson(sample.account(1)), rowAd("account")));
    db.close();
    const reopened = await SqliteCryptoStore.open({ userId: ALICE, directory, passphrase: "pw" });
    assert.deepEqual(await reopened.loadAccount(), sample.account(1));
    await reopened.saveChanges({ account: sample.account(2) });
    await reopened.close();
    // Saved again, it is bound too.
    const again = new Database(path);
    again
      .prepare("UPDATE meta SET value = ? WHERE key = 'identity'")
      .run(JSON.stringify({ userId: ALICE, deviceId: "OTHERDEVICE" }));
    again.close();
    await refused();
  });

  it("reports corrupted rows as INVALID_RECORD", async () => {
    const directory = newDir();
    const store = await SqliteCryptoStore.open({ userId: ALICE, deviceId: DEVICE, directory });
    await store.saveChanges({
      devices: [sample.device("@bob:x", "B")],
      inboundGroupSessions: [sample.inbound("!r:x", "g1")],
    });
    await store.close();
    const db = new Database(join(directory, DEFAULT_SQLITE_FILE_NAME));
    db.exec(
      "UPDATE devices SET trust = 'bogus'; UPDATE inbound_group_sessions SET forwarding_chain = '{not json'",
    );
    db.close();
    const reopened = await SqliteCryptoStore.open({ userId: ALICE, directory });
    const invalid = (e: unknown): boolean => e instanceof StoreError && e.code === "INVALID_RECORD";
    await assert.rejects(reopened.getUserDevices("@bob:x"), invalid);
    await assert.rejects(reopened.getInboundGroupSession("!r:x", "g1"), invalid);
    await reopened.close();
  });

  it("upgrades a version 1 database to the latest schema, keeping its data", async () => {
    const directory = newDir();
    const path = join(directory, DEFAULT_SQLITE_FILE_NAME);
    const db = new Database(path);
    assert.equal(migrate(db, 1), 1);
    const { cipher, header } = await StoreCipher.create({
      kind: "passphrase",
      passphrase: "pw",
      iterations: 1000,
    });
    const rec = sample.inbound("!old:x", "legacy", { backedUp: false });
    db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)").run(
      "identity",
      JSON.stringify({ userId: ALICE, deviceId: DEVICE }),
    );
    db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)").run("store_key", JSON.stringify(header));
    db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)").run("next_batch", "s_v1");
    db.prepare(
      "INSERT INTO inbound_group_sessions (room_id, session_id, sender_key, sender_claimed_ed25519, first_known_index, " +
        "imported, forwarded, forwarding_chain, backed_up, pickle) VALUES (?, ?, ?, ?, ?, 0, 0, '[]', 0, ?)",
    ).run(
      rec.roomId,
      rec.sessionId,
      rec.senderKey,
      rec.senderClaimedEd25519,
      0,
      cipher.encrypt(rec.pickle, rowAd("inbound", rec.roomId, rec.sessionId)),
    );
    // Before version 4 an outbound session's device lists shared its row.
    const out = sample.outbound("!old:x", "o-legacy", 7);
    db.prepare(
      "INSERT INTO outbound_group_sessions (room_id, session_id, created_at, message_count, sharing, pickle) " +
        "VALUES (?, ?, ?, ?, ?, ?)",
    ).run(
      out.roomId,
      out.sessionId,
      out.createdAt,
      out.messageCount,
      JSON.stringify({
        sharedWith: out.sharedWith,
        pendingShares: out.pendingShares,
        withheldFrom: out.withheldFrom,
      }),
      cipher.encrypt(out.pickle, rowAd("outbound", out.roomId)),
    );
    assert.equal(db.prepare("SELECT name FROM sqlite_master WHERE name = 'room_settings'").get(), undefined);
    db.close();

    const store = await SqliteCryptoStore.open({ userId: ALICE, directory, passphrase: "pw" });
    assert.equal(await store.getNextBatch(), "s_v1");
    assert.deepEqual(await store.getInboundGroupSession("!old:x", "legacy"), rec);
    assert.deepEqual(await store.getInboundGroupSessionsToBackUp(10), [rec]);
    assert.deepEqual(await store.getOutboundGroupSession("!old:x"), out);
    await store.saveChanges({
      outboundGroupSessionUpdates: [
        { roomId: "!old:x", sessionId: "o-legacy", pickle: out.pickle, messageCount: 8 },
      ],
    });
    assert.deepEqual(await store.getOutboundGroupSession("!old:x"), { ...out, messageCount: 8 });
    await store.saveChanges({ roomSettings: [{ roomId: "!old:x", algorithm: "m.megolm.v1.aes-sha2" }] });
    assert.equal((await store.getRoomSettings("!old:x"))?.algorithm, "m.megolm.v1.aes-sha2");
    await store.close();
    const check = new Database(path, { readonly: true });
    assert.equal(schemaVersion(check), LATEST_SCHEMA_VERSION);
    check.close();
  });

  it("upgrades a version 6 database: withheld notices and Olm hashes kept, in order, and bounded from then on", async () => {
    const directory = newDir();
    const path = join(directory, DEFAULT_SQLITE_FILE_NAME);
    const db = new Database(path);
    assert.equal(migrate(db, 6), 6);
    const { header } = await StoreCipher.create({ kind: "passphrase", passphrase: "pw", iterations: 1000 });
    const putMeta = db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)");
    putMeta.run("identity", JSON.stringify({ userId: ALICE, deviceId: DEVICE }));
    putMeta.run("store_key", JSON.stringify(header));
    const notice = (sessionId: string) => ({
      roomId: "!old:x",
      sessionId,
      code: "m.unverified",
      sender: "@bob:x",
    });
    // Stored in this order (version 6 replaced a row by deleting it and adding it last).
    const putWithheld = db.prepare(
      "INSERT OR REPLACE INTO withheld (room_id, session_id, record) VALUES (?, ?, ?)",
    );
    for (const id of ["w-c", "w-a", "w-b"]) putWithheld.run("!old:x", id, JSON.stringify(notice(id)));
    putWithheld.run("!old:x", "w-c", JSON.stringify({ ...notice("w-c"), code: "m.blacklisted" }));
    const putHash = db.prepare("INSERT INTO olm_message_hashes (sender_key, hash) VALUES (?, ?)");
    for (const hash of ["h-b", "h-a"]) putHash.run("curveOld", hash);
    db.close();

    const store = await SqliteCryptoStore.open({ userId: ALICE, directory, passphrase: "pw" });
    assert.deepEqual(await store.getWithheld("!old:x", "w-a"), notice("w-a"));
    assert.equal((await store.getWithheld("!old:x", "w-c"))?.code, "m.blacklisted");
    assert.ok(await store.isOlmMessageKnown("curveOld", "h-a"));
    assert.ok(await store.isOlmMessageKnown("curveOld", "h-b"));
    // Filled to the bound: the old rows give way in the order they were stored, no other.
    const fresh = Array.from({ length: MAX_STORED_WITHHELD - 2 }, (_, i) => notice(`new-${i}`));
    await store.saveChanges({ withheld: fresh });
    assert.equal(await store.getWithheld("!old:x", "w-a"), undefined);
    assert.notEqual(await store.getWithheld("!old:x", "w-b"), undefined);
    assert.notEqual(await store.getWithheld("!old:x", "w-c"), undefined);
    await store.saveChanges({ withheld: [notice("one-more")] });
    assert.equal(await store.getWithheld("!old:x", "w-b"), undefined);
    assert.notEqual(await store.getWithheld("!old:x", "w-c"), undefined);
    const hashes = Array.from({ length: MAX_STORED_OLM_MESSAGE_HASHES - 1 }, (_, i) => ({
      senderKey: "curveNew",
      hash: `n${i}`,
    }));
    await store.saveChanges({ olmMessageHashes: hashes });
    assert.equal(await store.isOlmMessageKnown("curveOld", "h-a"), false);
    assert.ok(await store.isOlmMessageKnown("curveOld", "h-b"));
    await store.close();
    const check = new Database(path, { readonly: true });
    assert.equal(schemaVersion(check), LATEST_SCHEMA_VERSION);
    const count = (table: string) =>
      (check.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    assert.equal(count("withheld"), MAX_STORED_WITHHELD);
    assert.equal(count("olm_message_hashes"), MAX_STORED_OLM_MESSAGE_HASHES);
    check.close();
  });

  it("upgrades a version 7 database: tracked users kept, none marked as a sender only; marks kept from then on", async () => {
    const directory = newDir();
    const path = join(directory, DEFAULT_SQLITE_FILE_NAME);
    const db = new Database(path);
    assert.equal(migrate(db, 7), 7);
    const { header } = await StoreCipher.create({ kind: "passphrase", passphrase: "pw", iterations: 1000 });
    const putMeta = db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)");
    putMeta.run("identity", JSON.stringify({ userId: ALICE, deviceId: DEVICE }));
    putMeta.run("store_key", JSON.stringify(header));
    const putTracked = db.prepare("INSERT INTO tracked_users (user_id, outdated) VALUES (?, ?)");
    putTracked.run("@bob:x", 1);
    putTracked.run("@carol:x", 0);
    db.close();

    const open = () => SqliteCryptoStore.open({ userId: ALICE, directory, passphrase: "pw" });
    let store = await open();
    // Version 7 kept no mark: its users were room members or not known to be otherwise.
    assert.deepEqual(await store.getTrackedUsers(), [
      { userId: "@bob:x", outdated: true },
      { userId: "@carol:x", outdated: false },
    ]);
    await store.saveChanges({
      trackedUsers: [
        { userId: "@spam:evil", outdated: true, senderOrder: 1 },
        { userId: "@carol:x", outdated: false, senderOrder: 2 },
      ],
    });
    await store.close();
    store = await open();
    assert.deepEqual(await store.getTrackedUsers(), [
      { userId: "@bob:x", outdated: true },
      { userId: "@carol:x", outdated: false, senderOrder: 2 },
      { userId: "@spam:evil", outdated: true, senderOrder: 1 },
    ]);
    await store.close();
    const check = new Database(path, { readonly: true });
    assert.equal(schemaVersion(check), LATEST_SCHEMA_VERSION);
    check.close();
  });

  it("upgrades a version 8 database: its data kept; rival room keys kept from then on, their pickles sealed", async () => {
    const directory = newDir();
    const path = join(directory, DEFAULT_SQLITE_FILE_NAME);
    const db = new Database(path);
    assert.equal(migrate(db, 8), 8);
    const { header } = await StoreCipher.create({ kind: "passphrase", passphrase: "pw", iterations: 1000 });
    const putMeta = db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)");
    putMeta.run("identity", JSON.stringify({ userId: ALICE, deviceId: DEVICE }));
    putMeta.run("store_key", JSON.stringify(header));
    db.prepare("INSERT INTO tracked_users (user_id, outdated) VALUES (?, ?)").run("@bob:x", 1);
    db.close();

    const open = () => SqliteCryptoStore.open({ userId: ALICE, directory, passphrase: "pw" });
    const rival = { ...sample.rival("!r:x", "g1", "curveRival"), sharedHistory: true };
    let store = await open();
    try {
      assert.deepEqual(await store.getTrackedUsers(), [{ userId: "@bob:x", outdated: true }]);
      assert.deepEqual(await store.getRivalRoomKeys(), []);
      await store.saveChanges({ rivalRoomKeys: [rival] });
    } finally {
      await store.close();
    }
    const raw = readFileSync(path).toString("latin1");
    const walPath = `${path}-wal`;
    const wal = existsSync(walPath) ? readFileSync(walPath).toString("latin1") : "";
    assert.ok(
      !raw.includes("rival-g1") && !wal.includes("rival-g1"),
      "the rival's pickle is stored in clear",
    );
    assert.ok(raw.includes("curveRival") || wal.includes("curveRival"), "lookup columns stay in clear");
    store = await open();
    try {
      assert.deepEqual(await store.getRivalRoomKeys(), [rival]);
    } finally {
      await store.close();
    }
    const check = new Database(path, { readonly: true });
    assert.equal(schemaVersion(check), LATEST_SCHEMA_VERSION);
    check.close();
  });

  it("a message rewrites only the outbound session's ratchet row, not its device lists", async () => {
    const directory = newDir();
    const path = join(directory, DEFAULT_SQLITE_FILE_NAME);
    const out = sample.outbound("!r:x", "o1");
    // The open store holds the file exclusively: look at it between sessions.
    const withStore = async (f: (s: SqliteCryptoStore) => Promise<void>): Promise<void> => {
      const store = await SqliteCryptoStore.open({ userId: ALICE, deviceId: DEVICE, directory });
      await f(store);
      await store.close();
    };
    const sharingRows = (): unknown => {
      const db = new Database(path, { readonly: true });
      try {
        return db.prepare("SELECT rowid, sharing FROM outbound_group_session_sharing").all();
      } finally {
        db.close();
      }
    };
    // Two rooms, so a rewritten first row could not get its old rowid back.
    await withStore((s) => s.saveChanges({ outboundGroupSessions: [out, sample.outbound("!r2:x", "o2")] }));
    const before = sharingRows();
    await withStore(async (s) => {
      await s.saveChanges({
        outboundGroupSessionUpdates: [
          { roomId: "!r:x", sessionId: "o1", pickle: out.pickle, messageCount: 1 },
        ],
      });
      assert.equal((await s.getOutboundGroupSession("!r:x"))?.messageCount, 1);
    });
    // Rewriting it (INSERT OR REPLACE) would have given the row a new rowid.
    assert.deepEqual(sharingRows(), before);
    await withStore((s) => s.saveChanges({ deletedOutboundGroupSessions: ["!r:x", "!r2:x"] }));
    assert.deepEqual(sharingRows(), []);
  });

  it("refuses a database file truncated to zero bytes instead of starting a new identity in it", async () => {
    for (const protection of [{}, { passphrase: "pw", kdfIterations: 1000 }]) {
      const directory = newDir();
      const store = await SqliteCryptoStore.open({
        userId: ALICE,
        deviceId: DEVICE,
        directory,
        ...protection,
      });
      await store.saveChanges({ account: sample.account(0) });
      await store.close();
      const path = join(directory, DEFAULT_SQLITE_FILE_NAME);
      truncateSync(path, 0);
      for (const deviceId of [DEVICE, undefined]) {
        await assert.rejects(
          SqliteCryptoStore.open({ userId: ALICE, deviceId, directory, ...protection }),
          (e) => e instanceof StoreError && e.code === "CORRUPT",
        );
      }
      assert.equal(statSync(path).size, 0, "the damaged file is left as it was");
      // A new location still starts a new store (no stray temporary files beside it).
      const fresh = newDir();
      const created = await SqliteCryptoStore.open({
        userId: ALICE,
        deviceId: DEVICE,
        directory: fresh,
        ...protection,
      });
      await created.close();
      assert.deepEqual(
        readdirSync(fresh).filter((f) => f.endsWith(".new")),
        [],
      );
    }
  });

  it("two processes migrating one file at once: the second finds the work done, not a failure", () => {
    for (const startAt of [undefined, 1, LATEST_SCHEMA_VERSION - 1]) {
      const path = join(newDir(), "race.sqlite3");
      const a = new Database(path);
      const b = new Database(path);
      a.pragma("journal_mode = WAL");
      if (startAt !== undefined) migrate(a, startAt);
      // B has read the version when A runs every migration; then B's own transactions begin.
      let interleaved = false;
      const slowB = new Proxy(b, {
        get(target, prop) {
          if (prop === "transaction" && !interleaved) {
            interleaved = true;
            migrate(a);
          }
          const v: unknown = Reflect.get(target, prop);
          return typeof v === "function" ? v.bind(target) : v;
        },
      });
      assert.equal(migrate(slowB), LATEST_SCHEMA_VERSION, `from ${startAt ?? "a new file"}`);
      assert.ok(interleaved);
      assert.equal(schemaVersion(b), LATEST_SCHEMA_VERSION);
      a.close();
      b.close();
    }
  });

  it("refuses a database from a newer Keyroom", async () => {
    const directory = newDir();
    const db = new Database(join(directory, DEFAULT_SQLITE_FILE_NAME));
    migrate(db);
    db.exec(`UPDATE schema_version SET version = ${LATEST_SCHEMA_VERSION + 1}`);
    db.close();
    await assert.rejects(
      SqliteCryptoStore.open({ userId: ALICE, deviceId: DEVICE, directory }),
      (e) => e instanceof StoreError && e.code === "SCHEMA_TOO_NEW",
    );
  });

  it("a process killed while saving leaves complete steps only", async () => {
    const directory = newDir();
    let step = 0;
    for (const ms of [0, 7, 40]) step = await killAndCheck(directory, ms, step);
  });

  it("taking the lease after another instance's hold reloads only if that hold saved something", async () => {
    const directory = newDir();
    const a = await SqliteCryptoStore.open({ userId: ALICE, deviceId: DEVICE, directory });
    const b = await SqliteCryptoStore.open({ userId: ALICE, deviceId: DEVICE, directory });
    try {
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(await a.tryAcquireLease(60_000), { stale: false }, `a's turn ${i}`);
        assert.equal(await a.getNextBatch(), undefined, "reading is not saving");
        await a.releaseLease();
        assert.deepEqual(await b.tryAcquireLease(60_000), { stale: false }, `b's turn ${i}: a saved nothing`);
        await b.releaseLease();
      }
      await a.tryAcquireLease(60_000);
      await a.saveChanges({ nextBatch: "s1" });
      await a.saveChanges({ nextBatch: "s2" });
      await a.releaseLease();
      assert.deepEqual(await b.tryAcquireLease(60_000), { stale: true }, "a saved during its hold");
      assert.equal(await b.getNextBatch(), "s2");
      await b.releaseLease();
      assert.deepEqual(await a.tryAcquireLease(60_000), { stale: false }, "b saved nothing, a's own saves");
      await a.releaseLease();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("is leased while another process works on it, and freed when that process dies", async () => {
    const directory = newDir();
    const fixture = fileURLToPath(new URL("./lock-holder.fixture.ts", import.meta.url));
    // Short, so the dead holder's lease runs out soon; the waits below are on progress, not on time.
    const leaseMs = 1000;
    const child = spawn(
      process.execPath,
      ["--conditions=source", "--import", "tsx", fixture, directory, String(leaseMs)],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const store = await (async () => {
      try {
        await new Promise<void>((resolve, reject) => {
          let out = "";
          child.stdout.on("data", (chunk: Buffer) => {
            out += chunk.toString();
            if (out.includes("ready")) resolve();
          });
          child.once("exit", (code) => reject(new Error(`lease holder exited early (${code})`)));
        });
        // Opening is not refused: processes share the store and take turns.
        const opened = await SqliteCryptoStore.open({ userId: ALICE, deviceId: DEVICE, directory });
        assert.equal(await opened.tryAcquireLease(leaseMs), undefined, "the holder renews it");
        await assert.rejects(opened.saveChanges({ nextBatch: "intruder" }), (e) => {
          assert.ok(e instanceof StoreLockedError);
          assert.equal(e.code, "STALE");
          assert.ok(e.message.includes(directory));
          return true;
        });
        return opened;
      } finally {
        child.kill("SIGKILL");
        await exited;
      }
    })();
    let grant = await store.tryAcquireLease(leaseMs);
    while (grant === undefined) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      grant = await store.tryAcquireLease(leaseMs);
    }
    assert.equal(grant.stale, false, "opened after the holder wrote, and nobody wrote since");
    assert.equal(await store.getNextBatch(), "from-the-holder");
    await store.saveChanges({ nextBatch: "after" });
    await store.close();
  });
});
