// The bot: handlers registered by code or skills, run for what sync delivers, behind middleware
// (allow / deny lists, rate limits, verified senders, the error boundary), and a bound on its
// answers per room (answer-limits.ts) that ends loops with other bots. The bot takes any
// logged-in `MatrixClient` (from `openBotClient`, or another source such as an appservice), so how
// the client came to be is not its business. This file wires its parts to the client and runs
// them: the handlers registered (handlers.ts), which of them an event reaches (dispatch.ts), which
// rooms' events are news (room-membership.ts), and the invitations and upgrades it follows
// (invitations.ts).
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
  type Room,
  type RoomEvent,
  type RoomEventMeta,
  silentLogger,
  systemClock,
  type VerificationRequest,
} from "../index.ts";
import { AnswerLimiter } from "./answer-limits.ts";
import type { ArgSpecs, ArgValues } from "./commands/args.ts";
import { addHelpCommand } from "./commands/help.ts";
import { type CommandContext, type EventContext, RoomSender } from "./context.ts";
import { Dispatcher } from "./dispatch.ts";
import { Handlers } from "./handlers.ts";
import { Invitations } from "./invitations.ts";
import { LateEvents, type Lateness } from "./late-events.ts";
import { type LocalStore, MemoryLocalStore } from "./local-store.ts";
import type {
  BotOptions,
  CommandOptions,
  Handler,
  HandlerRegistry,
  HearsOptions,
  MemberChange,
  Middleware,
  ReactionContext,
  ReactionOptions,
  ReactionRemovedContext,
  RedactionContext,
  WebhookRequest,
} from "./options.ts";
import { RoomMembership } from "./room-membership.ts";
import { RoomQueues } from "./room-queues.ts";
import { type JobInfo, Scheduler } from "./scheduler.ts";
import { BotState } from "./state.ts";
import { type SasToCompare, verifyWithSas } from "./verify.ts";

type HearsRun = (ctx: EventContext, match: RegExpExecArray) => unknown | Promise<unknown>;

export class Bot implements HandlerRegistry {
  readonly client: MatrixClient;
  readonly state: BotState;
  readonly local: LocalStore;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  readonly prefix: string;
  readonly owners: ReadonlySet<string>;
  /** Every handler registered, by kind and scope. */
  readonly #handlers: Handlers;
  /** Which handlers an event reaches (dispatch.ts). */
  readonly #dispatch: Dispatcher;
  /** Rooms whose events are news or history, and others' membership changes (room-membership.ts). */
  readonly #rooms: RoomMembership;
  /** Invitations followed or declined, and room upgrades followed (invitations.ts). */
  readonly #invitations: Invitations;
  #offs: (() => void)[] = [];
  #running = false;
  /** Set while the bot's own work runs (an event's handling, a job): `stop()` must not wait for it. */
  readonly #inWork = new AsyncLocalStorage<true>();
  /** Event handling: one room in order, rooms at once (see `#enqueue`). */
  readonly #queues = new RoomQueues();
  /** Events that became readable late, and the late notices sent. */
  readonly #late: LateEvents;
  /** The loop breaker: answers to events per room (`answerLimits`), and error notices per room. */
  readonly #answers: AnswerLimiter;
  readonly #gate = (roomId: string): void => this.#answers.take(roomId);

