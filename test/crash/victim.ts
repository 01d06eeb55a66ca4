// The process the kill-loop tests SIGKILL at random moments: one Keyroom device with encryption on,
// its crypto store (SQLite) and client store (SQLite) in one directory, resumed at every start.
// It syncs continuously, decrypts what arrives and sends encrypted messages. Everything the parent
// checks goes to stdout, one JSON object per line (see `VictimLine`); stdout writes to a pipe are
// synchronous on Linux, so a line printed before the kill is never lost.
//
// Usage: victim.ts '<VictimConfig as JSON>'
import { join } from "node:path";
import {
  type Logger,
  MatrixClient,
  type MatrixClientOptions,
  type RoomEvent,
  SqliteClientStore,
} from "../../src/client/index.ts";
import type { CryptoChanges, CryptoStore } from "../../src/store/index.ts";
import { SqliteCryptoStore } from "../../src/store/sqlite/index.ts";

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
  fault?: { kind: FaultKind; delayMs: number };
}

export type FaultKind = "write-behind" | "late-room-keys";

/** What the victim reports, one per stdout line. */
export type VictimLine =
  | { t: "boot"; pid: number }
  | { t: "ready"; deviceId: string; ed25519: string; resumed: boolean }
  | { t: "synced" }
  | { t: "dec"; eventId: string; sender: string; body: string; via: "sync" | "late" | "history" }
  | { t: "undec"; eventId: string; code: string; via: "sync" | "history" }
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
    (!["write-behind", "late-room-keys"].includes(c.fault.kind) || !(c.fault.delayMs >= 0))
  ) {
    throw new Error("config.fault must be { kind: write-behind | late-room-keys, delayMs >= 0 }");
  }
  return c;
}

/** `store` whose `saveChanges` commits (some) changes `ms` after acknowledging them, in order. */
function faulty(store: CryptoStore, kind: FaultKind, ms: number): CryptoStore {
  let chain = Promise.resolve();
  const later = (changes: CryptoChanges): void => {
    const due = Date.now() + ms;
    chain = chain
      .then(() => new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now()))))
      .then(() => store.saveChanges(changes))
      .catch((e: unknown) => out(errorLine("fault", e)));
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

function report(ev: RoomEvent, via: "sync" | "late" | "history"): void {
  if (ev.raw.type !== "m.room.encrypted") return;
  const enc = ev.encryption;
  if (enc?.decrypted === true) {
    const body = typeof ev.content.body === "string" ? ev.content.body : "";
    out({ t: "dec", eventId: ev.eventId, sender: ev.sender, body, via });
  } else {
    out({
      t: "undec",
      eventId: ev.eventId,
      code: enc?.code ?? "NOT_DECRYPTED",
      via: via === "late" ? "sync" : via,
    });
  }
}

async function main(): Promise<void> {
  const cfg = parseConfig(process.argv[2]);
  out({ t: "boot", pid: process.pid });
  const store = await SqliteClientStore.open(join(cfg.directory, "client.sqlite3"));
  const encryption = { store: { directory: join(cfg.directory, "crypto") }, restoreDeviceId: true };
  const common = {
    logger: stderrLogger,
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

  if (cfg.mode === "final") {
    // Catch up (to-device keys included), then read everything the room holds.
    for (let i = 0; i < 3; i++) await client.syncOnce({ timeoutMs: 0 });
    out({ t: "synced" });
    const body = `victim ${cfg.runTag} final`;
    out({ t: "sent", eventId: await client.sendText(cfg.roomId, body), body });
    for await (const ev of client.history(cfg.roomId, { pageSize: 100 })) report(ev, "history");
    await client.close();
    out({ t: "done" });
    return;
  }

  await client.startSync();
  out({ t: "synced" });
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
