// A bot's `bot.yaml`: parsed with `yaml` (YAML 1.2, maintained, no dependencies), checked against
// a schema (zod, strict: an unknown key is an error too), and every problem reported with the path
// of the bad key, e.g. `bot.yaml: owners[1]: expected a user ID like @name:example.org`.
import { readFile } from "node:fs/promises";
import { parseDocument } from "yaml";
import { z } from "zod";

export const CONFIG_FILE = "bot.yaml";

/** A user ID as the config takes it. */
export const userIdSchema = z.string().regex(/^@[^:\s]+:\S+$/, "expected a user ID like @name:example.org");
/**
 * A room ID (`!abc:example.org`, or room version 12's `!` and a hash without a server). Not an
 * alias: the lists are compared with events' room IDs, so an alias would match nothing (and an
 * allow list holding only aliases would silence the bot everywhere).
 */
const roomId = z.string().regex(/^![^:\s]+(?::\S+)?$/, {
  error: (issue) =>
    String(issue.input).startsWith("#")
      ? "expected a room ID like !abc:example.org, not an alias (#…): aliases are not resolved"
      : "expected a room ID like !abc:example.org",
});
/** A user ID, or every user of a server: `*:example.org` (or `@*:example.org`). */
const userOrServer = z
  .string()
  .regex(
    /^(@[^:\s]+|\*):\S+$/,
    "expected a user ID like @name:example.org, or *:example.org for a server's users",
  );
const lists = <T extends z.ZodType>(item: T) =>
  z.strictObject({ allow: z.array(item).optional(), deny: z.array(item).optional() });

export const botConfigSchema = z.strictObject({
  /** Homeserver base URL. */
  homeserver: z.url({ protocol: /^https?$/, error: "expected an http(s) URL" }),
  /** The bot's user ID. */
  user: userIdSchema,
  /** Users who own the bot (owner-only commands, invitations). */
  owners: z.array(userIdSchema).default([]),
  /** Command prefix. */
  prefix: z.string().min(1).max(8).default("!"),
  /**
   * Whose invitations to accept: `owners`, `anyone`, or a list of user IDs (`*:example.org`: any user
   * of that server). Default: owners if any, else anyone.
   */
  invites: z.union([z.enum(["owners", "anyone"]), z.array(userOrServer)]).optional(),
  /**
   * Bounds on invitations followed only because `invites` is `anyone` (owners and allow-listed
   * inviters are exempt): the bot joins while in fewer than `maxRooms` rooms, and at most
   * `perInviterPerHour` per inviter. Defaults: `DEFAULT_MAX_ROOMS_ON_INVITE`,
   * `DEFAULT_INVITES_PER_INVITER_PER_HOUR` (src/bot/bot.ts).
   */
  inviteLimits: z
    .strictObject({
      maxRooms: z.int().positive().optional(),
      perInviterPerHour: z.number().positive().optional(),
    })
    .optional(),
  /** Skill modules, relative to the bot directory (.js, .mjs, or .ts). */
  skills: z.array(z.string().min(1)).default([]),
  encryption: z
    .strictObject({
      /** Which devices get room keys: all, cross_signed, or verified. */
      shareWith: z.enum(["all", "cross_signed", "verified"]).default("all"),
      /** Owner-only commands need the owner verified by the bot. */
      requireVerifiedOwners: z.boolean().default(false),
    })
    .default({ shareWith: "all", requireVerifiedOwners: false }),
  users: lists(userOrServer).optional(),
  rooms: lists(roomId).optional(),
  /**
   * The loop breaker: sends in answer to events per room in a sliding minute, past which the bot
   * answers nothing in that room until the minute frees (scheduled jobs and webhooks are not
   * counted). Default: `DEFAULT_ANSWERS_PER_ROOM_PER_MINUTE` (src/bot/answer-limits.ts).
   */
  answerLimits: z.strictObject({ perRoomPerMinute: z.int().positive().optional() }).optional(),
  rateLimit: z
    .strictObject({ perMinute: z.number().positive(), burst: z.int().positive().optional() })
    .optional(),
  readReceipts: z.boolean().default(false),
  /**
   * Messages and reactions whose room key came late (key backup, a forward, days on): not handled
   * when readable more than `maxDelayMs` after they arrived; `notify` answers a late command from an
   * owner or in a direct chat. Defaults: `DEFAULT_LATE_EVENT_MAX_DELAY_MS` (10 minutes), true
   * (src/bot/late-events.ts).
   */
  lateEvents: z
    .strictObject({
      maxDelayMs: z.int().min(0).optional(),
      notify: z.boolean().optional(),
    })
    .optional(),
  webhooks: z
    .strictObject({
      port: z.int().min(0).max(65_535),
      host: z.string().default("127.0.0.1"),
      /** Secret callers send as `Authorization: Bearer …`; or name an environment variable with `secretEnv`. */
      secret: z
        .string()
        .regex(/^\S{16,}$/, "expected at least 16 characters, no spaces")
        .optional(),
      secretEnv: z.string().optional(),
    })
    .optional(),
  /**
   * Appservice mode: the bot runs as a user of an application service (its sender user, or one of
   * its namespace users), its events pushed in the homeserver's transactions instead of `/sync`.
   */
  appservice: z
    .strictObject({
      /** The registration file (YAML or JSON) the homeserver loads too, relative to the bot directory. */
      registration: z.string().min(1),
      /** Port of the transactions endpoint; default: the port of the registration's `url`. */
      port: z.int().min(0).max(65_535).optional(),
      host: z.string().default("127.0.0.1"),
    })
    .optional(),
  /** Time zone for cron expressions (IANA name). */
  timezone: z.string().optional(),
  log: z
    .strictObject({ level: z.enum(["debug", "info", "warn", "error"]).default("info") })
    .default({ level: "info" }),
  /** Where the session and stores live, relative to the bot directory. */
  dataDir: z.string().default(".keyroom"),
  /** Free-form settings for skills: `settings.<skill name>`. */
  settings: z.record(z.string(), z.unknown()).default({}),
});

export type BotConfig = z.output<typeof botConfigSchema>;
export type BotConfigInput = z.input<typeof botConfigSchema>;

export class BotConfigError extends Error {
  override readonly name = "BotConfigError";
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`${file}: ${problems.join("; ")}`);
  }
}

/** `owners[1]`, `encryption.shareWith`: the path of a key as written in YAML. */
function keyPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : `${out ? "." : ""}${String(p)}`;
  return out || "(top level)";
}

/** Checks a parsed config object; throws `BotConfigError` naming each bad key. */
export function validateConfig(value: unknown, file = CONFIG_FILE): BotConfig {
  const parsed = botConfigSchema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((k) => `${keyPath([...issue.path, k])}: unknown key`).join("; ");
    }
    if (issue.code === "invalid_type" && issue.input === undefined) return `${keyPath(issue.path)}: missing`;
    return `${keyPath(issue.path)}: ${issue.message}`;
  });
  throw new BotConfigError(file, problems);
}

/** Parses YAML text into a checked config. */
export function parseConfig(text: string, file = CONFIG_FILE): BotConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new BotConfigError(
      file,
      doc.errors.map((e) => `line ${e.linePos?.[0]?.line ?? "?"}: ${e.message.split("\n")[0]}`),
    );
  }
  return validateConfig(doc.toJS(), file);
}

export async function readConfig(path: string): Promise<BotConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new BotConfigError(path, [`cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`]);
  }
  return parseConfig(text, path);
}
