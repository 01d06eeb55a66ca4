// The process the kill-loop tests SIGKILL at random moments: one Keyroom device with encryption on,
// its crypto store (SQLite) and client store (SQLite) in one directory, resumed at every start.
// It syncs continuously, decrypts what arrives and sends encrypted messages. Everything the parent
// checks goes to stdout, one JSON object per line (see `VictimLine`); stdout writes to a pipe are
// synchronous on Linux, so a line printed before the kill is never lost.
//
// Usage: victim.ts '<VictimConfig as JSON>'
import { once } from "node:events";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import type { FetchLike } from "../../src/client/http.ts";
import {
  type Logger,
  MatrixClient,
  type MatrixClientOptions,
  type RoomEvent,
  SqliteClientStore,
} from "../../src/index.ts";
import type { CryptoChanges, CryptoStore } from "../../src/store/index.ts";
import { SqliteCryptoStore } from "../../src/store/sqlite/sqlite-store.ts";

export interface VictimConfig {
  homeserverUrl: string;
  /** Holds `client.sqlite3` and the `crypto/` store directory. */
  directory: string;
  userId: string;
  password: string;
  roomId: string;
  /** "run": sync and send until killed; "final": catch up, read the room's whole history, exit 0. */
  mode: "run" | "final";
  /** Pause between two sends in "run" mode (the first goes right after the first sync). */
  sendIntervalMs: number;
  /** Distinguishes the bodies of this run's messages. */
  runTag: string;
  /**
   * Fault injection, to show the kill loop catches the bugs it exists for: "write-behind" commits
   * every crypto-store save `delayMs` after acknowledging it; "late-room-keys" commits everything at
   * once except the received room keys, which follow `delayMs` later (after the sync token).
   */
  fault?: {
    kind: FaultKind;
    delayMs: number;
    /**
     * "late-room-keys" only: SIGKILL itself as soon as a sync token is saved while received room
     * keys still wait for their late commit — the window this fault opens, hit on every run that
     * receives a key rather than when a random kill happens to land in it.
     */
    killWhilePending?: boolean;
  };
  /**
   * SIGKILL itself while handling its `nth` /sync response that carries something (to-device
   * messages or room events): the crash-during-sync window, hit on the victim's own clock (a kill
   * sent by the parent arrives after the pipe's and the parent's delays, often too late). The kill
   * comes `fraction` of the way into the expected handling time: `msPerItem` times the number of
   * events and to-device messages in that response.
   */
  killInSync?: { nth: number; fraction: number; msPerItem: number };
  /**
   * Create the key backup version when the server has none (default true). The partner of pair
   * mode does not: two processes of one device creating a version at once is not a crash case.
   */
  createBackup?: boolean;
}

export type FaultKind = "write-behind" | "late-room-keys";

/** What the victim reports, one per stdout line. */
export type VictimLine =
  | { t: "boot"; pid: number }
  | { t: "ready"; deviceId: string; ed25519: string; resumed: boolean }
  | { t: "synced" }
  /**
   * A /sync response arrived and is about to be handled (`ms`: the victim's clock); `toDevice` and
   * `events` count what it carries. Until the matching `sync-saved`, the victim is in the
   * crash-during-sync window the kill loop aims at.
   */
  | { t: "sync-got"; ms: number; toDevice: number; events: number }
  /** The client store saved that response's token (the crypto state it carried came before). */
  | { t: "sync-saved"; ms: number }
  /** The final run drained the server: `syncs` responses, the last one with no to-device message. */
  | { t: "drained"; syncs: number; toDevice: number }
  | { t: "dec"; eventId: string; sender: string; body: string; via: "sync" | "late" | "history" }
  | {
      t: "undec";
      eventId: string;
      code: string;
      via: "sync" | "history";
      /** The Megolm session the event needs, and who sent it (to say which key was lost). */
      sessionId?: string;
      senderKey?: string;
      /** Final run only: whether the victim's crypto store holds that session after everything. */
      stored?: boolean;
    }
  /** The key backup this run uses (`created`: this run made the version). */
  | { t: "backup"; version: string; created: boolean }
  /** A background restore from the backup finished (it may be killed before). */
  | { t: "restored"; imported: number; total: number }
  /**
   * Final run only, after uploading what was pending: the backup's version and counts, and every
   * session the store holds as `roomId|sessionId|firstKnownIndex` (each must be in the backup).
   */
  | { t: "backup-final"; version: string | null; backedUp: number; total: number; sessions: string[] }
  | { t: "sending"; body: string }
  | { t: "sent"; eventId: string; body: string }
  | { t: "error"; where: string; code: string; message: string }
  | { t: "done" };

const out = (line: VictimLine): void => void process.stdout.write(`${JSON.stringify(line)}\n`);

