// Key backup section (issue 12): back up 10 000 room keys (encrypt each for the backup, batch,
// mark after the answer) and restore 10 000 keys from a backup (decrypt each record, import),
// Keyroom's engine on its SQLite store side by side with matrix-sdk-crypto-wasm, by the alternating
// method of bench/README.md. Self-contained:
//   node --conditions=source --import tsx bench/backup.ts [--quick]
// One operation = the whole set of keys. Backup: the machines hold the keys already (imported, not
// timed); each run uploads all of them (the marks are reset between runs, not timed); the server's
// answers are canned. Restore: the same `GET /room_keys/keys` body (parsed JSON) into a fresh machine
// each run (making it is not timed); crypto-wasm's side does what matrix-js-sdk does with it:
// `BackupDecryptionKey.decryptV1` per record, then `importBackedUpRoomKeys`.
// Targets: at least 2x crypto-wasm each; restore of 100 000 keys under 10 s on the SQLite store
// (one more restore, of 100 000 keys, after the comparison).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as Wasm from "@matrix-org/matrix-sdk-crypto-wasm";
import { nodeBackupDecryptor } from "../src/client/platform/backup-decryptor-node.ts";
import { encryptKeyBackupData, type KeyBackupData } from "../src/crypto/backup/index.ts";
import type { ExportedRoomKey } from "../src/crypto/key-export/index.ts";
import { InboundGroupSession, OutboundGroupSession } from "../src/crypto/megolm/index.ts";
import { Account } from "../src/crypto/olm/index.ts";
import { PkDecryption, PkEncryption } from "../src/crypto/pk/index.ts";
import { encodeBase64 } from "../src/crypto/primitives/index.ts";
import { OlmMachine } from "../src/e2ee/index.ts";
import { type CryptoStore, MemoryCryptoStore, SqliteCryptoStore } from "../src/store/index.ts";
import {
  alternate,
  cpuMs,
  formatRatio,
  machineInfo,
  ratios,
  type SelfTimed,
  type SideResult,
} from "./stats.ts";

const QUICK = process.argv.includes("--quick") || process.env.KEYROOM_BENCH_QUICK === "1";
/**
 * Keys of the alternating comparison. 10 000, not 100 000: at 100 000 the section alone ran over 16
 * minutes here (20 000: 5 minutes at load ~8) (crypto-wasm's restore and backup of 100 000 keys, 7 times each), and the whole
 * `npm run bench` must stay under 20 (issue 14). Both sides' cost is about linear in keys except
 * crypto-wasm's backup, which gets slower per key as more keys are marked (see below), so the
 * smaller set does not favour Keyroom.
 */
const KEYS = QUICK ? 500 : 10_000;
/**
 * The restore target (issue 12: 100 000 keys under 10 s on SQLite) is checked at its own size: one
 * more restore of this many keys into Keyroom's SQLite store, wall time, after the comparison.
 */
const RESTORE_WALL_KEYS = QUICK ? KEYS : 100_000;
const ROOMS = 100;
const ME = "@bench:localhost";
const TARGET = 2;
const RESTORE_TARGET_MS = 10_000;
// crypto-wasm's backup upload slows down as more keys are marked (879 keys/s of CPU at 2 000 keys,
// 367 at 6 000 here): 100 000 keys did not finish in 110 minutes. Its side backs up at most this
// many keys and its time is scaled linearly to KEYS: a lower bound on its real cost, so the
// backup ratio printed is a lower bound on Keyroom's.
const WASM_BACKUP_KEYS = Math.min(KEYS, 2_000);
const VERSION = "1";

const dir = mkdtempSync(join(tmpdir(), "keyroom-bench-backup-"));
let storeCount = 0;

function sqliteStore(deviceId: string): Promise<CryptoStore> {
  storeCount++;
  return SqliteCryptoStore.open({ directory: join(dir, `store${storeCount}`), userId: ME, deviceId });
}

