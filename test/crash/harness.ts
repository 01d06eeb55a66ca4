// The kill loop shared by the quick and the long crash tests. One devserver (file database) behind a
// recording proxy; a steady peer (a Keyroom device in this process) sending encrypted messages into
// a room whose key rotates every few messages, now and then logging in a new device (new Olm
// sessions, to-device traffic, device-list changes) and claiming the victim's one-time keys (so it
// keeps uploading new ones). Meanwhile the victim (victim.ts, a separate process) is started,
// SIGKILLed and started again, `kills` times (when: kill-timing.ts, mostly while it handles a /sync
// response); then a final clean run drains the server and reads the room's whole history.
// `checks.ts` says what must hold.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { MatrixClient, silentLogger } from "../../src/client/index.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";
import {
  closePeers,
  type Peer,
  type PeerKind,
  registerNewPeer,
  unavailableReason,
} from "../support/peers/index.ts";
import { prng } from "../support/random.ts";
import {
  checkBackup,
  checkClaims,
  checkDecryptions,
  checkIdentity,
  checkNoErrors,
  checkStoredKeys,
  checkUploads,
  type DeviceRef,
  type RunLine,
  type ServerBackup,
} from "./checks.ts";
import { KillTiming, killPoint, SYNC_AIMED_SHARE, syncTarget } from "./kill-timing.ts";
import { type RecordingProxy, startRecordingProxy } from "./recording-proxy.ts";
import type { VictimConfig, VictimLine } from "./victim.ts";
import { spawnVictim, type VictimRun } from "./victim-process.ts";

/** The devserver's access-token lifetime in the kill loops: longer than any loop runs. */
const TOKENS_OUTLIVE_THE_LOOP_MS = 24 * 60 * 60 * 1000;

/**
 * The number of kills: `KEYROOM_CRASH_KILLS` if set (the release check is 1 000, see
 * docs/testing.md), else `fallback`.
 */
export function killsFromEnv(fallback: number): number {
  const v = process.env.KEYROOM_CRASH_KILLS;
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new Error(`KEYROOM_CRASH_KILLS must be a positive integer, not ${v}`);
  return n;
}

/** A `killWhilePending` run that received no new room key ends after this many saved syncs. */
const RUN_SYNCS_WITHOUT_KEY = 20;

export interface KillLoopOptions {
  kills: number;
  /** Seed of the random schedule; default from `KEYROOM_CRASH_SEED` or random. */
  seed?: number;
  /** At most this many extra peer devices over the whole loop. */
  maxExtraDevices?: number;
  /**
   * Other clients in the room (matrix-js-sdk on vodozemac, matrix-nio on libolm) that now and then
   * send too, and must read the victim's last message. One missing here is skipped loudly.
   */
  foreignPeers?: readonly PeerKind[];
  /** Fault injection (see `VictimConfig.fault`) in the killed runs; the final run is clean. */
  fault?: VictimConfig["fault"];
  /**
   * Two victim processes on one store (issue 13): each run first starts a partner on the victim's
   * directory and, once it is ready (it logs in on the first run), the victim as usual; both sync,
   * decrypt and send, taking turns on the store's lease. The partner is SIGKILLed too, at a random
   * moment after the victim.
   */
  pair?: boolean;
}

export interface KillLoopResult {
  seed: number;
  /** One line per victim run: when it was killed and what it had printed last. */
  schedule: string[];
  problems: string[];
  stats: {
    peerMessages: number;
    victimMessages: number;
    decryptedLines: number;
    otksClaimed: number;
    fallbackClaims: number;
    uploads: number;
    /** Key backup uploads of the victim, and the room keys its final run holds (all in the backup). */
    backupUploads: number;
    backedUpSessions: number;
    extraDevices: number;
    foreignMessages: number;
    /** Runs aimed at the crash-during-sync window, and how many were killed inside it. */
    syncAimedRuns: number;
    killedInSync: number;
    /** ... inside the handling of a response that carried to-device messages or room events. */
    killedInCarryingSync: number;
    killedBeforeReady: number;
    /** The final run's drain: syncs made and to-device messages received. */
    finalSyncs: number;
    finalToDevice: number;
    /** To-device messages the server still held for the victim at the end. */
    pendingToDevice: number;
    /** Pair mode: runs in which both processes were up, and the messages the partners sent. */
    pairedRuns: number;
    partnerMessages: number;
  };
}

