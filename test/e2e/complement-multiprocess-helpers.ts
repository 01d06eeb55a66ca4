// Helpers of the multi-process complement-crypto scenarios: one Keyroom profile (a client store and
// a crypto store in one folder) used by the "main app", a Keyroom client in the test process that
// is opened and closed as the app is foregrounded and backgrounded, and by "NSE" processes (a child
// per process, complement-nse-process.ts). Everything either process did on the wire and on the
// store's lease goes into one log, in order of arrival.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { MatrixClient, type MatrixClientOptions, SqliteClientStore } from "../../src/index.ts";
import { JsSdkPeer, NioPeer, type Peer } from "../support/peers/index.ts";
import { seen } from "./complement-helpers.ts";
import { observedCryptoStore, type Wire, type WireLine, wire } from "./complement-multiprocess-wire.ts";
import type { Notification, NseCommand, NseConfig, NseLine } from "./complement-nse-process.ts";
import { type DevServerFixture, type TestClient, uniq, watch } from "./e2ee-client-helpers.ts";

const NSE_SCRIPT = fileURLToPath(new URL("./complement-nse-process.ts", import.meta.url));

export type Who = "app" | "nse";
export interface Logged {
  who: Who;
  line: WireLine;
}

export interface App extends TestClient {
  wire: Wire;
  /** Whether its sync loop runs (else the test syncs it step by step). */
  syncing: boolean;
}

type NseCommandBody = NseCommand extends infer C ? (C extends NseCommand ? Omit<C, "id"> : never) : never;

/** One NSE process on the profile. */
export class Nse {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly #stderr: string[] = [];
  #next = 1;
  #ready: ((line: NseLine) => void) | undefined;
  readonly exited: Promise<number | null>;

  private constructor(child: ChildProcess, record: (line: WireLine) => void) {
    this.#child = child;
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      this.#stderr.push(...chunk.split("\n").filter((l) => l.length > 0));
      this.#stderr.splice(0, Math.max(0, this.#stderr.length - 20));
    });
    if (child.stdout === null) throw new Error("the NSE has no stdout");
    createInterface({ input: child.stdout }).on("line", (text) => {
      let line: NseLine;
      try {
        line = JSON.parse(text) as NseLine;
      } catch {
        this.#stderr.push(`stdout: ${text.slice(0, 200)}`);
        return;
      }
      if (line.t === "wire") record(line.line);
      else if (line.t === "ready") this.#ready?.(line);
      else if (line.t === "reply") {
        this.#pending.get(line.id)?.resolve(line.result);
        this.#pending.delete(line.id);
      } else if (line.id !== undefined) {
        this.#pending.get(line.id)?.reject(new Error(`NSE: ${line.message}`));
        this.#pending.delete(line.id);
      } else this.#stderr.push(`error: ${line.message}`);
    });
    this.exited = new Promise((resolve) =>
      child.once("exit", (code) => {
        const e = new Error(`the NSE exited (${code}): ${this.#stderr.join(" | ")}`);
        for (const p of this.#pending.values()) p.reject(e);
        this.#pending.clear();
        this.#ready = undefined;
        resolve(code);
      }),
    );
  }

  /** Starts an NSE on `dir`'s profile; resolves once its client is open. */
  static async spawn(dir: string, cfg: Omit<NseConfig, "directory">, record: (line: WireLine) => void) {
    const config: NseConfig = { directory: dir, ...cfg };
    const child = spawn(
      process.execPath,
      ["--conditions=source", "--import", "tsx", NSE_SCRIPT, JSON.stringify(config)],
      { stdio: ["pipe", "pipe", "pipe"] },
    );
    const nse = new Nse(child, record);
    const ready = new Promise<NseLine>((resolve) => {
      nse.#ready = resolve;
    });
    const code = await Promise.race([ready.then(() => undefined), nse.exited]);
    if (code !== undefined) throw new Error(`the NSE exited before it was ready: ${nse.#stderr.join(" | ")}`);
    return nse;
  }

  request<T>(cmd: NseCommandBody): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: (v) => resolve(v as T), reject });
      this.#child.stdin?.write(`${JSON.stringify({ ...cmd, id })}\n`);
    });
  }

  /** GetNotification: the pushed event, decrypted (syncing first if its key has not arrived). */
  notify(roomId: string, eventId: string): Promise<Notification> {
    return this.request({ op: "notify", roomId, eventId });
  }

  /** One sync (the notification client's encryption sync). */
  sync(): Promise<void> {
    return this.request({ op: "sync" });
  }

  /** Waits for its background key backup; its view of the backup then. */
  backupIdle(): Promise<{ backedUp: number; total: number; version: string | null }> {
    return this.request({ op: "backup-idle" });
  }

  holdUploads(on: boolean): Promise<void> {
    return this.request({ op: "hold-uploads", on });
  }

  releaseUploads(): Promise<void> {
    return this.request({ op: "release-uploads" });
  }

  /** Closes its client and waits for the process to end. */
  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    await this.request({ op: "close" }).catch(() => undefined);
    await this.exited;
  }

  kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill("SIGKILL");
  }
}

/** Alice's (or Bob's) Keyroom profile, its app and its NSEs. */
export class Profile {
  readonly log: Logged[] = [];
  readonly #listeners = new Set<(l: Logged) => void>();
  readonly #nses = new Set<Nse>();
  readonly name = uniq("mp");
  readonly dir: string;
  readonly #fx: DevServerFixture;
  app: App | undefined;

  constructor(fx: DevServerFixture) {
    this.#fx = fx;
    this.dir = join(fx.dir, this.name);
  }

