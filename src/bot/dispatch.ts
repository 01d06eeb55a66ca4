// Event dispatch: which handlers an event from sync reaches (a command, patterns, mentions,
// messages, reactions, the redactions that take a reaction back, remembered in
// reaction-records.ts, and redactions as such; others' membership changes go to
// room-membership.ts), the checks before a command runs (rate limit, owners, verified senders, its
// arguments), the middleware chain, and the error boundary with its notices. An event readable
// only long after it arrived runs nothing (late-events.ts).
import {
  type Clock,
  htmlToPlainText,
  type Logger,
  type MatrixClient,
  type Room,
  type RoomEvent,
} from "../index.ts";
import { AnswerLimitError, type AnswerLimiter } from "./answer-limits.ts";
import { type MentionPill, parseArgs } from "./commands/args.ts";
import { CommandContext, EventContext, type SendGate } from "./context.ts";
import type { Command, Handlers } from "./handlers.ts";
import { type LateEvents, type Lateness, roughDuration } from "./late-events.ts";
import type { LocalStore } from "./local-store.ts";
import type { AccessLists, BotOptions } from "./options.ts";
import { OwnEvents } from "./own-events.ts";
import { RateLimiter } from "./rate-limit.ts";
import { mayRedact, type ReactionRecord, ReactionRecords } from "./reaction-records.ts";

/** Longest message body the bot looks at for commands and patterns (longer ones are ignored). */
export const MAX_COMMAND_BODY = 16_384;

/** What dispatch takes of the bot. */
export interface DispatchHost {
  readonly client: MatrixClient;
  readonly options: BotOptions;
  readonly owners: ReadonlySet<string>;
  readonly logger: Logger;
  readonly local: LocalStore;
  readonly handlers: Handlers;
  readonly late: LateEvents;
  readonly answers: AnswerLimiter;
  /** Counts an answer against `answerLimits`. */
  readonly gate: SendGate;
  isRunning(): boolean;
  /** A membership change (a member event with a state key). */
  onMemberEvent(room: Room, ev: RoomEvent): Promise<void>;
}

/** Whether `id` passes an allow / deny list (no list, or an empty allow list: everyone). */
export function allowedBy(list: AccessLists | undefined, id: string): boolean {
  if (list?.deny !== undefined && listed(list.deny, id)) return false;
  return list?.allow === undefined || list.allow.length === 0 || listed(list.allow, id);
}

/**
 * Whether a list of IDs names `id`: the ID itself, or `*:example.org` / `@*:example.org`, every
 * user of that server (the part after an ID's first colon).
 */
export function listed(list: readonly string[], id: string): boolean {
  const colon = id.indexOf(":");
  const server = colon < 0 ? undefined : id.slice(colon + 1);
  return list.some(
    (entry) =>
      entry === id || (server !== undefined && (entry === `*:${server}` || entry === `@*:${server}`)),
  );
}

export class Dispatcher {
  readonly #host: DispatchHost;
  /** Commands per user (`BotOptions.rateLimit`; none by default). */
  readonly #rateLimiter: RateLimiter | undefined;
  /** Which events are the bot's own (reactions to them, `ownMessagesOnly`). */
  readonly #own: OwnEvents;
  /** The reactions handled, for reporting their removal (`onReactionRemoved`). */
  readonly #reactions = new ReactionRecords();

  constructor(host: DispatchHost, clock: Clock) {
    this.#host = host;
    this.#own = new OwnEvents(host.client, host.logger);
    const { rateLimit } = host.options;
    this.#rateLimiter = rateLimit ? new RateLimiter(rateLimit, clock) : undefined;
  }

  /** A room the bot is no longer in: which of its events were the bot's goes. */
  forgetRoom(roomId: string): void {
    this.#own.forgetRoom(roomId);
    this.#reactions.forgetRoom(roomId);
  }

  /** Reaction targets remembered (room memory, for tests). */
  get reactionTargets(): number {
    return this.#own.size;
  }

  /** Reactions and redactions remembered for `onReactionRemoved` (room memory, for tests). */
  get reactionRecords(): number {
    return this.#reactions.size;
  }

