#!/usr/bin/env node
// The `keyroom` bin: wires SIGINT / SIGTERM to a graceful stop and runs the command tree.
import { runCli } from "./program.ts";

/** Exit status after a second interrupt (128 + SIGINT). */
const EXIT_INTERRUPTED = 130;

// The first signal asks `tail` / `devserver` to stop cleanly; a second one ends any command now.
const controller = new AbortController();
const stop = () => {
  if (controller.signal.aborted) process.exit(EXIT_INTERRUPTED);
  controller.abort();
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
// The reader went away (`keyroom tail | head -1`): nothing more can be printed, which is no error.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  process.exit(err.code === "EPIPE" ? 0 : 1);
});
const code = await runCli(process.argv.slice(2), {
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
  signal: controller.signal,
});
// Flush stdout, then exit even if a library left a handle open.
process.stdout.write("", () => process.exit(code));
