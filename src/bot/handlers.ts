// The handlers a bot has, registered by its code or by a skill's scope: commands (with their
// aliases and how a message invokes one), patterns, mentions, messages, reactions, membership
// changes, redactions, webhooks and middleware. Each is tagged with the scope that added it, so a skill's are
// dropped at once (`removeScope`) when it is reloaded. Which of them an event reaches is dispatch.ts's.
import type { ArgSpec, ArgSpecs, ArgValues } from "./commands/args.ts";
import { usageOf } from "./commands/args.ts";
import type { CommandContext, EventContext } from "./context.ts";
import type {
  CommandOptions,
  Handler,
  HearsOptions,
  MemberChange,
  Middleware,
  ReactionContext,
  ReactionOptions,
  ReactionRemovedContext,
  RedactionContext,
  WebhookRequest,
} from "./options.ts";

/** Handlers of one kind a bot may have (across all skills). */
export const MAX_HANDLERS = 1_000;

export interface Command {
  name: string;
  args: ArgSpecs;
  opts: CommandOptions<ArgSpecs>;
  run: (ctx: CommandContext, args: Record<string, unknown>) => unknown;
  scope: string | undefined;
  /** The msgtypes that may invoke it (`CommandOptions.msgtypes`). */
  msgtypes: ReadonlySet<string>;
}
export interface Scoped<H> {
  handler: H;
  scope: string | undefined;
}
export interface Reaction<C = ReactionContext> {
  run: Handler<C>;
  /** Only reactions to the bot's own events (`ReactionOptions.ownMessagesOnly`). */
  ownMessagesOnly: boolean;
}
export interface Hear {
  pattern: RegExp;
  run: (ctx: EventContext, m: RegExpExecArray) => unknown;
  /** The msgtypes it is tried on (`HearsOptions.msgtypes`). */
  msgtypes: ReadonlySet<string>;
}

/** The msgtypes commands and `hears` patterns answer unless told otherwise (maubot's choice too). */
export const DEFAULT_COMMAND_MSGTYPES: readonly string[] = ["m.text"];

/** A handler's `msgtypes` option as a set: default `m.text`; never `m.notice` (bots never answer one). */
function msgtypeSet(list: readonly string[] | undefined, what: string): ReadonlySet<string> {
  const types = list ?? DEFAULT_COMMAND_MSGTYPES;
  if (types.length === 0 || types.some((t) => typeof t !== "string" || t === ""))
    throw new RangeError(`${what}: msgtypes must name at least one msgtype`);
  if (types.includes("m.notice")) throw new RangeError(`${what}: notices are never answered (m.notice)`);
  return new Set(types);
}

/** A reaction handler from `(run)` or `(opts, run)`. */
function reactionHandler<C>(
  what: string,
  a: Handler<C> | ReactionOptions,
  b: Handler<C> | undefined,
): Reaction<C> {
  const opts: ReactionOptions = typeof a === "function" ? {} : a;
  const run = typeof a === "function" ? a : b;
  if (typeof run !== "function") throw new TypeError(`${what} needs a handler`);
  return { run, ownMessagesOnly: opts.ownMessagesOnly === true };
}

export class Handlers {
  /** The command prefix (`!`): how a message invokes a command, and how usage lines show it. */
  readonly prefix: string;
  readonly #commands = new Map<string, Command>();
  readonly #aliases = new Map<string, string>();
  readonly hears: Scoped<Hear>[] = [];
  readonly mentions: Scoped<Handler<EventContext>>[] = [];
  readonly messages: Scoped<Handler<EventContext>>[] = [];
  readonly reactions: Scoped<Reaction>[] = [];
  readonly reactionRemovals: Scoped<Reaction<ReactionRemovedContext>>[] = [];
  readonly redactions: Scoped<Handler<RedactionContext>>[] = [];
  readonly members: Scoped<(c: MemberChange) => unknown>[] = [];
  readonly webhooks = new Map<string, Scoped<(r: WebhookRequest) => unknown>>();
  readonly middleware: Scoped<Middleware>[] = [];

  constructor(prefix: string) {
    this.prefix = prefix;
  }

  add<H>(list: Scoped<H>[], handler: H, scope: string | undefined): void {
    if (list.length >= MAX_HANDLERS) throw new RangeError(`at most ${MAX_HANDLERS} handlers of a kind`);
    list.push({ handler, scope });
  }

