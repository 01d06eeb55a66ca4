// The bot: handlers registered by code or skills, run for what sync delivers, behind middleware
// (allow / deny lists, rate limits, verified senders, the error boundary), and a bound on its
// answers per room (answer-limits.ts) that ends loops with other bots. The bot takes any
// logged-in `MatrixClient` (from `openBotClient`, or another source such as an appservice), so how
// the client came to be is not its business.
//
// Delivery: the client awaits every listener before it saves the sync token, and the bot handles
// each event inside its listener, so a crash before the save means the events come again. A
// handled event is recorded in the local store; events that come again are skipped, and a handler
// that was cut short re-sends with the same transaction IDs (see context.ts), which the server
// deduplicates. So nothing is lost and nothing is answered twice.
import { AsyncLocalStorage } from "node:async_hooks";
import {
  type Clock,
  type Logger,
  type MatrixClient,
  type Membership,
  type Room,
  type RoomEvent,
  type RoomEventMeta,
  type StrippedStateEvent,
  silentLogger,
  systemClock,
  type VerificationRequest,
} from "../index.ts";
import { AnswerLimitError, AnswerLimiter } from "./answer-limits.ts";
import {
  type ArgSpec,
  type ArgSpecs,
  type ArgValues,
  arg,
  parseArgs,
  quoteInput,
  usageOf,
} from "./commands/args.ts";
import { CommandContext, EventContext, RoomSender } from "./context.ts";
import { LateEvents, type Lateness, roughDuration } from "./late-events.ts";
import { type LocalStore, MemoryLocalStore } from "./local-store.ts";
import {
  type AccessLists,
  type BotOptions,
  type CommandOptions,
  DEFAULT_INVITES_PER_INVITER_PER_HOUR,
  DEFAULT_MAX_ROOMS_ON_INVITE,
  type Handler,
  type HandlerRegistry,
  type MemberChange,
  type Middleware,
  type ReactionContext,
  type WebhookRequest,
} from "./options.ts";
import { RateLimiter } from "./rate-limit.ts";
import { RoomQueues } from "./room-queues.ts";
import { type JobInfo, Scheduler } from "./scheduler.ts";
import { BotState } from "./state.ts";
import { type SasToCompare, verifyWithSas } from "./verify.ts";

/** Handlers of one kind a bot may have (across all skills). */
export const MAX_HANDLERS = 1_000;
/** Longest message body the bot looks at for commands and patterns (longer ones are ignored). */
export const MAX_COMMAND_BODY = 16_384;

interface Command {
  name: string;
  args: ArgSpecs;
  opts: CommandOptions<ArgSpecs>;
  run: (ctx: CommandContext, args: Record<string, unknown>) => unknown;
  scope: string | undefined;
}
interface Scoped<H> {
  handler: H;
  scope: string | undefined;
}

export class Bot implements HandlerRegistry {
  readonly client: MatrixClient;
  readonly state: BotState;
  readonly local: LocalStore;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  readonly prefix: string;
  readonly owners: ReadonlySet<string>;
  readonly #opts: BotOptions;
  readonly #commands = new Map<string, Command>();
  readonly #aliases = new Map<string, string>();
  readonly #hears: Scoped<{ pattern: RegExp; run: (ctx: EventContext, m: RegExpExecArray) => unknown }>[] =
    [];
  readonly #mentions: Scoped<Handler<EventContext>>[] = [];
  readonly #messages: Scoped<Handler<EventContext>>[] = [];
  readonly #reactions: Scoped<Handler<ReactionContext>>[] = [];
  readonly #members: Scoped<(c: MemberChange) => unknown>[] = [];
  readonly #webhooks = new Map<string, Scoped<(r: WebhookRequest) => unknown>>();
  readonly #middleware: Scoped<Middleware>[] = [];
  readonly #rateLimiter: RateLimiter | undefined;
  /** Invitations per inviter (bounded by `MAX_RATE_LIMITED_USERS`, least recently seen forgotten). */
  readonly #inviteLimiter: RateLimiter;
  readonly #maxRoomsOnInvite: number;
  /** Rooms joined on invitation that sync does not show joined yet (counted against `maxRooms`). */
  readonly #joining = new Set<string>();
  #offs: (() => void)[] = [];
  #running = false;
  /** Set while the bot's own work runs (an event's handling, a job): `stop()` must not wait for it. */
  readonly #inWork = new AsyncLocalStorage<true>();
  /** Event handling: one room in order, rooms at once (see `#enqueue`). */
  readonly #queues = new RoomQueues();
  /** Rooms whose membership changes are news: joined before this sync, or after our join event. */
  readonly #liveRooms = new Set<string>();
  /**
   * Rooms we were not in before the sync response being handled (it joins us, or joins and removes
   * us again), until our join event passes: the events that come before it (a server sends a newly
   * joined room's recent history, and the gap before it) are history, not handled, whatever their
   * timestamps (another server's clock may be ahead). Our join passes where the response has it: in
   * the gap or the timeline, or in the state block, which comes before the timeline.
   */
  readonly #joiningNow = new Set<string>();
  /** Events that became readable late, and the late notices sent. */
  readonly #late: LateEvents;
  /** Rooms the bot left (or was kicked or banned from) in the response being handled. */
  readonly #leaving = new Set<string>();
  /** The loop breaker: answers to events per room (`answerLimits`), and error notices per room. */
  readonly #answers: AnswerLimiter;
  readonly #gate = (roomId: string): void => this.#answers.take(roomId);

