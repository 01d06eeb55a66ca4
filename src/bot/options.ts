// What a bot takes (`BotOptions`) and what handlers get: the types of `Bot`'s public surface, kept
// apart from its dispatch code (bot.ts re-exports them).
import type { Clock, Logger, MatrixClient, Membership, Room } from "../index.ts";
import type { AnswerLimits } from "./answer-limits.ts";
import type { ArgSpecs, ArgValues } from "./commands/args.ts";
import type { CommandContext, EventContext, RoomSender } from "./context.ts";
import type { LateEventOptions } from "./late-events.ts";
import type { LocalStore } from "./local-store.ts";
import type { RateLimitOptions } from "./rate-limit.ts";
import type { JobInfo } from "./scheduler.ts";

/** `allow`: user IDs, or `*:example.org` for every user of a server. */
export type InvitePolicy = "anyone" | "owners" | { allow: readonly string[] };

/**
 * Rooms the bot may be in and still join on an invitation that only `invites: anyone` lets in
 * (the inviter neither an owner nor allow-listed): past it such invitations are declined, since
 * anyone can invite the bot to rooms without end and each joined room costs device tracking, key
 * sharing, state and sync size. Owners' and allow-listed inviters' invitations are not counted
 * against it, nor refused by it.
 */
export const DEFAULT_MAX_ROOMS_ON_INVITE = 1_000;
/** Invitations one such inviter gets the bot to follow an hour (at most that many at once). */
export const DEFAULT_INVITES_PER_INVITER_PER_HOUR = 5;

/** Bounds on joining when `invites` is `anyone` (owners and allow-listed inviters are exempt). */
export interface InviteLimits {
  /** The bot joins on such an invitation only while in fewer rooms (default `DEFAULT_MAX_ROOMS_ON_INVITE`). */
  maxRooms?: number;
  /** Such invitations followed per inviter an hour (default `DEFAULT_INVITES_PER_INVITER_PER_HOUR`). */
  perInviterPerHour?: number;
}

export interface AccessLists {
  allow?: readonly string[];
  deny?: readonly string[];
}

export interface BotOptions {
  /** A logged-in client (encryption on, for a bot in encrypted rooms). The bot starts its sync. */
  client: MatrixClient;
  /** Command prefix (default `!`). */
  prefix?: string;
  /** Users who own the bot: they may use owner-only commands and (by default) invite it. */
  owners?: readonly string[];
  /** Whose invitations the bot accepts: default `owners` when there are owners, else `anyone`. */
  invites?: InvitePolicy;
  /** Bounds on invitations followed because of `invites: anyone` alone. */
  inviteLimits?: InviteLimits;
  /** Users whose events the bot handles (`allow`: only these) or ignores (`deny`); `*:example.org`: a server's. */
  users?: AccessLists;
  /** Rooms the bot handles events in, or ignores. */
  rooms?: AccessLists;
  /**
   * The loop breaker: sends in answer to events per room in a sliding minute (default
   * `DEFAULT_ANSWERS_PER_ROOM_PER_MINUTE`); past it the bot answers nothing there until the minute
   * frees. Scheduled jobs and webhooks are not counted (see answer-limits.ts).
   */
  answerLimits?: AnswerLimits;
  /** Per-user command rate limit (none by default). */
  rateLimit?: RateLimitOptions;
  /** Owner-only commands also need the owner's identity verified by the bot (default false). */
  requireVerifiedOwners?: boolean;
  /**
   * Events whose room key came late (from the key backup, a forward, days on) are not handled
   * past `maxDelayMs` after they arrived (default 10 minutes; see late-events.ts).
   */
  lateEvents?: LateEventOptions;
  /** Send a read receipt for every command handled (default false). */
  readReceipts?: boolean;
  /** The generated `help` command (default true). */
  help?: boolean;
  logger?: Logger;
  /** Time for scheduled jobs and rate limits (a fake clock in tests). */
  clock?: Clock;
  /** Handled events (dedupe) and local key-value data; default in memory. */
  localStore?: LocalStore;
  /** Time zone for cron expressions (default: the machine's). */
  timezone?: string;
}

export type Handler<C> = (ctx: C) => unknown | Promise<unknown>;
export type Middleware = (ctx: EventContext, next: () => Promise<void>) => Promise<void>;

export interface CommandOptions<A extends ArgSpecs> {
  args?: A;
  /** One line for `help`. */
  help?: string;
  aliases?: readonly string[];
  /** Only owners may run it (verified owners, with `requireVerifiedOwners`). */
  ownerOnly?: boolean;
  /** Only senders whose device is verified (by the bot, or cross-signed by a user the bot verified). */
  verifiedOnly?: boolean;
  /**
   * The message types (`msgtype`) that may invoke it (default `["m.text"]`, as maubot's commands:
   * `/me !deploy` is an emote about a command, not one). `m.notice` is never answered: listing it
   * throws `RangeError`.
   */
  msgtypes?: readonly string[];
}

/** Which messages a `hears` pattern is tried on. */
export interface HearsOptions {
  /** As `CommandOptions.msgtypes`: default `["m.text"]`; `m.notice` throws `RangeError`. */
  msgtypes?: readonly string[];
}