/** `count` room keys of fresh sessions from one sender, spread over `ROOMS` rooms. */
function makeKeys(count: number): ExportedRoomKey[] {
  const sender = Account.create().identityKeys;
  const keys: ExportedRoomKey[] = [];
  for (let i = 0; i < count; i++) {
    const session = InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey());
    keys.push({
      algorithm: "m.megolm.v1.aes-sha2",
      room_id: `!room${i % ROOMS}:localhost`,
      sender_key: sender.curve25519,
      session_id: session.sessionId,
      session_key: session.exportAtFirstKnownIndex(),
      sender_claimed_keys: { ed25519: sender.ed25519 },
      forwarding_curve25519_key_chain: [],
    });
  }
  return keys;
}

/** The `GET /room_keys/keys` answer holding `keys`, encrypted for `publicKey`. */
function backupBody(keys: readonly ExportedRoomKey[], publicKey: string) {
  const encryption = new PkEncryption(publicKey);
  const rooms: Record<string, { sessions: Record<string, KeyBackupData> }> = {};
  for (const k of keys) {
    const { room_id, session_id, ...rest } = k;
    rooms[room_id] ??= { sessions: {} };
    rooms[room_id].sessions[session_id] = encryptKeyBackupData(encryption, rest, {
      firstMessageIndex: 0,
      forwardedCount: 0,
      isVerified: false,
    });
  }
  return { rooms };
}

function clock(): () => SelfTimed {
  const c0 = cpuMs();
  const t0 = performance.now();
  return () => ({ selfTimed: true, cpuMs: cpuMs() - c0, wallMs: performance.now() - t0 });
}

// ---- backup ----

interface Backuper {
  /** Uploads every key (timed) and returns the time and the count uploaded. */
  run(): Promise<SelfTimed & { uploaded: number }>;
}

async function keyroomBackuper(
  keys: readonly ExportedRoomKey[],
  publicKey: string,
  privateKey: Uint8Array,
): Promise<Backuper> {
  const store = await sqliteStore("BACKUP");
  const machine = await OlmMachine.open({ userId: ME, deviceId: "BACKUP", store });
  await machine.importRoomKeys(keys);
  let version = 0;
  return {
    async run() {
      // A new backup version (untimed): the machine marks every session for upload again, as
      // crypto-wasm's side does with disableBackup + enableBackupV1. Not by resetting the marks in
      // the store behind the machine's back: the machine remembers that it found nothing to upload
      // and would not ask the store again (the section then timed runs that uploaded nothing).
      version++;
      await machine.backup.useVersion(
        {
          version: String(version),
          algorithm: "m.megolm_backup.v1.curve25519-aes-sha2",
          auth_data: { public_key: publicKey },
        },
        privateKey,
      );
      const stop = clock();
      let uploaded = 0;
      for (;;) {
        const request = await machine.backup.nextUpload();
        if (request === undefined) break;
        // The body goes over the wire as JSON, on both sides.
        JSON.stringify(request.body);
        uploaded += await machine.backup.uploaded(request.id);
      }
      return { ...stop(), uploaded };
    },
  };
}

/** crypto-wasm's side, on the first `WASM_BACKUP_KEYS` keys; it reports its time scaled to `KEYS`. */
async function wasmBackuper(keys: readonly ExportedRoomKey[], publicKey: string): Promise<Backuper> {
  const machine = await Wasm.OlmMachine.initialize(new Wasm.UserId(ME), new Wasm.DeviceId("BACKUP"));
  await machine.importExportedRoomKeys(JSON.stringify(keys.slice(0, WASM_BACKUP_KEYS)), () => undefined);
  const scale = KEYS / WASM_BACKUP_KEYS;
  let version = 0;
  return {
    async run() {
      await machine.disableBackup();
      version++;
      await machine.enableBackupV1(publicKey, String(version));
      const stop = clock();
      let uploaded = 0;
      for (;;) {
        const request = await machine.backupRoomKeys();
        if (request === undefined) break;
        const body = JSON.parse(request.body) as { rooms: Record<string, { sessions: object }> };
        for (const room of Object.values(body.rooms)) uploaded += Object.keys(room.sessions).length;
        await machine.markRequestAsSent(request.id, request.type, '{"etag":"1","count":0}');
      }
      const t = stop();
      return { ...t, cpuMs: t.cpuMs * scale, wallMs: t.wallMs * scale, uploaded: uploaded * scale };
    },
  };
}