  constructor(opts: BotOptions) {
    this.#opts = opts;
    this.client = opts.client;
    this.prefix = opts.prefix ?? "!";
    this.owners = new Set(opts.owners ?? []);
    this.logger = opts.logger ?? silentLogger;
    this.clock = opts.clock ?? systemClock;
    this.local = opts.localStore ?? new MemoryLocalStore();
    this.state = new BotState(this.client);
    this.scheduler = new Scheduler(this.clock, this.logger, opts.timezone);
    this.#rateLimiter = opts.rateLimit ? new RateLimiter(opts.rateLimit, this.clock) : undefined;
    const perHour = opts.inviteLimits?.perInviterPerHour ?? DEFAULT_INVITES_PER_INVITER_PER_HOUR;
    this.#inviteLimiter = new RateLimiter({ perMinute: perHour / 60, burst: perHour }, this.clock);
    this.#maxRoomsOnInvite = opts.inviteLimits?.maxRooms ?? DEFAULT_MAX_ROOMS_ON_INVITE;
    this.#late = new LateEvents(this.clock, opts.lateEvents);
    this.#answers = new AnswerLimiter(this.clock, this.logger, opts.answerLimits);
    if (opts.help !== false) this.#registerHelp();
  }

  get userId(): string {
    return this.client.userId;
  }
  get isRunning(): boolean {
    return this.#running;
  }

  // ---- registration ----

