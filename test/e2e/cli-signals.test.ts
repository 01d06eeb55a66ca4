// `keyroom` and signals, spawned: a command that does not watch for a stop (whoami, send, …) ends
// on the first SIGTERM / SIGINT instead of going on with a request the server never answers
// (retried for minutes); `tail` and `devserver` stopping cleanly is in cli-commands.test.ts.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { writeProfile } from "../../src/cli/profile.ts";
import { withinBudget } from "../support/budget.ts";
import { finished, startKeyroom } from "../support/cli.ts";

let dir: string;
/** Accepts connections and reads requests, but never answers one. */
let silent: Server;
const sockets = new Set<Socket>();
let requested: () => void = () => {};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "keyroom-cli-signals-"));
  silent = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    socket.once("data", () => requested());
  });
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
});
after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => silent.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  test(`whoami waiting on a server that never answers ends on the first ${signal}: status 130`, async () => {
    const { port } = silent.address() as { port: number };
    const profile = join(dir, signal);
    await writeProfile(profile, {
      version: 1,
      homeserverUrl: `http://127.0.0.1:${port}`,
      userId: "@silent:localhost",
      deviceId: "SILENTDEV",
      accessToken: "token-of-a-silent-server",
      storeDir: join(profile, "accounts"),
      encryption: true,
    });
    const inFlight = new Promise<void>((resolve) => {
      requested = resolve;
    });
    const child = startKeyroom(["whoami", "--profile", profile]);
    child.stdin.end();
    const run = finished(child);
    await inFlight; // the request reached the server: the command is waiting for its answer
    child.kill(signal);
    // Without the fix the command goes on: each of its tries waits a minute for the server.
    const end = await withinBudget(
      run,
      20_000,
      (ms) => new Error(`keyroom whoami still running ${ms} ms after ${signal}`),
    ).finally(() => child.kill("SIGKILL"));
    assert.equal(end.code, 130, end.stderr);
    assert.equal(end.stdout, "");
    assert.equal(end.stderr, "keyroom: interrupted\n");
  });
}