  /** `lateness`: for an event that was not readable on arrival, how long its key took. */
  async onEvent(room: Room, ev: RoomEvent, lateness?: Lateness): Promise<void> {
    const h = this.#host;
    if (!h.isRunning()) return;
    if (ev.type === "m.room.member" && ev.stateKey !== undefined) return h.onMemberEvent(room, ev);
    if (ev.stateKey !== undefined) return;
    this.#own.seen(ev.roomId, ev.eventId, ev.sender === h.client.userId);
    if (ev.sender === h.client.userId) {
      // The bot's own removal of a reaction is not reported, but the reaction is gone.
      if (ev.type === "m.room.redaction") this.#reactionRedacted(room, ev);
      return;
    }
    // Not decrypted yet: it comes again as `room.decrypted` when its key arrives.
    if (ev.encryption?.decrypted === false) return;
    if (h.local.isHandled(ev.eventId)) return;
    if (!allowedBy(h.options.rooms, ev.roomId) || !allowedBy(h.options.users, ev.sender)) return;
    try {
      if (h.late.isLate(lateness)) await this.#onLate(room, ev, lateness);
      else if (ev.type === "m.room.message") await this.#onMessage(room, ev);
      else if (ev.type === "m.reaction") await this.#onReaction(room, ev);
      else if (ev.type === "m.room.redaction") await this.#onRedaction(room, ev);
    } finally {
      h.local.markHandled(ev.eventId);
    }
  }