  /** `hears(pattern, run)` or `hears(pattern, opts, run)`. */
  addHears(
    pattern: RegExp,
    a: Hear["run"] | HearsOptions,
    b: Hear["run"] | undefined,
    scope: string | undefined,
  ): void {
    const opts: HearsOptions = typeof a === "function" ? {} : a;
    const run = typeof a === "function" ? a : b;
    if (typeof run !== "function") throw new TypeError("hears needs a handler");
    const msgtypes = msgtypeSet(opts.msgtypes, `hears ${pattern}`);
    this.add(this.hears, { pattern, run, msgtypes }, scope);
  }

  /** `onReaction(run)` or `onReaction(opts, run)`. */
  addReaction(
    a: Handler<ReactionContext> | ReactionOptions,
    b: Handler<ReactionContext> | undefined,
    scope: string | undefined,
  ): void {
    this.add(this.reactions, reactionHandler("onReaction", a, b), scope);
  }

  /** `onReactionRemoved(run)` or `onReactionRemoved(opts, run)`. */
  addReactionRemoved(
    a: Handler<ReactionRemovedContext> | ReactionOptions,
    b: Handler<ReactionRemovedContext> | undefined,
    scope: string | undefined,
  ): void {
    this.add(this.reactionRemovals, reactionHandler("onReactionRemoved", a, b), scope);
  }

  addCommand<A extends ArgSpecs>(
    name: string,
    opts: CommandOptions<A>,
    run: (ctx: CommandContext, args: ArgValues<A>) => unknown,
    scope: string | undefined,
  ): void {
    const key = name.toLowerCase();
    // An alias is a name too: one that took an existing command's (or alias's) name would silently
    // shadow it (another skill's command, or `help`).
    const aliases = (opts.aliases ?? []).map((a) => a.toLowerCase());
    for (const word of [key, ...aliases]) {
      if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(word)) throw new RangeError(`bad command name "${word}"`);
      if (this.#commands.has(word) || this.#aliases.has(word))
        throw new RangeError(`command "${word}" exists already`);
    }
    if (this.#commands.size >= MAX_HANDLERS) throw new RangeError(`at most ${MAX_HANDLERS} commands`);
    const args = opts.args ?? {};
    const specs: ArgSpec<unknown>[] = Object.values(args as ArgSpecs);
    if (specs.slice(0, -1).some((s) => s.isRest))
      throw new RangeError(`command "${name}": only the last argument may take the rest`);
    const msgtypes = msgtypeSet(opts.msgtypes, `command "${name}"`);
    this.#commands.set(key, {
      name: key,
      args,
      opts: opts as CommandOptions<ArgSpecs>,
      run: run as Command["run"],
      scope,
      msgtypes,
    });
    for (const alias of aliases) this.#aliases.set(alias, key);
  }

  addWebhook(name: string, run: (req: WebhookRequest) => unknown, scope: string | undefined): void {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw new RangeError(`bad webhook name "${name}"`);
    if (this.webhooks.has(name)) throw new RangeError(`webhook "${name}" exists already`);
    this.webhooks.set(name, { handler: run, scope });
  }

  /** Drops every handler `scope` added (its jobs are the scheduler's). */
  removeScope(scope: string): void {
    for (const [name, c] of [...this.#commands]) {
      if (c.scope !== scope) continue;
      this.#commands.delete(name);
      for (const [alias, target] of [...this.#aliases]) if (target === name) this.#aliases.delete(alias);
    }
    for (const list of [
      this.hears,
      this.mentions,
      this.messages,
      this.reactions,
      this.reactionRemovals,
      this.redactions,
      this.members,
      this.middleware,
    ]) {
      const keep = (list as Scoped<unknown>[]).filter((h) => h.scope !== scope);
      list.splice(0, list.length, ...(keep as never[]));
    }
    for (const [name, h] of [...this.webhooks]) if (h.scope === scope) this.webhooks.delete(name);
  }

  get commandNames(): string[] {
    return [...this.#commands.keys()].sort();
  }

  /** The command called `name` (not an alias). */
  named(name: string): Command | undefined {
    return this.#commands.get(name);
  }

  /** The command `word` (lowercase) invokes: an alias's target, else the command of that name. */
  command(word: string): Command | undefined {
    return this.#commands.get(this.#aliases.get(word) ?? word);
  }

  /** The command `body` invokes, and its argument text. */
  commandIn(body: string): [Command, string] | undefined {
    if (!body.startsWith(this.prefix)) return undefined;
    const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(body.slice(this.prefix.length));
    const word = m?.[1]?.toLowerCase() ?? "";
    const cmd = this.command(word);
    return cmd === undefined ? undefined : [cmd, m?.[2] ?? ""];
  }

  usage(cmd: Command): string {
    const args = usageOf(cmd.args);
    return `${this.prefix}${cmd.name}${args ? ` ${args}` : ""}`;
  }
}