  command<A extends ArgSpecs = Record<string, never>>(
    name: string,
    opts: CommandOptions<A>,
    run: (ctx: CommandContext, args: ArgValues<A>) => unknown | Promise<unknown>,
  ): void {
    this.#addCommand(name, opts, run, undefined);
  }
  hears(
    pattern: RegExp,
    run: (ctx: EventContext, match: RegExpExecArray) => unknown | Promise<unknown>,
  ): void {
    this.#push(this.#hears, { pattern, run }, undefined);
  }
  onMention(run: Handler<EventContext>): void {
    this.#push(this.#mentions, run, undefined);
  }
  onMessage(run: Handler<EventContext>): void {
    this.#push(this.#messages, run, undefined);
  }
  onReaction(run: Handler<ReactionContext>): void {
    this.#push(this.#reactions, run, undefined);
  }
  onMember(run: (change: MemberChange) => unknown | Promise<unknown>): void {
    this.#push(this.#members, run, undefined);
  }
  schedule(name: string, cron: string, run: (info: JobInfo) => unknown | Promise<unknown>): void {
    this.scheduler.add(name, cron, (info) => this.#inWork.run(true, async () => void (await run(info))));
  }
  webhook(name: string, run: (req: WebhookRequest) => unknown | Promise<unknown>): void {
    this.#addWebhook(name, run, undefined);
  }
  use(middleware: Middleware): void {
    this.#push(this.#middleware, middleware, undefined);
  }

  /** A registry whose handlers belong to `scope` (a skill): `removeScope` drops them all at once. */
  scope(scope: string): HandlerRegistry {
    return {
      command: (name, opts, run) => this.#addCommand(name, opts, run, scope),
      hears: (pattern, run) => this.#push(this.#hears, { pattern, run }, scope),
      onMention: (run) => this.#push(this.#mentions, run, scope),
      onMessage: (run) => this.#push(this.#messages, run, scope),
      onReaction: (run) => this.#push(this.#reactions, run, scope),
      onMember: (run) => this.#push(this.#members, run, scope),
      schedule: (name, cron, run) =>
        this.scheduler.add(
          name,
          cron,
          (info) => this.#inWork.run(true, async () => void (await run(info))),
          scope,
        ),
      webhook: (name, run) => this.#addWebhook(name, run, scope),
      use: (mw) => this.#push(this.#middleware, mw, scope),
    };
  }

  removeScope(scope: string): void {
    for (const [name, c] of [...this.#commands]) {
      if (c.scope !== scope) continue;
      this.#commands.delete(name);
      for (const [alias, target] of [...this.#aliases]) if (target === name) this.#aliases.delete(alias);
    }
    for (const list of [
      this.#hears,
      this.#mentions,
      this.#messages,
      this.#reactions,
      this.#members,
      this.#middleware,
    ]) {
      const keep = (list as Scoped<unknown>[]).filter((h) => h.scope !== scope);
      list.splice(0, list.length, ...(keep as never[]));
    }
    for (const [name, h] of [...this.#webhooks]) if (h.scope === scope) this.#webhooks.delete(name);
    this.scheduler.removeScope(scope);
  }

  get commandNames(): string[] {
    return [...this.#commands.keys()].sort();
  }
  hasWebhook(name: string): boolean {
    return this.#webhooks.has(name);
  }

  #push<H>(list: Scoped<H>[], handler: H, scope: string | undefined): void {
    if (list.length >= MAX_HANDLERS) throw new RangeError(`at most ${MAX_HANDLERS} handlers of a kind`);
    list.push({ handler, scope });
  }

  #addCommand<A extends ArgSpecs>(
    name: string,
    opts: CommandOptions<A>,
    run: (ctx: CommandContext, args: ArgValues<A>) => unknown,
    scope: string | undefined,
  ): void {
    const key = name.toLowerCase();
    if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(key)) throw new RangeError(`bad command name "${name}"`);
    if (this.#commands.has(key) || this.#aliases.has(key))
      throw new RangeError(`command "${name}" exists already`);
    if (this.#commands.size >= MAX_HANDLERS) throw new RangeError(`at most ${MAX_HANDLERS} commands`);
    const args = opts.args ?? {};
    const specs: ArgSpec<unknown>[] = Object.values(args as ArgSpecs);
    if (specs.slice(0, -1).some((s) => s.isRest))
      throw new RangeError(`command "${name}": only the last argument may take the rest`);
    this.#commands.set(key, {
      name: key,
      args,
      opts: opts as CommandOptions<ArgSpecs>,
      run: run as Command["run"],
      scope,
    });
    for (const alias of opts.aliases ?? []) this.#aliases.set(alias.toLowerCase(), key);
  }

  #addWebhook(name: string, run: (req: WebhookRequest) => unknown, scope: string | undefined): void {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw new RangeError(`bad webhook name "${name}"`);
    if (this.#webhooks.has(name)) throw new RangeError(`webhook "${name}" exists already`);
    this.#webhooks.set(name, { handler: run, scope });
  }

  #registerHelp(): void {
    this.#addCommand(
      "help",
      { help: "list the commands, or explain one", args: { command: arg.string().optional() } },
      async (ctx, { command }) => {
        const wanted = (command ?? "").replace(new RegExp(`^${escapeRegex(this.prefix)}`), "").toLowerCase();
        if (wanted !== "") {
          const cmd = this.#commands.get(this.#aliases.get(wanted) ?? wanted);
          if (cmd === undefined)
            return ctx.notice(`No command "${quoteInput(wanted)}". Try ${this.prefix}help.`);
          return ctx.notice(this.#usage(cmd) + (cmd.opts.help ? `\n${cmd.opts.help}` : ""));
        }
        const lines = this.commandNames
          .map((n) => this.#commands.get(n))
          .filter((c): c is Command => c !== undefined)
          .map((c) => `${this.#usage(c)}${c.opts.help ? ` — ${c.opts.help}` : ""}`);
        return ctx.notice(`Commands:\n${lines.join("\n")}`);
      },
      "builtin",
    );
  }

  #usage(cmd: Command): string {
    const args = usageOf(cmd.args);
    return `${this.prefix}${cmd.name}${args ? ` ${args}` : ""}`;
  }

  // ---- running ----

  /** Starts listening, syncing and the scheduled jobs. Resolves after the first sync. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    const c = this.client;
    for (const room of c.getRooms("join")) this.#liveRooms.add(room.roomId);
    this.#offs = [
      c.on("room.myMembership", (room, membership, previous) => {
        if (previous !== "join" && membership !== "invite" && membership !== "knock")
          this.#joiningNow.add(room.roomId);
        if (membership === "leave" || membership === "ban") this.#leaving.add(room.roomId);
      }),
      // Emitted in the response's order, a timeline event's just before its `room.event`.
      c.on("room.state", (room, ev) => {
        const ownJoin =
          ev.type === "m.room.member" && ev.state_key === c.userId && ev.content.membership === "join";
        // Membership changes after it are news, also where our join is not handled as an event (a
        // first sync, a join in the state block): in order with the room's events.
        if (ownJoin && this.#joiningNow.delete(room.roomId))
          this.#queues.push(
            room.roomId,
            async () => void this.#liveRooms.add(room.roomId),
            () => {},
          );
      }),
      c.on("room.event", (room, ev, meta) => this.#onTimelineEvent(room, ev, meta.source)),
      c.on("room.decrypted", (room, ev) => this.#enqueue(room, ev, this.#late.decrypted(ev))),
      // The sync position is saved only after this: every event of the response handled.
      c.on("sync.settle", async () => {
        this.#joiningNow.clear();
        // This response's rooms left: the next response, handled while this one's work runs,
        // notes its own, whose events this settle does not wait for.
        const left = [...this.#leaving];
        this.#leaving.clear();
        await this.#queues.settle();
        // Rooms left: what was kept for them goes, once their last events were handled.
        for (const id of left) {
          const now = c.getRoom(id)?.membership;
          if (now !== "join" && now !== "invite") this.#forgetRoom(id);
        }
      }),
      c.on("room.forgotten", (roomId) => this.#forgetRoom(roomId)),
      c.on("room.invite", (room, inviter, state) => this.#onInvite(room, inviter, state)),
      c.on("room.tombstone", (room, t) => this.#onTombstone(room, t.replacementRoomId)),
      c.on("sync", (state, _prev, info) => {
        if (state === "backoff") this.logger.warn({ retryInMs: info.retryInMs }, "sync failed, retrying");
        if (state === "error") this.logger.error({ err: info.error }, "sync stopped");
      }),
      c.on("session.loggedOut", ({ softLogout }) =>
        this.logger.error({ softLogout }, "the server ended the bot's session; log it in again"),
      ),
    ];
    await c.startSync();
    this.scheduler.start();
    this.logger.info(
      { userId: c.userId, deviceId: c.deviceId, commands: this.commandNames.length },
      "bot started",
    );
  }

  /** Stops the jobs and the sync (the client stays open: close it yourself, or use `BotProcess`). */
  async stop(): Promise<void> {
    if (!this.#running) return;
    // Called from a handler or a job, waiting here would wait for that very handler or job (the
    // sync loop and the queues wait for it): the stop goes on once it returns.
    if (this.#inWork.getStore() === true) {
      void this.#inWork.exit(() => this.#stop());
      return;
    }
    await this.#stop();
  }

  async #stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.scheduler.stop();
    for (const off of this.#offs.splice(0)) off();
    await this.client.stopSync();
    await this.#queues.settle();
    // Jobs under way finish too (the client is closed after this).
    await this.scheduler.idle();
    // Room keys not in the key backup yet go up now, so a move to another machine has them all.
    if (this.client.isEncryptionEnabled) {
      await this.client.crypto.backup
        .uploadPending()
        .catch((err) => this.logger.warn({ err }, "key backup upload failed"));
    }
    this.logger.info({}, "bot stopped");
  }

  /**
   * Sends into a room outside any event (jobs, webhooks): not answers, so not counted against
   * `answerLimits`. With `key` (unique to what is being sent, e.g. a reminder's ID), the sends get
   * transaction IDs derived from it, so a job that is cut short and runs again does not post twice.
   */
  room(roomId: string, key?: string): RoomSender {
    return new RoomSender(this.client, roomId, key === undefined ? undefined : `bot.job.${key}`, undefined);
  }

  /**
   * Starts SAS verification with `userId` (in a DM): `onSas` gets the emoji and decimals and
   * answers whether they match what the other side shows. Resolves when the flow ended.
   */
  verify(userId: string, onSas: (sas: SasToCompare) => Promise<boolean>): Promise<VerificationRequest> {
    return verifyWithSas(this.client, userId, onSas);
  }

  // ---- dispatch ----

  #allowed(list: AccessLists | undefined, id: string): boolean {
    if (list?.deny?.includes(id)) return false;
    return list?.allow === undefined || list.allow.length === 0 || list.allow.includes(id);
  }

  /**
   * A timeline event from sync. History is not handled: what a first sync (no stored position)
   * delivers, and what comes before our own join event in the response that joined us. Such an
   * event still undecryptable is recorded as handled, so that its key arriving later (a
   * history-sharing bundle, a backup) does not run it as new through `room.decrypted`.
   */
  #onTimelineEvent(room: Room, ev: RoomEvent, source: RoomEventMeta["source"]): void {
    const history = source === "initial-sync" || this.#joiningNow.has(room.roomId);
    if (!history) {
      if (ev.encryption?.decrypted === false) this.#late.arrived(ev);
      this.#enqueue(room, ev);
    } else if (ev.encryption?.decrypted === false) this.local.markHandled(ev.eventId);
  }

  /**
   * Handles `ev` after the room's earlier events. Not awaited by the listener: `sync.settle`
   * awaits them all before the client saves its position.
   */
  #enqueue(room: Room, ev: RoomEvent, lateness?: Lateness): void {
    this.#queues.push(
      room.roomId,
      () => this.#inWork.run(true, () => this.#onEvent(room, ev, lateness)),
      (err) => this.logger.error({ err, roomId: room.roomId }, "event handling failed"),
    );
  }

