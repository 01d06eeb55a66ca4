// Typed command arguments: each argument is a spec that parses one token (or, for `rest`, the rest
// of the line verbatim) into a value; a command's handler receives an object typed from its specs.
// Tokens are split on whitespace, with "double" or 'single' quotes grouping words.
import { printable } from "../../client/index.ts";

/** What an argument parser returns: the value, or what was expected instead. */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; expected: string };

export interface ArgSpec<T> {
  /** Shown in usage: `<name:type>`. */
  readonly type: string;
  readonly isOptional: boolean;
  /** Takes the rest of the line, verbatim (must be the last argument). */
  readonly isRest: boolean;
  readonly description: string | undefined;
  readonly defaultValue: T | undefined;
  parse(raw: string): ParseResult<T>;
  /** The same argument, optional: absent → undefined. */
  optional(): ArgSpec<T | undefined>;
  /** The same argument, optional with a default. */
  default(value: T): ArgSpec<T>;
  describe(text: string): ArgSpec<T>;
}

/** Values of a command's arguments, typed from its specs. */
export type ArgValues<A extends ArgSpecs> = { [K in keyof A]: A[K] extends ArgSpec<infer T> ? T : never };
export type ArgSpecs = Readonly<Record<string, ArgSpec<unknown>>>;

/** Longest token an argument parser looks at; longer ones are refused (network input). */
export const MAX_ARG_LENGTH = 4096;

function spec<T>(
  type: string,
  parse: (raw: string) => ParseResult<T>,
  extra: Partial<Pick<ArgSpec<T>, "isOptional" | "isRest" | "description" | "defaultValue">> = {},
): ArgSpec<T> {
  const base = {
    type,
    isOptional: extra.isOptional ?? false,
    isRest: extra.isRest ?? false,
    description: extra.description,
    defaultValue: extra.defaultValue,
  };
  return {
    ...base,
    parse: (raw) =>
      raw.length > MAX_ARG_LENGTH
        ? { ok: false, expected: `at most ${MAX_ARG_LENGTH} characters` }
        : parse(raw),
    optional: () => spec<T | undefined>(type, parse, { ...base, isOptional: true }),
    default: (value) => spec<T>(type, parse, { ...base, isOptional: true, defaultValue: value }),
    describe: (text) => spec<T>(type, parse, { ...base, description: text }),
  };
}

const ok = <T>(value: T): ParseResult<T> => ({ ok: true, value });
const fail = (expected: string): ParseResult<never> => ({ ok: false, expected });

const DURATION_UNITS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
/** Longest duration accepted (a year): longer ones are surely typos, and timers overflow. */
export const MAX_DURATION_MS = 365 * 86_400_000;

/** `5m`, `1h30m`, `90s`, `2d` → milliseconds. */
export function parseDuration(raw: string): number | undefined {
  const text = raw.trim().toLowerCase();
  if (!/^(\d+[smhdw])+$/.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(/(\d+)([smhdw])/g)) total += Number(m[1]) * (DURATION_UNITS[m[2] ?? ""] ?? 0);
  return total > 0 && total <= MAX_DURATION_MS ? total : undefined;
}

const USER_ID = /^@[^:\s]+:[^\s]+$/;

/** Argument constructors: `arg.int({ min: 1 })`, `arg.duration().optional()`, `arg.rest()`. */
export const arg = {
  string: (): ArgSpec<string> => spec("text", (raw) => ok(raw)),
  int: (range: { min?: number; max?: number } = {}): ArgSpec<number> =>
    spec("number", (raw) => {
      const n = /^[+-]?\d+$/.test(raw) ? Number(raw) : Number.NaN;
      const min = range.min ?? Number.MIN_SAFE_INTEGER;
      const max = range.max ?? Number.MAX_SAFE_INTEGER;
      if (!Number.isSafeInteger(n) || n < min || n > max) {
        return fail(
          range.min !== undefined || range.max !== undefined
            ? `a whole number from ${min} to ${max}`
            : "a whole number",
        );
      }
      return ok(n);
    }),
  number: (): ArgSpec<number> =>
    spec("number", (raw) => {
      const n = /^[+-]?(\d+\.?\d*|\.\d+)$/.test(raw) ? Number(raw) : Number.NaN;
      return Number.isFinite(n) ? ok(n) : fail("a number");
    }),
  /** A duration like `5m`, `1h30m`, `90s`, `2d`; the value is in milliseconds. */
  duration: (): ArgSpec<number> =>
    spec("duration", (raw) => {
      const ms = parseDuration(raw);
      return ms === undefined ? fail("a duration like 90s, 5m, 1h30m or 2d") : ok(ms);
    }),
  /** A Matrix user ID (`@name:server`). */
  user: (): ArgSpec<string> =>
    spec("user", (raw) => (USER_ID.test(raw) ? ok(raw) : fail("a user ID like @name:example.org"))),
  choice: <const T extends string>(values: readonly T[]): ArgSpec<T> =>
    spec(values.join("|"), (raw) =>
      (values as readonly string[]).includes(raw) ? ok(raw as T) : fail(`one of ${values.join(", ")}`),
    ),
  /** The rest of the line, exactly as typed (quotes and spacing kept). */
  rest: (): ArgSpec<string> => spec("text", (raw) => ok(raw), { isRest: true }),
};

interface Token {
  text: string;
  /** Where the token starts in the line (its opening quote, if quoted). */
  start: number;
}

/** Quote characters that open a group at a token's start, and the one that closes it. */
const QUOTES: Readonly<Record<string, string>> = {
  '"': '"',
  "'": "'",
  "\u201c": "\u201d",
  "\u2018": "\u2019",
};

