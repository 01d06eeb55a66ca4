// Running the `keyroom` CLI in tests: spawned (the real bin, through tsx) or in-process, with its
// JSON-lines output parsed.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runCli } from "../../src/cli/program.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const MAIN = join(ROOT, "src/cli/main.ts");

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Spawns `keyroom ARGS` (no profile or password from the caller's environment). */
export function spawnKeyroom(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", MAIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, KEYROOM_PROFILE: "", KEYROOM_PASSWORD: "", KEYROOM_DEBUG: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Each non-empty line of `text`, parsed as a JSON object. */
export function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Spawns `keyroom ARGS`, asserts success, and returns its JSON lines. */
export async function spawnOk(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<Record<string, unknown>[]> {
  const r = await spawnKeyroom(args, env);
  assert.equal(r.code, 0, `keyroom ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return jsonLines(r.stdout);
}

/** Runs `keyroom ARGS` in this process, asserts success, and returns its JSON lines. */
export async function runOk(args: readonly string[]): Promise<Record<string, unknown>[]> {
  let stdout = "";
  let stderr = "";
  const code = await runCli([...args], { out: (s) => (stdout += s), err: (s) => (stderr += s) });
  assert.equal(code, 0, `keyroom ${args.join(" ")} (in-process) exited ${code}: ${stderr}`);
  return jsonLines(stdout);
}
