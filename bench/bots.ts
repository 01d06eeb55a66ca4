// Bot benchmark (`npm run bench -- bots`): encrypted command round trips through the devserver.
// N users each send commands to one bot, one after another, all users at once; the figures are
// answered commands per second and the latency from a user's send to the reply (decrypted, for
// Keyroom) arriving at that user, p50 and p99; the bot process's CPU time per answered command
// (user + system, read by the bot before and after the commands: on a loaded machine the one
// figure that does not count the neighbours), the users' process's and the devserver's (read from
// /proc: the three share the machine's cores, so their sum per command is what bounds the rate);
// then the bot's RSS once it is in ROOMS rooms.
// Side by side, in the same run and on the same devserver: a Keyroom bot (`keyroom/bot`) in
// encrypted rooms and a matrix-bot-sdk bot in plain rooms, each in its own process. The users are
// Keyroom clients on both sides (with encryption only on the Keyroom side), in this process; the
// devserver runs in a process of its own (`keyroom devserver --memory`), as a homeserver does:
// in the users' process, their crypto stores' synced commits stalled it for every party.
//
// matrix-bot-sdk is installed in bench/bots/ (`npm --prefix bench/bots install`), with its native
// crypto module replaced by an empty stand-in: that module's install script downloads a binary
// from outside the package registries, which fails on offline machines (and here). Plain rooms
// never call it.
//   node --conditions=source --import tsx bench/bots.ts [--quick]
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MatrixClient } from "../src/index.ts";
import { mainThreadCpuMicros, processCpuMicros } from "./bots-thread-cpu.ts";

const QUICK = process.argv.includes("--quick") || process.env.KEYROOM_BENCH_QUICK === "1";
const USERS = QUICK ? 4 : 10;
// Full-run sizes (issue 14: every ratio from at least 5 repetitions, the whole `npm run bench` under
// 20 minutes here): 5 repetitions of 10 users × 20 commands, and the RSS figure with the bot in the
// issue's 1 000 rooms (112 s for the section at load ~3; 50 commands and 3 repetitions took 6.5 min).
const COMMANDS = Number(process.env.KEYROOM_BENCH_BOT_COMMANDS ?? (QUICK ? 10 : 20));
const ROOMS = Number(process.env.KEYROOM_BENCH_BOT_ROOMS ?? (QUICK ? 50 : 1000));
/**
 * `KEYROOM_BENCH_BOT_FILL_FIRST=1`: the bot joins its ROOMS rooms before the commands, not after,
 * so the commands measure a bot in that many rooms (per-response work that grows with the rooms).
 */
const FILL_FIRST = process.env.KEYROOM_BENCH_BOT_FILL_FIRST === "1";
const root = fileURLToPath(new URL("..", import.meta.url));
const BOT_SDK = join(root, "bench/bots/node_modules/matrix-bot-sdk");

interface SideResult {
  side: string;
  encrypted: boolean;
  commands: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  rooms: number;
  rssBytes: number;
  /** The bot process's CPU time per answered command, in milliseconds. */
  cpuMsPerCommand: number;
  /** The users' process's CPU time (this process: the users' clients) per answered command. */
  usersCpuMsPerCommand: number;
  /**
   * The devserver process's CPU time per answered command (all processes share the machine's
   * cores, so the sum of the three decides the rate); absent where /proc cannot tell.
   */
  serverCpuMsPerCommand?: number;
  /**
   * The same two figures for the main threads alone (without V8's compiler and GC helper
   * threads); absent where /proc cannot tell (not Linux) and for matrix-bot-sdk's bot.
   */
  mainCpuMsPerCommand?: number;
  usersMainCpuMsPerCommand?: number;
  /** Lowest and highest answered/s over the repetitions. */
  spread?: [number, number];
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function waitReady(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = "";
    child.stdout?.on("data", (d: Buffer) => {
      buffer += d.toString("utf8");
      const line = buffer.split("\n").find((l) => l.includes('"ready"'));
      if (line !== undefined) resolve((JSON.parse(line) as { userId: string }).userId);
    });
    child.once("close", (code) => reject(new Error(`bot process exited ${code}`)));
  });
}