const ROTATION_PERIOD_MESSAGES = 7;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The final run counts as hung after this many of the slowest start-ups seen without printing
 * anything (it prints a line per sync and per event, so a live run never goes quiet that long).
 */
const STALL_STARTUPS = 20;
/** ... and never sooner than this (the first runs may not have measured a start-up). */
const MIN_STALL_MS = 30_000;

/** "dec×12 sent×2 ...": what a run printed, by line type. */
function tally(lines: readonly VictimLine[]): string {
  const counts = new Map<string, number>();
  for (const l of lines) counts.set(l.t, (counts.get(l.t) ?? 0) + 1);
  return [...counts].map(([t, n]) => `${t}×${n}`).join(" ");
}

export class KillLoop {
  readonly seed: number;
  readonly #opts: Required<Omit<KillLoopOptions, "seed" | "fault">>;
  readonly #fault: VictimConfig["fault"];
  readonly #rand: () => number;
  readonly #dir = mkdtempSync(join(tmpdir(), "keyroom-kill-loop-"));
  readonly #children = new Set<ChildProcess>();
  readonly #clients: MatrixClient[] = [];
  readonly #foreign: Peer[] = [];
  #hs: TestDevServer | undefined;
  #proxy: RecordingProxy | undefined;
  #stopPeer = false;
  /** Last resort if the test process ends without `dispose` (a runner timeout): no orphan victims. */
  readonly #onExit = () => {
    for (const child of this.#children) child.kill("SIGKILL");
  };

  constructor(opts: KillLoopOptions) {
    const envSeed = process.env.KEYROOM_CRASH_SEED;
    this.seed = opts.seed ?? (envSeed !== undefined ? Number(envSeed) : Math.floor(Math.random() * 2 ** 31));
    this.#rand = prng(this.seed);
    this.#fault = opts.fault;
    this.#opts = {
      kills: opts.kills,
      maxExtraDevices: opts.maxExtraDevices ?? 3,
      foreignPeers: opts.foreignPeers ?? [],
      pair: opts.pair ?? false,
    };
    process.once("exit", this.#onExit);
  }

  #between(lo: number, hi: number): number {
    return Math.floor(lo + this.#rand() * (hi - lo + 1));
  }

