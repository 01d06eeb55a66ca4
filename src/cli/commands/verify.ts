// verify request USER [DEVICE] | verify listen [--timeout S]: interactive SAS verification from the
// shell. The JSON lines are a contract (issue 11): `sas` (then one stdin line: `y` confirms, anything
// else is a mismatch), then `done` (exit 0) or `cancelled` (exit 1). On a terminal the emoji are
// also drawn large on stderr and the question is asked in words.
import type { MatrixClient, Room, VerificationRequest, VerificationSnapshot } from "../../index.ts";
import { CliError } from "../errors.ts";
import { jsonLine } from "../output.ts";
import { withEncryptedClient } from "../session.ts";
import type { CommandIo } from "./io.ts";

export interface VerifyRequestArgs {
  profileDir: string;
  userId: string;
  deviceId?: string;
}

export interface VerifyListenArgs {
  profileDir: string;
  timeoutMs?: number;
}

/** `withEncryptedClient` for the verify commands, which sync: the sync is stopped before closing. */
export function withVerifyingClient(
  profileDir: string,
  fn: (client: MatrixClient) => Promise<void>,
): Promise<void> {
  return withEncryptedClient(profileDir, async (client) => {
    try {
      await fn(client);
    } finally {
      await client.stopSync().catch(() => undefined);
    }
  });
}

/** `keyroom verify request USER [DEVICE]`: to-device with our own devices, in a DM otherwise. */
export async function verifyRequestCommand(args: VerifyRequestArgs, io: CommandIo): Promise<void> {
  await withVerifyingClient(args.profileDir, async (client) => {
    await whileSyncing(client, async (stopped) => {
      const request = await client.requestVerification(args.userId, args.deviceId);
      const ready = await unlessStopped(
        request.waitFor((s) => s.phase !== "requested"),
        stopped,
      );
      // The side that asked starts SAS (the other side may have started already: the spec's
      // tie-break settles a double start).
      if (ready.phase === "ready") await request.startSas();
      await runSas(request, io, stopped);
    });
  });
}

/** `keyroom verify listen [--timeout S]`: waits for one incoming request, accepts it, runs SAS. */
export async function verifyListenCommand(args: VerifyListenArgs, io: CommandIo): Promise<void> {
  await withVerifyingClient(args.profileDir, async (client) => {
    // Listening first: the request may come in the very first sync.
    const next = nextRequest(client, args.timeoutMs, io.signal);
    // Another user's request is an event in a DM they invite us to (`verify request` makes one):
    // it is seen only once we join, so direct invitations are accepted while listening.
    const offInvites = joinDirectInvites(client);
    try {
      await whileSyncing(client, async (stopped) => {
        const request = await unlessStopped(next, stopped);
        offInvites();
        if (request === undefined) {
          // Stopped by Ctrl-C / SIGTERM (the user) or by --timeout.
          cancelled(
            io,
            io.signal?.aborted === true
              ? { code: "m.user", reason: "stopped before a verification request arrived" }
              : { code: "m.timeout", reason: "no verification request arrived" },
          );
        }
        await request.accept();
        await runSas(request, io, stopped);
      });
    } finally {
      offInvites();
    }
  });
}

/**
 * Joins each direct-chat invitation (our member event says `is_direct`): those pending now and
 * those that arrive until the returned function is called. A failed join is left for the user.
 */
export function joinDirectInvites(client: MatrixClient): () => void {
  const joined = new Set<string>();
  const join = (room: Room) => {
    const me = room.inviteState.find((e) => e.type === "m.room.member" && e.state_key === client.userId);
    if (me?.content.is_direct !== true || joined.has(room.roomId)) return;
    joined.add(room.roomId);
    client.joinRoom(room.roomId).catch(() => undefined);
  };
  for (const room of client.getRooms("invite")) join(room);
  return client.on("room.invite", (room) => join(room));
}

/**
 * Runs `fn` while the client syncs in the background. Not waiting for the first sync: resumed
 * from a stored position it is a long-poll that may wait for its whole timeout. Sync stopping on
 * a permanent error (or the session ending) fails the command: `fn`'s `stopped` signal is aborted
 * with that error, which ends its waits for what sync brings (`unlessStopped`), and the command
 * fails once `fn` returned, so the client does not close under its work (a request under way).
 */
export async function whileSyncing(
  client: MatrixClient,
  fn: (stopped: AbortSignal) => Promise<void>,
): Promise<void> {
  const stop = new AbortController();
  const fail = (error: unknown) => {
    if (!stop.signal.aborted) stop.abort(error);
  };
  const offs = [
    client.on("sync", (state, _prev, info) => {
      if (state === "error")
        fail(info.error ?? new CliError("SYNC_FAILED", "sync stopped on a permanent error"));
    }),
    client.on("session.loggedOut", () =>
      fail(new CliError("LOGGED_OUT", "the server ended this session; log in again")),
    ),
  ];
  client.startSync().catch(fail);
  try {
    await fn(stop.signal);
  } catch (e) {
    // What fn threw after sync failed is the failure's consequence: the failure is reported.
    if (!stop.signal.aborted) throw e;
  } finally {
    for (const off of offs) off();
  }
  if (stop.signal.aborted) throw stop.signal.reason;
}

