// Operations per second of every primitive on both back ends, side by side, with inputs of the
// sizes Olm and Megolm use per message. Run:
//   node --conditions=source --import tsx bench/primitives.ts
// (KEYROOM_BENCH_MS sets the time budget per measurement; default 1500 ms.)

import type { CryptoBackend } from "../src/crypto/primitives/backend.ts";
import { backend as noble } from "../src/crypto/primitives/backend-noble.ts";
import { backend as node } from "../src/crypto/primitives/backend-node.ts";
import { base64Implementations } from "../src/crypto/primitives/base64.ts";
import { formatRate, measure } from "./harness.ts";

const budgetMs = Number(process.env.KEYROOM_BENCH_MS ?? 1500);

function bytes(n: number, seed: number): Uint8Array {
  return new Uint8Array(n).map((_, i) => (i * 131 + seed * 17) & 0xff);
}

const key = bytes(32, 1);
const iv = bytes(16, 2);
const msg32 = bytes(32, 3);
const msg200 = bytes(200, 4);
const ratchet128 = bytes(128, 5);
const info = new TextEncoder().encode("MEGOLM_KEYS");
const salt = new Uint8Array(0);

interface Row {
  name: string;
  run: (b: CryptoBackend) => () => unknown;
}

const rows: Row[] = [
  { name: "randomBytes(32)", run: (b) => () => b.randomBytes(32) },
  { name: "sha256 32 B", run: (b) => () => b.sha256(msg32) },
  { name: "sha256 200 B", run: (b) => () => b.sha256(msg200) },
  { name: "hmacSha256 32 B", run: (b) => () => b.hmacSha256(key, msg32) },
  { name: "hmacSha256 200 B", run: (b) => () => b.hmacSha256(key, msg200) },
  { name: "hkdfSha256 128 B -> 80 B", run: (b) => () => b.hkdfSha256(ratchet128, salt, info, 80) },
  { name: "pbkdf2Sha512 1000 iter", run: (b) => () => b.pbkdf2Sha512(key, msg32, 1000, 32) },
  { name: "aes256CbcEncrypt 200 B", run: (b) => () => b.aes256CbcEncrypt(key, iv, msg200) },
  {
    name: "aes256CbcDecrypt 208 B",
    run: (b) => {
      const ct = b.aes256CbcEncrypt(key, iv, msg200);
      return () => b.aes256CbcDecrypt(key, iv, ct);
    },
  },
  { name: "aes256Ctr 200 B", run: (b) => () => b.aes256Ctr(key, iv, msg200) },
  { name: "x25519PublicKey", run: (b) => () => b.x25519PublicKey(key) },
  {
    name: "x25519",
    run: (b) => {
      const peer = b.x25519PublicKey(bytes(32, 9));
      return () => b.x25519(key, peer);
    },
  },
  { name: "ed25519PublicKey", run: (b) => () => b.ed25519PublicKey(key) },
  {
    name: "ed25519Sign 200 B",
    run: (b) => {
      const secret = new Uint8Array(64);
      secret.set(key, 0);
      secret.set(b.ed25519PublicKey(key), 32);
      return () => b.ed25519Sign(secret, msg200);
    },
  },
  {
    name: "ed25519Verify 200 B",
    run: (b) => {
      const secret = new Uint8Array(64);
      secret.set(key, 0);
      const pub = b.ed25519PublicKey(key);
      secret.set(pub, 32);
      const sig = b.ed25519Sign(secret, msg200);
      return () => b.ed25519Verify(pub, msg200, sig);
    },
  },
];

function batchFor(name: string): number {
  if (name.startsWith("pbkdf2")) return 2;
  if (name.startsWith("x25519") || name.startsWith("ed25519")) return 10;
  return 200;
}

const table: Record<string, Record<string, string>> = {};
for (const row of rows) {
  const rates = [node, noble].map(
    (b) => measure(row.name, row.run(b), { budgetMs, batch: batchFor(row.name) }).opsPerSec,
  );
  table[row.name] = {
    node: formatRate(rates[0]!),
    noble: formatRate(rates[1]!),
    "node / noble": `${(rates[0]! / rates[1]!).toFixed(2)}x`,
  };
}

// Base64 is not part of the back ends; both codecs are shown (decoding is portable everywhere).
const { native, portable } = base64Implementations;
const b64 = portable.encodeBase64(msg200);
for (const [name, fnNative, fnPortable] of [
  ["base64 encode 200 B", () => native?.encodeBase64(msg200), () => portable.encodeBase64(msg200)],
  ["base64 decode 200 B", () => native?.decodeBase64(b64), () => portable.decodeBase64(b64)],
] as const) {
  const a = measure(name, fnNative, { budgetMs, batch: 500 }).opsPerSec;
  const p = measure(name, fnPortable, { budgetMs, batch: 500 }).opsPerSec;
  table[name] = { node: formatRate(a), noble: formatRate(p), "node / noble": `${(a / p).toFixed(2)}x` };
}

console.log(
  `Primitives, ops/s (best half of batches, ${budgetMs} ms per cell; base64: Node codec vs portable)`,
);
console.table(table);
