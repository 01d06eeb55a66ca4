// What the CLI prints: JSON lines for records, and one line per error. Nothing here ever sees an
// access token (profiles are printed through `publicProfile`).
import {
  MalformedResponseError,
  MatrixError,
  NetworkError,
  printable,
  printableJson,
  type Room,
  type RoomEvent,
} from "../index.ts";
import { CliError } from "./errors.ts";

/** One JSON record per line (newlines and every other control character inside strings escaped). */
export function jsonLine(record: object): string {
  return `${printableJson(record)}\n`;
}

/** A room as `keyroom rooms` prints it. */
export interface RoomLine {
  room_id: string;
  name: string | null;
  encrypted: boolean;
  /** Joined members' user IDs. */
  members: string[];
}

export function roomLine(room: Room): RoomLine {
  return {
    room_id: room.roomId,
    name: room.name ?? null,
    encrypted: room.encrypted,
    members: [...room.joinedMemberIds].sort(),
  };
}

/** A timeline message as `keyroom tail` prints it. */
export interface MessageLine {
  room_id: string;
  event_id: string;
  sender: string;
  /** The effective type: `m.room.message` once decrypted, `m.room.encrypted` when not. */
  type: string;
  msgtype: string | null;
  body: string | null;
  formatted_body?: string;
  /** Media: the `mxc://` URL of a plain attachment. */
  url?: string;
  origin_server_ts: number;
  encrypted: boolean;
  /** Encrypted events only: whether the client could decrypt it. */
  decrypted?: boolean;
  /** Encrypted events only: trust in the sending device, null when unknown or undecrypted. */
  trust?: string | null;
  /** Encrypted events that did not decrypt: the failure code. */
  error?: string;
  /** `tail` only: a message printed undecrypted before, decrypted now that its key arrived. */
  late?: true;
}

/** The message types `tail` prints: messages, and encrypted events that stayed encrypted. */
export function isMessageEvent(ev: RoomEvent): boolean {
  return ev.stateKey === undefined && (ev.type === "m.room.message" || ev.type === "m.room.encrypted");
}

export function messageLine(ev: RoomEvent): MessageLine {
  const str = (k: string): string | undefined => {
    const v = ev.content[k];
    return typeof v === "string" ? v : undefined;
  };
  const line: MessageLine = {
    room_id: ev.roomId,
    event_id: ev.eventId,
    sender: ev.sender,
    type: ev.type,
    msgtype: str("msgtype") ?? null,
    body: ev.type === "m.room.encrypted" ? null : (str("body") ?? null),
    origin_server_ts: ev.originServerTs,
    encrypted: ev.raw.type === "m.room.encrypted",
  };
  const formatted = str("formatted_body");
  if (formatted !== undefined && str("format") === "org.matrix.custom.html") line.formatted_body = formatted;
  const url = str("url");
  if (url !== undefined) line.url = url;
  if (line.encrypted) {
    const info = ev.encryption;
    line.decrypted = info?.decrypted === true;
    line.trust = info?.decrypted === true ? (info.trust ?? null) : null;
    if (info !== undefined && info.decrypted === false) line.error = info.code;
  }
  return line;
}

/** One line (no newline) describing an error for stderr, without stack or request data. */
export function errorMessage(err: unknown): string {
  let text: string;
  if (err instanceof MatrixError)
    text = err.message; // "M_FORBIDDEN (HTTP 403): …"
  else if (err instanceof NetworkError) text = `network error (${err.code}): ${err.message}`;
  else if (err instanceof MalformedResponseError) text = err.message;
  else if (err instanceof CliError) text = err.message;
  else if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    text = typeof code === "string" ? `${err.message} (${code})` : `${err.name}: ${err.message}`;
  } else text = `unexpected failure: ${String(err)}`;
  // A server's or a peer's words can be in it: no control character reaches the terminal.
  return printable(text.replace(/\s*[\r\n]+\s*/g, " ").trim());
}