  constructor(opts: BotOptions) {
    this.client = opts.client;
    this.prefix = opts.prefix ?? "!";
    this.owners = new Set(opts.owners ?? []);
    this.logger = opts.logger ?? silentLogger;
    this.clock = opts.clock ?? systemClock;
    this.local = opts.localStore ?? new MemoryLocalStore();
    this.state = new BotState(this.client);
    this.scheduler = new Scheduler(this.clock, this.logger, opts.timezone);
    this.#late = new LateEvents(this.clock, opts.lateEvents);
    this.#answers = new AnswerLimiter(this.clock, this.logger, opts.answerLimits);
    this.#handlers = new Handlers(this.prefix);
    const host = {
      client: this.client,
      options: opts,
      owners: this.owners,
      logger: this.logger,
      local: this.local,
      state: this.state,
      handlers: this.#handlers,
      late: this.#late,
      answers: this.#answers,
      gate: this.#gate,
      isRunning: () => this.#running,
      onMemberEvent: (room: Room, ev: RoomEvent) => this.#rooms.onMemberEvent(room, ev),
    };
    this.#rooms = new RoomMembership(host);
    this.#invitations = new Invitations(host, this.clock);
    this.#dispatch = new Dispatcher(host, this.clock);
    if (opts.help !== false) addHelpCommand(this.#handlers);
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
    this.#handlers.addCommand(name, opts, run, undefined);
  }
  hears(pattern: RegExp, run: HearsRun): void;
  hears(pattern: RegExp, opts: HearsOptions, run: HearsRun): void;
  hears(pattern: RegExp, a: HearsRun | HearsOptions, b?: HearsRun): void {
    this.#handlers.addHears(pattern, a, b, undefined);
  }
  onMention(run: Handler<EventContext>): void {
    this.#handlers.add(this.#handlers.mentions, run, undefined);
  }
  onMessage(run: Handler<EventContext>): void {
    this.#handlers.add(this.#handlers.messages, run, undefined);
  }
  onReaction(run: Handler<ReactionContext>): void;
  onReaction(opts: ReactionOptions, run: Handler<ReactionContext>): void;
  onReaction(a: Handler<ReactionContext> | ReactionOptions, b?: Handler<ReactionContext>): void {
    this.#handlers.addReaction(a, b, undefined);
  }
  onReactionRemoved(run: Handler<ReactionRemovedContext>): void;
  onReactionRemoved(opts: ReactionOptions, run: Handler<ReactionRemovedContext>): void;
  onReactionRemoved(
    a: Handler<ReactionRemovedContext> | ReactionOptions,
    b?: Handler<ReactionRemovedContext>,
  ): void {
    this.#handlers.addReactionRemoved(a, b, undefined);
  }
  onRedaction(run: Handler<RedactionContext>): void {
    this.#handlers.add(this.#handlers.redactions, run, undefined);
  }
  onMember(run: (change: MemberChange) => unknown | Promise<unknown>): void {
    this.#handlers.add(this.#handlers.members, run, undefined);
  }
  schedule(name: string, cron: string, run: (info: JobInfo) => unknown | Promise<unknown>): void {
    this.scheduler.add(name, cron, (info) => this.#inWork.run(true, async () => void (await run(info))));
  }
  webhook(name: string, run: (req: WebhookRequest) => unknown | Promise<unknown>): void {
    this.#handlers.addWebhook(name, run, undefined);
  }
  use(middleware: Middleware): void {
    this.#handlers.add(this.#handlers.middleware, middleware, undefined);
  }

  /** A registry whose handlers belong to `scope` (a skill): `removeScope` drops them all at once. */
  scope(scope: string): HandlerRegistry {
    const h = this.#handlers;
    return {
      command: (name, opts, run) => h.addCommand(name, opts, run, scope),
      hears: (pattern: RegExp, a: HearsRun | HearsOptions, b?: HearsRun) => h.addHears(pattern, a, b, scope),
      onMention: (run) => h.add(h.mentions, run, scope),
      onMessage: (run) => h.add(h.messages, run, scope),
      onReaction: (a: Handler<ReactionContext> | ReactionOptions, b?: Handler<ReactionContext>) =>
        h.addReaction(a, b, scope),
      onReactionRemoved: (
        a: Handler<ReactionRemovedContext> | ReactionOptions,
        b?: Handler<ReactionRemovedContext>,
      ) => h.addReactionRemoved(a, b, scope),
      onRedaction: (run) => h.add(h.redactions, run, scope),
      onMember: (run) => h.add(h.members, run, scope),
      schedule: (name, cron, run) =>
        this.scheduler.add(
          name,
          cron,
          (info) => this.#inWork.run(true, async () => void (await run(info))),
          scope,
        ),
      webhook: (name, run) => h.addWebhook(name, run, scope),
      use: (mw) => h.add(h.middleware, mw, scope),
    };
  }

  removeScope(scope: string): void {
    this.#handlers.removeScope(scope);
    this.scheduler.removeScope(scope);
  }

  get commandNames(): string[] {
    return this.#handlers.commandNames;
  }
  hasWebhook(name: string): boolean {
    return this.#handlers.webhooks.has(name);
  }

  // ---- running ----

  /** Starts listening, syncing and the scheduled jobs. Resolves after the first sync. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    const c = this.client;
    for (const room of c.getRooms("join")) this.#rooms.markLive(room.roomId);
    this.#offs = [
      c.on("room.myMembership", (room, membership, previous) =>
        this.#rooms.onMyMembership(room.roomId, membership, previous),
      ),
      // Emitted in the response's order, a timeline event's just before its `room.event`.
      c.on("room.state", (room, ev) => {
        const ownJoin =
          ev.type === "m.room.member" && ev.state_key === c.userId && ev.content.membership === "join";
        // Membership changes after it are news, also where our join is not handled as an event (a
        // first sync, a join in the state block): in order with the room's events.
        if (ownJoin && this.#rooms.ownJoinPassed(room.roomId))
          this.#queues.push(
            room.roomId,
            async () => this.#rooms.markLive(room.roomId),
            () => {},
          );
      }),
      c.on("room.event", (room, ev, meta) => this.#onTimelineEvent(room, ev, meta.source)),
      c.on("room.decrypted", (room, ev) => this.#enqueue(room, ev, this.#late.decrypted(ev))),
      // The sync position is saved only after this: every event of the response handled.
      c.on("sync.settle", async () => {
        // This response's rooms left: the next response, handled while this one's work runs,
        // notes its own, whose events this settle does not wait for.
        const left = this.#rooms.settle();
        await this.#queues.settle();
        // Rooms left: what was kept for them goes, once their last events were handled.
        for (const id of left) {
          const now = c.getRoom(id)?.membership;
          if (now !== "join" && now !== "invite") this.#forgetRoom(id);
        }
      }),
      c.on("room.forgotten", (roomId) => this.#forgetRoom(roomId)),
      c.on("room.invite", (room, inviter, state) => this.#invitations.onInvite(room, inviter, state)),
      c.on("room.tombstone", (room, t) => this.#invitations.onTombstone(room, t.replacementRoomId)),
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

  // ---- events ----

  /**
   * A timeline event from sync. History is not handled: what a first sync (no stored position)
   * delivers, and what comes before our own join event in the response that joined us. Such an
   * event still undecryptable is recorded as handled, so that its key arriving later (a
   * history-sharing bundle, a backup) does not run it as new through `room.decrypted`.
   */
  #onTimelineEvent(room: Room, ev: RoomEvent, source: RoomEventMeta["source"]): void {
    const history = source === "initial-sync" || this.#rooms.isJoiningNow(room.roomId);
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
      () => this.#inWork.run(true, () => this.#dispatch.onEvent(room, ev, lateness)),
      (err) => this.logger.error({ err, roomId: room.roomId }, "event handling failed"),
    );
  }

  /** What the bot kept in memory for a room it is no longer in (never the room's state on the server). */
  #forgetRoom(roomId: string): void {
    this.#rooms.forgetRoom(roomId);
    this.#invitations.forgetRoom(roomId);
    this.#late.forgetRoom(roomId);
    this.#answers.forgetRoom(roomId);
    this.state.forgetRoom(roomId);
    this.#dispatch.forgetRoom(roomId);
  }

  /** @internal For tests: how many entries each per-room collection holds. */
  roomMemory(): Record<string, number> {
    return {
      liveRooms: this.#rooms.liveRooms,
      joining: this.#invitations.joining,
      late: this.#late.size,
      answers: this.#answers.size,
      queues: this.#queues.size,
      state: this.state.roomEntries,
      reactionTargets: this.#dispatch.reactionTargets,
      reactions: this.#dispatch.reactionRecords,
    };
  }

  /** Runs a webhook's handler (for the webhook server). */
  async runWebhook(req: WebhookRequest): Promise<boolean> {
    const hook = this.#handlers.webhooks.get(req.name);
    if (hook === undefined) return false;
    await hook.handler(req);
    return true;
  }
}