// ---- restore ----

/**
 * `workers`: the records decrypt on worker threads while the keys decrypted before import, as the
 * Node client restores (`RestoreOptions.decryptor`, from the client's Node platform); their CPU
 * time counts (the process's, all threads).
 */
async function keyroomRestore(
  body: unknown,
  privateKey: Uint8Array,
  sqlite: boolean,
  workers = false,
): Promise<SelfTimed & { imported: number }> {
  const deviceId = "RESTORE";
  const store = sqlite ? await sqliteStore(deviceId) : await MemoryCryptoStore.open({ userId: ME, deviceId });
  const machine = await OlmMachine.open({ userId: ME, deviceId, store });
  const decryptor = workers ? nodeBackupDecryptor() : undefined;
  const stop = clock();
  const result = await machine.backup.restore(body, {
    version: VERSION,
    privateKey,
    ...(decryptor !== undefined ? { decryptor } : {}),
  });
  const t = stop();
  await machine.close();
  await store.close();
  return { ...t, imported: result.imported };
}

async function wasmRestore(
  body: {
    rooms: Record<string, { sessions: Record<string, KeyBackupData> }>;
  },
  privateKeyBase64: string,
): Promise<SelfTimed & { imported: number }> {
  const machine = await Wasm.OlmMachine.initialize(new Wasm.UserId(ME), new Wasm.DeviceId("RESTORE"));
  const stop = clock();
  const key = Wasm.BackupDecryptionKey.fromBase64(privateKeyBase64);
  const keys = new Map<Wasm.RoomId, Map<string, unknown>>();
  for (const [roomId, room] of Object.entries(body.rooms)) {
    const sessions = new Map<string, unknown>();
    for (const [sessionId, data] of Object.entries(room.sessions)) {
      const { ephemeral, mac, ciphertext } = data.session_data;
      sessions.set(sessionId, JSON.parse(key.decryptV1(ephemeral, mac, ciphertext)));
    }
    keys.set(new Wasm.RoomId(roomId), sessions);
  }
  const result = await machine.importBackedUpRoomKeys(keys, () => undefined, VERSION);
  const t = stop();
  const imported = result.importedCount;
  key.free();
  machine.close();
  return { ...t, imported };
}

function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
}

function report(name: string, sides: Record<string, SideResult>, main: string, peer: string) {
  const k = sides[main] as SideResult;
  const w = sides[peer] as SideResult;
  const ratio = ratios(k.cpuRates, w.cpuRates);
  for (const [label, r] of Object.entries(sides)) {
    console.log(`${name} ${label.padEnd(16)} ${(median(r.cpuRates) * KEYS).toFixed(0)} keys/s (CPU)`);
  }
  console.log(
    `${name} ratio            ${formatRatio(ratio)} (target ${TARGET}x) ${ratio.median >= TARGET ? "met" : "NOT met"}`,
  );
  return ratio;
}

