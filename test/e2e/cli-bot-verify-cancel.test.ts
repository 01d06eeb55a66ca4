// `keyroom bot verify USER` while the operator has not answered yet (stdin open, no line) and the
// owner's device says the emoji differ: the command prints `cancelled` and exits 1 at once, both
// through the running bot's control socket and with the bot stopped (its device opened by the
// command).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { initBotDir } from "../../src/bot/index.ts";
import { runCli } from "../../src/cli/program.ts";
import { MatrixClient, type VerificationRequest } from "../../src/index.ts";
import { withinBudget } from "../support/budget.ts";
import { type CliRun, finished, startKeyroom } from "../support/cli.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

let hs: TestDevServer;
let dir: string;
let owner: MatrixClient;
let botDir: string;
let botId: string;
const requests: VerificationRequest[] = [];
let requested: () => void = () => {};

before(async () => {
  hs = await startTestDevServer();
  dir = await mkdtemp(join(tmpdir(), "keyroom-bot-verify-cancel-"));
  owner = new MatrixClient({
    homeserverUrl: hs.baseUrl,
    encryption: { store: { directory: join(dir, "owner") } },
  });
  await owner.register({ username: "owner", password: "pw" });
  owner.on("verification.request", (r) => {
    requests.push(r);
    requested();
  });
  await owner.startSync();
  botDir = join(dir, "bot");
  const made = await initBotDir({
    dir: botDir,
    homeserverUrl: hs.baseUrl,
    user: "cancelbot",
    password: "pw",
    owners: [owner.userId],
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  botId = made.userId;
});
after(async () => {
  await owner.close();
  await hs.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * `keyroom bot verify` (spawned) with an operator who never answers (stdin open, no line); the
 * owner accepts the bot's request and, once the emoji show, reports a mismatch. Resolves with the
 * command's exit status and output.
 */
async function verifyWithMismatch(): Promise<CliRun> {
  const before = requests.length;
  const next = new Promise<void>((resolve) => {
    requested = resolve;
  });
  const child = startKeyroom(["bot", "verify", owner.userId, "--dir", botDir]);
  const shown = new Promise<void>((resolve) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes('"event":"sas"')) resolve();
    });
  });
  const exit = finished(child);
  try {
    while (requests.length === before) await next;
    const request = requests[before] as VerificationRequest;
    await request.accept();
    await request.waitFor((s) => s.sas?.decimals !== undefined);
    await shown;
    await request.mismatch();
    // Without the fix the command waits for the operator's line, which never comes.
    return await withinBudget(exit, 30_000, (ms) => new Error(`bot verify still waiting after ${ms} ms`));
  } finally {
    child.kill("SIGKILL");
  }
}

test("bot verify through the running bot, then with the bot stopped: the owner's mismatch ends it", async () => {
  const stop = new AbortController();
  let log = "";
  let logged: () => void = () => {};
  const started = new Promise<void>((resolve) => {
    logged = () => {
      if (log.includes('"bot started"')) resolve();
    };
  });
  let errors = "";
  const running = runCli(["bot", "run", botDir], {
    out: (s) => {
      log += s;
      logged();
    },
    err: (s) => {
      errors += s;
    },
    signal: stop.signal,
  });
  try {
    await Promise.race([
      started,
      running.then((code) => {
        throw new Error(`bot run exited ${code} before it started: ${errors}${log}`);
      }),
    ]);
    const roomId = await owner.createDirectRoom(botId, { encrypted: true });
    while (owner.getRoom(roomId)?.getMember(botId)?.membership !== "join") {
      await new Promise((r) => setTimeout(r, 50));
    }
    const viaSocket = await verifyWithMismatch();
    assert.equal(viaSocket.code, 1, viaSocket.stderr);
    assert.match(viaSocket.stdout, /"event":"cancelled","code":"m.mismatched_sas"/);
  } finally {
    stop.abort();
    assert.equal(await running, 0);
  }
  const direct = await verifyWithMismatch();
  assert.equal(direct.code, 1, direct.stderr);
  assert.match(direct.stdout, /"event":"cancelled","code":"m.mismatched_sas"/);
});
