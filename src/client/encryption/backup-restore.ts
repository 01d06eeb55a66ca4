// `client.crypto.backup.restore` (backup.ts), loaded on its first use: a dynamic import, a chunk of
// its own in a browser bundle, as most sessions never restore a backup. Downloads the backup
// (whole, or room by room when it is too large for one answer) and hands each answer to the engine.
import type { BackupRecordsDecryptor, DecryptedRoomEvent, OlmMachine } from "../../e2ee/index.ts";
import { type JsonObject, jsonObjectSchema } from "../../wire/json.ts";
import { ClientError, ResponseTooLargeError } from "../errors.ts";
import { type HttpClient, MAX_BACKUP_RESPONSE_BYTES, path, type RequestPath } from "../http.ts";
import type { Logger } from "../logger.ts";

export interface RestoreBackupOptions {
  /** Only this room's keys (with `sessionId`: one session). */
  readonly roomId?: string;
  readonly sessionId?: string;
  /** The backup key (32 bytes, or its recovery-key text), when this device does not hold it. */
  readonly key?: Uint8Array | string;
  /** Keys handled so far, of all the backup returned. */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface RestoreBackupResult {
  readonly version: string;
  /** Keys new or better than what this device held. */
  readonly imported: number;
  /** Keys the backup returned. */
  readonly total: number;
  /** Keys that did not decrypt with the backup key. */
  readonly failed: number;
  /**
   * How the keys came down: `whole`, the backup in one answer (or the room or session asked
   * for); `per_room`, room by room over the rooms this client knows (joined, invited, left),
   * because the whole backup's answer was over `MAX_BACKUP_RESPONSE_BYTES`. Keys of rooms the
   * client does not know were then not restored (`restore({ roomId })` takes one room).
   */
  readonly download: "whole" | "per_room";
  /** Rooms (`per_room`) whose own answer was over the bound too: none of their keys were restored. */
  readonly roomsTooLarge: readonly string[];
}

/**
 * Longest a backup download may take, from sending to the body's last byte: a whole backup near
 * `MAX_BACKUP_RESPONSE_BYTES` over a slow link takes minutes (256 MiB in 10 minutes is ~450 kB/s).
 */
export const BACKUP_DOWNLOAD_TIMEOUT_MS = 10 * 60_000;

/** What a restore needs of `KeyBackup` and its host. */
export interface RestoreContext {
  readonly host: {
    readonly machine: OlmMachine;
    readonly http: HttpClient;
    readonly logger: Logger;
    emitRedecrypted(events: readonly DecryptedRoomEvent[]): Promise<void>;
    knownRooms(): Iterable<string>;
  };
  /** `GET /room_keys/version`: the server's current version, or null when it has none. */
  serverVersion(): Promise<unknown>;
  /**
   * The platform's worker threads for the records' decryption, where it has them
   * (`platform.backupDecryptor`; passed in, as the platform module leads to the stores).
   */
  threads(): Promise<BackupRecordsDecryptor | undefined>;
}

/** What every answer of one restore is imported with. */
interface Restore {
  readonly version: string;
  readonly privateKey: Uint8Array | undefined;
  readonly decryptor: BackupRecordsDecryptor | undefined;
}

/** A version answer's `count` (keys in the backup), when it has a sensible one. */
function backupCount(body: unknown): number | undefined {
  const count = (body as { count?: unknown } | null)?.count;
  return typeof count === "number" && Number.isSafeInteger(count) && count >= 0 ? count : undefined;
}

/**
 * Restores room keys from `version` (`KeyBackup.restore`, which says what it does, checks the
 * options and finds the version).
 */
export async function restoreKeyBackup(
  ctx: RestoreContext,
  version: string,
  privateKey: Uint8Array | undefined,
  opts: RestoreBackupOptions,
): Promise<RestoreBackupResult> {
  const { roomId, sessionId } = opts;
  const restore: Restore = { version, privateKey, decryptor: await decryptor(ctx) };
  if (roomId !== undefined) {
    const keysPath =
      sessionId === undefined
        ? path`/_matrix/client/v3/room_keys/keys/${roomId}`
        : path`/_matrix/client/v3/room_keys/keys/${roomId}/${sessionId}`;
    const body = await download(ctx, keysPath, version);
    if (body === undefined) {
      throw new ClientError(
        "TOO_LARGE",
        `the room's backup is over the ${MAX_BACKUP_RESPONSE_BYTES}-byte limit`,
      );
    }
    const result = await restoreAnswer(ctx, body, restore, { roomId, sessionId }, opts.onProgress);
    return { ...result, download: "whole", roomsTooLarge: [] };
  }
  const body = await download(ctx, path`/_matrix/client/v3/room_keys/keys`, version);
  if (body !== undefined) {
    const result = await restoreAnswer(ctx, body, restore, {}, opts.onProgress);
    return { ...result, download: "whole", roomsTooLarge: [] };
  }
  ctx.host.logger.warn(
    { limit: MAX_BACKUP_RESPONSE_BYTES },
    "the whole key backup is too large for one answer; restoring it room by room",
  );
  return restoreByRoom(ctx, restore, opts.onProgress);
}

/**
 * The whole backup room by room, over the rooms the client knows: each room's answer read,
 * restored and dropped before the next (never the whole backup in memory). Progress counts
 * keys of the version's `count`, when the server gives it.
 */
async function restoreByRoom(
  ctx: RestoreContext,
  restore: Restore,
  onProgress: ((done: number, total: number) => void) | undefined,
): Promise<RestoreBackupResult> {
  const rooms = [...new Set(ctx.host.knownRooms())];
  const count =
    onProgress === undefined ? undefined : backupCount(await ctx.serverVersion().catch(() => null));
  const roomsTooLarge: string[] = [];
  let imported = 0;
  let total = 0;
  let failed = 0;
  for (const roomId of rooms) {
    const body = await download(ctx, path`/_matrix/client/v3/room_keys/keys/${roomId}`, restore.version);
    if (body === undefined) {
      ctx.host.logger.warn(
        { limit: MAX_BACKUP_RESPONSE_BYTES },
        "a room's key backup is too large for one answer; its keys are not restored",
      );
      roomsTooLarge.push(roomId);
      continue;
    }
    const before = total;
    const progress =
      onProgress &&
      ((done: number, all: number) => onProgress(before + done, Math.max(count ?? 0, before + all)));
    const result = await restoreAnswer(ctx, body, restore, { roomId }, progress);
    imported += result.imported;
    total += result.total;
    failed += result.failed;
  }
  return { version: restore.version, imported, total, failed, download: "per_room", roomsTooLarge };
}

/** An answer of `room_keys/keys`, or undefined when it is over `MAX_BACKUP_RESPONSE_BYTES`. */
async function download(
  ctx: RestoreContext,
  keysPath: RequestPath,
  version: string,
): Promise<JsonObject | undefined> {
  try {
    return await ctx.host.http.request({
      method: "GET",
      path: keysPath,
      query: { version },
      schema: jsonObjectSchema,
      maxResponseBytes: MAX_BACKUP_RESPONSE_BYTES,
      timeoutMs: BACKUP_DOWNLOAD_TIMEOUT_MS,
    });
  } catch (e) {
    if (e instanceof ResponseTooLargeError) return undefined;
    throw e;
  }
}

/** Worker threads for the records' decryption, where the platform has them. */
async function decryptor(ctx: RestoreContext): Promise<BackupRecordsDecryptor | undefined> {
  const threads = await ctx.threads();
  // A chunk the worker threads fail on is decrypted on this thread (the restore goes on); say so.
  return (
    threads &&
    ((key, records) =>
      threads(key, records).catch((err: unknown) => {
        ctx.host.logger.warn({ err }, "a backup worker thread failed; decrypting its records here");
        throw err;
      }))
  );
}

/** Imports one answer; events that waited for its keys are emitted. */
async function restoreAnswer(
  ctx: RestoreContext,
  body: JsonObject,
  restore: Restore,
  scope: { roomId?: string | undefined; sessionId?: string | undefined },
  onProgress: ((done: number, total: number) => void) | undefined,
): Promise<Omit<RestoreBackupResult, "download" | "roomsTooLarge">> {
  const { version, privateKey, decryptor } = restore;
  const { roomId, sessionId } = scope;
  const result = await ctx.host.machine.backup.restore(body, {
    version,
    ...(roomId !== undefined ? { roomId } : {}),
    ...(sessionId !== undefined ? { sessionId } : {}),
    ...(privateKey !== undefined ? { privateKey } : {}),
    ...(onProgress !== undefined ? { onProgress } : {}),
    ...(decryptor !== undefined ? { decryptor } : {}),
  });
  await ctx.host.emitRedecrypted(result.redecrypted);
  return { version, imported: result.imported, total: result.total, failed: result.failed };
}
