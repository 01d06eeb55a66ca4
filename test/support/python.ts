// Runs small Python programs against matrix-nio / python-olm, the Debian interop peers.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

export const PYTHON = "/usr/bin/python3";

let available: boolean | undefined;

/** True when Debian's python3-matrix-nio and python3-olm are installed. */
export function nioAvailable(): boolean {
  available ??=
    existsSync(PYTHON) && spawnSync(PYTHON, ["-c", "import nio, olm"], { stdio: "ignore" }).status === 0;
  return available;
}

/** The loud line a test prints when its peer is missing, so a skipped interop run is never silent. */
export function skipReasonForNio(): string | undefined {
  if (nioAvailable()) return undefined;
  const reason = "SKIPPED: matrix-nio interop (apt-get install python3-matrix-nio python3-olm)";
  console.log(`\n${"!".repeat(reason.length)}\n${reason}\n${"!".repeat(reason.length)}\n`);
  return reason;
}

/** Runs `code` with JSON `input` on stdin and parses the JSON it prints on stdout. */
export function runPythonJson<T>(code: string, input: unknown): T {
  const r = spawnSync(PYTHON, ["-c", code], { input: JSON.stringify(input), encoding: "utf8" });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