  /** Kills every child and closes every client and server. Safe to call twice. */
  async dispose(): Promise<void> {
    this.#stopPeer = true;
    process.off("exit", this.#onExit);
    for (const child of this.#children) child.kill("SIGKILL");
    await closePeers(this.#foreign.splice(0));
    for (const c of this.#clients.splice(0)) await c.close().catch(() => {});
    await this.#proxy?.close();
    this.#proxy = undefined;
    await this.#hs?.close();
    this.#hs = undefined;
    rmSync(this.#dir, { recursive: true, force: true });
  }

  /** Waits `ms`; true if the victim is still running then (false: it exited by itself). */
  async #aliveAfter(v: VictimRun, ms: number): Promise<boolean> {
    const early = await Promise.race([sleep(ms).then(() => undefined), v.exited.then((c) => ({ c }))]);
    return early === undefined;
  }

  /**
   * Waits for `v` to exit; true if it stopped making progress first: no new output for
   * `budgetMs()` (at least MIN_STALL_MS), a budget that grows with how slow the machine is now.
   */
  async #stalls(v: VictimRun, budgetMs: () => number): Promise<boolean> {
    let seen = -1;
    let since = performance.now();
    for (;;) {
      const exited = await Promise.race([sleep(1000).then(() => false), v.exited.then(() => true)]);
      if (exited) return false;
      const progress = v.lines.length;
      if (progress !== seen) {
        seen = progress;
        since = performance.now();
      } else if (performance.now() - since > Math.max(MIN_STALL_MS, budgetMs())) return true;
    }
  }

  /** Errors the in-process peer devices reported (a failed Olm session, a dropped send...). */
  readonly #peerErrors: string[] = [];

  /** To-device messages in the last /sync response of each in-process client, by name. */
  readonly #lastToDevice = new Map<string, number>();

  #client(name: string): MatrixClient {
    const c = new MatrixClient({
      homeserverUrl: this.#proxy?.baseUrl ?? "",
      logger: silentLogger,
      fetch: async (input, init) => {
        const res = await fetch(input, init);
        if (res.ok && new URL(input).pathname.endsWith("/sync")) {
          const body = (await res.clone().json()) as { to_device?: { events?: unknown[] } };
          this.#lastToDevice.set(name, body.to_device?.events?.length ?? 0);
        }
        return res;
      },
      syncTimeoutMs: 300,
      encryption: { store: { directory: join(this.#dir, name) } },
    });
    this.#clients.push(c);
    c.on("error", (e) => {
      const code = typeof e === "object" && e !== null && "code" in e ? String(e.code) : "UNKNOWN";
      this.#peerErrors.push(`${name}: ${code}: ${e instanceof Error ? e.message : String(e)}`);
    });
    return c;
  }

  /** Runs the loop; an unexpected failure is rethrown with the seed and the schedule so far. */
  async run(): Promise<KillLoopResult> {
    const schedule: string[] = [];
    try {
      return await this.#run(schedule);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new Error([`kill loop seed ${this.seed} failed: ${why}`, ...schedule].join("\n"), { cause: e });
    }
  }

  async #run(schedule: string[]): Promise<KillLoopResult> {
    // Access tokens that outlive the loop: the checks map each request's token to its device after
    // the run (`/whoami`), which an expired or rotated token no longer answers. Clients ask for
    // refresh tokens, and past the devserver's default lifetime (5 minutes: a long loop's length)
    // they renew them; renewal has tests of its own (client-refresh-tokens).
    const hs = await startTestDevServer({
      memory: false,
      dbPath: join(this.#dir, "devserver.sqlite3"),
      accessTokenLifetimeMs: TOKENS_OUTLIVE_THE_LOOP_MS,
    });
    this.#hs = hs;
    const proxy = await startRecordingProxy(hs.baseUrl);
    this.#proxy = proxy;
    const tag = `${this.seed.toString(36)}${Date.now().toString(36)}`;

    // The peer, the victim's account and the room (the victim is joined by a throwaway login).
    const peer = this.#client("peer");
    const peerName = `peer${tag}`;
    await peer.register({ username: peerName, password: "pw" });
    const victimAccount = await hs.register(`victim${tag}`, "pw");
    const roomId = await peer.createRoom({
      encrypted: false,
      invite: [victimAccount.userId],
      initialState: [
        {
          type: "m.room.encryption",
          state_key: "",
          content: { algorithm: "m.megolm.v1.aes-sha2", rotation_period_msgs: ROTATION_PERIOD_MESSAGES },
        },
      ],
    });
    const join_ = await hs.api("POST", `/rooms/${encodeURIComponent(roomId)}/join`, {
      token: victimAccount.accessToken,
      body: {},
    });
    if (join_.status !== 200) throw new Error(`victim join failed: ${join_.status}`);
    await hs.api("POST", "/logout", { token: victimAccount.accessToken, body: {} });
    for (const kind of this.#opts.foreignPeers) {
      if (unavailableReason(kind) !== undefined) continue; // it printed its SKIPPED: line
      const f = await registerNewPeer(kind, proxy.baseUrl);
      this.#foreign.push(f);
      await peer.invite(roomId, f.userId);
      await f.waitForMembership(roomId, f.userId, "invite");
      await f.join(roomId);
    }
    const foreignReady = new Set<Peer>();
    let foreignMessages = 0;

    const expected = new Map<string, string>(); // peer messages the victim must decrypt
    const peerProblems: string[] = [];
    let victimDevice: DeviceRef | undefined;
    let victimKnown = false;

    const peerLoop = (async () => {
      await peer.startSync();
      while (!this.#stopPeer) {
        if (!victimKnown) {
          // Share keys only once the peer sees the victim's device (before, it legitimately can't decrypt).
          if (victimDevice !== undefined) {
            const devs = await peer.getUserDevices(victimAccount.userId);
            victimKnown = devs.some((d) => d.deviceId === victimDevice?.deviceId);
          }
          await sleep(50);
          continue;
        }
        const body = `peer #${expected.size}`;
        try {
          expected.set(await peer.sendText(roomId, body), body);
        } catch (e) {
          peerProblems.push(`peer send failed: ${e instanceof Error ? e.message : String(e)}`);
        }
        await sleep(this.#between(60, 200));
      }
      await peer.stopSync();
    })().catch(
      (e: unknown) => void peerProblems.push(`peer loop failed: ${e instanceof Error ? e.message : e}`),
    );

    const peerToken = (await peer.store.loadSession())?.accessToken ?? "";
    let extraDevices = 0;
    /** Between runs: maybe a new peer device that sends, maybe claims that drain one-time keys. */
    const stir = async () => {
      if (!victimKnown || victimDevice === undefined) return;
      if (extraDevices < this.#opts.maxExtraDevices && this.#rand() < 0.3) {
        extraDevices++;
        const extra = this.#client(`peer-extra-${extraDevices}`);
        await extra.login({ user: peer.userId, password: "pw" });
        await extra.syncOnce({ timeoutMs: 0 });
        const body = `peer extra ${extraDevices}`;
        expected.set(await extra.sendText(roomId, body), body);
      }
      for (const f of this.#foreign) {
        if (this.#rand() >= 0.4) continue;
        const dev = victimDevice.deviceId;
        if (!foreignReady.has(f)) {
          // Its own device tracking must have found the victim's device, or it would not share the key.
          await f.waitForDevices(victimAccount.userId, (ids) => ids.includes(dev));
          foreignReady.add(f);
        }
        const body = `${f.kind} #${foreignMessages++}`;
        try {
          expected.set(await f.sendText(roomId, body), body);
        } catch (e) {
          peerProblems.push(`${f.kind} send failed: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
      const claims = this.#rand() < 0.5 ? this.#between(1, 3) : 0;
      for (let i = 0; i < claims; i++) {
        await fetch(`${proxy.baseUrl}/_matrix/client/v3/keys/claim`, {
          method: "POST",
          headers: { Authorization: `Bearer ${peerToken}`, "Content-Type": "application/json" },
          body: JSON.stringify({
            one_time_keys: { [victimAccount.userId]: { [victimDevice.deviceId]: "signed_curve25519" } },
          }),
        }).then((r) => r.arrayBuffer());
      }
    };

    const all: RunLine[] = [];
    const problems: string[] = [];
    const victimCfg = (
      mode: VictimConfig["mode"],
      run: number,
      killInSync?: VictimConfig["killInSync"],
    ): VictimConfig => ({
      homeserverUrl: proxy.baseUrl,
      directory: join(this.#dir, "victim"),
      userId: victimAccount.userId,
      password: "pw",
      roomId,
      mode,
      sendIntervalMs: 100,
      runTag: `r${run}`,
      ...(mode === "run" && this.#fault !== undefined ? { fault: this.#fault } : {}),
      ...(killInSync !== undefined ? { killInSync } : {}),
    });
    const noteReady = (lines: readonly VictimLine[]) => {
      const ready = lines.find((l): l is Extract<VictimLine, { t: "ready" }> => l.t === "ready");
      if (ready !== undefined && victimDevice === undefined) {
        victimDevice = { userId: victimAccount.userId, deviceId: ready.deviceId };
      }
    };

    const timing = new KillTiming();
    let syncAimedRuns = 0;
    let killedInSync = 0;
    let killedInCarryingSync = 0;
    let killedBeforeReady = 0;
    let pairedRuns = 0;
    let partnerMessages = 0;
    for (let run = 0; run < this.#opts.kills; run++) {
      const aimAtSync = this.#rand() < SYNC_AIMED_SHARE;
      let aim: string;
      let v: VictimRun;
      let exitedEarly: number | undefined;
      const partner = await this.#partner({
        ...victimCfg("run", run),
        runTag: `r${run}p`,
        createBackup: false,
      });
      if (this.#fault?.killWhilePending === true) {
        // The victim dies by itself inside the window its fault opens (a sync token saved while
        // received room keys still wait for their commit); a run that receives no new key is
        // ended after a number of saved syncs, counted, not timed.
        aim = "by itself, inside the fault's window";
        v = spawnVictim(victimCfg("run", run), this.#children);
        await Promise.race([
          v.waitUntil((lines) => lines.filter((l) => l.t === "sync-saved").length >= RUN_SYNCS_WITHOUT_KEY),
          v.exited,
        ]);
      } else if (aimAtSync) {
        // The victim kills itself partway into handling its n-th carrying /sync response (scaled by
        // how long handling took in earlier runs); the parent only guards against idling.
        syncAimedRuns++;
        // In pair mode later on average, so the two processes overlap for a while.
        const nth = this.#opts.pair ? this.#between(2, 6) : this.#between(1, 3);
        const fraction = this.#rand() * 0.9;
        const msPerItem = timing.handlingMsPerItem();
        aim = `${Math.round(fraction * 100)}% into carrying sync #${nth} (${msPerItem.toFixed(2)} ms/item)`;
        v = spawnVictim(victimCfg("run", run, { nth, fraction, msPerItem }), this.#children);
        await Promise.race([v.waitUntil(syncTarget(Number.POSITIVE_INFINITY)), v.exited]);
      } else {
        // Start-up: logging in, opening the stores, the first sync (as long as it takes here).
        v = spawnVictim(victimCfg("run", run), this.#children);
        const delay = Math.floor(this.#rand() * 1.5 * timing.startupMs());
        aim = `${delay} ms after boot`;
        if ((await v.waitFor("boot")) !== undefined) await this.#aliveAfter(v, delay);
      }
      v.child.kill("SIGKILL");
      const code = await v.exited;
      if (code !== null) exitedEarly = code; // an exit code: it ended by itself, not by a signal
      for (const l of v.lines) all.push({ ...l, run });
      noteReady(v.lines);
      timing.record(v.lines, v.arrivals);
      const point = killPoint(v.lines);
      if (point.inSync) killedInSync++;
      if (point.inCarryingSync) killedInCarryingSync++;
      if (point.beforeReady) killedBeforeReady++;
      const where = point.inCarryingSync
        ? "in a carrying sync"
        : point.inSync
          ? "in an empty sync"
          : point.beforeReady
            ? "before ready"
            : "between syncs";
      const last = v.lines[v.lines.length - 1];
      schedule.push(
        `run ${run}: aimed ${aim}, killed ${where}; ${v.lines.length} lines (${tally(v.lines)}), last ${last ? last.t : "none"}` +
          (exitedEarly !== undefined ? `; EXITED EARLY (${exitedEarly}): ${v.stderrTail.join(" | ")}` : ""),
      );
      if (exitedEarly !== undefined)
        problems.push(`run ${run} exited by itself (${exitedEarly}) before the kill`);
      const p = partner;
      if (p !== undefined) {
        // The partner goes on alone for a while (it may hold the lease, or be handling a sync), then dies.
        await this.#aliveAfter(p, Math.floor(this.#rand() * timing.startupMs()));
        p.child.kill("SIGKILL");
        const pCode = await p.exited;
        for (const l of p.lines) all.push({ ...l, run });
        noteReady(p.lines);
        if (p.lines.some((l) => l.t === "synced")) pairedRuns++;
        partnerMessages += p.lines.filter((l) => l.t === "sent").length;
        schedule.push(
          `run ${run} partner: ${p.lines.length} lines (${tally(p.lines)})` +
            (pCode !== null ? `; EXITED EARLY (${pCode}): ${p.stderrTail.join(" | ")}` : ""),
        );
        if (pCode !== null) problems.push(`run ${run}'s partner exited by itself (${pCode}) before the kill`);
      }
      await stir();
      // Let the peer run ahead while the victim is down: a backlog to catch up on, now and then a
      // big one (several room keys and rotations in one sync, a limited timeline).
      await sleep(this.#rand() < 0.15 ? this.#between(1000, 2500) : this.#between(0, 300));
    }

    this.#stopPeer = true;
    await peerLoop;

    // The final clean run: drain the server, send once, read the whole history. It counts as hung
    // only when it stops making progress (no output) for far longer than a start-up takes here.
    const fin = spawnVictim(victimCfg("final", -1), this.#children);
    const hung = await this.#stalls(fin, () => STALL_STARTUPS * timing.slowestStartupMs());
    fin.child.kill("SIGKILL");
    const code = await fin.exited;
    for (const l of fin.lines) all.push({ ...l, run: -1 });
    noteReady(fin.lines);
    if (hung) problems.push(`the final run hung (no progress): ${fin.stderrTail.join(" | ")}`);
    else if (code !== 0 || !fin.lines.some((l) => l.t === "done")) {
      problems.push(`the final run failed (exit ${code}): ${fin.stderrTail.join(" | ")}`);
    }
    const drained = fin.lines.find((l): l is Extract<VictimLine, { t: "drained" }> => l.t === "drained");

    // The peer reads everything the victim sent (its Olm sessions to the victim and back work);
    // it catches up first (until the server holds no to-device message for it), the final run's
    // room key came after its loop stopped.
    for (let i = 0; i < 2 || (this.#lastToDevice.get("peer") ?? 0) > 0; i++)
      await peer.syncOnce({ timeoutMs: 0 });
    const victimSent = new Map<string, string>();
    for (const l of all) if (l.t === "sent") victimSent.set(l.eventId, l.body);
    const peerSaw = new Map<string, string | undefined>();
    for await (const ev of peer.history(roomId, { pageSize: 100 })) {
      if (ev.raw.type !== "m.room.encrypted") continue;
      peerSaw.set(
        ev.eventId,
        ev.encryption?.decrypted === true && typeof ev.content.body === "string"
          ? ev.content.body
          : undefined,
      );
    }
    for (const [eventId, body] of victimSent) {
      const got = peerSaw.get(eventId);
      if (got !== body) problems.push(`victim message ${eventId} (${body}) does not decrypt at the peer`);
    }
    // The other implementations read the final run's message (sent once the victim saw their devices).
    const finalSent = fin.lines.find((l): l is Extract<VictimLine, { t: "sent" }> => l.t === "sent");
    for (const f of this.#foreign) {
      if (finalSent === undefined) break;
      try {
        const m = await f.waitForMessage(roomId, (x) => x.eventId === finalSent.eventId && x.decrypted);
        if (m.body !== finalSent.body)
          problems.push(`${f.kind} decrypted the victim's final message wrongly`);
      } catch (e) {
        problems.push(
          `${f.kind} did not decrypt the victim's final message: ${e instanceof Error ? e.message : e}`,
        );
      }
    }

    // Key exchanges: who made each (tokens map to devices), then the one-time key invariants.
    const tokenDevice = new Map<string, DeviceRef>();
    for (const token of new Set(proxy.exchanges.map((x) => x.token))) {
      const who = await hs.api("GET", "/account/whoami", { token });
      if (who.status === 200)
        tokenDevice.set(token, { userId: who.json.user_id, deviceId: who.json.device_id });
    }
    const victimReady = all.find((l): l is Extract<RunLine, { t: "ready" }> => l.t === "ready");
    let otksClaimed = 0;
    let fallbackClaims = 0;
    let uploads = 0;
    problems.push(...peerProblems, ...this.#peerErrors, ...checkIdentity(all), ...checkNoErrors(all));
    let pendingToDevice = 0;
    let backupUploads = 0;
    let backedUpSessions = 0;
    if (victimDevice !== undefined && victimReady !== undefined) {
      const up = checkUploads(proxy.exchanges, tokenDevice, victimDevice, victimReady.ed25519);
      problems.push(...up.problems);
      const cl = checkClaims(proxy.exchanges, victimDevice, up.uploaded);
      problems.push(...cl.problems);
      otksClaimed = cl.claimed;
      fallbackClaims = cl.fallbackClaims;
      uploads = proxy.exchanges.filter((x) => {
        const who = tokenDevice.get(x.token);
        return x.kind === "upload" && who?.deviceId === victimDevice?.deviceId;
      }).length;
      // The server's own record, read from its database file (read-only, beside the running server).
      const db = new Database(join(this.#dir, "devserver.sqlite3"), { readonly: true, fileMustExist: true });
      try {
        const rows = db
          .prepare(
            "SELECT algorithm, key_id, key_json FROM one_time_keys WHERE user_id = ? AND device_id = ?",
          )
          .all(victimDevice.userId, victimDevice.deviceId) as {
          algorithm: string;
          key_id: string;
          key_json: string;
        }[];
        problems.push(...checkStoredKeys(rows, up.uploaded));
        const server: ServerBackup = readServerBackup(db, victimDevice.userId);
        const bk = checkBackup(all, proxy.exchanges, tokenDevice, victimDevice, server);
        problems.push(...bk.problems);
        backupUploads = bk.uploads;
        backedUpSessions = bk.sessions;
        if (rows.length === 0) problems.push("the server holds no one-time key of the victim at the end");
        const queued = db
          .prepare("SELECT COUNT(*) AS n FROM to_device WHERE user_id = ? AND device_id = ?")
          .get(victimDevice.userId, victimDevice.deviceId) as { n: number };
        pendingToDevice = queued.n;
      } finally {
        db.close();
      }
    }

    problems.push(...checkDecryptions(all, new Map([...expected, ...victimSent]), { pendingToDevice }));

    return {
      seed: this.seed,
      schedule,
      problems,
      stats: {
        peerMessages: expected.size,
        victimMessages: victimSent.size,
        decryptedLines: all.filter((l) => l.t === "dec").length,
        otksClaimed,
        fallbackClaims,
        uploads,
        backupUploads,
        backedUpSessions,
        extraDevices,
        foreignMessages,
        syncAimedRuns,
        killedInSync,
        killedInCarryingSync,
        killedBeforeReady,
        finalSyncs: drained?.syncs ?? 0,
        finalToDevice: drained?.toDevice ?? 0,
        pendingToDevice,
        pairedRuns,
        partnerMessages,
      },
    };
  }

  /**
   * Pair mode: the partner on the victim's store, once it is ready (on the first run it logs the
   * device in, so the victim resumes the same device); undefined when not in pair mode.
   */
  async #partner(cfg: VictimConfig): Promise<VictimRun | undefined> {
    if (!this.#opts.pair) return undefined;
    const p = spawnVictim(cfg, this.#children);
    await p.waitFor("ready");
    return p;
  }
}

/** The user's key backup as the devserver's database holds it (read-only). */
function readServerBackup(db: Database.Database, userId: string): ServerBackup {
  const versions = (
    db.prepare("SELECT version FROM backup_versions WHERE user_id = ? ORDER BY version").all(userId) as {
      version: number;
    }[]
  ).map((r) => String(r.version));
  const keys = new Map<string, Map<string, number>>();
  const rows = db
    .prepare("SELECT version, room_id, session_id, first_message_index FROM backup_keys WHERE user_id = ?")
    .all(userId) as { version: number; room_id: string; session_id: string; first_message_index: number }[];
  for (const r of rows) {
    let held = keys.get(String(r.version));
    if (held === undefined) {
      held = new Map();
      keys.set(String(r.version), held);
    }
    held.set(`${r.room_id}|${r.session_id}`, r.first_message_index);
  }
  return { versions, keys };
}

/** The loop reached the crash-during-sync window it exists for (see kill-timing.ts). */
export function assertSyncWindowExercised(result: KillLoopResult, text: string): void {
  const { syncAimedRuns, killedInCarryingSync } = result.stats;
  if (syncAimedRuns > 0 && killedInCarryingSync === 0)
    throw new Error(`no run was killed inside the handling of a sync response\n${text}`);
}

const MAX_PROBLEMS_SHOWN = 40;

/** The text a failing test prints: the seed to replay, the schedule, and the problems. */
export function describe(result: KillLoopResult): string {
  return [
    `kill loop seed ${result.seed} (replay: KEYROOM_CRASH_SEED=${result.seed})`,
    `stats: ${JSON.stringify(result.stats)}`,
    `crash-during-sync window: ${result.stats.killedInCarryingSync} of ${result.schedule.length} runs killed while handling a sync response that carried something (${result.stats.syncAimedRuns} aimed at it, ${result.stats.killedInSync} in any sync, ${result.stats.killedBeforeReady} before ready)`,
    ...result.schedule,
    ...result.problems.slice(0, MAX_PROBLEMS_SHOWN).map((p) => `PROBLEM: ${p}`),
    ...(result.problems.length > MAX_PROBLEMS_SHOWN
      ? [`... and ${result.problems.length - MAX_PROBLEMS_SHOWN} more problems`]
      : []),
  ].join("\n");
}
