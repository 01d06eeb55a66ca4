// Interop: matrix-nio (Python, on libolm) clients exchange Megolm messages through the devserver.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { it } from "node:test";
import { fileURLToPath } from "node:url";
import { startTestDevServer } from "../support/devserver.ts";

const PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("../support/nio/megolm_chat.py", import.meta.url));

function nioAvailable(): boolean {
  const r = spawnSync(PYTHON, ["-c", "import nio, olm"], { stdio: "ignore" });
  return r.status === 0;
}

function run(baseUrl: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(PYTHON, [SCRIPT, baseUrl], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    p.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

it("matrix-nio clients exchange and decrypt Megolm messages", { timeout: 60_000 }, async (t) => {
  if (!nioAvailable()) {
    console.log("SKIPPED: matrix-nio interop (python3-matrix-nio / python3-olm not installed)");
    t.skip("matrix-nio not installed");
    return;
  }
  const s = await startTestDevServer();
  try {
    const r = await run(s.baseUrl);
    const last = r.stdout.trim().split("\n").pop() ?? "";
    assert.equal(r.code, 0, `nio script failed: ${last}\n${r.stderr.slice(-2000)}`);
    const result = JSON.parse(last) as Record<string, unknown>;
    assert.deepEqual(result, {
      ok: true,
      bob_decrypted: true,
      alice_decrypted: true,
      room_encrypted: true,
      undecryptable: 0,
    });
  } finally {
    await s.close();
  }
});
