// `keyroom verify request` / `verify listen`, spawned: when the other side cancels while this side
// waits for its answer on stdin (a script holding the pipe open, a person still looking), the
// `cancelled` line comes at once and the command exits 1, without a line on stdin.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { withinBudget } from "../support/budget.ts";
import { finished, jsonLines, runOk, startKeyroom } from "../support/cli.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

let hs: TestDevServer;
let dir: string;

before(async () => {
  hs = await startTestDevServer();
  dir = await mkdtemp(join(tmpdir(), "keyroom-cli-verify-cancel-"));
});
after(async () => {
  await hs.close();
  await rm(dir, { recursive: true, force: true });
});

test("the other side's mismatch ends a verify waiting on stdin: cancelled at once, exit 1", async () => {
  const name = `vc${Date.now().toString(36)}`;
  const [a, b] = [join(dir, `${name}-a`), join(dir, `${name}-b`)];
  const login = (command: string, profile: string) =>
    runOk([command, "--homeserver", hs.baseUrl, "--user", name, "--password", "pw", "--profile", profile]);
  const [registered] = await login("register", a);
  const [other] = await login("login", b);
  const userId = String(registered?.user_id);
  const deviceB = String(other?.device_id);

  // B answers "n" (a mismatch) once it shows the SAS; A is never given a line.
  const listen = startKeyroom(["verify", "listen", "--profile", b]);
  const listened = finished(listen);
  listen.stdout.on("data", (d: Buffer) => {
    if (d.toString().includes('"event":"sas"')) listen.stdin.end("n\n");
  });
  const request = startKeyroom(["verify", "request", userId, deviceB, "--profile", a]);
  const requested = finished(request);
  try {
    const rl = await listened;
    assert.equal(rl.code, 1, rl.stderr);
    // Without the fix A keeps waiting for its stdin line, which never comes.
    const rr = await withinBudget(
      requested,
      30_000,
      (ms) => new Error(`verify request still waiting for stdin ${ms} ms after the other side cancelled`),
    );
    assert.equal(rr.code, 1, rr.stderr);
    const lines = jsonLines(rr.stdout);
    assert.deepEqual(
      lines.map((l) => l.event),
      ["sas", "cancelled"],
    );
    assert.equal(lines[1]?.code, "m.mismatched_sas");
  } finally {
    listen.kill("SIGKILL");
    request.kill("SIGKILL");
  }
});
