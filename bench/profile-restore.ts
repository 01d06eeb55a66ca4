// Backup restore on Keyroom alone (the backup section's Keyroom side), with the CPU profiler over
// the measured restores only (set-up excluded); prints CPU ms per restore and the functions with the
// most self time:
//   node --conditions=source --import tsx bench/profile-restore.ts [keys] [sqlite|memory] [runs] [workers]
// `workers`: the records decrypt on worker threads, as the Node client restores them.
// With KEYROOM_PROFILE=off it only times (the profiler's own cost left out).
import { mkdtempSync, rmSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeBackupDecryptor } from "../src/client/platform/backup-decryptor-node.ts";
import { encryptKeyBackupData, type KeyBackupData } from "../src/crypto/backup/index.ts";
import { InboundGroupSession, OutboundGroupSession } from "../src/crypto/megolm/index.ts";
import { Account } from "../src/crypto/olm/index.ts";
import { PkDecryption, PkEncryption } from "../src/crypto/pk/index.ts";
import { OlmMachine } from "../src/e2ee/index.ts";
import { type CryptoStore, MemoryCryptoStore, SqliteCryptoStore } from "../src/store/index.ts";
import { cpuMs } from "./stats.ts";

const keys = Number(process.argv[2] ?? 10_000);
const sqlite = (process.argv[3] ?? "sqlite") === "sqlite";
const runs = Number(process.argv[4] ?? 3);
const decryptor = process.argv[5] === "workers" ? nodeBackupDecryptor() : undefined;
const profile = process.env.KEYROOM_PROFILE !== "off";
const ME = "@bench:localhost";
const dir = mkdtempSync(join(tmpdir(), "keyroom-restore-profile-"));

const backupKey = PkDecryption.create();
const encryption = new PkEncryption(backupKey.publicKey);
const sender = Account.create().identityKeys;
const rooms: Record<string, { sessions: Record<string, KeyBackupData> }> = {};
for (let i = 0; i < keys; i++) {
  const session = InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey());
  const room = `!room${i % 100}:localhost`;
  rooms[room] ??= { sessions: {} };
  rooms[room].sessions[session.sessionId] = encryptKeyBackupData(
    encryption,
    {
      algorithm: "m.megolm.v1.aes-sha2",
      sender_key: sender.curve25519,
      session_key: session.exportAtFirstKnownIndex(),
      sender_claimed_keys: { ed25519: sender.ed25519 },
      forwarding_curve25519_key_chain: [],
    },
    { firstMessageIndex: 0, forwardedCount: 0, isVerified: false },
  );
}
const body = { rooms };
const privateKey = backupKey.exportPrivateKey();

const session = new Session();
session.connect();
if (profile) {
  await session.post("Profiler.setSamplingInterval", { interval: 200 });
  await session.post("Profiler.enable");
}
const times: number[] = [];
const walls: number[] = [];
let n = 0;
for (let r = 0; r < runs; r++) {
  const store: CryptoStore = sqlite
    ? await SqliteCryptoStore.open({ directory: join(dir, `s${n++}`), userId: ME, deviceId: "R" })
    : await MemoryCryptoStore.open({ userId: ME, deviceId: "R" });
  const machine = await OlmMachine.open({ userId: ME, deviceId: "R", store });
  if (profile && r === runs - 1) await session.post("Profiler.start");
  const c0 = cpuMs();
  const t0 = performance.now();
  const result = await machine.backup.restore(body, {
    version: "1",
    privateKey,
    ...(decryptor ? { decryptor } : {}),
  });
  times.push(cpuMs() - c0);
  walls.push(performance.now() - t0);
  if (result.imported !== keys) throw new Error(`restored ${result.imported}`);
  if (profile && r === runs - 1) {
    const { profile: p } = await session.post("Profiler.stop");
    const perNode = new Map<number, number>();
    for (const [i, id] of (p.samples ?? []).entries()) {
      perNode.set(id, (perNode.get(id) ?? 0) + (p.timeDeltas?.[i] ?? 0));
    }
    const perFn = new Map<string, number>();
    for (const node of p.nodes) {
      const { functionName, url, lineNumber } = node.callFrame;
      const file = url === "" ? "(native)" : url.replace(/^.*\/(node_modules|src|bench)\//, "$1/");
      const key = `${file}:${functionName || "(anon)"}:${lineNumber}`;
      perFn.set(key, (perFn.get(key) ?? 0) + (perNode.get(node.id) ?? 0));
    }
    const top = [...perFn].sort((a, b) => b[1] - a[1]).slice(0, 45);
    for (const [k, us] of top) console.log(`${(us / keys).toFixed(2).padStart(7)} µs/key  ${k}`);
  }
  await machine.close();
  await store.close();
}
console.log(
  JSON.stringify({
    keys,
    sqlite,
    workers: decryptor !== undefined,
    cpuMs: times.map(Math.round),
    wallMs: walls.map(Math.round),
  }),
);
rmSync(dir, { recursive: true, force: true });
