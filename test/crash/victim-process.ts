// Starts one victim process and collects its stdout lines (and a tail of its stderr).
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { VictimConfig, VictimLine } from "./victim.ts";

const VICTIM = fileURLToPath(new URL("./victim.ts", import.meta.url));

export interface VictimRun {
  child: ChildProcess;
  lines: VictimLine[];
  stderrTail: string[];
  exited: Promise<number | null>;
  /** When each line arrived here (`performance.now()` of this process), index for index with `lines`. */
  arrivals: number[];
  /** Resolves with the first line of type `t` (or undefined if the process exits first). */
  waitFor(t: VictimLine["t"]): Promise<VictimLine | undefined>;
  /** Resolves true once `done(lines)` holds after some line (checked at every line), false at exit. */
  waitUntil(done: (lines: readonly VictimLine[]) => boolean): Promise<boolean>;
}

/** Spawns the victim with `cfg`; it is in `children` until it exits. */
export function spawnVictim(cfg: VictimConfig, children: Set<ChildProcess>): VictimRun {
  const child = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", VICTIM, JSON.stringify(cfg)],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  children.add(child);
  const lines: VictimLine[] = [];
  const stderrTail: string[] = [];
  const arrivals: number[] = [];
  const waiters: { t: VictimLine["t"]; resolve: (l: VictimLine | undefined) => void }[] = [];
  const conditions: { done: (lines: readonly VictimLine[]) => boolean; resolve: (ok: boolean) => void }[] =
    [];
  let partial = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    const parts = (partial + chunk).split("\n");
    partial = parts.pop() ?? "";
    for (const text of parts) {
      if (text.length === 0) continue;
      let line: VictimLine;
      try {
        line = JSON.parse(text) as VictimLine;
      } catch {
        line = { t: "error", where: "stdout", code: "NOT_JSON", message: text.slice(0, 200) };
      }
      lines.push(line);
      arrivals.push(performance.now());
      for (const w of waiters.filter((x) => x.t === line.t)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
      for (const c of conditions.filter((x) => x.done(lines))) {
        conditions.splice(conditions.indexOf(c), 1);
        c.resolve(true);
      }
    }
  });
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    stderrTail.push(...chunk.split("\n").filter((l) => l.length > 0));
    if (stderrTail.length > 20) stderrTail.splice(0, stderrTail.length - 20);
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      children.delete(child);
      for (const w of waiters.splice(0)) w.resolve(undefined);
      for (const c of conditions.splice(0)) c.resolve(false);
      resolve(code);
    }),
  );
  const waitFor = (t: VictimLine["t"]) => {
    const found = lines.find((l) => l.t === t);
    if (found !== undefined) return Promise.resolve(found);
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(undefined);
    return new Promise<VictimLine | undefined>((resolve) => waiters.push({ t, resolve }));
  };
  const waitUntil = (done: (lines: readonly VictimLine[]) => boolean) => {
    if (done(lines)) return Promise.resolve(true);
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => conditions.push({ done, resolve }));
  };
  return { child, lines, arrivals, stderrTail, exited, waitFor, waitUntil };
}
