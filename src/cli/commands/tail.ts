// `keyroom tail`: syncs and prints each new message as a JSON line. "New" means not yet seen by
// this profile: the sync resumes from the profile's stored position (set at login), so messages
// sent while no tail ran are printed by the next one; a profile's very first sync skips history.
// An encrypted message whose key comes later is printed again, decrypted, with `late: true`.
// While the server fails, tail retries with backoff and, when stderr is a terminal, says so there:
// one line when a failure starts or changes, one when syncing works again (a script reading stderr
// gets only the one line of an error that ends it).
import type { MatrixClient, RoomEvent } from "../../index.ts";
import { CliError } from "../errors.ts";
import { errorMessage, isMessageEvent, jsonLine, messageLine } from "../output.ts";
import { openSession } from "../session.ts";
import type { CommandIo } from "./io.ts";
import { resolveRoom } from "./rooms.ts";

export interface TailArgs {
  profileDir: string;
  room?: string;
  /** Stop after this many messages. */
  limit?: number;
  /** Stop after this many milliseconds. */
  timeoutMs?: number;
}

export interface TailOptions {
  roomId?: string;
  limit?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** `late`: a message handed over undecrypted earlier, decrypted now that its key arrived. */
  onMessage(event: RoomEvent, late: boolean): void;
  /**
   * A line (no newline) for the person watching, when syncing starts failing, fails differently,
   * or works again; the loop keeps retrying meanwhile.
   */
  onStatus?(line: string): void;
}

/** A wait before the next sync attempt, as a person reads it: `734ms`, `4s`. */
function delayText(ms: number): string {
  return ms < 1000 ? `${Math.max(0, Math.round(ms))}ms` : `${Math.round(ms / 1000)}s`;
}

/**
 * Runs the sync loop until `limit` messages were handed to `onMessage`, `timeoutMs` passed or
 * `signal` aborted; resolves with the number of messages. Rejects when sync stops on a permanent
 * error (e.g. a revoked token), or stops with no sync having worked (every attempt failed).
 * Messages after the limit in the same sync response are not shown and count as seen.
 */
export function tailMessages(client: MatrixClient, opts: TailOptions): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let count = 0;
    let done = false;
    // Whether a sync response came in during this run, and the failure of the last attempt since.
    let synced = false;
    let failure: unknown;
    // The failure last reported through `onStatus`, while syncing fails.
    let reported: string | undefined;
    const offs: (() => void)[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => finish();
    // Never awaited inside a listener: the sync loop waits for its listeners before it can stop.
    const finish = (stopError?: unknown) => {
      if (done) return;
      // Stopped (timeout, signal) without one sync having worked: the server is down or failing,
      // which a script must not take for "no new messages".
      const error =
        stopError === undefined && !synced && failure !== undefined
          ? new CliError("SYNC_FAILED", `no sync succeeded: ${errorMessage(failure)}`, { cause: failure })
          : stopError;
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      for (const off of offs) off();
      client.stopSync().then(
        () => (error === undefined ? resolve(count) : reject(error)),
        (stopError: unknown) => reject(error ?? stopError),
      );
    };
    offs.push(
      client.on("room.event", (_room, ev, meta) => {
        if (done || meta.source === "initial-sync" || !isMessageEvent(ev)) return;
        if (opts.roomId !== undefined && ev.roomId !== opts.roomId) return;
        opts.onMessage(ev, false);
        count += 1;
        if (opts.limit !== undefined && count >= opts.limit) finish();
      }),
      // Not counted: the message was counted when it first arrived (undecrypted).
      client.on("room.decrypted", (_room, ev) => {
        if (done || !isMessageEvent(ev)) return;
        if (opts.roomId !== undefined && ev.roomId !== opts.roomId) return;
        opts.onMessage(ev, true);
      }),
      client.on("sync", (state, _previous, info) => {
        if (state === "error") {
          finish(info.error ?? new CliError("SYNC_FAILED", "sync stopped on a permanent error"));
        } else if (state === "syncing") {
          synced = true;
          if (reported !== undefined) opts.onStatus?.("sync works again");
          reported = undefined;
        } else if (state === "backoff") {
          failure = info.error;
          // Once per failure state, not once per attempt: a server down for an hour is one line.
          const why = errorMessage(info.error);
          if (why !== reported) {
            const wait =
              info.retryInMs !== undefined ? `, retrying in ${delayText(info.retryInMs)}` : ", retrying";
            opts.onStatus?.(`sync failed (${why})${wait}`);
          }
          reported = why;
        }
      }),
      client.on("session.loggedOut", () => {
        finish(new CliError("LOGGED_OUT", "the server ended this session; log in again"));
      }),
    );
    if (opts.limit !== undefined && opts.limit <= 0) return finish();
    if (opts.signal?.aborted) return finish();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    if (opts.timeoutMs !== undefined) timer = setTimeout(() => finish(), opts.timeoutMs);
    client.startSync().catch((err: unknown) => finish(err));
  });
}

/** `work`'s value, or undefined as soon as `signal` aborts (`work` still runs). */
function untilStopped<T>(work: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

export async function tailCommand(args: TailArgs, io: CommandIo): Promise<void> {
  // --timeout and Ctrl-C count from the start: opening the session (its keys upload) and checking
  // the room wait on the server too, which may not answer for a minute.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  if (io.signal?.aborted === true) stop.abort();
  else io.signal?.addEventListener("abort", onAbort, { once: true });
  const timer = args.timeoutMs !== undefined ? setTimeout(onAbort, args.timeoutMs) : undefined;
  try {
    // Aborted only when stopped during the set-up: its requests end at once instead of when the
    // server answers (or their timeout, a minute), so the set-up settles and its client is closed
    // before tail returns. Once the set-up is done, stopping goes through the sync loop instead.
    const abandon = new AbortController();
    const setUp = openTail(args, abandon.signal);
    const opened = await untilStopped(setUp, stop.signal);
    if (opened === undefined) {
      abandon.abort();
      // A set-up that fails closes its client itself; one that completed meanwhile is closed here.
      const late = await setUp.catch(() => undefined);
      await late?.client.close();
      return;
    }
    const { client, roomId } = opened;
    try {
      await tailMessages(client, {
        ...(roomId !== undefined ? { roomId } : {}),
        ...(args.limit !== undefined ? { limit: args.limit } : {}),
        signal: stop.signal,
        onMessage: (ev, late) =>
          io.out(jsonLine(late ? { ...messageLine(ev), late: true } : messageLine(ev))),
        ...(io.errTerminal === true ? { onStatus: (line: string) => io.err(`keyroom: ${line}\n`) } : {}),
      });
    } finally {
      await client.close();
    }
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    io.signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * The profile's client, and the room to show when one was named (which the profile must have
 * joined). `signal` ends the client's requests (see `tailCommand`). Rejects with the client closed.
 */
async function openTail(
  args: TailArgs,
  signal: AbortSignal,
): Promise<{ client: MatrixClient; roomId: string | undefined }> {
  const { client } = await openSession(args.profileDir, "full", { signal });
  try {
    const roomId = args.room !== undefined ? await resolveRoom(client, args.room) : undefined;
    // A room we are not in would never show a message: say so instead of waiting silently.
    if (roomId !== undefined && !(await client.joinedRoomIds()).includes(roomId)) {
      throw new CliError("NOT_JOINED", `not joined to ${roomId} (keyroom join ${args.room} first)`);
    }
    return { client, roomId };
  } catch (err) {
    await client.close();
    throw err;
  }
}