/** A user whose replies from the bot resolve waiting sends, in order. */
class User {
  readonly waiting = new Map<string, () => void>();
  constructor(
    readonly client: MatrixClient,
    readonly botId: string,
  ) {
    const onEvent = (ev: { sender: string; type: string; content: Record<string, unknown> }) => {
      if (ev.sender !== botId || ev.type !== "m.room.message") return;
      const body = String(ev.content.body);
      const key = [...this.waiting.keys()].find(
        (k) => body === k || (k === "!stats" && /^stats \d+ \d+ \d+( -?\d+)?$/.test(body)),
      );
      if (key === undefined) return;
      this.lastBody = body;
      const done = this.waiting.get(key);
      this.waiting.delete(key);
      done?.();
    };
    client.on("room.event", (_r, ev) => onEvent(ev));
    client.on("room.decrypted", (_r, ev) => onEvent(ev));
  }
  lastBody = "";
  roomId = "";
  /** Sends `command`, resolves with the milliseconds until the reply `expect` arrived. */
  async roundTrip(command: string, expect: string): Promise<number> {
    const t0 = performance.now();
    const answered = new Promise<void>((resolve) => this.waiting.set(expect, resolve));
    await this.client.sendText(this.roomId, command);
    await answered;
    return performance.now() - t0;
  }
  /** The bot's joined rooms, RSS bytes, CPU microseconds so far, and its main thread's (-1: unknown). */
  async stats(): Promise<{ rooms: number; rss: number; cpuMicros: number; mainCpuMicros: number }> {
    await this.roundTrip("!stats", "!stats");
    const [, rooms = 0, rss = 0, cpuMicros = 0, mainCpuMicros = -1] = this.lastBody.split(" ").map(Number);
    return { rooms, rss, cpuMicros, mainCpuMicros };
  }
}

/**
 * `KEYROOM_BENCH_BOT_PROFILE=DIR`: CPU profiles of the command phase, of this process (the users)
 * and of the Keyroom bot's (`bench/bots-keyroom.ts`), are written to DIR.
 */
const PROFILE_DIR = process.env.KEYROOM_BENCH_BOT_PROFILE;
async function startUsersProfile(): Promise<{ stop(name: string): Promise<void> } | undefined> {
  if (PROFILE_DIR === undefined) return undefined;
  const { Session } = await import("node:inspector/promises");
  const { writeFile } = await import("node:fs/promises");
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  return {
    async stop(name) {
      const { profile } = await session.post("Profiler.stop");
      await writeFile(join(PROFILE_DIR, `${name}-${Date.now()}.cpuprofile`), JSON.stringify(profile));
      session.disconnect();
    },
  };
}

/** Polls of the bot's room count (one a second) without a new room before the fill gives up. */
const MAX_STALLED_POLLS = 120;

