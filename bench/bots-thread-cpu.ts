// The CPU time of this process's main thread alone, for the bots bench (bench/bots.ts). The
// process's figure (`process.cpuUsage`) also counts V8's helper threads: optimizing compilation
// and parallel garbage collection, a quarter of a Keyroom process's CPU in a run of a few hundred
// commands (the code still warming up), more in the encrypted side (more code to compile).
import { readFileSync } from "node:fs";

/** Clock ticks per second of /proc's `utime` and `stime` (USER_HZ: 100 on Linux). */
const USER_HZ = 100;

/** Microseconds of CPU (user + system) of the main thread so far, at a 10 ms grain; -1 without /proc. */
export function mainThreadCpuMicros(): number {
  return statCpuMicros(`/proc/self/task/${process.pid}/stat`);
}

/**
 * Microseconds of CPU (user + system, all threads) of another process so far, e.g. the devserver's,
 * at a 10 ms grain; -1 without /proc.
 */
export function processCpuMicros(pid: number): number {
  return statCpuMicros(`/proc/${pid}/stat`);
}

function statCpuMicros(path: string): number {
  try {
    const stat = readFileSync(path, "utf8");
    // Fields after the command name (which may hold spaces, so split after its closing parenthesis):
    // utime and stime are fields 14 and 15 of the line, 12th and 13th after the name.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? Math.round((ticks * 1_000_000) / USER_HZ) : -1;
  } catch {
    return -1;
  }
}
