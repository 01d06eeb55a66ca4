import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { rawExchange } from "../client/test-support/sockets.ts";
import type { Bot } from "./bot.ts";
import {
  controlSocketPath,
  MAX_CONTROL_LINE,
  MAX_QUEUED_CONTROL_LINES,
  startControlServer,
} from "./control.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A bot whose verification never ends (the client's later lines wait in the queue). */
const pendingBot = { verify: () => new Promise<never>(() => undefined) } as unknown as Bot;

async function withServer(run: (path: string) => Promise<void>): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "keyroom-control-"));
  dirs.push(dataDir);
  const server = await startControlServer(pendingBot, dataDir, quiet);
  try {
    await run(controlSocketPath(dataDir));
  } finally {
    await server.close();
  }
}

describe("bot control socket, hostile input", () => {
  it("refuses a line over MAX_CONTROL_LINE before its end arrives: an error, then the connection closes", async () => {
    await withServer(async (path) => {
      // No newline: the server must not wait for one (buffering without bound) to refuse the line.
      const out = await rawExchange(path, "x".repeat(MAX_CONTROL_LINE * 4));
      assert.match(out, /"event":"error".*too long/);
    });
  });

  it("refuses a client that sends more than MAX_QUEUED_CONTROL_LINES lines ahead", async () => {
    await withServer(async (path) => {
      const lines = [JSON.stringify({ verify: "@alice:x" })];
      for (let i = 0; i <= MAX_QUEUED_CONTROL_LINES; i++) lines.push(JSON.stringify({ confirm: true }));
      const out = await rawExchange(path, `${lines.join("\n")}\n`);
      assert.match(out, /"event":"error".*too many/);
    });
  });

  it("makes the socket reachable only by its owner, whatever the umask", async () => {
    const previous = process.umask(0o002);
    try {
      await withServer(async (path) => {
        assert.equal(statSync(path).mode & 0o077, 0, "no access for group or others");
      });
    } finally {
      process.umask(previous);
    }
  });
});
