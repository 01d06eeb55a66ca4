// `keyroom verify request` / `verify listen`, spawned: two profiles (two devices of one user)
// verify each other, each fed `y` once its SAS line is out; `keyroom trust` then shows the other
// device verified on both sides. A mismatch ends both with `cancelled` and exit 1.
import assert from "node:assert/strict";
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { getEventListeners } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import QRCode from "qrcode";
import { runCli } from "../../src/cli/program.ts";
import { encodeBase64 } from "../../src/crypto/primitives/index.ts";
import { encodeQrCode } from "../../src/e2ee/index.ts";
import { scaledMs } from "../support/budget.ts";
import { accountArgs, runKeyroom, startKeyroom } from "../support/cli.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

let hs: TestDevServer;
let dir: string;

before(async () => {
  hs = await startTestDevServer();
  dir = await mkdtemp(join(tmpdir(), "keyroom-cli-verify-"));
});
after(async () => {
  await hs.close();
  await rm(dir, { recursive: true, force: true });
});

async function inProcess(args: string[]): Promise<string> {
  const r = await runKeyroom(args);
  assert.equal(r.code, 0, `keyroom ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/**
 * Runs `keyroom ...args` in process and aborts it once the command watches the abort signal (as
 * the CLI's Ctrl-C / SIGTERM handler asks it to stop then); its exit code and stdout.
 */
async function stoppedOnceWatching(args: string[]): Promise<{ code: number; out: string }> {
  const stop = new AbortController();
  let out = "";
  const run = runCli(args, { out: (s) => (out += s), err: () => undefined, signal: stop.signal });
  while (getEventListeners(stop.signal, "abort").length === 0) await new Promise((r) => setTimeout(r, 5));
  stop.abort();
  const code = await run;
  return { code, out };
}

interface Spawned {
  child: ChildProcessWithoutNullStreams;
  lines: Record<string, unknown>[];
  exited: Promise<{ code: number | null; stderr: string }>;
}

/** Spawns `keyroom ...args`; answers `answer` on stdin once a `sas` (or `scanned`) line was printed. */
function spawnVerify(
  args: string[],
  answer: string,
  onLine?: (line: Record<string, unknown>) => void,
): Spawned {
  const child = startKeyroom(args);
  const lines: Record<string, unknown>[] = [];
  let out = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    out += d;
    let nl = out.indexOf("\n");
    while (nl >= 0) {
      const line = JSON.parse(out.slice(0, nl)) as Record<string, unknown>;
      out = out.slice(nl + 1);
      lines.push(line);
      if (line.event === "sas" || line.event === "scanned") child.stdin.write(`${answer}\n`);
      onLine?.(line);
      nl = out.indexOf("\n");
    }
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, stderr })),
  );
  return { child, lines, exited };
}

async function twoDevices(
  prefix: string,
): Promise<{ userId: string; a: string; b: string; deviceB: string }> {
  const { name, profile: a } = await oneUser(prefix, "-a");
  const b = join(dir, `${name}-b`);
  await inProcess(["login", "--homeserver", hs.baseUrl, "--user", name, "--password", "pw", "--profile", b]);
  const who = JSON.parse(await inProcess(["whoami", "--profile", b])) as {
    user_id: string;
    device_id: string;
  };
  return { userId: who.user_id, a, b, deviceB: who.device_id };
}

/** A new user with one profile (its folder the user's name and `suffix`). */
async function oneUser(
  prefix: string,
  suffix = "",
): Promise<{ name: string; userId: string; profile: string }> {
  const name = `${prefix}${Date.now().toString(36)}`;
  const profile = join(dir, `${name}${suffix}`);
  const [line] = (await inProcess(accountArgs("register", hs.baseUrl, name, profile))).trim().split("\n");
  return { name, userId: (JSON.parse(line ?? "{}") as { user_id: string }).user_id, profile };
}

describe("keyroom verify (spawned)", () => {
  test("request / listen fed y: both print sas then done, exit 0; trust shows verified both ways", async () => {
    const { userId, a, b, deviceB } = await twoDevices("cv");
    const listen = spawnVerify(["verify", "listen", "--profile", b], "y");
    const request = spawnVerify(["verify", "request", userId, deviceB, "--profile", a], "y");
    const [rl, rr] = await Promise.all([listen.exited, request.exited]);
    assert.equal(rl.code, 0, rl.stderr);
    assert.equal(rr.code, 0, rr.stderr);
    const sasL = listen.lines.find((l) => l.event === "sas");
    const sasR = request.lines.find((l) => l.event === "sas");
    assert.ok(sasL && sasR);
    assert.deepEqual(sasL, sasR);
    const emoji = sasL.emoji as { symbol: string; name: string }[];
    assert.equal(emoji.length, 7);
    for (const e of emoji) assert.deepEqual(Object.keys(e).sort(), ["name", "symbol"]);
    assert.equal((sasL.decimals as number[]).length, 3);
    const doneR = request.lines.at(-1);
    assert.deepEqual(doneR, { event: "done", user_id: userId, device_id: deviceB, verified: true });
    const doneL = listen.lines.at(-1);
    assert.equal(doneL?.event, "done");
    assert.equal(doneL?.verified, true);

    const trustA = (await inProcess(["trust", userId, "--profile", a]))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(trustA.find((l) => l.device_id === deviceB)?.verified, true);
    const trustB = (await inProcess(["trust", userId, "--profile", b]))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(
      trustB.find((l) => l.device_id === doneL?.device_id && l.local !== undefined)?.verified,
      true,
    );
  });

  test("another user, in a DM: listen joins the DM invitation; an answer other than y is a mismatch", async () => {
    // Two users: `verify request USER` asks in a new DM, which `verify listen` must join to see it.
    const [asking, asked] = await Promise.all([oneUser("cw"), oneUser("cy")]);
    const listen = spawnVerify(
      ["verify", "listen", "--timeout", String(scaledMs(60_000) / 1000), "--profile", asked.profile],
      "y",
    );
    const request = spawnVerify(["verify", "request", asked.userId, "--profile", asking.profile], "n");
    const rl = await listen.exited;
    // A listener that never saw the request leaves it waiting for its own timeout (ten minutes).
    if (listen.lines.at(-1)?.code === "m.timeout") request.child.kill();
    const rr = await request.exited;
    assert.deepEqual(listen.lines.at(-1), {
      event: "cancelled",
      code: "m.mismatched_sas",
      reason: "the short authentication strings differ",
    });
    assert.equal(rl.code, 1);
    assert.equal(rr.code, 1);
    assert.deepEqual(request.lines.at(-1), {
      event: "cancelled",
      code: "m.mismatched_sas",
      reason: "the short authentication strings differ",
    });
    assert.deepEqual(
      listen.lines.find((l) => l.event === "sas"),
      request.lines.find((l) => l.event === "sas"),
    );
  });

  test("listen --timeout with no request: cancelled m.timeout, exit 1", async () => {
    const { b } = await twoDevices("cx");
    const listen = spawnVerify(["verify", "listen", "--timeout", "0.2", "--profile", b], "y");
    const r = await listen.exited;
    assert.equal(r.code, 1);
    assert.deepEqual(listen.lines, [
      { event: "cancelled", code: "m.timeout", reason: "no verification request arrived" },
    ]);
  });

  test("listen stopped by Ctrl-C / SIGTERM with no request: cancelled m.user, exit 1", async () => {
    const { b } = await twoDevices("cs");
    const { code, out } = await stoppedOnceWatching(["verify", "listen", "--profile", b]);
    assert.equal(code, 1);
    assert.deepEqual(JSON.parse(out), {
      event: "cancelled",
      code: "m.user",
      reason: "stopped before a verification request arrived",
    });
  });

  test("qr scan stopped by Ctrl-C / SIGTERM before its request came: cancelled m.user, exit 1", async () => {
    const { b } = await twoDevices("cz");
    // A well-formed code whose request never comes.
    const code = encodeQrCode({
      mode: 2,
      flowId: "never-sent",
      key1: encodeBase64(new Uint8Array(32).fill(1)),
      key2: encodeBase64(new Uint8Array(32).fill(2)),
      secret: encodeBase64(new Uint8Array(16).fill(3)),
    });
    const stopped = await stoppedOnceWatching([
      "verify",
      "qr",
      "scan",
      Buffer.from(code).toString("base64"),
      "--profile",
      b,
    ]);
    assert.equal(stopped.code, 1);
    assert.deepEqual(JSON.parse(stopped.out), {
      event: "cancelled",
      code: "m.user",
      reason: "stopped before the request of this code arrived",
    });
  });

  test("qr show / qr scan FILE.png between two devices of one user (mode 0x02): done on both", async () => {
    const { userId, a, b } = await twoDevices("cq");
    await inProcess(["identity", "bootstrap", "--password", "pw", "--profile", a]);
    const deviceA = (JSON.parse(await inProcess(["whoami", "--profile", a])) as { device_id: string })
      .device_id;
    let scan: Spawned | undefined;
    let showRun: Spawned | undefined;
    let shownMode: number | undefined;
    const scanStarted = new Promise<Spawned>((resolve) => {
      const show = spawnVerify(["verify", "qr", "show", userId, deviceA, "--profile", b], "y", (line) => {
        if (line.event !== "qr") return;
        const bytes = Buffer.from(line.bytes as string, "base64");
        shownMode = bytes[7]; // after "MATRIX" and the version byte
        const png = join(dir, `${userId.slice(1, 8)}-code.png`);
        void QRCode.toFile(png, [{ data: bytes, mode: "byte" }]).then(() => {
          scan = spawnVerify(["verify", "qr", "scan", png, "--profile", a], "y");
          resolve(scan);
        });
      });
      showRun = show;
    });
    const scanner = await scanStarted;
    assert.equal(shownMode, 0x02, "the new device shows mode 0x02 (it does not trust the master key yet)");
    const [rs, rc] = await Promise.all([(showRun as unknown as Spawned).exited, scanner.exited]);
    assert.equal(rc.code, 0, rc.stderr);
    assert.equal(rs.code, 0, rs.stderr);
    // The code is also drawn in the terminal (stderr), with the qrcode library's block characters.
    assert.match(rs.stderr, /[▀▄█]{7}/);
    assert.equal(scanner.lines.at(-1)?.event, "done");
    const shower = showRun as unknown as Spawned;
    assert.deepEqual(
      shower.lines.map((l) => l.event),
      ["qr", "scanned", "done"],
    );
    assert.equal(scan, scanner);
  });
});