  /** `lateness`: for an event that was not readable on arrival, how long its key took. */
  async #onEvent(room: Room, ev: RoomEvent, lateness?: Lateness): Promise<void> {
    if (!this.#running) return;
    if (ev.type === "m.room.member" && ev.stateKey !== undefined) return this.#onMemberEvent(room, ev);
    if (ev.sender === this.client.userId || ev.stateKey !== undefined) return;
    // Not decrypted yet: it comes again as `room.decrypted` when its key arrives.
    if (ev.encryption?.decrypted === false) return;
    if (this.local.isHandled(ev.eventId)) return;
    if (!this.#allowed(this.#opts.rooms, ev.roomId) || !this.#allowed(this.#opts.users, ev.sender)) return;
    try {
      if (this.#late.isLate(lateness)) await this.#onLate(room, ev, lateness);
      else if (ev.type === "m.room.message") await this.#onMessage(room, ev);
      else if (ev.type === "m.reaction") await this.#onReaction(room, ev);
    } finally {
      this.local.markHandled(ev.eventId);
    }
  }

  async #guard(ctx: EventContext, what: string, fn: () => Promise<unknown>): Promise<void> {
    const chain = this.#middleware.map((m) => m.handler);
    const run = async (i: number): Promise<void> => {
      const mw = chain[i];
      if (mw === undefined) {
        await fn();
        return;
      }
      await mw(ctx, () => run(i + 1));
    };
    try {
      await run(0);
    } catch (err) {
      // Over `answerLimits`: logged once by the limiter, and nothing said (that would feed a loop).
      if (err instanceof AnswerLimitError) return;
      // The error boundary: the user hears something went wrong (at most once per room per
      // `ERROR_NOTICE_INTERVAL_MS`), the log gets the details.
      const ref = ctx.eventId.slice(1, 9);
      this.logger.error(
        { err, handler: what, roomId: ctx.roomId, eventId: ctx.eventId, ref },
        "handler failed",
      );
      if (!this.#answers.takeErrorNotice(ctx.roomId)) return;
      try {
        await ctx.notice(`Sorry, that failed (ref ${ref}).`);
      } catch (sendErr) {
        if (!(sendErr instanceof AnswerLimitError))
          this.logger.error({ err: sendErr, roomId: ctx.roomId }, "could not report a failure");
      }
    }
  }

  /** The body of a message the bot handles; undefined for those it ignores. */
  #handledBody(ev: RoomEvent): string | undefined {
    const content = ev.content;
    // Edits repeat the original's body; other bots' notices must not start loops; a redacted
    // message (sent, then removed before the bot saw it) says nothing any more.
    const rel = content["m.relates_to"] as { rel_type?: unknown } | undefined;
    if (content["m.new_content"] !== undefined || rel?.rel_type === "m.replace") return undefined;
    if (content.msgtype === "m.notice" || ev.unsigned?.redacted_because !== undefined) return undefined;
    const body = typeof content.body === "string" ? content.body : "";
    return body.length > MAX_COMMAND_BODY ? undefined : body;
  }

  async #onMessage(room: Room, ev: RoomEvent): Promise<void> {
    const body = this.#handledBody(ev);
    if (body === undefined) return;
    const isOwner = this.owners.has(ev.sender);
    const invoked = this.#commandIn(body);
    if (invoked !== undefined) {
      const [cmd, argText] = invoked;
      const ctx = new CommandContext(this.client, ev, room, isOwner, cmd.name, argText, this.#gate);
      await this.#guard(ctx, `command ${cmd.name}`, () => this.#runCommand(cmd, ctx));
      return;
    }
    const ctx = new EventContext(this.client, ev, room, isOwner, this.#gate);
    await this.#guard(ctx, "message", async () => {
      for (const { handler } of [...this.#hears]) {
        handler.pattern.lastIndex = 0;
        const match = handler.pattern.exec(body);
        if (match) await handler.run(ctx, match);
      }
      if (this.#mentions.length > 0 && this.#mentionsMe(ev, body)) {
        for (const { handler } of [...this.#mentions]) await handler(ctx);
      }
      for (const { handler } of [...this.#messages]) await handler(ctx);
    });
  }

  /** The command `body` invokes, and its argument text. */
  #commandIn(body: string): [Command, string] | undefined {
    if (!body.startsWith(this.prefix)) return undefined;
    const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(body.slice(this.prefix.length));
    const word = m?.[1]?.toLowerCase() ?? "";
    const cmd = this.#commands.get(this.#aliases.get(word) ?? word);
    return cmd === undefined ? undefined : [cmd, m?.[2] ?? ""];
  }

  /**
   * A message or reaction readable only past `lateEvents.maxDelayMs` after it arrived: no handler
   * runs. One log line (no content); a command from an owner or in a direct chat with its sender
   * is answered, at most once per room per `LATE_NOTICE_INTERVAL_MS`.
   */
  async #onLate(room: Room, ev: RoomEvent, late: Lateness): Promise<void> {
    if (ev.type !== "m.room.message" && ev.type !== "m.reaction") return;
    const { delayMs, since } = late;
    this.logger.info(
      { roomId: ev.roomId, eventId: ev.eventId, sender: ev.sender, type: ev.type, delayMs, since },
      "event readable too late (lateEvents.maxDelayMs), not handled",
    );
    const body = ev.type === "m.room.message" ? this.#handledBody(ev) : undefined;
    const invoked = body === undefined ? undefined : this.#commandIn(body);
    const isOwner = this.owners.has(ev.sender);
    if (invoked === undefined) return;
    if (!isOwner && !this.client.getDirectRoomIds(ev.sender).includes(room.roomId)) return;
    if (!this.#late.takeNotice(room.roomId)) return;
    const text = `${this.prefix}${invoked[0].name} was not run: it reached me ${roughDuration(delayMs)} late (its key came late). Send it again if it still holds.`;
    await new EventContext(this.client, ev, room, isOwner, this.#gate)
      .notice(text)
      .catch(
        (err) =>
          err instanceof AnswerLimitError ||
          this.logger.warn({ err, roomId: room.roomId }, "could not send a late notice"),
      );
  }

  /** What the bot kept in memory for a room it is no longer in (never the room's state on the server). */
  #forgetRoom(roomId: string): void {
    this.#liveRooms.delete(roomId);
    this.#joining.delete(roomId);
    this.#joiningNow.delete(roomId);
    this.#late.forgetRoom(roomId);
    this.#answers.forgetRoom(roomId);
    this.state.forgetRoom(roomId);
  }

  /** @internal For tests: how many entries each per-room collection holds. */
  roomMemory(): Record<string, number> {
    return {
      liveRooms: this.#liveRooms.size,
      joining: this.#joining.size,
      late: this.#late.size,
      answers: this.#answers.size,
      queues: this.#queues.size,
      state: this.state.roomEntries,
    };
  }

  #mentionsMe(ev: RoomEvent, body: string): boolean {
    const mentions = ev.content["m.mentions"];
    if (typeof mentions === "object" && mentions !== null && !Array.isArray(mentions)) {
      const ids = (mentions as { user_ids?: unknown }).user_ids;
      return Array.isArray(ids) && ids.includes(this.client.userId);
    }
    return body.includes(this.client.userId);
  }

  async #runCommand(cmd: Command, ctx: CommandContext): Promise<void> {
    if (this.#rateLimiter !== undefined && !ctx.isOwner) {
      const taken = this.#rateLimiter.take(ctx.sender);
      if (!taken.allowed) {
        if (taken.first) await ctx.notice(`Slow down: try again in ${Math.ceil(taken.retryInMs / 1000)} s.`);
        return;
      }
    }
    if (cmd.opts.ownerOnly) {
      if (!ctx.isOwner) {
        await ctx.notice(`${this.prefix}${cmd.name} is for the bot's owners only.`);
        return;
      }
      if (this.#opts.requireVerifiedOwners && !(await this.#isVerified(ctx.event))) {
        await ctx.notice(
          `${this.prefix}${cmd.name} needs a verified owner: verify the bot first (keyroom bot verify ${ctx.sender}).`,
        );
        return;
      }
    }
    if (cmd.opts.verifiedOnly && !(await this.#isVerified(ctx.event))) {
      await ctx.notice(`${this.prefix}${cmd.name} only answers verified devices: verify with the bot first.`);
      return;
    }
    const parsed = parseArgs(cmd.args, ctx.argText);
    if (!parsed.ok) {
      await ctx.notice(`Usage: ${this.#usage(cmd)}\n${parsed.problem}`);
      return;
    }
    await cmd.run(ctx, parsed.values);
    if (this.#opts.readReceipts) await ctx.markRead();
  }

  /** Sent from a device the bot verified, or one its owner cross-signed whose identity the bot verified. */
  async #isVerified(ev: RoomEvent): Promise<boolean> {
    const info = ev.encryption;
    if (info?.decrypted !== true) return false;
    if (info.trust === "verified") return true;
    if (info.senderCrossSigned !== true) return false;
    const identity = await this.client.getUserIdentity(ev.sender);
    return identity?.verified === true;
  }

  async #onReaction(room: Room, ev: RoomEvent): Promise<void> {
    if (this.#reactions.length === 0) return;
    const rel = ev.content["m.relates_to"];
    if (typeof rel !== "object" || rel === null || Array.isArray(rel)) return;
    const r = rel as { rel_type?: unknown; event_id?: unknown; key?: unknown };
    if (r.rel_type !== "m.annotation" || typeof r.event_id !== "string" || typeof r.key !== "string") return;
    const ctx = Object.assign(
      new EventContext(this.client, ev, room, this.owners.has(ev.sender), this.#gate),
      {
        key: r.key,
        targetEventId: r.event_id,
      },
    );
    await this.#guard(ctx, "reaction", async () => {
      for (const { handler } of [...this.#reactions]) await handler(ctx);
    });
  }

  async #onInvite(
    room: Room,
    inviter: string | undefined,
    state: readonly StrippedStateEvent[],
  ): Promise<void> {
    if (!this.#running) return;
    const policy = this.#opts.invites ?? (this.owners.size > 0 ? "owners" : "anyone");
    const predecessor = await this.#upgradedFrom(room.roomId, state);
    const ok =
      predecessor !== undefined ||
      (inviter !== undefined &&
        this.#allowed(this.#opts.users, inviter) &&
        this.#allowed(this.#opts.rooms, room.roomId) &&
        (policy === "anyone" ||
          (policy === "owners" ? this.owners.has(inviter) : policy.allow.includes(inviter))));
    // Invitations only `invites: anyone` lets in count against `inviteLimits`.
    const limited =
      ok && predecessor === undefined && policy === "anyone" && !this.owners.has(inviter as string);
    const declined = !ok
      ? "invitation declined by the invite policy"
      : limited
        ? this.#overInviteLimits(inviter as string)
        : undefined;
    if (declined !== undefined) {
      this.logger.info({ roomId: room.roomId, inviter }, declined);
      await this.client.leaveRoom(room.roomId).catch((err) => this.logger.warn({ err }, "could not decline"));
      return;
    }
    try {
      await this.client.joinRoom(room.roomId);
      if (limited) this.#joining.add(room.roomId);
      this.logger.info({ roomId: room.roomId, inviter }, "joined on invitation");
      // A direct chat is recorded in m.direct, so `verify` and DMs to the inviter reuse it.
      const mine = state.find((e) => e.type === "m.room.member" && e.state_key === this.client.userId);
      if (inviter !== undefined && mine?.content.is_direct === true)
        await this.client.markDirect(room.roomId, inviter);
      if (predecessor !== undefined) await this.#carryState(predecessor, room.roomId);
    } catch (err) {
      this.logger.warn({ err, roomId: room.roomId }, "could not join on invitation");
    }
  }

  /**
   * Why an invitation that only `invites: anyone` lets in is declined, if it is: the bot is in
   * `maxRooms` rooms already (those it joined and sync does not show yet included), or the inviter
   * has used up their invitations for now.
   */
  #overInviteLimits(inviter: string): string | undefined {
    for (const id of this.#joining)
      if (this.client.getRoom(id)?.membership !== "invite") this.#joining.delete(id);
    const rooms = this.client.getRooms("join").length + this.#joining.size;
    if (rooms >= this.#maxRoomsOnInvite)
      return "invitation declined: the bot is in inviteLimits.maxRooms rooms";
    if (!this.#inviteLimiter.take(inviter).allowed)
      return "invitation declined: the inviter is over inviteLimits.perInviterPerHour";
    return undefined;
  }

  /**
   * The room the bot is in that `roomId` replaces, when `roomId` is its upgrade: its create event
   * names a predecessor the bot is joined to, whose tombstone (asked of the server, not taken from
   * the invitation) points here. Such an invitation is followed whatever the invite policy.
   */
  async #upgradedFrom(roomId: string, state: readonly StrippedStateEvent[]): Promise<string | undefined> {
    const pred = state.find((e) => e.type === "m.room.create")?.content.predecessor as
      | { room_id?: unknown }
      | undefined;
    const predId = typeof pred?.room_id === "string" ? pred.room_id : undefined;
    if (predId === undefined || this.client.getRoom(predId)?.membership !== "join") return undefined;
    try {
      const tombstone = await this.client.fetchStateEvent(predId, "m.room.tombstone");
      return tombstone?.replacement_room === roomId ? predId : undefined;
    } catch {
      return undefined;
    }
  }

  async #carryState(from: string, to: string): Promise<void> {
    const carried = await this.state.carry(from, to);
    this.logger.info({ from, to, state: carried }, "followed a room upgrade");
  }

  /**
   * Membership changes from the timeline, once the bot is in the room: the members who were there
   * before the bot joined are not news (their joins come in the same timeline before the bot's own).
   */
  async #onMemberEvent(room: Room, ev: RoomEvent): Promise<void> {
    const userId = ev.stateKey as string;
    const membership = ev.content.membership as Membership;
    if (userId === this.client.userId) {
      if (membership === "join") this.#liveRooms.add(room.roomId);
      else this.#liveRooms.delete(room.roomId);
      return;
    }
    if (!this.#liveRooms.has(room.roomId) || this.local.isHandled(ev.eventId)) return;
    const prev = ev.unsigned?.prev_content?.membership;
    const previous = typeof prev === "string" ? (prev as Membership) : undefined;
    if (this.#members.length === 0 || membership === previous) return;
    const change: MemberChange = {
      room,
      userId,
      membership,
      previous,
      // An answer to the event, so counted against `answerLimits` (unlike `room()`'s sends).
      sender: new RoomSender(this.client, room.roomId, `bot.job.${ev.eventId}`, undefined, this.#gate),
    };
    for (const { handler } of [...this.#members]) {
      try {
        await handler(change);
      } catch (err) {
        if (err instanceof AnswerLimitError) break;
        this.logger.error({ err, roomId: room.roomId }, "membership handler failed");
      }
    }
    this.local.markHandled(ev.eventId);
  }

  /**
   * A room the bot is in was upgraded: join the successor (a private successor sends an invitation
   * instead, see `#upgradedFrom`) and carry the room's bot state along.
   */
  async #onTombstone(room: Room, successor: string): Promise<void> {
    if (!this.#running || room.membership !== "join") return;
    try {
      const newest = await this.client.followTombstone(room.roomId);
      if (newest !== room.roomId) await this.#carryState(room.roomId, newest);
    } catch (err) {
      if (this.client.getRoom(successor)?.membership === "join") return; // joined on its invitation
      this.logger.info(
        { err, from: room.roomId, to: successor },
        "cannot join the upgraded room yet; waiting for an invitation",
      );
    }
  }

  /** Runs a webhook's handler (for the webhook server). */
  async runWebhook(req: WebhookRequest): Promise<boolean> {
    const hook = this.#webhooks.get(req.name);
    if (hook === undefined) return false;
    await hook.handler(req);
    return true;
  }
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
