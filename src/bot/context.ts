// What a handler gets: the triggering event and ways to answer it. Every send made while handling
// one event gets a transaction ID derived from that event, so when a crash makes the bot handle
// the event again, the server sees the same transactions and the room no second answer.
import type { JsonObject, MatrixClient, Room, RoomEvent, SendOptions, UploadData } from "../index.ts";
import { renderMarkdown } from "./markdown.ts";
import type { StateHandle, StateSlot } from "./state.ts";

/** Answers one handler may send for one event (bounds a runaway loop in a skill). */
export const MAX_SENDS_PER_EVENT = 100;

export class ContextError extends Error {
  override readonly name = "ContextError";
}

/** Called before each send with its room; throws to refuse it (the bot's `answerLimits`). */
export type SendGate = (roomId: string) => void;

/** Sending into one room, with transaction IDs from `txnBase` (or fresh ones when undefined). */
export class RoomSender {
  #sends = 0;
  constructor(
    readonly client: MatrixClient,
    readonly roomId: string,
    private readonly txnBase: string | undefined,
    /** Relation added to plain sends (a thread the trigger was in). */
    private readonly threadRootId: string | undefined,
    /** Checks (and counts) each send: answers to events are bounded per room. */
    private readonly gate?: SendGate,
  ) {}

  protected txn(): { txnId?: string } {
    this.gate?.(this.roomId);
    if (++this.#sends > MAX_SENDS_PER_EVENT) {
      throw new ContextError(`more than ${MAX_SENDS_PER_EVENT} sends for one event`);
    }
    return this.txnBase === undefined ? {} : { txnId: `${this.txnBase}.${this.#sends}` };
  }

  protected opts(extra: SendOptions = {}): SendOptions {
    return {
      ...(this.threadRootId !== undefined && extra.threadRootId === undefined
        ? { threadRootId: this.threadRootId }
        : {}),
      ...extra,
      // Whom a message pings is said outright (`m.mentions`, spec v1.7: nobody unless named), also
      // when `extra` holds `mentions: undefined`. Without it, clients and servers match the body
      // instead, so a user's text the bot repeats (`@room`, someone's name) would ping, `@room`
      // with the bot's power level.
      mentions: extra.mentions ?? {},
      ...this.txn(),
    };
  }

  // Text sent from here often quotes a user's, which may hold a lone surrogate: the client refuses
  // to send those (INVALID_ARGUMENT), so each is replaced by U+FFFD, as a display shows it.

  /** A plain-text message (in the trigger's thread, if it was in one). Returns the event ID. */
  send(text: string, opts: SendOptions = {}): Promise<string> {
    return this.client.sendText(this.roomId, text.toWellFormed(), this.opts(opts));
  }
  /** An `m.notice` (what bots send for automatic output: other bots ignore notices). */
  notice(text: string, opts: SendOptions = {}): Promise<string> {
    return this.client.sendNotice(this.roomId, text.toWellFormed(), this.opts(opts));
  }
  /** Markdown rendered to HTML (raw HTML in the source is escaped), with the source as plain body. */
  markdown(source: string, opts: SendOptions & { notice?: boolean } = {}): Promise<string> {
    const { html, body } = renderMarkdown(source.toWellFormed());
    const { notice, ...rest } = opts;
    return this.client.sendHtml(this.roomId, html, {
      ...this.opts(rest),
      body,
      ...(notice ? { msgtype: "m.notice" } : {}),
    });
  }
  /** Any message content (e.g. a custom msgtype). */
  sendContent(content: JsonObject, opts: SendOptions = {}): Promise<string> {
    const all = this.opts(opts);
    if (content["m.mentions"] !== undefined && opts.mentions === undefined) delete all.mentions;
    return this.client.sendMessage(this.roomId, content, all);
  }
  react(eventId: string, key: string): Promise<string> {
    return this.client.react(this.roomId, eventId, key.toWellFormed(), this.txn());
  }
  /** Replaces the text of an earlier message of the bot's. */
  edit(eventId: string, text: string): Promise<string> {
    const content = { msgtype: "m.text", body: text.toWellFormed(), "m.mentions": {} };
    return this.client.editMessage(this.roomId, eventId, content, this.txn());
  }
  /** Uploads and posts a file; encrypted (v2 attachment) in encrypted rooms. */
  sendFile(
    data: UploadData,
    opts: { filename: string; contentType?: string; msgtype?: string },
  ): Promise<string> {
    const filename = opts.filename.toWellFormed();
    return this.client.sendFile(this.roomId, data, { ...opts, filename, ...this.opts() });
  }
}

/** A message, reaction or other room event a handler runs for. */
export class EventContext extends RoomSender {
  constructor(
    client: MatrixClient,
    readonly event: RoomEvent,
    readonly room: Room | undefined,
    /** Whether the sender is one of the bot's owners. */
    readonly isOwner: boolean,
    gate?: SendGate,
  ) {
    super(client, event.roomId, `bot.${event.eventId}`, threadRootOf(event), gate);
  }

  get sender(): string {
    return this.event.sender;
  }
  /** `content.body` of a message, or "" for events without one. */
  get body(): string {
    const b = this.event.content.body;
    return typeof b === "string" ? b : "";
  }
  get eventId(): string {
    return this.event.eventId;
  }
  /** Whether the event arrived encrypted (and decrypted). */
  get encrypted(): boolean {
    return this.event.encryption?.decrypted === true;
  }

  /** Answers in the room (in the trigger's thread, if it was in one). */
  reply(text: string): Promise<string> {
    return this.send(text);
  }
  /** A rich reply to the triggering event (`m.in_reply_to`), mentioning its sender. */
  replyTo(text: string): Promise<string> {
    return this.send(text, { replyTo: this.event.eventId, mentions: { userIds: [this.sender] } });
  }
  /** Answers in a thread on the triggering event (or the thread it is in). */
  replyInThread(text: string): Promise<string> {
    return this.send(text, {
      threadRootId: threadRootOf(this.event) ?? this.event.eventId,
      replyTo: this.event.eventId,
      mentions: { userIds: [this.sender] },
    });
  }
  /** Reacts to the triggering event. */
  reactWith(key: string): Promise<string> {
    return this.react(this.event.eventId, key);
  }
  /** Sends a read receipt for the triggering event. */
  markRead(): Promise<void> {
    return this.client.sendReadReceipt(this.roomId, this.event.eventId);
  }
  /** The attachment of a file / image / audio / video message, decrypted when it was encrypted. */
  async download(opts: { maxBytes?: number } = {}): Promise<Uint8Array> {
    const c = this.event.content;
    if (c.file === undefined && c.url === undefined)
      throw new ContextError("the event carries no attachment");
    return this.client.downloadAttachment(c, opts);
  }
  /** This room's slot of a state key. */
  roomState<T>(handle: StateHandle<T>): StateSlot<T> {
    return handle.room(this.roomId);
  }
}

/** A command with its parsed arguments. */
export class CommandContext extends EventContext {
  constructor(
    client: MatrixClient,
    event: RoomEvent,
    room: Room | undefined,
    isOwner: boolean,
    /** The command name as registered (not an alias). */
    readonly command: string,
    /** The text after the command name. */
    readonly argText: string,
    gate?: SendGate,
  ) {
    super(client, event, room, isOwner, gate);
  }
}

function threadRootOf(event: RoomEvent): string | undefined {
  const rel = event.content["m.relates_to"];
  if (typeof rel !== "object" || rel === null || Array.isArray(rel)) return undefined;
  const r = rel as JsonObject;
  return r.rel_type === "m.thread" && typeof r.event_id === "string" ? r.event_id : undefined;
}
