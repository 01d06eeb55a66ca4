// backup status | backup restore [ROOM] [--key KEY] | history ROOM [--limit N]: the server-side key
// backup and reading a room's history with it. The JSON shapes are a contract (issue 12). The
// backup key comes from the crypto store (set by `recovery recover` or an earlier `--key`).
import type { Command } from "commander";
import type { MatrixClient, RoomEvent } from "../../index.ts";
import { parseInteger } from "../args.ts";
import { CliError } from "../errors.ts";
import { isMessageEvent, jsonLine, messageLine } from "../output.ts";
import { CATCH_UP_SYNC, openSession, withEncryptedClient } from "../session.ts";
import type { CommandIo } from "./io.ts";
import { progressBar } from "./progress.ts";
import { resolveRoom } from "./rooms.ts";

/** `history` prints at most this many messages. */
export const MAX_HISTORY_LIMIT = 10_000;
/** `history` without `--limit`. */
export const DEFAULT_HISTORY_LIMIT = 50;

/** `keyroom backup status`: `{"version", "trusted", "backed_up", "total"}`. */
export async function backupStatusCommand(args: { profileDir: string }, io: CommandIo): Promise<void> {
  await withEncryptedClient(args.profileDir, async (client) => {
    const s = await client.crypto.backup.status();
    io.out(
      jsonLine({ version: s.version ?? null, trusted: s.trusted, backed_up: s.backedUp, total: s.total }),
    );
  });
}

/**
 * `keyroom backup restore [ROOM] [--key KEY]`: restores room keys from the backup (all rooms, or
 * one). A progress bar on stderr when stdout is a terminal; always one JSON summary line on stdout.
 * With `--key` (a recovery-key-format backup key) the key is checked against the server's version
 * and kept in the store for later commands.
 */
export async function backupRestoreCommand(
  args: { profileDir: string; room?: string; key?: string },
  io: CommandIo,
): Promise<void> {
  await withEncryptedClient(args.profileDir, async (client) => {
    const backup = client.crypto.backup;
    if (args.key !== undefined) await backup.useKey(args.key);
    else if (!(await backup.status()).hasKey) {
      throw new CliError(
        "USAGE",
        "this device holds no backup key: give --key, or run keyroom recovery recover",
      );
    }
    const roomId = args.room !== undefined ? await resolveRoom(client, args.room) : undefined;
    const result = await backup.restore({
      ...(roomId !== undefined ? { roomId } : {}),
      ...(io.interactive === true ? { onProgress: progressBar(io, "restoring", "keys") } : {}),
    });
    io.out(
      jsonLine({
        version: result.version,
        imported: result.imported,
        total: result.total,
        failed: result.failed,
        // Only when the backup was too large for one answer: it came down room by room.
        ...(result.download === "per_room"
          ? { download: result.download, rooms_too_large: result.roomsTooLarge }
          : {}),
      }),
    );
  });
}

/** The room's latest `limit` messages, newest first, as the client emitted them. */
async function latestMessages(client: MatrixClient, roomId: string, limit: number): Promise<RoomEvent[]> {
  const out: RoomEvent[] = [];
  for await (const ev of client.history(roomId, { pageSize: Math.min(limit, 100) })) {
    if (!isMessageEvent(ev)) continue;
    out.push(ev);
    if (out.length >= limit) break;
  }
  return out;
}

/**
 * `keyroom history ROOM [--limit N]`: the room's latest N messages, oldest first, one JSON line
 * each as `tail` prints them. A catch-up sync comes first (one /sync, no wait): room keys waiting
 * in to-device messages are imported, and the sync position is left where it was (`peek`), so the
 * next `tail` prints what came since. Messages whose key this device still lacks are looked up in
 * the key backup (when it holds the backup key) before printing.
 */
export async function historyCommand(
  args: { profileDir: string; room: string; limit?: number },
  io: CommandIo,
): Promise<void> {
  const { client } = await openSession(args.profileDir, "peek", CATCH_UP_SYNC);
  try {
    await client.syncOnce({ timeoutMs: 0 });
    const roomId = await resolveRoom(client, args.room);
    const events = await latestMessages(client, roomId, args.limit ?? DEFAULT_HISTORY_LIMIT);
    if (client.isEncryptionEnabled && events.some((ev) => ev.encryption?.decrypted === false)) {
      const late = new Map<string, RoomEvent>();
      const off = client.on("room.decrypted", (_room, ev) => void late.set(ev.eventId, ev));
      try {
        await client.crypto.backup.fetchMissingKeys();
      } finally {
        off();
      }
      for (let i = 0; i < events.length; i++) {
        const now = late.get((events[i] as RoomEvent).eventId);
        if (now !== undefined) events[i] = now;
      }
    }
    for (const ev of events.reverse()) io.out(jsonLine(messageLine(ev)));
  } finally {
    await client.close();
  }
}

/** Adds `backup status`, `backup restore` and `history` to the program. */
export function registerBackupCommands(
  program: Command,
  withProfile: (cmd: Command) => Command,
  profileOf: (opts: { profile?: string }) => string,
  io: CommandIo,
): void {
  const backup = program.command("backup").description("the server-side key backup of room keys");
  withProfile(
    backup
      .command("status")
      .description("print the backup as a JSON line: version, trusted, backed_up, total"),
  ).action(async (o: { profile?: string }) => backupStatusCommand({ profileDir: profileOf(o) }, io));
  withProfile(
    backup
      .command("restore")
      .description(
        "restore room keys from the backup (progress bar on a terminal), then print a JSON summary",
      )
      .argument("[room]", "only this room (ID or alias)")
      .option("--key <key>", "the backup key in recovery-key format (EsT… …); kept for later commands"),
  ).action(async (room: string | undefined, o: { key?: string; profile?: string }) =>
    backupRestoreCommand(
      {
        profileDir: profileOf(o),
        ...(room !== undefined ? { room } : {}),
        ...(o.key !== undefined ? { key: o.key } : {}),
      },
      io,
    ),
  );
  withProfile(
    program
      .command("history")
      .description("print a room's latest messages, oldest first, as JSON lines (as tail prints them)")
      .argument("<room>", "room ID or alias")
      .option(
        "--limit <n>",
        `how many messages (default ${DEFAULT_HISTORY_LIMIT})`,
        parseInteger("--limit", 1, MAX_HISTORY_LIMIT),
      ),
  ).action(async (room: string, o: { limit?: number; profile?: string }) =>
    historyCommand(
      { profileDir: profileOf(o), room, ...(o.limit !== undefined ? { limit: o.limit } : {}) },
      io,
    ),
  );
}