/** Which reactions an `onReaction` (or `onReactionRemoved`) handler gets. */
export interface ReactionOptions {
  /**
   * Only reactions to the bot's own messages (a poll, a confirmation it asked for), not to anyone
   * else's (default false: every reaction the bot sees).
   */
  ownMessagesOnly?: boolean;
}

export interface ReactionContextExtra {
  /** The reaction key (usually an emoji). */
  key: string;
  /** The event reacted to. */
  targetEventId: string;
}
export type ReactionContext = EventContext & ReactionContextExtra;

/**
 * A reaction taken back: what `onReactionRemoved` handlers get. The context's event is the
 * redaction, so `ctx.sender` is who removed it: the reaction's sender, another user of its server,
 * or a moderator (a power level of at least the room's `redact` level): `Room.mayRedact`.
 */
export interface ReactionRemovedContextExtra {
  /** The removed reaction's key. */
  key: string;
  /** The event the reaction was on. */
  targetEventId: string;
  /** The removed reaction's event ID (the one its `onReaction` context had as `eventId`). */
  reactionEventId: string;
  /** Who had reacted (`ctx.sender` is who removed it). */
  reactionSender: string;
}
export type ReactionRemovedContext = EventContext & ReactionRemovedContextExtra;

/**
 * A redaction the server would apply: what `onRedaction` handlers get. The context's event is the
 * redaction, so `ctx.sender` is who redacted.
 */
export interface RedactionContextExtra {
  /** The redacted event (the room version's field: top-level `redacts` before 11, `content.redacts` from 11). */
  redactedEventId: string;
  /**
   * The redacted event's sender when the bot knows it (a reaction it remembers): then
   * `ctx.room.mayRedact(ctx.sender, redactedSender)` holds (the client's rule). Undefined when the
   * bot does not know it (an event from before a restart, or not a reaction): nothing was checked,
   * and the handler decides, e.g. by `ctx.room.mayRedact(ctx.sender, theSenderItStored)`.
   */
  redactedSender: string | undefined;
}
export type RedactionContext = EventContext & RedactionContextExtra;

export interface MemberChange {
  room: Room;
  userId: string;
  membership: Membership;
  previous: Membership | undefined;
  /** Sends into the room where the change happened. */
  sender: RoomSender;
}

export interface WebhookRequest {
  /** The hook's name (the path segment after `/hooks/`). */
  name: string;
  body: unknown;
  /** The request's headers, without `authorization` (the shared secret, checked already). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** Registering handlers: the bot itself, or a skill's scope of it (removed as one on reload). */
export interface HandlerRegistry {
  command<A extends ArgSpecs = Record<string, never>>(
    name: string,
    opts: CommandOptions<A>,
    run: (ctx: CommandContext, args: ArgValues<A>) => unknown | Promise<unknown>,
  ): void;
  /** `m.text` messages (or those of `opts.msgtypes`) whose body matches `pattern`. */
  hears(
    pattern: RegExp,
    run: (ctx: EventContext, match: RegExpExecArray) => unknown | Promise<unknown>,
  ): void;
  hears(
    pattern: RegExp,
    opts: HearsOptions,
    run: (ctx: EventContext, match: RegExpExecArray) => unknown | Promise<unknown>,
  ): void;
  /** Messages that mention the bot (`m.mentions`, or its user ID in the body). */
  onMention(run: Handler<EventContext>): void;
  /** Every message that is not a command. */
  onMessage(run: Handler<EventContext>): void;
  /** Reactions (with `ownMessagesOnly`, only those to the bot's own messages). */
  onReaction(run: Handler<ReactionContext>): void;
  onReaction(opts: ReactionOptions, run: Handler<ReactionContext>): void;
  /**
   * Reactions reported to `onReaction` that were then removed (redacted) by a user the client's
   * rooms take it from (`Room.mayRedact`: of the sender's server, or a moderator; with
   * `ownMessagesOnly`, only those on the bot's own messages).
   */
  onReactionRemoved(run: Handler<ReactionRemovedContext>): void;
  onReactionRemoved(opts: ReactionOptions, run: Handler<ReactionRemovedContext>): void;
  /**
   * Redactions of any event that the server would apply (`ctx.redactedEventId`); one whose
   * redacted event the bot does not know comes with `ctx.redactedSender` undefined, unchecked.
   */
  onRedaction(run: Handler<RedactionContext>): void;
  /** Membership changes of others in rooms the bot is in (e.g. a welcome on join). */
  onMember(run: (change: MemberChange) => unknown | Promise<unknown>): void;
  /** A cron job (`*\/5 * * * *`; six fields for seconds). `name` must be unique in the bot. */
  schedule(name: string, cron: string, run: (info: JobInfo) => unknown | Promise<unknown>): void;
  /** Handles POSTs to `/hooks/<name>` of the bot's webhook server (see `startWebhookServer`). */
  webhook(name: string, run: (req: WebhookRequest) => unknown | Promise<unknown>): void;
  use(middleware: Middleware): void;
}