  record(who: Who, line: WireLine): void {
    const l = { who, line };
    this.log.push(l);
    for (const f of [...this.#listeners]) f(l);
  }

  /** Calls `f` with every log line from now on, until the returned function is called. */
  listen(f: (l: Logged) => void): () => void {
    this.#listeners.add(f);
    return () => this.#listeners.delete(f);
  }

  /** Resolves at the first log line from now on that matches. */
  next(pred: (l: Logged) => boolean): Promise<void> {
    return new Promise((resolve) => {
      const off = this.listen((l) => {
        if (!pred(l)) return;
        off();
        resolve();
      });
    });
  }

  lines<T extends WireLine["t"]>(who: Who | undefined, t: T): Extract<WireLine, { t: T }>[] {
    return this.log
      .filter((l) => (who === undefined || l.who === who) && l.line.t === t)
      .map((l) => l.line as Extract<WireLine, { t: T }>);
  }

  async #client(fx: DevServerFixture, fresh: boolean): Promise<{ client: MatrixClient; w: Wire }> {
    const w = wire((line) => this.record("app", line));
    const store = await SqliteClientStore.open(join(this.dir, "client.sqlite3"));
    const opts: Omit<MatrixClientOptions, "homeserverUrl" | "store"> = {
      // The app's sync loop long-polls (it returns as soon as something arrives).
      syncTimeoutMs: 1000,
      syncFilter: { room: { timeline: { limit: 100 } } },
      fetch: w.fetch,
      encryption: {
        store: observedCryptoStore(join(this.dir, "crypto"), (line) => this.record("app", line)),
      },
    };
    const client = fresh
      ? new MatrixClient({ ...opts, homeserverUrl: fx.hs.baseUrl, store })
      : await MatrixClient.fromStore(store, opts);
    fx.open.push(client);
    return { client, w };
  }

  /** Registers the account: the app's first start. */
  async register(): Promise<App> {
    const { client, w } = await this.#client(this.#fx, true);
    await client.register({ username: this.name, password: "pw" });
    this.app = { ...watch(client, this.name, this.dir), wire: w, syncing: false };
    return this.app;
  }

  /** The app in the foreground again: a new client on the profile (optionally syncing in the background). */
  async openApp(opts: { sync?: boolean } = {}): Promise<App> {
    assert.equal(this.app, undefined, "the app is already open");
    const { client, w } = await this.#client(this.#fx, false);
    this.app = { ...watch(client, this.name, this.dir), wire: w, syncing: false };
    if (opts.sync === true) await startSyncing(this.app);
    return this.app;
  }

  /** The app in the background: it stops syncing and closes. */
  async closeApp(): Promise<void> {
    const app = this.app;
    assert.ok(app, "the app is not open");
    this.app = undefined;
    app.wire.holdUploads(false);
    await app.client.close();
  }

  requireApp(): App {
    assert.ok(this.app, "the app is not open");
    return this.app;
  }

  async spawnNse(
    opts: { clientStore?: NseConfig["clientStore"]; timelineLimit?: number } = {},
  ): Promise<Nse> {
    const nse = await Nse.spawn(
      this.dir,
      { clientStore: opts.clientStore ?? "profile", timelineLimit: opts.timelineLimit ?? 10 },
      (line) => this.record("nse", line),
    );
    this.#nses.add(nse);
    void nse.exited.then(() => this.#nses.delete(nse));
    return nse;
  }

  /** Ends whatever is still open (at the end of a test, passed or failed). */
  async dispose(): Promise<void> {
    if (this.app !== undefined) await this.closeApp().catch(() => undefined);
    for (const nse of [...this.#nses]) nse.kill();
    await Promise.all([...this.#nses].map((n) => n.exited));
  }
}

export async function startSyncing(app: App): Promise<void> {
  await app.client.startSync();
  app.syncing = true;
}

/** One step of the app's progress: its next handled sync response (syncing it when its loop does not run). */
export async function appProgress(app: App): Promise<void> {
  if (!app.syncing) {
    await app.client.syncOnce({ timeoutMs: 200 });
    return;
  }
  await new Promise<void>((resolve) => {
    const off = app.client.on("sync.settle", () => {
      off();
      resolve();
    });
  });
}

/**
 * The app decrypts `eventId`: shown decrypted in its timeline, or (as when the room is opened after
 * another process synced that range) fetched and decrypted; waits on its syncs, bounded by their
 * number. Returns how it got it.
 */
export async function appDecrypts(
  app: App,
  roomId: string,
  eventId: string,
  body: string,
  attempts = 100,
): Promise<"timeline" | "fetched"> {
  for (let i = 0; i < attempts; i++) {
    if (seen(app, eventId).body === body) return "timeline";
    const ev = await app.client.fetchEvent(roomId, eventId);
    if (ev.encryption?.decrypted === true) {
      assert.equal(ev.content.body, body);
      return "fetched";
    }
    await appProgress(app);
  }
  assert.fail(`the app did not decrypt ${eventId} (${body})`);
}

/**
 * Bob sends with a new room key, so the key travels over Olm for every message: what the
 * scenarios' `rotation_period_msgs: 1` does (matrix-nio does not read that setting).
 */
export async function bobSends(peer: Peer, roomId: string, body: string): Promise<string> {
  assert.ok(peer instanceof JsSdkPeer || peer instanceof NioPeer);
  await peer.discardGroupSession(roomId);
  return peer.sendText(roomId, body);
}

/** A notification of the NSE: decrypted to `body`. */
export function assertNotified(n: Notification, body: string): void {
  assert.equal(
    n.decrypted,
    true,
    `the NSE could not decrypt ${n.eventId} (${n.code ?? "?"}, ${n.syncs} syncs)`,
  );
  assert.equal(n.body, body);
}
