// `keyroom send`: text, notice, HTML or a file; prints the event ID alone. In an encrypted room the
// client encrypts (profiles with encryption) or refuses (profiles without): it never sends plaintext.
import { readFile } from "node:fs/promises";
import { basename, extname } from "node:path";
import { printable } from "../../index.ts";
import { CliError } from "../errors.ts";
import { requireProfile } from "../profile.ts";
import { restoreProfile } from "../session.ts";
import type { CommandIo } from "./io.ts";
import { resolveRoom } from "./rooms.ts";

export interface SendArgs {
  profileDir: string;
  room: string;
  text?: string;
  notice: boolean;
  /** `text` is HTML; the plain `body` is derived from it. */
  html: boolean;
  file?: string;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".svg": "image/svg+xml",
  ".mp3": "audio/mpeg",
  ".ogg": "audio/ogg",
  ".wav": "audio/wav",
  ".mp4": "video/mp4",
  ".webm": "video/webm",
  ".txt": "text/plain",
  ".md": "text/markdown",
  ".json": "application/json",
  ".pdf": "application/pdf",
  ".zip": "application/zip",
};

/** The content type for a file name (by extension; `application/octet-stream` otherwise). */
export function contentTypeFor(fileName: string): string {
  return CONTENT_TYPES[extname(fileName).toLowerCase()] ?? "application/octet-stream";
}

/** Checks the argument combination before anything touches the network. */
export function validateSendArgs(args: SendArgs): void {
  if (args.file !== undefined) {
    if (args.text !== undefined) throw new CliError("USAGE", "give either TEXT or --file, not both");
    if (args.html || args.notice) throw new CliError("USAGE", "--html and --notice do not apply to --file");
  } else if (args.text === undefined || args.text === "") {
    throw new CliError("USAGE", "nothing to send: give TEXT or --file PATH");
  }
}

export async function sendCommand(args: SendArgs, io: CommandIo): Promise<void> {
  validateSendArgs(args);
  let data: Uint8Array | undefined;
  if (args.file !== undefined) {
    try {
      data = new Uint8Array(await readFile(args.file));
    } catch (err) {
      throw new CliError(
        "FILE_UNREADABLE",
        `cannot read ${args.file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
      );
    }
  }
  const profile = await requireProfile(args.profileDir);
  // With encryption, the crypto store (shared with a running tail: they take turns) says whether
  // the room is encrypted: the server's state alone may have lost m.room.encryption (a state reset).
  const client = await restoreProfile(profile, profile.encryption ? "full" : "plain");
  try {
    const roomId = await resolveRoom(client, args.room);
    let eventId: string;
    if (args.file !== undefined && data !== undefined) {
      const filename = basename(args.file);
      eventId = await client.sendFile(roomId, data, { filename, contentType: contentTypeFor(filename) });
    } else {
      const text = args.text ?? "";
      if (args.html)
        eventId = await client.sendHtml(roomId, text, { msgtype: args.notice ? "m.notice" : "m.text" });
      else if (args.notice) eventId = await client.sendNotice(roomId, text);
      else eventId = await client.sendText(roomId, text);
    }
    io.out(`${printable(eventId)}\n`);
  } finally {
    await client.close();
  }
}
