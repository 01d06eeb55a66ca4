// The bot's log: readable lines on a terminal, one JSON object per line otherwise (for log
// collectors). Implements the client's `Logger`, so the client logs through it too. Callers pass
// structured fields; message text, tokens and keys never go into them.
import { type Logger, printable, printableJson } from "../client/index.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface BotLoggerOptions {
  /** `json`: one JSON object per line; `pretty`: `12:00:00 INFO  message key=value`. */
  format: "json" | "pretty";
  /** Lowest level written (default `info`). */
  level?: LogLevel;
  /** Where lines go (default: stderr). */
  write?: (line: string) => void;
  /** Fields added to every line (e.g. the bot's user ID). */
  base?: Record<string, unknown>;
  now?: () => number;
}

/** A logger for `format`; `auto` picks `pretty` when stderr is a terminal. */
export function createBotLogger(opts: BotLoggerOptions): Logger {
  const min = LEVELS[opts.level ?? "info"];
  const write = opts.write ?? ((line: string) => void process.stderr.write(line));
  const now = opts.now ?? Date.now;
  const log =
    (level: LogLevel) =>
    (obj?: unknown, msg?: string): void => {
      if (LEVELS[level] < min) return;
      const fields = { ...opts.base, ...fieldsOf(obj) };
      const message = msg ?? (typeof obj === "string" ? obj : "");
      write(
        opts.format === "json"
          ? `${printableJson({ time: new Date(now()).toISOString(), level, msg: message, ...fields })}\n`
          : prettyLine(now(), level, message, fields),
      );
    };
  return { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") };
}

/** The log format for this process: readable on a terminal, JSON lines when piped or collected. */
export function defaultLogFormat(stream: { isTTY?: boolean } = process.stderr): "json" | "pretty" {
  return stream.isTTY === true ? "pretty" : "json";
}

function fieldsOf(obj: unknown): Record<string, unknown> {
  if (obj === undefined || obj === null || typeof obj === "string") return {};
  if (obj instanceof Error) return { err: { name: obj.name, message: obj.message } };
  if (typeof obj !== "object") return { value: obj };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj))
    out[k] = v instanceof Error ? { name: v.name, message: v.message } : v;
  return out;
}

function prettyLine(time: number, level: LogLevel, msg: string, fields: Record<string, unknown>): string {
  const clock = new Date(time).toISOString().slice(11, 19);
  const tail = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === "string" ? printable(v) : printableJson(v)}`)
    .join(" ");
  // Fields and messages carry senders' words (commands, errors): none may drive the terminal.
  return `${clock} ${level.toUpperCase().padEnd(5)} ${printable(msg)}${tail ? `  ${tail}` : ""}\n`;
}
