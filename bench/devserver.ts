// Devserver throughput and latency: 10 users in one room send messages while each of them long-polls
// /sync; then the /sync latency of a to-device message. The server runs in a child process (its own
// event loop, as in real use); the clients here. KEYROOM_BENCH_DEVSERVER_URL points the same load
// at an already running homeserver instead. Prints a table, and a JSON report as the last line.
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { startDevServer } from "../src/devserver/index.ts";

const USERS = 10;
const MESSAGES_PER_USER = Number(process.env.KEYROOM_BENCH_DEVSERVER_MESSAGES ?? 200);
const LATENCY_ROUNDS = 200;

interface User {
  userId: string;
  token: string;
  deviceId: string;
}

if (process.argv.includes("--serve")) {
  // Child mode: serve until the parent closes our stdin.
  const s = await startDevServer({ port: 0, memory: true });
  console.log(s.baseUrl);
  process.stdin.resume();
  process.stdin.on("end", () => void s.close());
} else {
  await runBench();
}

async function startServer(): Promise<{ baseUrl: string; stop(): void }> {
  const external = process.env.KEYROOM_BENCH_DEVSERVER_URL;
  if (external) return { baseUrl: external, stop() {} };
  const child = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", fileURLToPath(import.meta.url), "--serve"],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once("line", resolve);
    child.once("error", reject);
  });
  return { baseUrl: line.trim(), stop: () => child.stdin.end() };
}

async function runBench(): Promise<void> {
  const server = await startServer();
  const base = `${server.baseUrl}/_matrix/client/v3`;

  async function call(
    method: string,
    path: string,
    token?: string,
    body?: unknown,
  ): Promise<Record<string, unknown>> {
    const headers: Record<string, string> = { "Content-Type": "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(base + path, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${String(json.errcode)}`);
    return json;
  }

  async function register(name: string): Promise<User> {
    const r = await call("POST", "/register", undefined, {
      username: name,
      password: "pw",
      auth: { type: "m.login.dummy" },
    });
    return { userId: String(r.user_id), token: String(r.access_token), deviceId: String(r.device_id) };
  }

  const users: User[] = [];
  const run = Date.now().toString(36);
  for (let i = 0; i < USERS; i++) users.push(await register(`bench${i}_${run}`));
  const roomId = String(
    (await call("POST", "/createRoom", users[0]!.token, { preset: "public_chat" })).room_id,
  );
  for (const u of users.slice(1))
    await call("POST", `/rooms/${encodeURIComponent(roomId)}/join`, u.token, {});

  const total = USERS * MESSAGES_PER_USER;

  /** Long-polls until `want` messages arrived in the room; resolves with the time the last one came. */
  async function syncUntil(u: User, want: number): Promise<number> {
    let since = String((await call("GET", "/sync?timeout=0", u.token)).next_batch);
    let seen = 0;
    const filter = encodeURIComponent(JSON.stringify({ room: { timeline: { limit: 500 } } }));
    while (seen < want) {
      const r = await call("GET", `/sync?since=${since}&timeout=30000&filter=${filter}`, u.token);
      since = String(r.next_batch);
      const join = (r.rooms as { join: Record<string, { timeline: { events: { type: string }[] } }> }).join;
      for (const ev of join[roomId]?.timeline.events ?? []) if (ev.type === "m.room.message") seen += 1;
    }
    return performance.now();
  }

  const syncers = users.map((u) => syncUntil(u, total));
  const t0 = performance.now();
  await Promise.all(
    users.map(async (u, ui) => {
      for (let i = 0; i < MESSAGES_PER_USER; i++) {
        await call("PUT", `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${ui}-${i}`, u.token, {
          msgtype: "m.text",
          body: `message ${i} from ${ui}`,
        });
      }
    }),
  );
  const sentAt = performance.now();
  const doneAt = Math.max(...(await Promise.all(syncers)));
  const sendRate = total / ((sentAt - t0) / 1000);
  const deliveredRate = (total * USERS) / ((doneAt - t0) / 1000);

  // To-device latency: receiver long-polls, sender sends; time until the receiver's sync returns it.
  const [a, b] = [users[0]!, users[1]!];
  let since = String((await call("GET", "/sync?timeout=0", b.token)).next_batch);
  const latencies: number[] = [];
  for (let i = 0; i < LATENCY_ROUNDS; i++) {
    const poll = call("GET", `/sync?since=${since}&timeout=30000`, b.token);
    // Let the long poll reach the server before sending.
    await new Promise((r) => setImmediate(r));
    const start = performance.now();
    await call("PUT", `/sendToDevice/m.bench/${i}`, a.token, {
      messages: { [b.userId]: { [b.deviceId]: { i } } },
    });
    let r = await poll;
    while ((r.to_device as { events: unknown[] }).events.length === 0) {
      since = String(r.next_batch);
      r = await call("GET", `/sync?since=${since}&timeout=30000`, b.token);
    }
    latencies.push(performance.now() - start);
    since = String(r.next_batch);
  }
  latencies.sort((x, y) => x - y);
  const pct = (p: number): number =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
  server.stop();

  const report = {
    users: USERS,
    messages: total,
    sendPerSec: Math.round(sendRate),
    deliveredPerSec: Math.round(deliveredRate),
    toDeviceLatencyMs: { p50: Number(pct(0.5).toFixed(2)), p95: Number(pct(0.95).toFixed(2)) },
  };
  console.log(`devserver: ${USERS} users in one room, ${total} messages`);
  console.log(`  sent            ${report.sendPerSec} messages/s`);
  console.log(
    `  sent + synced   ${report.deliveredPerSec} event deliveries/s (each message to all ${USERS} users)`,
  );
  console.log(
    `  to-device /sync latency p50 ${report.toDeviceLatencyMs.p50} ms, p95 ${report.toDeviceLatencyMs.p95} ms`,
  );
  console.log(JSON.stringify(report));
}
