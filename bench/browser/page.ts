// Runs in Chromium (bench/browser/run.ts serves it), each comparison in alternating batches in one
// page: Megolm decrypt, Keyroom (noble back end, as every browser bundle gets it: `decryptAsync`
// with Web Crypto, as the E2EE machine decrypts in a browser, and `decrypt` in JavaScript only)
// beside libolm's WASM build; full room-event decrypt, Keyroom's OlmMachine beside
// matrix-sdk-crypto-wasm's; then opening a passphrase-protected IndexedDB crypto store, with the
// longest main-thread task seen meanwhile. Posts its figures to `window.benchResult`.
import type * as Wasm from "@matrix-org/matrix-sdk-crypto-wasm";
import { InboundGroupSession, OutboundGroupSession } from "keyroom/crypto";
import { type EncryptedRoomEvent, OlmMachine } from "keyroom/e2ee";
import { IndexedDbCryptoStore, MemoryCryptoStore } from "keyroom/store";

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
function megolmOps(olm: Libolm): { keyroom: Op; keyroomSync: Op; libolm: Op } {
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
  // Each Keyroom form has its own session and position, so both decrypt in order.
  const keyroom = (decrypt: (s: InboundGroupSession, m: string) => unknown): Op => {
    let i = 0;
    let session = InboundGroupSession.fromSessionKey(kkey);
    return () => {
      if ((i & 1023) === 0) session = InboundGroupSession.fromSessionKey(kkey);
      return decrypt(session, keyroomMessages[i++ & 1023] as string);
    };
  };
  return {
    // One message at a time, each awaited, as the E2EE machine decrypts a timeline.
    keyroom: keyroom((s, m) => s.decryptAsync(m)),
    keyroomSync: keyroom((s, m) => s.decrypt(m)),
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

/** What run.ts serves at /room-events.json: room keys to import and events that use them. */
interface RoomEventFixture {
  readonly roomId: string;
  readonly entries: readonly unknown[];
  readonly events: readonly string[];
}

/**
 * Full room-event decrypt, Keyroom's OlmMachine (memory store, Web Crypto in the page) beside
 * matrix-sdk-crypto-wasm's (in memory), as each client drives it: the event's JSON text in, the
 * body out. Both imported the same room keys, and decrypt the same events in the same order, each
 * event once (new message indexes all along, as a client reading a live timeline).
 */
async function roomEventOps(
  wasm: typeof Wasm,
  fixture: RoomEventFixture,
): Promise<{ keyroom: Op; cryptoWasm: Op }> {
  const ids = { userId: "@reader:bench.test", deviceId: "READER" };
  const machine = await OlmMachine.open({ ...ids, store: await MemoryCryptoStore.open(ids) });
  await machine.importRoomKeys(fixture.entries);
  await wasm.initAsync();
  const wasmMachine = await wasm.OlmMachine.initialize(
    new wasm.UserId(ids.userId),
    new wasm.DeviceId(ids.deviceId),
  );
  await wasmMachine.importExportedRoomKeys(JSON.stringify(fixture.entries), () => {});
  const room = new wasm.RoomId(fixture.roomId);
  const settings = new wasm.DecryptionSettings(wasm.TrustRequirement.Untrusted);
  let ki = 0;
  let wi = 0;
  const next = (i: number): string => {
    const json = fixture.events[i];
    if (json === undefined) throw new Error("the room-event fixture ran out of events");
    return json;
  };
  return {
    keyroom: async () => {
      const event = JSON.parse(next(ki++)) as EncryptedRoomEvent;
      const decrypted = await machine.decryptRoomEvent(event, fixture.roomId);
      return decrypted.content.body;
    },
    cryptoWasm: async () => {
      const decrypted = await wasmMachine.decryptRoomEvent(next(wi++), room, settings);
      const clear = JSON.parse(decrypted.event) as { content: { body: unknown } };
      decrypted.free();
      return clear.content.body;
    },
  };
}

/** `batch` calls of `op`, one after the other (a promise is awaited before the next call). */
async function runBatch(op: Op, batch: number): Promise<void> {
  for (let i = 0; i < batch; i++) {
    const r = op();
    if (r instanceof Promise) await r;
  }
}

/** Ops per second of each, over alternating batches (the order rotates every round). */
async function alternate(
  ops: Record<string, Op>,
  rounds: number,
  batch: number,
): Promise<Record<string, number>> {
  const names = Object.keys(ops);
  const time: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  for (const n of names) await runBatch(ops[n] as Op, batch); // warm-up, not counted
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? names : [...names].reverse();
    for (const n of order) {
      const t0 = performance.now();
      await runBatch(ops[n] as Op, batch);
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
  const megolm: Record<string, number>[] = [];
  for (let i = 0; i < reps; i++) megolm.push(await alternate(ops, rounds, batch));
  const wasmUrl = "/crypto-wasm/index.mjs"; // served as is: it finds its .wasm beside itself
  const wasm = (await import(wasmUrl)) as typeof Wasm;
  const fixture = (await (await fetch("/room-events.json")).json()) as RoomEventFixture;
  const roomOps = await roomEventOps(wasm, fixture);
  const roomBatch = Number(params.get("roomBatch") ?? 100);
  const roomEvents: Record<string, number>[] = [];
  for (let i = 0; i < reps; i++) roomEvents.push(await alternate(roomOps, rounds, roomBatch));
  const store = await storeOpen();
  (globalThis as { benchResult?: unknown }).benchResult = { megolm, roomEvents, store };
}

main().catch((e: unknown) => {
  (globalThis as { benchResult?: unknown }).benchResult = { error: String(e) };
});
