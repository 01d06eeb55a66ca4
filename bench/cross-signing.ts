// Cross-signing section (issue 11): process one `/keys/query` answer for 1 000 users, each with
// master / self-signing / user-signing keys and two devices signed by their self-signing key
// (every signature checked, trust derived for every device), Keyroom's engine side by side with
// matrix-sdk-crypto-wasm, by the alternating method of bench/README.md. Self-contained:
//   node --conditions=source --import tsx bench/cross-signing.ts [--quick]
// Target: at least 2x. One operation = the whole answer processed into a fresh machine (making the
// machine is not timed); the answer arrives as JSON text on both sides.
import * as Wasm from "@matrix-org/matrix-sdk-crypto-wasm";
import { signJson } from "../src/crypto/json/index.ts";
import { Account } from "../src/crypto/olm/index.ts";
import { SigningKey } from "../src/e2ee/cross-signing/private-keys.ts";
import { OlmMachine } from "../src/e2ee/index.ts";
import { MemoryCryptoStore } from "../src/store/index.ts";
import { alternate, cpuMs, formatRatio, machineInfo, ratios, type SelfTimed } from "./stats.ts";

const QUICK = process.argv.includes("--quick") || process.env.KEYROOM_BENCH_QUICK === "1";
const USERS = QUICK ? 100 : 1000;
const ME = "@bench:localhost";
const TARGET = 2;

interface Answer {
  users: string[];
  /** Per user: the four maps' entries. */
  entries: Map<string, { devices: Record<string, unknown>; master: unknown; ssk: unknown; usk: unknown }>;
}

function makeAnswer(count: number): Answer {
  const users: string[] = [];
  const entries: Answer["entries"] = new Map();
  for (let i = 0; i < count; i++) {
    const userId = `@user${i}:localhost`;
    users.push(userId);
    const master = SigningKey.generate();
    const ssk = SigningKey.generate();
    const usk = SigningKey.generate();
    const devices: Record<string, unknown> = {};
    for (const deviceId of [`D${i}A`, `D${i}B`]) {
      const account = Account.create();
      const keys = account.identityKeys;
      const unsigned = {
        user_id: userId,
        device_id: deviceId,
        algorithms: ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        keys: { [`curve25519:${deviceId}`]: keys.curve25519, [`ed25519:${deviceId}`]: keys.ed25519 },
      };
      const selfSigned = signJson(unsigned, userId, `ed25519:${deviceId}`, (b) => account.sign(b));
      devices[deviceId] = ssk.signObject(userId, selfSigned);
    }
    entries.set(userId, {
      devices,
      master: master.publicObject(userId, "master"),
      ssk: master.signObject(userId, ssk.publicObject(userId, "self_signing")),
      usk: master.signObject(userId, usk.publicObject(userId, "user_signing")),
    });
  }
  return { users, entries };
}

/** The answer to a query for `users`, as JSON text (users we made nothing for get no devices). */
function answerText(answer: Answer, users: readonly string[]): string {
  const device_keys: Record<string, unknown> = {};
  const master_keys: Record<string, unknown> = {};
  const self_signing_keys: Record<string, unknown> = {};
  for (const u of users) {
    const e = answer.entries.get(u);
    device_keys[u] = e?.devices ?? {};
    if (e === undefined) continue;
    master_keys[u] = e.master;
    self_signing_keys[u] = e.ssk;
  }
  return JSON.stringify({ device_keys, failures: {}, master_keys, self_signing_keys, user_signing_keys: {} });
}

function timed(): { stop(): SelfTimed; pause(): void; resume(): void } {
  let cpu = 0;
  let wall = 0;
  let c0 = cpuMs();
  let t0 = performance.now();
  return {
    pause() {
      cpu += cpuMs() - c0;
      wall += performance.now() - t0;
    },
    resume() {
      c0 = cpuMs();
      t0 = performance.now();
    },
    stop() {
      this.pause();
      return { selfTimed: true, cpuMs: cpu, wallMs: wall };
    },
  };
}

