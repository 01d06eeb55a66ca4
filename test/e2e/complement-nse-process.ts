// The "NSE" of the multi-process complement-crypto scenarios (complement-crypto-multiprocess.test.ts):
// a second Keyroom process on the main app's profile, as iOS's notification service extension is a
// second process on the app's stores. It opens the profile's crypto store (SQLite, shared under its
// lease) and either the profile's client store (`clientStore: "profile"`, so it syncs from the
// app's position, as a CLI `send` beside a `tail`) or one of its own in memory (`"own"`: its first
// sync is an initial, position-less one). It does what the test asks, one JSON command per stdin
// line, and reports on stdout, one JSON line each: its wire lines (complement-multiprocess-wire.ts)
// and the replies.
//
// Usage: complement-nse-process.ts '<NseConfig as JSON>'
import { createInterface } from "node:readline";
import { MatrixClient, MemoryClientStore, SqliteClientStore } from "../../src/index.ts";
import { observedCryptoStore, type WireLine, wire } from "./complement-multiprocess-wire.ts";

export interface NseConfig {
  /** Holds `client.sqlite3` (the client store) and `crypto/` (the crypto store). */
  directory: string;
  clientStore: "profile" | "own";
  /** The sync filter's timeline limit (a notification process asks for little). */
  timelineLimit: number;
}

export type NseCommand =
  | { id: number; op: "notify"; roomId: string; eventId: string }
  | { id: number; op: "sync" }
  | { id: number; op: "backup-idle" }
  | { id: number; op: "hold-uploads"; on: boolean }
  | { id: number; op: "release-uploads" }
  | { id: number; op: "close" };

/** What `notify` found: the event's body when it decrypted, and how many syncs that took. */
export interface Notification {
  eventId: string;
  decrypted: boolean;
  body?: string;
  code?: string;
  syncs: number;
}

export type NseLine =
  | { t: "ready"; userId: string; deviceId: string }
  | { t: "wire"; line: WireLine }
  | { t: "reply"; id: number; result: unknown }
  | { t: "error"; id?: number; message: string };

/** Syncs (to get the room key) at most this many times for one notification. */
export const MAX_NOTIFICATION_SYNCS = 10;

const out = (line: NseLine): void => void process.stdout.write(`${JSON.stringify(line)}\n`);

async function main(): Promise<void> {
  const arg = process.argv[2];
  if (arg === undefined) throw new Error("usage: complement-nse-process.ts '<config JSON>'");
  const cfg = JSON.parse(arg) as NseConfig;
  const w = wire((line) => out({ t: "wire", line }));
  const profile = await SqliteClientStore.open(`${cfg.directory}/client.sqlite3`);
  const options = {
    syncTimeoutMs: 0,
    syncFilter: { room: { timeline: { limit: cfg.timelineLimit } } },
    fetch: w.fetch,
    encryption: {
      store: observedCryptoStore(`${cfg.directory}/crypto`, (line) => out({ t: "wire", line })),
    },
  };
  let client: MatrixClient;
  if (cfg.clientStore === "profile") {
    client = await MatrixClient.fromStore(profile, options);
  } else {
    const session = await profile.loadSession();
    await profile.close();
    if (session === undefined) throw new Error("the profile holds no session");
    client = new MatrixClient({
      ...options,
      homeserverUrl: session.homeserverUrl,
      store: new MemoryClientStore(),
    });
    await client.restore(session);
  }
  out({ t: "ready", userId: client.userId, deviceId: client.deviceId });

  // The notification: the event from the server, decrypted; while it is not, sync (the room key
  // may still wait in the to-device queue) and try again.
  const notify = async (roomId: string, eventId: string): Promise<Notification> => {
    let syncs = 0;
    let ev = await client.fetchEvent(roomId, eventId);
    while (ev.encryption?.decrypted === false && syncs < MAX_NOTIFICATION_SYNCS) {
      await client.syncOnce({ timeoutMs: 0 });
      syncs++;
      ev = await client.fetchEvent(roomId, eventId);
    }
    const enc = ev.encryption;
    return {
      eventId,
      decrypted: enc?.decrypted === true,
      ...(enc?.decrypted === true && typeof ev.content.body === "string" ? { body: ev.content.body } : {}),
      ...(enc !== undefined && enc.decrypted === false ? { code: enc.code } : {}),
      syncs,
    };
  };

  const run = async (cmd: NseCommand): Promise<unknown> => {
    switch (cmd.op) {
      case "notify":
        return notify(cmd.roomId, cmd.eventId);
      case "sync":
        await client.syncOnce({ timeoutMs: 0 });
        return null;
      case "backup-idle": {
        await client.crypto.backup.idle();
        const s = await client.crypto.backup.status({ check: false });
        return { backedUp: s.backedUp, total: s.total, version: s.version ?? null };
      }
      case "hold-uploads":
        w.holdUploads(cmd.on);
        return null;
      case "release-uploads":
        w.release();
        return null;
      case "close":
        await client.close();
        return null;
    }
  };

  const lines = createInterface({ input: process.stdin });
  for await (const text of lines) {
    const cmd = JSON.parse(text) as NseCommand;
    // Commands run concurrently (a release must get through while a sync waits on a held upload).
    void run(cmd).then(
      (result) => {
        out({ t: "reply", id: cmd.id, result });
        if (cmd.op === "close") process.exit(0);
      },
      (e: unknown) => out({ t: "error", id: cmd.id, message: e instanceof Error ? e.message : String(e) }),
    );
  }
}

main().catch((e: unknown) => {
  out({ t: "error", message: e instanceof Error ? e.message : String(e) });
  process.exit(1);
});