  async #guard(ctx: EventContext, what: string, fn: () => Promise<unknown>): Promise<void> {
    const { logger, answers } = this.#host;
    const chain = this.#host.handlers.middleware.map((m) => m.handler);
    /** The furthest step reached: a middleware calling `next` twice would run the handler twice. */
    let reached = -1;
    const run = async (i: number): Promise<void> => {
      if (i <= reached) throw new Error("a middleware called next() more than once");
      reached = i;
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
      logger.error({ err, handler: what, roomId: ctx.roomId, eventId: ctx.eventId, ref }, "handler failed");
      if (!answers.takeErrorNotice(ctx.roomId)) return;
      try {
        // A reply to the message that failed (in its thread, if it was in one); not to a reaction.
        const onMessage = ctx.event.type === "m.room.message";
        await ctx.notice(`Sorry, that failed (ref ${ref}).`, onMessage ? { replyTo: ctx.eventId } : {});
      } catch (sendErr) {
        if (!(sendErr instanceof AnswerLimitError))
          logger.error({ err: sendErr, roomId: ctx.roomId }, "could not report a failure");
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
    return body.length > MAX_COMMAND_BODY ? undefined : withoutReplyFallback(content, body);
  }

  async #onMessage(room: Room, ev: RoomEvent): Promise<void> {
    const { client, handlers, gate } = this.#host;
    const body = this.#handledBody(ev);
    if (body === undefined) return;
    const isOwner = this.#host.owners.has(ev.sender);
    const invoked = this.#commandIn(room, ev, body);
    if (invoked !== undefined) {
      const [cmd, argText] = invoked;
      const ctx = new CommandContext(client, ev, room, isOwner, cmd.name, argText, gate);
      await this.#guard(ctx, `command ${cmd.name}`, () => this.#runCommand(cmd, ctx));
      return;
    }
    const ctx = new EventContext(client, ev, room, isOwner, gate);
    await this.#guard(ctx, "message", async () => {
      const msgtype = ev.content.msgtype;
      for (const { handler } of [...handlers.hears]) {
        if (typeof msgtype !== "string" || !handler.msgtypes.has(msgtype)) continue;
        handler.pattern.lastIndex = 0;
        const match = handler.pattern.exec(body);
        if (match) await handler.run(ctx, match);
      }
      if (handlers.mentions.length > 0 && this.#mentionsMe(ev, body)) {
        for (const { handler } of [...handlers.mentions]) await handler(ctx);
      }
      for (const { handler } of [...handlers.messages]) await handler(ctx);
    });
  }

  /**
   * A message or reaction readable only past `lateEvents.maxDelayMs` after it arrived: no handler
   * runs. One log line (no content); a command from an owner or in a direct chat with its sender
   * is answered, at most once per room per `LATE_NOTICE_INTERVAL_MS`.
   */
  async #onLate(room: Room, ev: RoomEvent, late: Lateness): Promise<void> {
    if (ev.type !== "m.room.message" && ev.type !== "m.reaction") return;
    const { client, logger, handlers } = this.#host;
    const { delayMs, since } = late;
    logger.info(
      { roomId: ev.roomId, eventId: ev.eventId, sender: ev.sender, type: ev.type, delayMs, since },
      "event readable too late (lateEvents.maxDelayMs), not handled",
    );
    const body = ev.type === "m.room.message" ? this.#handledBody(ev) : undefined;
    const invoked = body === undefined ? undefined : this.#commandIn(room, ev, body);
    const isOwner = this.#host.owners.has(ev.sender);
    if (invoked === undefined) return;
    if (!isOwner && !client.getDirectRoomIds(ev.sender).includes(room.roomId)) return;
    if (!this.#host.late.takeNotice(room.roomId)) return;
    const text = `${handlers.prefix}${invoked[0].name} was not run: it reached me ${roughDuration(delayMs)} late (its key came late). Send it again if it still holds.`;
    await new EventContext(client, ev, room, isOwner, this.#host.gate)
      .notice(text)
      .catch(
        (err) =>
          err instanceof AnswerLimitError ||
          logger.warn({ err, roomId: room.roomId }, "could not send a late notice"),
      );
  }

  /**
   * The command a message invokes: its body starts with the prefix, or it addresses the bot first
   * (`Bot: !cmd`, `@bot:example.org !cmd`, as clients write a mention at a message's start) and
   * then starts with the prefix. The bot's display name or localpart counts as an address only in a
   * message whose `m.mentions` names the bot (a mention pill); its user ID always does.
   */
  #commandIn(room: Room, ev: RoomEvent, body: string): ReturnType<Handlers["commandIn"]> {
    const invoked = this.#commandLine(room, ev, body);
    // Of a msgtype the command answers (`m.text` by default): `/me !deploy` runs nothing.
    const msgtype = ev.content.msgtype;
    if (invoked === undefined || typeof msgtype !== "string" || !invoked[0].msgtypes.has(msgtype))
      return undefined;
    return invoked;
  }

  #commandLine(room: Room, ev: RoomEvent, body: string): ReturnType<Handlers["commandIn"]> {
    const { client, handlers } = this.#host;
    const direct = handlers.commandIn(body);
    if (direct !== undefined) return direct;
    const me = client.userId;
    const names = [me];
    const mentions = ev.content["m.mentions"] as { user_ids?: unknown } | undefined;
    if (Array.isArray(mentions?.user_ids) && mentions.user_ids.includes(me)) {
      const displayName = room.getMember(me)?.displayName;
      if (displayName !== undefined && displayName !== "") names.push(displayName);
      names.push(me.slice(1, me.indexOf(":")));
    }
    for (const name of names) {
      if (!body.startsWith(name)) continue;
      const rest = /^[:,]?\s+([\s\S]*)$/.exec(body.slice(name.length))?.[1];
      const invoked = rest === undefined ? undefined : handlers.commandIn(rest);
      if (invoked !== undefined) return invoked;
    }
    return undefined;
  }

  #mentionsMe(ev: RoomEvent, body: string): boolean {
    const mentions = ev.content["m.mentions"];
    if (typeof mentions === "object" && mentions !== null && !Array.isArray(mentions)) {
      const ids = (mentions as { user_ids?: unknown }).user_ids;
      return Array.isArray(ids) && ids.includes(this.#host.client.userId);
    }
    return body.includes(this.#host.client.userId);
  }

  async #runCommand(cmd: Command, ctx: CommandContext): Promise<void> {
    const { options, handlers } = this.#host;
    const { prefix } = handlers;
    // Refusals and usage answers reply to the command (in its thread, if it was in one), so that
    // in a busy room they are seen to answer it; they ping no one (`m.mentions` stays empty).
    const answer = (text: string) => ctx.notice(text, { replyTo: ctx.eventId });
    if (this.#rateLimiter !== undefined && !ctx.isOwner) {
      const taken = this.#rateLimiter.take(ctx.sender);
      if (!taken.allowed) {
        if (taken.first) await answer(`Slow down: try again in ${Math.ceil(taken.retryInMs / 1000)} s.`);
        return;
      }
    }
    if (cmd.opts.ownerOnly) {
      if (!ctx.isOwner) {
        await answer(`${prefix}${cmd.name} is for the bot's owners only.`);
        return;
      }
      if (options.requireVerifiedOwners && !(await this.#isVerified(ctx.event))) {
        await answer(
          `${prefix}${cmd.name} needs a verified owner: verify the bot first (keyroom bot verify ${ctx.sender}).`,
        );
        return;
      }
    }
    if (cmd.opts.verifiedOnly && !(await this.#isVerified(ctx.event))) {
      await answer(`${prefix}${cmd.name} only answers verified devices: verify with the bot first.`);
      return;
    }
    const parsed = parseArgs(cmd.args, ctx.argText, mentionPills(ctx.event));
    if (!parsed.ok) {
      await answer(`Usage: ${handlers.usage(cmd)}\n${parsed.problem}`);
      return;
    }
    await cmd.run(ctx, parsed.values);
    if (options.readReceipts) await ctx.markRead();
  }

  /** Sent from a device the bot verified, or one its owner cross-signed whose identity the bot verified. */
  async #isVerified(ev: RoomEvent): Promise<boolean> {
    const info = ev.encryption;
    if (info?.decrypted !== true) return false;
    if (info.trust === "verified") return true;
    if (info.senderCrossSigned !== true) return false;
    const identity = await this.#host.client.getUserIdentity(ev.sender);
    return identity?.verified === true;
  }

  async #onReaction(room: Room, ev: RoomEvent): Promise<void> {
    const { client, handlers } = this.#host;
    const rel = ev.content["m.relates_to"];
    if (typeof rel !== "object" || rel === null || Array.isArray(rel)) return;
    const r = rel as { rel_type?: unknown; event_id?: unknown; key?: unknown };
    if (r.rel_type !== "m.annotation" || typeof r.event_id !== "string" || typeof r.key !== "string") return;
    // Taken back before the bot could read it (its key came after the redaction): no reaction.
    const redactor = this.#reactions.redactorOf(ev.roomId, ev.eventId);
    if (redactor !== undefined && mayRedact(room, redactor, ev.sender)) return;
    // Remembered by its decrypted content, whoever handles it: a skill loaded later may handle its removal.
    this.#reactions.remember(ev.roomId, ev.eventId, {
      key: r.key,
      targetEventId: r.event_id,
      sender: ev.sender,
    });
    const reached = await this.#reaching(handlers.reactions, ev.roomId, r.event_id);
    if (reached.length === 0) return;
    const ctx = Object.assign(
      new EventContext(client, ev, room, this.#host.owners.has(ev.sender), this.#host.gate),
      {
        key: r.key,
        targetEventId: r.event_id,
      },
    );
    await this.#guard(ctx, "reaction", async () => {
      for (const { handler } of reached) await handler.run(ctx);
    });
  }

  /**
   * The handlers a reaction to `targetEventId` (or its removal) reaches: those for the bot's own
   * messages only when it is one. Whose event it is is asked only when such a handler exists (it
   * may cost a request).
   */
  async #reaching<H extends { readonly handler: { readonly ownMessagesOnly?: boolean } }>(
    registered: readonly H[],
    roomId: string,
    targetEventId: string,
  ): Promise<H[]> {
    if (registered.length === 0) return [];
    const toOwn = registered.some((h) => h.handler.ownMessagesOnly)
      ? await this.#own.isOwn(roomId, targetEventId)
      : false;
    return registered.filter((h) => toOwn || !h.handler.ownMessagesOnly);
  }

  /**
   * The reaction `ev` (an `m.room.redaction`) removes, if it is one the bot reported and its
   * sender may remove it (`Room.mayRedact`: of the reaction's sender's server, or a moderator); forgotten then. A redaction of an
   * event not known is remembered, in case it is a reaction the bot cannot read yet.
   */
  #reactionRedacted(room: Room, ev: RoomEvent): (ReactionRecord & { id: string }) | undefined {
    const id = room.redactionTarget(ev);
    if (id === undefined) return undefined;
    const record = this.#reactions.take(ev.roomId, id);
    if (record === undefined) {
      this.#reactions.redactedUnseen(ev.roomId, id, ev.sender);
      return undefined;
    }
    if (!mayRedact(room, ev.sender, record.sender)) {
      // Not applied by the server either: the reaction stands.
      this.#reactions.remember(ev.roomId, id, record);
      return undefined;
    }
    return { id, ...record };
  }

  /**
   * A redaction: the reaction it removes to `onReactionRemoved` (if the bot remembers it), then
   * the redaction itself to `onRedaction`, if the server would apply it: its redactor is the
   * redacted event's sender's server or may redact others (`Room.mayRedact`), or the bot does not know that sender
   * (`redactedSender` undefined, and the handler decides).
   */
  async #onRedaction(room: Room, ev: RoomEvent): Promise<void> {
    const target = room.redactionTarget(ev);
    if (target === undefined) return;
    const knownSender = this.#reactions.senderOf(ev.roomId, target);
    await this.#onReactionRemoved(room, ev);
    const { client, handlers } = this.#host;
    if (handlers.redactions.length === 0) return;
    if (knownSender !== undefined && !mayRedact(room, ev.sender, knownSender)) return;
    const ctx = Object.assign(
      new EventContext(client, ev, room, this.#host.owners.has(ev.sender), this.#host.gate),
      { redactedEventId: target, redactedSender: knownSender },
    );
    await this.#guard(ctx, "redaction", async () => {
      for (const { handler } of [...handlers.redactions]) await handler(ctx);
    });
  }

  async #onReactionRemoved(room: Room, ev: RoomEvent): Promise<void> {
    const { client, handlers } = this.#host;
    const removed = this.#reactionRedacted(room, ev);
    if (removed === undefined) return;
    const reached = await this.#reaching(handlers.reactionRemovals, ev.roomId, removed.targetEventId);
    if (reached.length === 0) return;
    const ctx = Object.assign(
      new EventContext(client, ev, room, this.#host.owners.has(ev.sender), this.#host.gate),
      {
        key: removed.key,
        targetEventId: removed.targetEventId,
        reactionEventId: removed.id,
        reactionSender: removed.sender,
      },
    );
    await this.#guard(ctx, "reaction removed", async () => {
      for (const { handler } of reached) await handler.run(ctx);
    });
  }
}

