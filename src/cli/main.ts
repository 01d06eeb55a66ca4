#!/usr/bin/env node
// The `keyroom` bin: wires SIGINT / SIGTERM to a graceful stop and runs the command tree.
import { getEventListeners } from "node:events";
import { createInterface, type Interface } from "node:readline";
import { runCli } from "./program.ts";
import { readSecretFrom } from "./secret-prompt.ts";

/** Exit status of a command ended by a signal (128 + SIGINT). */
const EXIT_INTERRUPTED = 130;

// The first signal asks a command that watches it (`tail`, `devserver`, `bot run`, `verify listen`)
// to stop cleanly; a command that does not (a `send` waiting on a server, retried for minutes) ends
// now, as it would without a handler. A second signal ends any command now.
const controller = new AbortController();
const stop = () => {
  if (controller.signal.aborted || getEventListeners(controller.signal, "abort").length === 0) {
    process.stderr.write("keyroom: interrupted\n");
    process.exit(EXIT_INTERRUPTED);
  }
  controller.abort();
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
// The reader went away (`keyroom tail | head -1`): nothing more can be printed, which is no error.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  process.exit(err.code === "EPIPE" ? 0 : 1);
});
// stdin is opened only when a command asks for a line (`verify`), so other commands never block on it.
let lines: Interface | undefined;
let ended = false;
const waiting: ((line: string | undefined) => void)[] = [];
const buffered: string[] = [];
function readLine(): Promise<string | undefined> {
  if (lines === undefined) {
    lines = createInterface({ input: process.stdin, terminal: false });
    lines.on("line", (line) => {
      const next = waiting.shift();
      if (next !== undefined) next(line);
      else buffered.push(line);
    });
    lines.on("close", () => {
      ended = true;
      for (const w of waiting.splice(0)) w(undefined);
    });
  }
  const line = buffered.shift();
  if (line !== undefined) return Promise.resolve(line);
  if (ended) return Promise.resolve(undefined);
  return new Promise((resolve) => waiting.push(resolve));
}
/**
 * A secret from the terminal without echo (raw mode; Enter ends it, Ctrl-C stops the command),
 * or one line of stdin when it is not a terminal.
 */
function readSecret(prompt: string): Promise<string | undefined> {
  const stdin = process.stdin;
  if (stdin.isTTY !== true) return readLine();
  return readSecretFrom(stdin, prompt, (text) => void process.stderr.write(text), stop);
}

const code = await runCli(process.argv.slice(2), {
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
  signal: controller.signal,
  readLine,
  readSecret,
  interactive: process.stdout.isTTY === true,
  typed: process.stdin.isTTY === true,
  errTerminal: process.stderr.isTTY === true,
});
// Flush stdout, then exit even if a library left a handle open.
process.stdout.write("", () => process.exit(code));