function errorLine(where: string, e: unknown): VictimLine {
  const code =
    typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : "UNKNOWN";
  // Library errors carry no secrets (the library's own rule); the message helps diagnose a failure.
  const message = e instanceof Error ? e.message : String(e);
  return { t: "error", where, code, message };
}

// Warnings and errors of the client go to stderr (the parent keeps a tail of it per run).
const stderrLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: (_obj, msg) => void process.stderr.write(`warn: ${msg ?? ""}\n`),
  error: (_obj, msg) => void process.stderr.write(`error: ${msg ?? ""}\n`),
};

function parseConfig(arg: string | undefined): VictimConfig {
  if (arg === undefined) throw new Error("usage: victim.ts '<config JSON>'");
  const c = JSON.parse(arg) as VictimConfig;
  for (const k of ["homeserverUrl", "directory", "userId", "password", "roomId", "runTag"] as const) {
    if (typeof c[k] !== "string") throw new Error(`config.${k} must be a string`);
  }
  if (c.mode !== "run" && c.mode !== "final") throw new Error("config.mode must be run or final");
  if (typeof c.sendIntervalMs !== "number" || c.sendIntervalMs <= 0) {
    throw new Error("config.sendIntervalMs must be a positive number");
  }
  if (
    c.fault !== undefined &&
    (!["write-behind", "late-room-keys"].includes(c.fault.kind) ||
      !(c.fault.delayMs >= 0) ||
      (c.fault.killWhilePending !== undefined && c.fault.kind !== "late-room-keys"))
  ) {
    throw new Error(
      "config.fault must be { kind: write-behind | late-room-keys, delayMs >= 0, killWhilePending? (late-room-keys) }",
    );
  }
  const k = c.killInSync;
  if (
    k !== undefined &&
    !(Number.isSafeInteger(k.nth) && k.nth >= 1 && k.fraction >= 0 && k.msPerItem >= 0)
  ) {
    throw new Error("config.killInSync must be { nth >= 1, fraction >= 0, msPerItem >= 0 }");
  }
  return c;
}

/** Saves the faulty store acknowledged and has not committed yet (see `killWhilePending`). */
let pendingSaves = 0;

