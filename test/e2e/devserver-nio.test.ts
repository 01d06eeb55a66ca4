// Interop: matrix-nio (Python, on libolm) clients exchange Megolm messages through the devserver,
// once on a memory server and once across a restart of a file-backed server mid-conversation.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { startDevServer } from "../../src/devserver/index.ts";
import { startTestDevServer } from "../support/devserver.ts";

const PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("../support/nio/megolm_chat.py", import.meta.url));

function nioAvailable(): boolean {
  const r = spawnSync(PYTHON, ["-c", "import nio, olm"], { stdio: "ignore" });
  return r.status === 0;
}

const EXPECTED = {
  ok: true,
  bob_decrypted: true,
  alice_decrypted: true,
  room_encrypted: true,
  undecryptable: 0,
};

/** Runs the chat script; `onPause` runs when it prints PAUSE, after which it is told to go on. */
function run(
  baseUrl: string,
  onPause?: () => Promise<void>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const args = [SCRIPT, baseUrl, ...(onPause ? ["--pause"] : [])];
    const p = spawn(PYTHON, args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let paused = false;
    p.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
      if (onPause && !paused && /^PAUSE$/m.test(stdout)) {
        paused = true;
        onPause().then(
          () => p.stdin.write("go\n"),
          (e: unknown) => {
            p.kill();
            reject(e);
          },
        );
      }
    });
    p.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function resultOf(r: { code: number | null; stdout: string; stderr: string }): unknown {
  const last = r.stdout.trim().split("\n").pop() ?? "";
  assert.equal(r.code, 0, `nio script failed: ${last}\n${r.stderr.slice(-2000)}`);
  return JSON.parse(last);
}

describe("matrix-nio interop", { timeout: 90_000 }, () => {
  it("two nio clients exchange and decrypt Megolm messages", async (t) => {
    if (!nioAvailable()) {
      console.log("SKIPPED: matrix-nio interop (python3-matrix-nio / python3-olm not installed)");
      t.skip("matrix-nio not installed");
      return;
    }
    const s = await startTestDevServer();
    try {
      assert.deepEqual(resultOf(await run(s.baseUrl)), EXPECTED);
    } finally {
      await s.close();
    }
  });

  it("the conversation carries on across a devserver restart", async (t) => {
    if (!nioAvailable()) {
      console.log("SKIPPED: matrix-nio restart interop (python3-matrix-nio / python3-olm not installed)");
      t.skip("matrix-nio not installed");
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), "keyroom-nio-restart-"));
    const dbPath = join(dir, "dev.sqlite");
    let server = await startDevServer({ port: 0, dbPath });
    const port = Number(new URL(server.baseUrl).port);
    try {
      const r = await run(server.baseUrl, async () => {
        await server.close();
        server = await startDevServer({ port, dbPath });
      });
      assert.deepEqual(resultOf(r), EXPECTED);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