async function main(): Promise<void> {
  await Wasm.initAsync();
  console.log(`== key backup: back up and restore ${KEYS} room keys ==`);
  if (WASM_BACKUP_KEYS < KEYS) {
    console.log(`(crypto-wasm backs up ${WASM_BACKUP_KEYS} keys, its time scaled linearly to ${KEYS})`);
  }
  const allKeys = makeKeys(RESTORE_WALL_KEYS);
  const keys = allKeys.slice(0, KEYS);
  const backupKey = PkDecryption.create();
  const privateKey = backupKey.exportPrivateKey();
  const body = backupBody(keys, backupKey.publicKey);
  const options = { reps: 5, rounds: 1, batch: 1 };

  // Both sides must upload every key, and restore every key, or they did not do the same work.
  const backupers = {
    keyroom: await keyroomBackuper(keys, backupKey.publicKey, privateKey),
    wasm: await wasmBackuper(keys, backupKey.publicKey),
  };
  for (const [name, b] of Object.entries(backupers)) {
    const { uploaded } = await b.run();
    if (uploaded !== KEYS) throw new Error(`${name} backed up ${uploaded} keys, expected ${KEYS}`);
  }
  /** Every timed run must have done the whole work, or the rates mean nothing. */
  const all = async <T extends { uploaded?: number; imported?: number }>(name: string, r: Promise<T>) => {
    const done = await r;
    const n = done.uploaded ?? done.imported;
    if (n !== KEYS) throw new Error(`${name}: ${n} keys in a timed run, expected ${KEYS}`);
    return done;
  };
  const backup = await alternate(
    [
      { name: "keyroom-sqlite", run: () => all("keyroom backup", backupers.keyroom.run()) },
      { name: "crypto-wasm", run: () => all("crypto-wasm backup", backupers.wasm.run()) },
    ],
    options,
  );
  const backupRatio = report("backup ", backup, "keyroom-sqlite", "crypto-wasm");

  const privateKeyBase64 = encodeBase64(privateKey);
  for (const [name, run] of [
    ["keyroom", () => keyroomRestore(body, privateKey, true)],
    ["crypto-wasm", () => wasmRestore(body, privateKeyBase64)],
  ] as const) {
    const { imported } = await run();
    if (imported !== KEYS) throw new Error(`${name} restored ${imported} keys, expected ${KEYS}`);
  }
  const restore = await alternate(
    [
      { name: "keyroom-sqlite", run: () => all("keyroom restore", keyroomRestore(body, privateKey, true)) },
      { name: "crypto-wasm", run: () => all("crypto-wasm restore", wasmRestore(body, privateKeyBase64)) },
      { name: "keyroom-memory", run: () => all("keyroom restore", keyroomRestore(body, privateKey, false)) },
      {
        name: "keyroom-sqlite-workers",
        run: () => all("keyroom restore", keyroomRestore(body, privateKey, true, true)),
      },
    ],
    options,
  );
  const restoreRatio = report("restore", restore, "keyroom-sqlite", "crypto-wasm");
  // One operation is the whole restore: its wall time is the inverse of the rate.
  const restoreWallMs = 1000 / median((restore["keyroom-sqlite"] as SideResult).wallRates);
  console.log(`restore of ${KEYS} keys on SQLite: ${(restoreWallMs / 1000).toFixed(1)} s wall (median)`);
  const workersRatio = ratios(
    (restore["keyroom-sqlite-workers"] as SideResult).cpuRates,
    (restore["crypto-wasm"] as SideResult).cpuRates,
  );
  console.log(`restore ratio with worker threads (CPU of all threads) ${formatRatio(workersRatio)}`);
  // The target's own size, once: the comparison's keys plus the rest, one body, a fresh store, as
  // the Node client restores it (the records decrypted on worker threads).
  const bigBody = backupBody(allKeys, backupKey.publicKey);
  const big = await keyroomRestore(bigBody, privateKey, true, true);
  if (big.imported !== RESTORE_WALL_KEYS)
    throw new Error(`keyroom restored ${big.imported} keys, expected ${RESTORE_WALL_KEYS}`);
  console.log(
    `restore of ${RESTORE_WALL_KEYS} keys on SQLite (worker threads, as the Node client), once: ` +
      `${(big.wallMs / 1000).toFixed(1)} s wall, ${(big.cpuMs / 1000).toFixed(1)} s CPU` +
      (QUICK
        ? ""
        : ` (target under ${RESTORE_TARGET_MS / 1000} s) ${big.wallMs < RESTORE_TARGET_MS ? "met" : "NOT met"}`),
  );
  console.log(
    JSON.stringify({
      section: "backup",
      keys: KEYS,
      cryptoWasmBackupKeys: WASM_BACKUP_KEYS,
      machine: machineInfo(),
      backup: { sides: backup, ratio: backupRatio },
      restore: { sides: restore, ratio: restoreRatio, workersRatio, keyroomSqliteWallMs: restoreWallMs },
      restoreOnce: { keys: RESTORE_WALL_KEYS, workers: true, wallMs: big.wallMs, cpuMs: big.cpuMs },
    }),
  );
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
