// Argument parsers for commander options; they throw CliError("USAGE") with a readable message.
import { CliError } from "./errors.ts";

/** A whole number in [min, max]. */
export function parseInteger(name: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new CliError("USAGE", `${name} must be a whole number from ${min} to ${max}, got "${value}"`);
    }
    return n;
  };
}

/** Seconds (decimals allowed) as milliseconds, at most a day. */
export function parseSeconds(name: string): (value: string) => number {
  return (value) => {
    const s = /^\d+(\.\d+)?$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isFinite(s) || s > 86_400) {
      throw new CliError("USAGE", `${name} must be a number of seconds up to 86400, got "${value}"`);
    }
    return Math.round(s * 1000);
  };
}

/** A full user ID (`@name:server`): a bare name would reach the server as a malformed request. */
export function parseUserId(name: string): (value: string) => string {
  return (value) => {
    if (!/^@[^:\s]+:\S+$/.test(value)) {
      throw new CliError("USAGE", `${name} must be a full user ID like @name:example.org, got "${value}"`);
    }
    return value;
  };
}

/** Collects a repeatable option into an array. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A homeserver base URL: http(s) only. */
export function parseHomeserver(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CliError("USAGE", `--homeserver must be a URL like https://matrix.example.org, got "${value}"`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new CliError("USAGE", `--homeserver must be an http(s) URL, got "${value}"`);
  }
  return value;
}