async function runSide(
  side: "keyroom" | "matrix-bot-sdk",
  { baseUrl, pid: serverPid }: { baseUrl: string; pid: number },
  dir: string,
  encrypted = side === "keyroom",
  /** Fill up to ROOMS rooms for the RSS figure (the first repetition only: it takes a while). */
  fill = true,
): Promise<SideResult> {
  const botName = `${side === "keyroom" ? "kr" : "sdk"}bot${Date.now().toString(36)}`;
  let child: ChildProcess;
  if (side === "keyroom") {
    child = spawn(
      process.execPath,
      [
        "--conditions=source",
        "--import",
        "tsx",
        "bench/bots-keyroom.ts",
        baseUrl,
        join(dir, botName),
        botName,
        "pw",
      ],
      { cwd: root, stdio: ["ignore", "pipe", "inherit"] },
    );
  } else {
    // No refresh token: matrix-bot-sdk keeps the access token it is given and cannot renew it.
    const reg = new MatrixClient({ homeserverUrl: baseUrl, refreshTokens: false });
    await reg.register({ username: botName, password: "pw" });
    const token = (await reg.store.loadSession())?.accessToken ?? "";
    child = spawn(process.execPath, ["bench/bots/bot-sdk-echo.cjs", baseUrl, token], {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"],
    });
  }
  const users: User[] = [];
  try {
    const botId = await waitReady(child);
    for (let i = 0; i < USERS; i++) {
      const client = new MatrixClient({
        homeserverUrl: baseUrl,
        ...(encrypted ? { encryption: { store: { directory: join(dir, `${botName}-u${i}`) } } } : {}),
      });
      await client.register({ username: `${botName}u${i}`, password: "pw" });
      const user = new User(client, botId);
      await client.startSync();
      user.roomId = await client.createRoom({ invite: [botId], encrypted });
      while (client.getRoom(user.roomId)?.getMember(botId)?.membership !== "join") {
        await new Promise((r) => setTimeout(r, 20));
      }
      await user.roundTrip("!echo warm-up", "warm-up");
      users.push(user);
    }
    const filler = users[0] as User;
    const target = fill ? ROOMS : users.length;
    /** The bot in `target` rooms: one user invites it into the rest; resolves with its stats then. */
    let created = 0;
    const fillRooms = async () => {
      for (; users.length + created < target; created++)
        await filler.client.createRoom({ invite: [botId], encrypted });
      // Fails rather than waits for ever when the bot stops joining (e.g. it declines invitations).
      let best = -1;
      for (let stalled = 0; ; ) {
        const stats = await filler.stats();
        if (stats.rooms >= target) return stats;
        if (stats.rooms > best) [best, stalled] = [stats.rooms, 0];
        else if (++stalled >= MAX_STALLED_POLLS)
          throw new Error(`the ${side} bot stopped joining rooms at ${stats.rooms} of ${target}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    };
    if (FILL_FIRST) await fillRooms();
    const latencies: number[] = [];
    const before = await (users[0] as User).stats();
    const profiler = await startUsersProfile();
    const usersCpu0 = process.cpuUsage();
    const usersMain0 = mainThreadCpuMicros();
    const server0 = processCpuMicros(serverPid);
    const t0 = performance.now();
    await Promise.all(
      users.map(async (u, i) => {
        for (let n = 0; n < COMMANDS; n++)
          latencies.push(await u.roundTrip(`!echo u${i} c${n}`, `u${i} c${n}`));
      }),
    );
    const wallMs = performance.now() - t0;
    const usersCpu = process.cpuUsage(usersCpu0);
    const usersMain = mainThreadCpuMicros();
    const server1 = processCpuMicros(serverPid);
    await profiler?.stop(`users-${side}-${encrypted ? "encrypted" : "plain"}`);
    const after = await (users[0] as User).stats();
    const cpuMicros = after.cpuMicros - before.cpuMicros;
    const perCommand = (micros: number) => micros / 1000 / latencies.length;
    const main = {
      ...(before.mainCpuMicros >= 0 && after.mainCpuMicros >= 0
        ? { mainCpuMsPerCommand: perCommand(after.mainCpuMicros - before.mainCpuMicros) }
        : {}),
      ...(usersMain0 >= 0 && usersMain >= 0
        ? { usersMainCpuMsPerCommand: perCommand(usersMain - usersMain0) }
        : {}),
      ...(server0 >= 0 && server1 >= 0 ? { serverCpuMsPerCommand: perCommand(server1 - server0) } : {}),
    };
    latencies.sort((a, b) => a - b);

    const { rooms, rss } = await fillRooms();
    return {
      side,
      encrypted,
      commands: latencies.length,
      perSecond: latencies.length / (wallMs / 1000),
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      rooms,
      rssBytes: rss,
      cpuMsPerCommand: cpuMicros / 1000 / latencies.length,
      usersCpuMsPerCommand: (usersCpu.user + usersCpu.system) / 1000 / latencies.length,
      ...main,
    };
  } finally {
    for (const u of users) await u.client.close().catch(() => undefined);
    child.kill("SIGTERM");
  }
}

/** `keyroom devserver --memory` in its own process; resolves with its base URL. */
async function startDevServerProcess(): Promise<{ baseUrl: string; pid: number; close(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", "src/cli/main.ts", "devserver", "--memory", "--port", "0"],
    { cwd: root, stdio: ["ignore", "pipe", "inherit"] },
  );
  const baseUrl = await new Promise<string>((resolve, reject) => {
    let buffer = "";
    child.stdout.on("data", (d: Buffer) => {
      buffer += d.toString("utf8");
      const line = buffer.split("\n").find((l) => l.startsWith("http"));
      if (line !== undefined) resolve(line.trim());
    });
    child.once("close", (code) => reject(new Error(`devserver exited ${code}`)));
  });
  return {
    baseUrl,
    pid: child.pid ?? -1,
    close: () =>
      new Promise<void>((resolve) => {
        child.once("close", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

const server = await startDevServerProcess();
const dir = await mkdtemp(join(tmpdir(), "keyroom-bench-bots-"));
const results: SideResult[] = [];
/** Repetitions; the sides alternate their order each time, so load from other processes falls on all. */
const REPS = Number(process.env.KEYROOM_BENCH_BOT_REPS ?? (QUICK ? 1 : 5));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
/** `{ [key]: median }` over the runs that have the figure, `{}` when none has. */
function medianOf(
  all: SideResult[],
  key: "mainCpuMsPerCommand" | "usersMainCpuMsPerCommand" | "serverCpuMsPerCommand",
) {
  const xs = all.flatMap((r) => (r[key] === undefined ? [] : [r[key]]));
  return xs.length > 0 ? { [key]: median(xs) } : {};
}
try {
  console.log(
    `${USERS} users × ${COMMANDS} commands each, all users at once; RSS with the bot in ${ROOMS} rooms; ` +
      `${REPS} repetition(s), sides alternating`,
  );
  type Side = { label: string; run: (fill: boolean) => Promise<SideResult> };
  const sides: Side[] = [
    { label: "keyroom encrypted", run: (fill) => runSide("keyroom", server, dir, true, fill) },
    // The framework's own cost, apart from encryption's.
    { label: "keyroom plain", run: (fill) => runSide("keyroom", server, dir, false, fill) },
  ];
  if (existsSync(BOT_SDK))
    sides.push({
      label: "matrix-bot-sdk plain",
      run: (fill) => runSide("matrix-bot-sdk", server, dir, false, fill),
    });
  else console.log("SKIPPED: matrix-bot-sdk side (install it with: npm --prefix bench/bots install)");
  // `KEYROOM_BENCH_BOT_SIDES=keyroom encrypted,…`: only these sides (for profiling one).
  const only = process.env.KEYROOM_BENCH_BOT_SIDES?.split(",").map((l) => l.trim());
  if (only !== undefined) sides.splice(0, sides.length, ...sides.filter((s) => only.includes(s.label)));
  const runs = new Map<string, SideResult[]>(sides.map((s) => [s.label, []]));
  for (let rep = 0; rep < REPS; rep++) {
    for (const side of rep % 2 === 0 ? sides : [...sides].reverse())
      runs.get(side.label)?.push(await side.run(rep === 0));
  }
  for (const side of sides) {
    const all = runs.get(side.label) ?? [];
    const first = all[0] as SideResult;
    results.push({
      ...first,
      perSecond: median(all.map((r) => r.perSecond)),
      p50Ms: median(all.map((r) => r.p50Ms)),
      p99Ms: median(all.map((r) => r.p99Ms)),
      cpuMsPerCommand: median(all.map((r) => r.cpuMsPerCommand)),
      usersCpuMsPerCommand: median(all.map((r) => r.usersCpuMsPerCommand)),
      ...medianOf(all, "mainCpuMsPerCommand"),
      ...medianOf(all, "usersMainCpuMsPerCommand"),
      ...medianOf(all, "serverCpuMsPerCommand"),
      rssBytes: first.rssBytes, // the run that filled the rooms
      spread: [Math.min(...all.map((r) => r.perSecond)), Math.max(...all.map((r) => r.perSecond))],
    });
  }
  const rows = [
    [
      "bot",
      "rooms",
      "answered/s (min–max)",
      "p50",
      "p99",
      "bot CPU/command",
      "users CPU/command",
      "server CPU/command",
      `RSS in ${ROOMS} rooms`,
    ],
  ];
  for (const r of results) {
    rows.push([
      r.side,
      r.encrypted ? "encrypted" : "plain",
      `${r.perSecond.toFixed(1)} (${r.spread?.map((x) => x.toFixed(1)).join("–")})`,
      `${r.p50Ms.toFixed(1)} ms`,
      `${r.p99Ms.toFixed(1)} ms`,
      `${r.cpuMsPerCommand.toFixed(2)} ms`,
      `${r.usersCpuMsPerCommand.toFixed(2)} ms`,
      r.serverCpuMsPerCommand === undefined ? "n/a" : `${r.serverCpuMsPerCommand.toFixed(2)} ms`,
      `${(r.rssBytes / 2 ** 20).toFixed(0)} MiB`,
    ]);
  }
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length))) ?? [];
  for (const r of rows)
    console.log(
      r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join("  "),
    );
  // V8's helper threads (optimizing compiler, parallel GC) count in the figures above.
  for (const r of results) {
    if (r.mainCpuMsPerCommand === undefined && r.usersMainCpuMsPerCommand === undefined) continue;
    const ms = (x: number | undefined) => (x === undefined ? "n/a" : `${x.toFixed(2)} ms`);
    console.log(
      `${r.side} ${r.encrypted ? "encrypted" : "plain"}, main threads only: bot ${ms(r.mainCpuMsPerCommand)}, users ${ms(r.usersMainCpuMsPerCommand)} per command`,
    );
  }
  const kr = results[0];
  const sdk = results.find((r) => r.side === "matrix-bot-sdk");
  if (kr !== undefined && sdk !== undefined) {
    const ratio = kr.perSecond / sdk.perSecond;
    console.log(
      `Keyroom (encrypted) / matrix-bot-sdk (plain): ${ratio.toFixed(2)}x answered/s (target ≥1x ${ratio >= 1 ? "✓" : "✗"})`,
    );
  }
} finally {
  await server.close();
  await rm(dir, { recursive: true, force: true });
}
console.log(JSON.stringify({ users: USERS, commandsPerUser: COMMANDS, rooms: ROOMS, results }));
