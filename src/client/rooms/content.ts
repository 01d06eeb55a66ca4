// Builders for message content: plain, HTML, replies, threads, edits and reactions (spec §11.2,
// §11.19 event relationships). Pure functions; the client adds transport.
import { type JsonObject, MAX_EVENT_DEPTH, outgoingJsonProblem } from "../../wire/index.ts";
import { ClientError } from "../errors.ts";

/**
 * Throws `INVALID_ARGUMENT` for content others would not get as it is (`outgoingJsonProblem`):
 * refused here, the same in plaintext and encrypted rooms, rather than by the server or changed
 * on the way. `what` names it in the message.
 */
export function assertSendable(content: JsonObject, what: string): void {
  // The content sits one level under the event (or the encrypted payload), which others bound.
  const problem = outgoingJsonProblem(content, MAX_EVENT_DEPTH - 1);
  if (problem !== undefined) throw new ClientError("INVALID_ARGUMENT", `${what} ${problem}`);
}

export type MessageType = "m.text" | "m.notice" | "m.emote";

/** Who a message mentions (`m.mentions`, spec v1.7); an empty object means "nobody". */
export interface Mentions {
  userIds?: string[];
  room?: boolean;
}

export interface RelationOptions {
  /** Event this message replies to. */
  replyTo?: string;
  /** Root event of the thread to post in. */
  threadRootId?: string;
  mentions?: Mentions;
}

export function textContent(body: string, msgtype: MessageType = "m.text"): JsonObject {
  return { msgtype, body };
}

/** HTML message; `body` is the plain-text fallback (derived from the HTML when omitted). */
export function htmlContent(html: string, body?: string, msgtype: MessageType = "m.text"): JsonObject {
  return {
    msgtype,
    body: body ?? htmlToPlainText(html),
    format: "org.matrix.custom.html",
    formatted_body: html,
  };
}

/** Adds reply, thread and mention fields to `content` (returns a new object). */
export function withRelations(content: JsonObject, opts: RelationOptions): JsonObject {
  const out: JsonObject = { ...content };
  if (opts.threadRootId !== undefined) {
    // In a thread, `m.in_reply_to` is the replied-to event, or the root as a fallback for clients
    // without thread support (`is_falling_back`).
    out["m.relates_to"] = {
      rel_type: "m.thread",
      event_id: opts.threadRootId,
      is_falling_back: opts.replyTo === undefined,
      "m.in_reply_to": { event_id: opts.replyTo ?? opts.threadRootId },
    };
  } else if (opts.replyTo !== undefined) {
    out["m.relates_to"] = { "m.in_reply_to": { event_id: opts.replyTo } };
  }
  if (opts.mentions) {
    const m: JsonObject = {};
    if (opts.mentions.userIds) m.user_ids = [...opts.mentions.userIds];
    if (opts.mentions.room) m.room = true;
    out["m.mentions"] = m;
  }
  return out;
}

/** An edit of `targetEventId` replacing its content with `newContent` (`m.replace`). */
export function editContent(targetEventId: string, newContent: JsonObject): JsonObject {
  const fallback: JsonObject = { ...newContent };
  if (typeof newContent.body === "string") fallback.body = `* ${newContent.body}`;
  if (typeof newContent.formatted_body === "string")
    fallback.formatted_body = `* ${newContent.formatted_body}`;
  return {
    ...fallback,
    "m.new_content": newContent,
    "m.relates_to": { rel_type: "m.replace", event_id: targetEventId },
  };
}

/** A reaction (`m.reaction` content) with `key`, usually an emoji. */
export function reactionContent(targetEventId: string, key: string): JsonObject {
  return { "m.relates_to": { rel_type: "m.annotation", event_id: targetEventId, key } };
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: " " };

/** A readable plain-text fallback for HTML: line breaks kept, tags dropped, common entities decoded. */
export function htmlToPlainText(html: string): string {
  return html
    .replace(/<br\s*\/?>/gi, "\n")
    .replace(/<\/(p|div|li|h[1-6]|blockquote|pre)>/gi, "\n")
    .replace(/<[^>]*>/g, "")
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, ent: string) => {
      if (ent[0] === "#") {
        const cp =
          ent[1] === "x" || ent[1] === "X" ? Number.parseInt(ent.slice(2), 16) : Number(ent.slice(1));
        return Number.isInteger(cp) && cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : whole;
      }
      return ENTITIES[ent.toLowerCase()] ?? whole;
    })
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}