/** `store` whose `saveChanges` commits (some) changes `ms` after acknowledging them, in order. */
function faulty(store: CryptoStore, kind: FaultKind, ms: number): CryptoStore {
  let chain = Promise.resolve();
  const later = (changes: CryptoChanges): void => {
    const due = Date.now() + ms;
    pendingSaves++;
    chain = chain
      .then(() => new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now()))))
      .then(() => store.saveChanges(changes))
      .catch((e: unknown) => out(errorLine("fault", e)))
      .finally(() => pendingSaves--);
  };
  return new Proxy(store, {
    get(target, prop) {
      if (prop === "saveChanges") {
        return async (changes: CryptoChanges): Promise<void> => {
          if (kind === "write-behind") return later(changes);
          const { inboundGroupSessions, ...rest } = changes;
          await target.saveChanges(rest);
          if (inboundGroupSessions !== undefined && inboundGroupSessions.length > 0)
            later({ inboundGroupSessions });
        };
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

/** The faulty variant: a plain login for the session, then our own (wrapped) crypto store. */
async function openFaulty(
  cfg: VictimConfig,
  store: SqliteClientStore,
  common: Omit<MatrixClientOptions, "homeserverUrl" | "store" | "encryption">,
  fault: { kind: FaultKind; delayMs: number },
): Promise<MatrixClient> {
  let session = await store.loadSession();
  if (session === undefined) {
    const plain = new MatrixClient({ ...common, homeserverUrl: cfg.homeserverUrl, store });
    await plain.login({ user: cfg.userId, password: cfg.password });
    session = await store.loadSession();
    if (session === undefined) throw new Error("login saved no session");
  }
  const crypto = await SqliteCryptoStore.open({
    userId: session.userId,
    deviceId: session.deviceId,
    directory: join(cfg.directory, "crypto"),
  });
  return MatrixClient.fromStore(store, {
    ...common,
    encryption: { store: faulty(crypto, fault.kind, fault.delayMs) },
  });
}

/** The `undec` line of an event that did not decrypt (its session named from the raw content). */
function undecLine(ev: RoomEvent, via: "sync" | "history"): Extract<VictimLine, { t: "undec" }> {
  const c = ev.raw.content;
  const enc = ev.encryption;
  return {
    t: "undec",
    eventId: ev.eventId,
    code: enc !== undefined && enc.decrypted === false ? enc.code : "NOT_DECRYPTED",
    via,
    ...(typeof c.session_id === "string" ? { sessionId: c.session_id } : {}),
    ...(typeof c.sender_key === "string" ? { senderKey: c.sender_key } : {}),
  };
}

function report(ev: RoomEvent, via: "sync" | "late" | "history"): void {
  if (ev.raw.type !== "m.room.encrypted") return;
  const enc = ev.encryption;
  if (enc?.decrypted === true) {
    const body = typeof ev.content.body === "string" ? ev.content.body : "";
    out({ t: "dec", eventId: ev.eventId, sender: ev.sender, body, via });
  } else {
    out(undecLine(ev, via === "late" ? "sync" : via));
  }
}

/** Counts of a /sync response body: to-device messages and room timeline events. */
function syncCounts(body: unknown): { toDevice: number; events: number } {
  const b = body as {
    to_device?: { events?: unknown[] };
    rooms?: Record<string, Record<string, { timeline?: { events?: unknown[] } }>>;
  };
  let events = 0;
  for (const section of Object.values(b.rooms ?? {}))
    for (const room of Object.values(section ?? {})) events += room.timeline?.events?.length ?? 0;
  return { toDevice: b.to_device?.events?.length ?? 0, events };
}

/** The last /sync response's counts, for the final run's drain. */
let lastSync = { toDevice: 0, events: 0 };
let carryingSyncs = 0;

/**
 * A thread that SIGKILLs this process when told to, `afterMs` later. A timer on the main thread
 * would not do: handling a sync response is mostly synchronous work (SQLite, crypto) chained by
 * promises, so a main-thread timer only fires once the handling is over.
 */
async function killerThread(): Promise<Worker> {
  const code = `
    const { parentPort } = require("node:worker_threads");
    let armed;
    parentPort.on("message", (ms) => {
      clearTimeout(armed);
      if (ms !== "disarm") armed = setTimeout(() => process.kill(${process.pid}, "SIGKILL"), ms);
    });
    parentPort.postMessage("listening");`;
  const w = new Worker(code, { eval: true });
  // Started and listening before the client starts: a slow start would delay the kill.
  await once(w, "message");
  w.unref();
  return w;
}

/** Armed at each carrying /sync response from the `nth` on, disarmed when its token is saved. */
let killer: Worker | undefined;

/** `fetch` that reports every /sync response before the client handles it (and may arm the kill). */
async function observingFetch(killInSync: VictimConfig["killInSync"]): Promise<FetchLike> {
  if (killInSync !== undefined) killer = await killerThread();
  return async (input, init) => {
    const res = await fetch(input, init);
    if (res.ok && new URL(input).pathname.endsWith("/sync")) {
      lastSync = syncCounts(await res.clone().json());
      out({ t: "sync-got", ms: performance.now(), ...lastSync });
      // From the nth on: a response handled faster than expected re-arms it for the next one.
      const items = lastSync.toDevice + lastSync.events;
      if (items > 0) carryingSyncs++;
      if (killInSync !== undefined && items > 0 && carryingSyncs >= killInSync.nth) {
        killer?.postMessage(Math.floor(killInSync.fraction * killInSync.msPerItem * items));
      }
    }
    return res;
  };
}

/**
 * Reports each saved sync token (the end of the crash-during-sync window); with
 * `killWhilePending`, dies right there if a faulty save is still to commit.
 */
function observeSaves(store: SqliteClientStore, killWhilePending: boolean): void {
  const save = store.saveSync.bind(store);
  store.saveSync = async (changes) => {
    await save(changes);
    killer?.postMessage("disarm");
    out({ t: "sync-saved", ms: performance.now() });
    if (killWhilePending && pendingSaves > 0) process.kill(process.pid, "SIGKILL");
  };
}

/**
 * The key backup: the server's version is checked first (a version this device created just
 * before a kill is adopted with the key it kept), and one is created when there is none. Uploads
 * then run after every sync; the kill loop checks that no key is lost and that no second version
 * is ever made.
 */
async function setUpBackup(client: MatrixClient, create: boolean): Promise<void> {
  const backup = client.crypto.backup;
  await backup.checkVersion();
  const version = (await backup.status({ check: false })).version;
  if (version !== undefined) return out({ t: "backup", version, created: false });
  if (create) out({ t: "backup", version: (await backup.createVersion()).version, created: true });
}

/** Most syncs the final run makes to drain the server (each must carry to-device messages). */
const MAX_DRAIN_SYNCS = 10_000;

async function main(): Promise<void> {
  const cfg = parseConfig(process.argv[2]);
  out({ t: "boot", pid: process.pid });
  const store = await SqliteClientStore.open(join(cfg.directory, "client.sqlite3"));
  observeSaves(store, cfg.mode === "run" && cfg.fault?.killWhilePending === true);
  const encryption = { store: { directory: join(cfg.directory, "crypto") }, restoreDeviceId: true };
  const common = {
    logger: stderrLogger,
    fetch: await observingFetch(cfg.mode === "run" ? cfg.killInSync : undefined),
    syncTimeoutMs: cfg.mode === "final" ? 0 : 300,
    syncFilter: { room: { timeline: { limit: 50 } } },
  };
  const session = await store.loadSession();
  let client: MatrixClient;
  if (cfg.fault !== undefined) {
    client = await openFaulty(cfg, store, common, cfg.fault);
  } else if (session !== undefined) {
    client = await MatrixClient.fromStore(store, { ...common, encryption });
  } else {
    client = new MatrixClient({ ...common, encryption, homeserverUrl: cfg.homeserverUrl, store });
    await client.login({ user: cfg.userId, password: cfg.password });
  }
  out({
    t: "ready",
    deviceId: client.deviceId,
    ed25519: client.getFingerprint(),
    resumed: session !== undefined,
  });
  client.on("room.event", (room, ev) => {
    if (room.roomId === cfg.roomId) report(ev, "sync");
  });
  client.on("room.decrypted", (room, ev) => {
    if (room.roomId === cfg.roomId) report(ev, "late");
  });
  client.on("error", (e) => out(errorLine("client", e)));
  await setUpBackup(client, cfg.createBackup !== false);

  if (cfg.mode === "final") {
    // Catch up: sync until the server holds nothing more for us (it hands out a bounded number of
    // to-device messages per response, so a backlog of room keys takes several), then read
    // everything the room holds.
    let syncs = 0;
    let toDevice = 0;
    do {
      await client.syncOnce({ timeoutMs: 0 });
      syncs++;
      toDevice += lastSync.toDevice;
    } while ((syncs < 2 || lastSync.toDevice > 0) && syncs < MAX_DRAIN_SYNCS);
    out({ t: "drained", syncs, toDevice });
    out({ t: "synced" });
    const body = `victim ${cfg.runTag} final`;
    out({ t: "sent", eventId: await client.sendText(cfg.roomId, body), body });
    const undecrypted: Extract<VictimLine, { t: "undec" }>[] = [];
    for await (const ev of client.history(cfg.roomId, { pageSize: 100 })) {
      if (ev.raw.type === "m.room.encrypted" && ev.encryption?.decrypted !== true)
        undecrypted.push(undecLine(ev, "history"));
      else report(ev, "history");
    }
    await client.crypto.backup.idle();
    await client.crypto.backup.uploadPending();
    const backupStatus = await client.crypto.backup.status({ check: false });
    const { userId, deviceId } = client;
    await client.close();
    // Say how each failure came about: is the session in the store at all?
    const crypto = await SqliteCryptoStore.open({
      userId,
      deviceId,
      directory: join(cfg.directory, "crypto"),
    });
    try {
      for (const u of undecrypted) {
        const stored =
          u.sessionId !== undefined &&
          (await crypto.getInboundGroupSession(cfg.roomId, u.sessionId)) !== undefined;
        out({ ...u, stored });
      }
      const sessions: string[] = [];
      let after: { roomId: string; sessionId: string } | undefined;
      for (;;) {
        const page = await crypto.listInboundGroupSessions(
          after === undefined ? { limit: 500 } : { after, limit: 500 },
        );
        for (const r of page) sessions.push(`${r.roomId}|${r.sessionId}|${r.firstKnownIndex}`);
        const last = page[page.length - 1];
        if (page.length < 500 || last === undefined) break;
        after = { roomId: last.roomId, sessionId: last.sessionId };
      }
      out({
        t: "backup-final",
        version: backupStatus.version ?? null,
        backedUp: backupStatus.backedUp,
        total: backupStatus.total,
        sessions,
      });
    } finally {
      await crypto.close();
    }
    out({ t: "done" });
    return;
  }

  await client.startSync();
  out({ t: "synced" });
  // A restore in the background, so that kills land in it too (it re-imports what the store holds,
  // and marks what the backup has).
  // (The partner of pair mode may have found no version yet: then there is nothing to restore.)
  if ((await client.crypto.backup.status({ check: false })).version !== undefined) {
    client.crypto.backup.restore().then(
      (r) => out({ t: "restored", imported: r.imported, total: r.total }),
      (e: unknown) => out(errorLine("restore", e)),
    );
  }
  for (let n = 0; ; n++) {
    const body = `victim ${cfg.runTag} #${n}`;
    out({ t: "sending", body });
    try {
      const eventId = await client.sendText(cfg.roomId, body);
      out({ t: "sent", eventId, body });
    } catch (e) {
      out(errorLine("send", e));
    }
    await new Promise((resolve) => setTimeout(resolve, cfg.sendIntervalMs));
  }
}

main().catch((e: unknown) => {
  out(errorLine("main", e));
  process.exit(1);
});