async function keyroomOnce(answer: Answer): Promise<SelfTimed & { crossSigned: number }> {
  const store = await MemoryCryptoStore.open({ userId: ME, deviceId: "BENCH" });
  const machine = await OlmMachine.open({ userId: ME, deviceId: "BENCH", store });
  const texts = new Map<string, string>();
  for (const r of await machine.outgoingRequests()) {
    if (r.type === "keys_query")
      await machine.markRequestAsSent(r, JSON.parse(answerText(answer, Object.keys(r.body.device_keys))));
  }
  const clock = timed();
  await machine.updateTrackedUsers(answer.users);
  const requests = await machine.outgoingRequests();
  clock.pause();
  for (const r of requests)
    if (r.type === "keys_query") texts.set(r.id, answerText(answer, Object.keys(r.body.device_keys)));
  clock.resume();
  for (const r of requests) {
    const text = texts.get(r.id);
    if (text !== undefined) await machine.markRequestAsSent(r, JSON.parse(text));
  }
  let crossSigned = 0;
  for (const u of answer.users)
    for (const d of await machine.getUserDevices(u)) if (d.crossSigned) crossSigned++;
  const t = clock.stop();
  await machine.close();
  await store.close();
  return { ...t, crossSigned };
}

async function wasmOnce(answer: Answer): Promise<SelfTimed & { crossSigned: number }> {
  const machine = await Wasm.OlmMachine.initialize(new Wasm.UserId(ME), new Wasm.DeviceId("BENCH"));
  for (const r of (await machine.outgoingRequests()) as {
    id: string;
    type: Wasm.RequestType;
    body: string;
  }[]) {
    if (r.type === Wasm.RequestType.KeysQuery) {
      const users = Object.keys((JSON.parse(r.body) as { device_keys: Record<string, unknown> }).device_keys);
      await machine.markRequestAsSent(r.id, r.type, answerText(answer, users));
    }
  }
  const ids = answer.users.map((u) => new Wasm.UserId(u));
  const clock = timed();
  await machine.updateTrackedUsers(ids);
  const requests = (await machine.outgoingRequests()) as {
    id: string;
    type: Wasm.RequestType;
    body: string;
  }[];
  clock.pause();
  const texts = new Map<string, string>();
  for (const r of requests) {
    if (r.type !== Wasm.RequestType.KeysQuery) continue;
    const users = Object.keys((JSON.parse(r.body) as { device_keys: Record<string, unknown> }).device_keys);
    texts.set(r.id, answerText(answer, users));
  }
  clock.resume();
  for (const r of requests) {
    const text = texts.get(r.id);
    if (text !== undefined) await machine.markRequestAsSent(r.id, r.type, text);
  }
  let crossSigned = 0;
  for (const id of answer.users.map((u) => new Wasm.UserId(u))) {
    const devices = await machine.getUserDevices(id);
    for (const d of devices.devices()) {
      if (d.isCrossSignedByOwner()) crossSigned++;
      d.free();
    }
    devices.free();
  }
  const t = clock.stop();
  machine.close();
  return { ...t, crossSigned };
}

async function main(): Promise<void> {
  await Wasm.initAsync();
  console.log(
    `== cross-signing: one /keys/query answer for ${USERS} users (3 keys, 2 signed devices each) ==`,
  );
  const answer = makeAnswer(USERS);
  // Both must see every device cross-signed, or they did not do the same work.
  for (const [name, once] of [
    ["keyroom", keyroomOnce],
    ["crypto-wasm", wasmOnce],
  ] as const) {
    const { crossSigned } = await once(answer);
    if (crossSigned !== USERS * 2)
      throw new Error(`${name} found ${crossSigned} cross-signed devices, expected ${USERS * 2}`);
  }
  const sides = [
    { name: "keyroom", run: () => keyroomOnce(answer) },
    { name: "crypto-wasm", run: () => wasmOnce(answer) },
  ];
  const result = await alternate(sides, { reps: 5, rounds: QUICK ? 1 : 2, batch: 1 });
  const k = result.keyroom;
  const w = result["crypto-wasm"];
  if (k === undefined || w === undefined) throw new Error("missing results");
  const ratio = ratios(k.cpuRates, w.cpuRates);
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  console.log(`keyroom      ${(median(k.cpuRates) * USERS).toFixed(0)} users/s (CPU)`);
  console.log(`crypto-wasm  ${(median(w.cpuRates) * USERS).toFixed(0)} users/s (CPU)`);
  console.log(
    `ratio        ${formatRatio(ratio)} (target ${TARGET}x) ${ratio.median >= TARGET ? "met" : "NOT met"}`,
  );
  console.log(
    JSON.stringify({
      section: "cross-signing",
      users: USERS,
      machine: machineInfo(),
      keyroom: k,
      wasm: w,
      ratio,
    }),
  );
}

await main();
