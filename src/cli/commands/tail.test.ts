// `keyroom tail` stopped (Ctrl-C, --timeout) while every sync failed: status 1 and the failure on
// stderr, not status 0 as if there were no new messages.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { writeProfile } from "../profile.ts";
import { runCli } from "../program.ts";

let dir: string;
let server: Server;
/** Called with the number of /sync requests so far, at each one. */
let onSync: (n: number) => void = () => {};
let syncs = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "keyroom-cli-tail-"));
  // A homeserver whose every answer is a 500.
  server = createServer((req, res) => {
    if (req.url?.startsWith("/_matrix/client/v3/sync")) onSync(++syncs);
    res.writeHead(500, { "content-type": "application/json" });
    res.end(JSON.stringify({ errcode: "M_UNKNOWN", error: "internal error" }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

test("tail stopped while no sync ever succeeded: status 1 with the server's failure", async () => {
  const { port } = server.address() as { port: number };
  const profile = join(dir, "p");
  await writeProfile(profile, {
    version: 1,
    homeserverUrl: `http://127.0.0.1:${port}`,
    userId: "@a:localhost",
    deviceId: "DEV",
    accessToken: "token",
    storeDir: join(profile, "accounts"),
    encryption: false,
  });
  const stop = new AbortController();
  // The second request comes after the first one failed (and was reported): then Ctrl-C.
  onSync = (n) => {
    if (n === 2) stop.abort();
  };
  let out = "";
  let err = "";
  const code = await runCli(["tail", "--profile", profile], {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
    signal: stop.signal,
  });
  assert.equal(out, "");
  assert.equal(code, 1, err);
  assert.match(err, /^keyroom: no sync succeeded: M_UNKNOWN \(HTTP 500\): internal error\n$/);
});
