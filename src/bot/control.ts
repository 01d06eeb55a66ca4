// The running bot's control socket (a Unix socket in its data directory, reachable only by the
// operator's account): `keyroom bot verify USER` talks to the running bot through it, since the
// bot's stores admit one process at a time. One JSON object per line each way:
//   → {"verify":"@alice:example.org"}
//   ← {"event":"sas","emoji":[…],"decimals":[…]}   → {"confirm":true}
//   ← {"event":"done",…} or {"event":"cancelled",…} or {"event":"error","message":…}
import { chmod, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import type { Logger } from "../index.ts";
import type { Bot } from "./bot.ts";

export const CONTROL_SOCKET = "control.sock";
/** Longest request line read from the socket (refused as soon as it is longer, newline or not). */
export const MAX_CONTROL_LINE = 4096;
/** Lines a client may send ahead of the one the bot waits for (the protocol has two in all). */
export const MAX_QUEUED_CONTROL_LINES = 4;

export function controlSocketPath(dataDir: string): string {
  return join(dataDir, CONTROL_SOCKET);
}

export type SasEvent = {
  event: "sas";
  emoji: { symbol: string; name: string }[];
  decimals: readonly number[];
};
export type VerifyEvent =
  | SasEvent
  | { event: "done"; user_id: string; device_id: string | null; verified: true }
  | { event: "cancelled"; code: string; reason: string }
  | { event: "error"; message: string };

/** Runs one verification with `userId`, reporting each step and asking `confirm` at the SAS. */
export async function runVerification(
  bot: Pick<Bot, "verify">,
  userId: string,
  report: (e: VerifyEvent) => void,
  confirm: () => Promise<boolean>,
): Promise<boolean> {
  const request = await bot.verify(userId, async (sas) => {
    report({ event: "sas", ...sas });
    return confirm();
  });
  const end = await request.finished();
  if (end.phase === "done") {
    report({ event: "done", user_id: end.otherUserId, device_id: end.otherDeviceId ?? null, verified: true });
    return true;
  }
  report({ event: "cancelled", code: end.cancel?.code ?? "m.user", reason: end.cancel?.reason ?? "" });
  return false;
}

export async function startControlServer(
  bot: Bot,
  dataDir: string,
  logger: Logger,
): Promise<{ close(): Promise<void> }> {
  const path = controlSocketPath(dataDir);
  // A socket file left by a killed run: nothing listens on it any more.
  await rm(path, { force: true });
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    const queue: string[] = [];
    let waiting: ((line: string | undefined) => void) | undefined;
    let ended = false;
    const send = (e: VerifyEvent) => void socket.write(`${JSON.stringify(e)}\n`);
    const refuse = (message: string) => {
      socket.pause();
      socket.removeAllListeners("data");
      send({ event: "error", message });
      socket.end(() => socket.destroy());
    };
    const deliver = (line: string) => {
      if (waiting) {
        const w = waiting;
        waiting = undefined;
        w(line);
      } else if (queue.length >= MAX_QUEUED_CONTROL_LINES) refuse("too many lines sent ahead");
      else queue.push(line);
    };
    const split = lineSplitter(MAX_CONTROL_LINE);
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      const lines = split.push(chunk);
      if (lines === undefined) return refuse(`request line too long (over ${MAX_CONTROL_LINE} characters)`);
      for (const line of lines) if (!socket.isPaused()) deliver(line);
    });
    socket.on("end", () => {
      const last = split.rest();
      if (last !== "") deliver(last);
      ended = true;
      waiting?.(undefined);
    });
    socket.on("close", () => waiting?.(undefined));
    const next = (): Promise<string | undefined> =>
      queue.length > 0
        ? Promise.resolve(queue.shift())
        : ended || socket.destroyed
          ? Promise.resolve(undefined)
          : new Promise((resolve) => (waiting = resolve));
    void (async () => {
      try {
        const request = parse(await next());
        const userId = typeof request?.verify === "string" ? request.verify : undefined;
        if (userId === undefined || !/^@[^:\s]+:\S+$/.test(userId)) {
          send({ event: "error", message: 'expected {"verify":"@user:server"}' });
          return;
        }
        logger.info({ userId }, "verification requested from the control socket");
        await runVerification(bot, userId, send, async () => parse(await next())?.confirm === true);
      } catch (err) {
        send({ event: "error", message: err instanceof Error ? err.message : String(err) });
      } finally {
        socket.end();
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
  // The data directory is the operator's (0700 when Keyroom made it); the socket is too, whatever
  // the umask or a directory made by hand: whoever connects can have the bot verify anyone.
  const close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  try {
    await chmod(path, 0o600);
  } catch (err) {
    await close(); // not left listening with the umask's permissions
    throw err;
  }
  return { close };
}

function parse(line: string | undefined): Record<string, unknown> | undefined {
  if (line === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === "object" && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Splits text into lines (`\n`, or `\r\n`), keeping at most `max` characters of an unfinished
 * one: `push` answers undefined as soon as a line is longer, so nothing grows without bound.
 */
export function lineSplitter(max: number): { push(text: string): string[] | undefined; rest(): string } {
  let partial = "";
  return {
    push(text) {
      const parts = (partial + text).split("\n");
      partial = parts.pop() ?? "";
      const lines = parts.map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
      return partial.length > max || lines.some((l) => l.length > max) ? undefined : lines;
    },
    rest: () => partial,
  };
}