/**
 * A reply's body without the quote of the replied-to message that clients put first (`> <@bob:x>
 * what Bob said`, then an empty line; spec "Fallbacks for rich replies"), so that `!cmd` sent as a
 * reply is a command, and the quote (someone else's words) runs no command nor pattern.
 */
function withoutReplyFallback(content: RoomEvent["content"], body: string): string {
  const rel = content["m.relates_to"];
  if (typeof rel !== "object" || rel === null || Array.isArray(rel)) return body;
  if ((rel as { "m.in_reply_to"?: unknown })["m.in_reply_to"] === undefined || !body.startsWith(">"))
    return body;
  const lines = body.split("\n");
  let i = 0;
  while (i < lines.length && lines[i]?.startsWith(">")) i++;
  if (lines[i] === "") i++;
  return lines.slice(i).join("\n");
}

/** Pills read from one message at most (`formatted_body` is network input). */
export const MAX_MENTION_PILLS = 100;

/**
 * The mention pills of a message's `formatted_body` (`<a href="https://matrix.to/#/@alice:x">Alice</a>`),
 * outside a reply's quote (`<mx-reply>`): clients put the pill's text (a display name) in the
 * body, so a `user` argument takes it for the user ID (`!kick Alice` typed with a pill).
 */
function mentionPills(ev: RoomEvent): MentionPill[] {
  const { format, formatted_body: html } = ev.content;
  if (format !== "org.matrix.custom.html" || typeof html !== "string" || html.length > 4 * MAX_COMMAND_BODY)
    return [];
  // Scanned forwards with indexOf, never rescanning (a regex over the whole body backtracked for
  // minutes on a crafted one); only one tag at a time goes through a regex.
  let own = html;
  const lower = html.toLowerCase();
  const quoteStart = lower.indexOf("<mx-reply>");
  const quoteEnd = lower.indexOf("</mx-reply>");
  if (quoteStart >= 0 && quoteEnd > quoteStart)
    own = html.slice(0, quoteStart) + html.slice(quoteEnd + "</mx-reply>".length);
  const text = own.toLowerCase();
  const pills: MentionPill[] = [];
  let at = 0;
  while (pills.length < MAX_MENTION_PILLS) {
    const open = text.indexOf("<a", at);
    if (open < 0) break;
    const close = text.indexOf(">", open);
    if (close < 0) break;
    const next = text.indexOf("<", close);
    at = next < 0 ? text.length : next;
    if (next < 0 || !text.startsWith("</a>", next) || !/\s/.test(text[open + 2] ?? "")) continue;
    const href = PILL_HREF.exec(own.slice(open + 2, close))?.[1];
    if (href === undefined) continue;
    let userId: string;
    try {
      userId = decodeURIComponent(href);
    } catch {
      continue;
    }
    const shown = htmlToPlainText(own.slice(close + 1, next)).trim();
    if (userId.startsWith("@") && shown !== "") pills.push({ text: shown, userId });
  }
  return pills;
}

/** A pill's link in an `<a …>` tag: `href="https://matrix.to/#/@alice:example.org"`. */
const PILL_HREF = /\shref=["']https:\/\/matrix\.to\/#\/([^"'?]*)/i;
