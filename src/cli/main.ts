#!/usr/bin/env node
// The `keyroom` bin: wires SIGINT / SIGTERM to a graceful stop and runs the command tree.
import { runCli } from "./program.ts";

const controller = new AbortController();
const stop = () => controller.abort();
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
const code = await runCli(process.argv.slice(2), {
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
  signal: controller.signal,
});
// Flush stdout, then exit even if a library left a handle open.
process.stdout.write("", () => process.exit(code));
