// Runs in Chromium (bench/browser/run.ts serves it): Megolm decrypt, Keyroom (noble back end, as
// every browser bundle gets it) beside libolm's WASM build in the same page, in alternating batches;
// then opening a passphrase-protected IndexedDB crypto store, with the longest main-thread task seen
// meanwhile. Posts its figures to `window.benchResult`.
import { InboundGroupSession, OutboundGroupSession } from "keyroom/crypto";
import { IndexedDbCryptoStore } from "keyroom/store";

const MESSAGE_200 = "x".repeat(200);

interface LibolmInbound {
  create(key: string): void;
  decrypt(message: string): { plaintext: string };
  free(): void;
}
interface LibolmOutbound {
  create(): void;
  session_key(): string;
  encrypt(text: string): string;
}
interface Libolm {
  InboundGroupSession: new () => LibolmInbound;
  OutboundGroupSession: new () => LibolmOutbound;
}

type Op = () => unknown;

/** Keyroom and libolm Megolm decrypt over the same 1024 messages, a new session every 1024. */
function megolmOps(olm: Libolm): { keyroom: Op; libolm: Op } {
  const out = new olm.OutboundGroupSession();
  out.create();
  const key = out.session_key();
  const libolmMessages = Array.from({ length: 1024 }, () => out.encrypt(MESSAGE_200));
  let li = 0;
  let lin = new olm.InboundGroupSession();
  lin.create(key);

  const kout = OutboundGroupSession.create();
  const kkey = kout.sessionKey();
  const keyroomMessages = Array.from({ length: 1024 }, () => kout.encrypt(MESSAGE_200));
  let ki = 0;
  let kin = InboundGroupSession.fromSessionKey(kkey);
  return {
    keyroom: () => {
      if ((ki & 1023) === 0) kin = InboundGroupSession.fromSessionKey(kkey);
      return kin.decrypt(keyroomMessages[ki++ & 1023] as string);
    },
    libolm: () => {
      if ((li & 1023) === 0) {
        lin.free();
        lin = new olm.InboundGroupSession();
        lin.create(key);
      }
      return lin.decrypt(libolmMessages[li++ & 1023] as string);
    },
  };
}

/** Ops per second of each, over alternating batches (the order flips every round). */
function alternate(ops: Record<string, Op>, rounds: number, batch: number): Record<string, number> {
  const names = Object.keys(ops);
  const time: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  for (const n of names) for (let i = 0; i < batch; i++) ops[n]?.(); // warm-up, not counted
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? names : [...names].reverse();
    for (const n of order) {
      const op = ops[n] as Op;
      const t0 = performance.now();
      for (let i = 0; i < batch; i++) op();
      time[n] = (time[n] ?? 0) + performance.now() - t0;
    }
  }
  return Object.fromEntries(names.map((n) => [n, (rounds * batch * 1000) / (time[n] ?? 1)]));
}

/** Opening a passphrase store (210 000 PBKDF2 iterations), and the longest main-thread task meanwhile. */
async function storeOpen(): Promise<{ createMs: number; openMs: number; longestTaskMs: number }> {
  const name = `bench-${Date.now()}`;
  const ids = { userId: "@bench:localhost", deviceId: "BENCH", name, passphrase: "a long passphrase" };
  // Out of the task that ran the Megolm batches, so its length is not counted here.
  await new Promise((resolve) => setTimeout(resolve, 200));
  let longest = 0;
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) longest = Math.max(longest, e.duration);
  });
  observer.observe({ type: "longtask", buffered: false });
  const t0 = performance.now();
  const created = await IndexedDbCryptoStore.open(ids);
  const createMs = performance.now() - t0;
  await created.close();
  const t1 = performance.now();
  const opened = await IndexedDbCryptoStore.open(ids);
  const openMs = performance.now() - t1;
  await opened.close();
  await new Promise((resolve) => setTimeout(resolve, 100)); // let the observer report
  observer.disconnect();
  indexedDB.deleteDatabase(name);
  return { createMs, openMs, longestTaskMs: longest };
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const rounds = Number(params.get("rounds") ?? 10);
  const batch = Number(params.get("batch") ?? 500);
  const reps = Number(params.get("reps") ?? 5);
  const url = "/olm/olm.web.mjs"; // served as is: it finds olm.wasm beside itself
  const mod = (await import(url)) as { default: { initAsync(): Promise<Libolm> } };
  const olm = await mod.default.initAsync();
  const ops = megolmOps(olm);
  const megolm = Array.from({ length: reps }, () => alternate(ops, rounds, batch));
  const store = await storeOpen();
  (globalThis as { benchResult?: unknown }).benchResult = { megolm, store };
}

main().catch((e: unknown) => {
  (globalThis as { benchResult?: unknown }).benchResult = { error: String(e) };
});