/**
 * Splits on whitespace. A quote at a token's start ("…", '…', or the curly “…” and ‘…’ phones
 * type) groups words up to its closing quote, quotes removed; an unclosed quote runs to the end.
 * A quote inside a word is text (`don't`, `l'école`), and `\"` (any quote after a backslash) is a
 * literal quote, in a group or not; other backslashes are text (`C:\dir`).
 */
export function tokenize(line: string): Token[] {
  const out: Token[] = [];
  const isSpace = (c: string | undefined) => c !== undefined && /\s/.test(c);
  let i = 0;
  while (i < line.length) {
    while (isSpace(line[i])) i++;
    if (i >= line.length) break;
    const start = i;
    let text = "";
    const close = QUOTES[line[i] ?? ""];
    if (close !== undefined) {
      for (i++; i < line.length && line[i] !== close; i++) {
        if (line[i] === "\\" && isQuote(line[i + 1])) i++;
        text += line[i];
      }
      i++; // the closing quote
    }
    for (; i < line.length && !isSpace(line[i]); i++) {
      if (line[i] === "\\" && isQuote(line[i + 1])) i++;
      text += line[i];
    }
    out.push({ text, start });
  }
  return out;
}

const ANY_QUOTE = new Set([...Object.keys(QUOTES), ...Object.values(QUOTES)]);
function isQuote(c: string | undefined): boolean {
  return c !== undefined && ANY_QUOTE.has(c);
}

export type ArgsResult<A extends ArgSpecs> =
  | { ok: true; values: ArgValues<A> }
  | { ok: false; problem: string };

/**
 * A mention pill of the message: the text its body shows for it (usually a display name, which
 * may hold spaces) and the user ID it links to (`https://matrix.to/#/@alice:example.org`).
 */
export interface MentionPill {
  text: string;
  userId: string;
}

/**
 * Parses the text after a command's name against its argument specs. A `user` argument also takes
 * the text of one of `pills` (a client puts a display name in the body where its user picked a
 * mention pill), as that pill's user ID.
 */
export function parseArgs<A extends ArgSpecs>(
  specs: A,
  text: string,
  pills: readonly MentionPill[] = [],
): ArgsResult<A> {
  const tokens = tokenize(text);
  const values: Record<string, unknown> = {};
  let t = 0;
  for (const [name, s] of Object.entries(specs)) {
    const token = tokens[t];
    if (token === undefined) {
      if (!s.isOptional) return { ok: false, problem: `missing <${name}>` };
      values[name] = s.defaultValue;
      continue;
    }
    if (s.type === "user" && !USER_ID.test(token.text) && pills.length > 0) {
      // The longest pill whose words start at the token; else, quoted (`"Alice Smith"`), its text.
      const words = pillAt(pills, text, token.start);
      const pill = words ?? pills.find((p) => p.text === token.text && USER_ID.test(p.userId));
      if (pill !== undefined) {
        values[name] = pill.userId;
        const end = words === undefined ? token.start + 1 : token.start + pill.text.length;
        while (t < tokens.length && (tokens[t]?.start ?? end) < end) t++;
        continue;
      }
    }
    const raw = s.isRest ? text.slice(token.start).trim() : token.text;
    const parsed = s.parse(raw);
    if (!parsed.ok)
      return { ok: false, problem: `<${name}>: expected ${parsed.expected}, got "${quoteInput(raw)}"` };
    values[name] = parsed.value;
    t = s.isRest ? tokens.length : t + 1;
  }
  if (t < tokens.length) return { ok: false, problem: `unexpected "${quoteInput(tokens[t]?.text ?? "")}"` };
  return { ok: true, values: values as ArgValues<A> };
}

/** The longest pill whose text is at `start` in `text`, as whole words. */
function pillAt(pills: readonly MentionPill[], text: string, start: number): MentionPill | undefined {
  let best: MentionPill | undefined;
  for (const p of pills) {
    const end = start + p.text.length;
    if (p.text === "" || !text.startsWith(p.text, start) || /\S/.test(text[end] ?? " ")) continue;
    if (USER_ID.test(p.userId) && (best === undefined || p.text.length > best.text.length)) best = p;
  }
  return best;
}

/** `<delay:duration> <text...>` for usage lines. */
export function usageOf(specs: ArgSpecs): string {
  return Object.entries(specs)
    .map(([name, s]) => {
      const inner = `${name}${s.type === "text" ? "" : `:${s.type}`}${s.isRest ? "..." : ""}`;
      return s.isOptional ? `[${inner}]` : `<${inner}>`;
    })
    .join(" ");
}

/** Characters of a user's input an answer quotes. */
export const MAX_QUOTED_INPUT = 40;

/**
 * How an answer quotes what a user typed: at most `MAX_QUOTED_INPUT` characters (never half of a
 * surrogate pair, which no server accepts in an event), lone surrogates replaced, and controls,
 * line breaks and bidirectional overrides written as `\uXXXX` (so the quote cannot reorder or
 * break up the bot's answer).
 */
export function quoteInput(s: string): string {
  let cut = s;
  if (s.length > MAX_QUOTED_INPUT) {
    const end = /[\ud800-\udbff]/.test(s[MAX_QUOTED_INPUT - 1] ?? "")
      ? MAX_QUOTED_INPUT - 1
      : MAX_QUOTED_INPUT;
    cut = `${s.slice(0, end)}…`;
  }
  return printable(cut.toWellFormed());
}
