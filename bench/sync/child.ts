// One side of the initial-sync benchmark in a fresh process (so its RSS is its own):
//   node --conditions=source --import tsx bench/sync/child.ts <keyroom|js-sdk> <baseUrl> <setup.json>
// Logs in as the reader (a new device), imports the account's room keys (untimed), then runs one
// initial sync with lazy-loading off and a timeline limit of EVENTS_PER_ROOM. Timed: from the moment
// the initial /sync response arrives (its fetch resolves) until every room is known and every
// encrypted event has been decrypted (counted by its body; the child fails otherwise). Prints one
// JSON line.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { cpuMs } from "../stats.ts";
import { EVENTS_PER_ROOM, EXPORT_PASSPHRASE, PASSWORD, READER } from "./account.ts";

export interface ChildSetup {
  rooms: number;
  encrypted: number;
  exportFile: string;
  secretPrefix: string;
}

export interface ChildResult {
  side: string;
  rooms: number;
  decrypted: number;
  /** CPU time of this process from the response to done (user + system, all threads). */
  cpuMs: number;
  wallMs: number;
  /** RSS just before the sync request, and the process's peak RSS at the end, in bytes. */
  rssBefore: number;
  peakRss: number;
}

/** Undone after this long: a side that never decrypts everything fails instead of hanging. */
const GIVE_UP_MS = 15 * 60_000;

const [side, baseUrl, setupPath] = process.argv.slice(2) as [string, string, string];
const setup = JSON.parse(await readFile(setupPath, "utf8")) as ChildSetup;
const filter = { room: { timeline: { limit: EVENTS_PER_ROOM } } };

/** Progress of the timed window, shared by both sides. */
const mark = { cpu: Number.NaN, wall: Number.NaN, decrypted: 0, endCpu: 0, endWall: 0, rssBefore: 0 };
/** Closes the window (before logging out, which is not timed). */
function closeWindow(): void {
  mark.endCpu = cpuMs();
  mark.endWall = performance.now();
}
let wake: () => void = () => {};
const isSecret = (body: unknown) => typeof body === "string" && body.startsWith(setup.secretPrefix);
const countDecrypted = (body: unknown): void => {
  if (!isSecret(body)) return;
  mark.decrypted++;
  wake();
};

/** undici's code when the server closed a kept-alive socket as the request went out on it. */
const isStaleSocket = (e: unknown): boolean =>
  (e as { cause?: { code?: unknown } } | undefined)?.cause?.code === "UND_ERR_SOCKET";

/**
 * fetch that marks the arrival of the first token-less /sync response. It also sends a request
 * again once when the server closed its kept-alive socket under it: the devserver's event loop is
 * busy for seconds building a large response, so its idle-socket timer and the client's next request
 * race (undici retries only GETs itself). Both sides get the same fetch.
 */
const timedFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
  const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url);
  const res = await fetch(input, init).catch((e: unknown) => {
    if (!isStaleSocket(e)) throw e;
    return fetch(input, init);
  });
  if (url.pathname.endsWith("/sync") && !url.searchParams.has("since") && Number.isNaN(mark.cpu)) {
    mark.cpu = cpuMs();
    mark.wall = performance.now();
  }
  return res;
};

function until(done: () => boolean, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${side}: gave up waiting for ${what}`)), GIVE_UP_MS);
    wake = () => {
      if (!done()) return;
      clearTimeout(timer);
      wake = () => {};
      resolve();
    };
    wake();
  });
}

async function runKeyroom(): Promise<number> {
  const { MatrixClient } = await import("../../src/index.ts");
  const dir = await mkdtemp(join(tmpdir(), "keyroom-bench-sync-"));
  const client = new MatrixClient({
    homeserverUrl: baseUrl,
    fetch: timedFetch,
    syncFilter: filter,
    encryption: { store: { directory: dir } },
  });
  try {
    await client.login({ user: READER, password: PASSWORD });
    await client.importRoomKeys(setup.exportFile, EXPORT_PASSPHRASE);
    client.on("room.event", (_room, ev) => {
      if (ev.encryption?.decrypted === true) countDecrypted(ev.content.body);
    });
    client.on("room.decrypted", (_room, ev) => countDecrypted(ev.content.body));
    mark.rssBefore = process.memoryUsage().rss;
    await client.syncOnce({ timeoutMs: 0 });
    await until(() => mark.decrypted >= setup.encrypted, "decryption");
    closeWindow();
    const rooms = client.getRooms("join").length;
    await client.logout();
    return rooms;
  } finally {
    await client.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function runJsSdk(): Promise<number> {
  // Promise polyfill and a silenced logger (not the test harness's timer hook: it walks a stack per
  // setTimeout, which would be timed against the SDK).
  const { silentLogger } = await import("../../test/support/peers/jssdk-quiet.ts");
  const sdk = await import("matrix-js-sdk");
  const anon = sdk.createClient({ baseUrl, logger: silentLogger });
  const login = await anon.loginRequest({
    type: "m.login.password",
    identifier: { type: "m.id.user", user: READER },
    password: PASSWORD,
  });
  const client = sdk.createClient({
    baseUrl,
    userId: login.user_id,
    accessToken: login.access_token,
    deviceId: login.device_id,
    logger: silentLogger,
    fetchFn: timedFetch,
  });
  await client.initRustCrypto({ useIndexedDB: false });
  const crypto = client.getCrypto();
  if (crypto === undefined) throw new Error("js-sdk: no crypto");
  const { OlmMachine } = await import("@matrix-org/matrix-sdk-crypto-wasm");
  await crypto.importRoomKeysAsJson(OlmMachine.decryptExportedRoomKeys(setup.exportFile, EXPORT_PASSPHRASE));
  let prepared = false;
  client.on(sdk.MatrixEventEvent.Decrypted, (ev, err) => {
    if (err === undefined && !ev.isDecryptionFailure()) countDecrypted(ev.getContent().body);
  });
  client.on(sdk.ClientEvent.Sync, (state) => {
    if (state === sdk.SyncState.Prepared) {
      prepared = true;
      wake();
    }
  });
  mark.rssBefore = process.memoryUsage().rss;
  await client.startClient({ initialSyncLimit: EVENTS_PER_ROOM, lazyLoadMembers: false });
  await until(() => prepared && mark.decrypted >= setup.encrypted, "the first sync and decryption");
  closeWindow();
  const rooms = client.getRooms().length;
  client.stopClient();
  await client.logout(true);
  return rooms;
}

const rooms = side === "keyroom" ? await runKeyroom() : await runJsSdk();
const result: ChildResult = {
  side,
  rooms,
  decrypted: mark.decrypted,
  cpuMs: mark.endCpu - mark.cpu,
  wallMs: mark.endWall - mark.wall,
  rssBefore: mark.rssBefore,
  peakRss: process.resourceUsage().maxRSS * 1024,
};
console.log(JSON.stringify(result));
process.exit(0);