/**
 * `wait` (for what sync brings: a request, a step of the flow, the user's answer), or a rejection
 * with the sync failure once `stopped` (`whileSyncing`) is aborted: sync no longer brings it.
 */
export function unlessStopped<T>(wait: Promise<T>, stopped: AbortSignal): Promise<T> {
  if (stopped.aborted) return Promise.reject(stopped.reason);
  return new Promise<T>((resolve, reject) => {
    const onStop = () => reject(stopped.reason);
    stopped.addEventListener("abort", onStop, { once: true });
    wait.then(resolve, reject).finally(() => stopped.removeEventListener("abort", onStop));
  });
}

/**
 * The next incoming verification request that `wanted` accepts (any, by default): undefined after
 * `timeoutMs` or on `signal`. One listener for the whole wait: several requests may come in one sync.
 */
export function nextRequest(
  client: MatrixClient,
  timeoutMs: number | undefined,
  signal: AbortSignal | undefined,
  wanted: (request: VerificationRequest) => boolean = () => true,
): Promise<VerificationRequest | undefined> {
  return new Promise((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = (r: VerificationRequest | undefined) => {
      off();
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      resolve(r);
    };
    const onAbort = () => finish(undefined);
    const off = client.on("verification.request", (r) => {
      if (wanted(r)) finish(r);
    });
    if (timeoutMs !== undefined) timer = setTimeout(() => finish(undefined), timeoutMs);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Shows the SAS, asks the user, and reports how it ended. */
async function runSas(request: VerificationRequest, io: CommandIo, stopped: AbortSignal): Promise<void> {
  const shown = await unlessStopped(
    request.waitFor((s) => s.sas?.decimals !== undefined || ended(s)),
    stopped,
  );
  if (!ended(shown)) {
    const emoji = (shown.sas?.emoji ?? []).map((e) => ({ symbol: e.emoji, name: e.description }));
    io.out(jsonLine({ event: "sas", emoji, decimals: shown.sas?.decimals }));
    if (io.interactive === true) io.err(drawSas(emoji, shown.sas?.decimals ?? []));
    const answer = await answerUnlessEnded(request, io, stopped);
    if (request.phase !== "cancelled") {
      if (answer?.trim() === "y") await request.confirm();
      else await request.mismatch();
    }
  }
  await finish(request, io, stopped);
}

/**
 * The user's answer (one stdin line), or undefined once the flow ended first: a cancel from the
 * other side is reported at once, not after a line that stdin (a script's pipe) may never give.
 */
export function answerUnlessEnded(
  request: VerificationRequest,
  io: CommandIo,
  stopped: AbortSignal,
): Promise<string | undefined> {
  if (io.readLine === undefined) return Promise.resolve(undefined);
  return unlessStopped(Promise.race([io.readLine(), request.finished().then(() => undefined)]), stopped);
}

/** Waits for the end of the flow and prints `done` or `cancelled` (then fails the command). */
export async function finish(
  request: VerificationRequest,
  io: CommandIo,
  stopped: AbortSignal,
): Promise<void> {
  const end = await unlessStopped(request.finished(), stopped);
  if (end.phase === "done") {
    io.out(
      jsonLine({
        event: "done",
        user_id: end.otherUserId,
        device_id: end.otherDeviceId ?? null,
        verified: true,
      }),
    );
    return;
  }
  cancelled(io, end.cancel ?? { code: "m.user", reason: "" });
}

function ended(s: VerificationSnapshot): boolean {
  return s.phase === "done" || s.phase === "cancelled";
}

function cancelled(io: CommandIo, c: { code: string; reason: string }): never {
  io.out(jsonLine({ event: "cancelled", code: c.code, reason: c.reason }));
  throw new CliError("VERIFICATION_CANCELLED", `verification cancelled (${c.code})`);
}

/** The emoji spaced out wide with their names under them, then the question, for a person. */
export function drawSas(
  emoji: readonly { symbol: string; name: string }[],
  decimals: readonly number[],
): string {
  const cell = (text: string) => text.padEnd(12);
  const lines = [
    "",
    `  ${emoji.map((e) => cell(`  ${e.symbol}`)).join("")}`,
    "",
    `  ${emoji.map((e) => cell(e.name)).join("")}`,
    "",
    `  or the numbers: ${decimals.join(" ")}`,
    "",
    "Do these match what the other device shows? Type y and Enter if they match, anything else if not: ",
  ];
  return lines.join("\n");
}
