// The end of a virtual user's start window (`Appservice`'s `#endStart`): what was held for it while
// it started (starting-users.ts) is handed to its client in two parts.
//
// Before `user()` returns, its Olm-encrypted to-device messages: room keys travel in them, and a
// caller that reads a message sent while the user started (or the held room events fed next) needs
// the key by then. Which of them are keys is known only once they are decrypted, and an Olm message
// decrypts once, so all of them are fed then; the to-device events the client emits for them
// (decrypted) reach no handler of the caller's yet, so they are kept and emitted again afterwards.
// They are fed with `deferVerification`: a verification event among them (a request sent
// Olm-encrypted) reaches the client's verification flow only when emitted again, so its
// `verification.request` goes to the caller's handler, as a plaintext request's does. They are fed
// in runs (`planHandover`): messages that came one after another with nothing to hand over between
// them, so that what the client emits for each run goes back to its place among the rest.
// The device-list changes of the window go with the first: a message the caller sends at once must
// find the devices of the room's members as they are now. If some were dropped (more users than
// held), every list the device tracks is taken as outdated first.
//
// After `user()` has given the client to its caller (who puts its handlers on it at once), in a
// later macrotask: each transaction held from, as the user's share of it would have been, its
// to-device messages in the order they came (the plaintext ones fed, those of the encrypted ones
// emitted again), then its room events and read receipts. A plaintext verification request is
// taken by the client's verification service then, and emitted as `verification.request`; an
// encrypted one's event goes to it when emitted again. Fed before these, a verification request's
// `verification.request` and the other events' `toDevice` went out before any handler of the
// caller's was there.
import type { MatrixClient } from "../index.ts";
import type { AppserviceToDevice } from "../wire/appservice.ts";
import { syncResponseSchema, type ToDeviceEvent } from "../wire/index.ts";
import type { HeldTxn, HeldWhileStarting } from "./starting-users.ts";
import type { Transaction } from "./transaction.ts";
import { type KnownKeyCounts, userSyncFor } from "./user-sync.ts";

/** To-device messages that may carry a room key: Olm-encrypted ones, fed before `user()` returns. */
const ENCRYPTED_TO_DEVICE = "m.room.encrypted";

/** A transaction with nothing in it, to build one of a few parts from. */
export const NOTHING: Transaction = {
  events: [],
  ephemeral: [],
  toDevice: [],
  deviceLists: undefined,
  oneTimeKeyCounts: {},
  unusedFallbackKeyTypes: {},
};

/** What the handover needs of a started user. */
export interface StartedUser {
  readonly client: MatrixClient;
  readonly known: KnownKeyCounts;
  /** Transactions its client handled. */
  readonly fed: ReadonlySet<string>;
}

/** What the handover needs of the appservice, for the part after `user()` returned. */
export interface HandoverHost<U extends StartedUser> {
  /** Attempts at a held transaction's share before it is given up. */
  readonly attempts: number;
  /** Feeds the user its share of a transaction, remembered as fed once it went through. */
  feed(user: U, txnId: string, txn: Transaction): Promise<void>;
  /** A held transaction's share failed `attempts` times: logged, remembered as fed, reported. */
  giveUp(user: U, txnId: string, error: unknown): void;
}

/** Olm-encrypted to-device messages fed as one response before `user()` returns. */
export interface EncryptedRun {
  readonly messages: AppserviceToDevice[];
  /** The to-device events the client emitted for them (decrypted), to emit again afterwards. */
  emitted: ToDeviceEvent[];
}

/** Some of a held transaction's to-device messages: plaintext ones, or a run of encrypted ones. */
export type ToDevicePart = { readonly plain: AppserviceToDevice[] } | { readonly run: EncryptedRun };

/** A held transaction as handed over after `user()` returned. */
export interface HandoverTxn {
  readonly txnId: string;
  readonly events: HeldTxn["events"];
  readonly receipts: HeldTxn["receipts"];
  /** Its to-device messages, in the order they came. */
  readonly toDevice: ToDevicePart[];
}

/**
 * The held transactions split for the handover, and the runs of encrypted messages to feed before
 * `user()` returns, in order. A run is cut by anything handed over between two encrypted messages
 * (a plaintext one; a transaction's room events or read receipts), so it can span transactions
 * that bring nothing else. At most one run per encrypted message.
 */
export function planHandover(held: readonly HeldTxn[]): { txns: HandoverTxn[]; runs: EncryptedRun[] } {
  const runs: EncryptedRun[] = [];
  const txns: HandoverTxn[] = [];
  // The run an encrypted message joins: nothing was to be handed over since its last message.
  let open: EncryptedRun | undefined;
  for (const { txnId, events, receipts, toDevice } of held) {
    const parts: ToDevicePart[] = [];
    for (const m of toDevice) {
      if (m.type === ENCRYPTED_TO_DEVICE) {
        if (open === undefined) {
          open = { messages: [], emitted: [] };
          runs.push(open);
          parts.push({ run: open });
        }
        open.messages.push(m);
        continue;
      }
      open = undefined;
      const last = parts.at(-1);
      if (last !== undefined && "plain" in last) last.plain.push(m);
      else parts.push({ plain: [m] });
    }
    if (events.length > 0 || receipts.length > 0) open = undefined;
    txns.push({ txnId, events, receipts, toDevice: parts });
  }
  return { txns, runs };
}

/**
 * The part fed before `user()` returns: each run of encrypted messages as one sync response
 * (whose token is `nextBatch()`), the device-list changes with the first (or alone). Returns the
 * held transactions as `handAfterReturn` hands them over, each run with what the client emitted.
 */
export async function feedBeforeReturn(
  user: StartedUser,
  held: HeldWhileStarting,
  nextBatch: () => string,
): Promise<HandoverTxn[]> {
  const { deviceLists, deviceListsOverflowed } = held;
  const client = user.client;
  // Changes past the bound were dropped, for users unknown: every tracked list is asked for again.
  if (deviceListsOverflowed && client.isEncryptionEnabled) await client.crypto.markAllDeviceListsOutdated();
  const { txns, runs } = planHandover(held.txns);
  let lists: Transaction["deviceLists"] =
    deviceLists.changed.length > 0 || deviceLists.left.length > 0 ? deviceLists : undefined;
  if (runs.length === 0 && lists !== undefined) await feedCapturing(user, [], lists, nextBatch);
  for (const run of runs) {
    run.emitted = await feedCapturing(user, run.messages, lists, nextBatch);
    lists = undefined;
  }
  return txns;
}

/** Feeds `toDevice` and `deviceLists` as one response; returns the to-device events it emitted. */
async function feedCapturing(
  user: StartedUser,
  toDevice: AppserviceToDevice[],
  deviceLists: Transaction["deviceLists"],
  nextBatch: () => string,
): Promise<ToDeviceEvent[]> {
  const client = user.client;
  const view = { userId: client.userId, deviceId: client.deviceId, membership: () => undefined };
  const txn: Transaction = { ...NOTHING, toDevice, deviceLists };
  // Key counts on a copy: this response carries the known ones, it does not learn new ones.
  const share = userSyncFor(view, txn, nextBatch(), { ...user.known });
  if (share === undefined) return [];
  const emitted: ToDeviceEvent[] = [];
  const off = client.on("toDevice", (event) => {
    emitted.push(event);
  });
  try {
    // Its verification events reach the flow once the caller has the client (`handAfterReturn`).
    await client.feedSync(syncResponseSchema.parse(share.response), { deferVerification: true });
  } finally {
    off();
  }
  return emitted;
}

/**
 * The part handed over once `user()`'s caller has had the client: each held transaction, in
 * order, its to-device messages in the order they came (plaintext ones fed, the events of
 * encrypted ones emitted again), then its room events and read receipts with its last plaintext
 * messages. A transaction the user was already fed is not fed again (what was decrypted for it
 * is still emitted: a message decrypts once). A feed that fails is tried `host.attempts` times,
 * then given up, as is an emitting that fails.
 */
export async function handAfterReturn<U extends StartedUser>(
  host: HandoverHost<U>,
  user: U,
  txns: readonly HandoverTxn[],
): Promise<void> {
  for (const { txnId, events, receipts, toDevice } of txns) {
    const fed = user.fed.has(txnId);
    const parts = [...toDevice];
    const last = parts.at(-1);
    // Its last plaintext messages go with its room events, as one share.
    const tail = last !== undefined && "plain" in last ? last.plain : [];
    if (tail.length > 0) parts.pop();
    for (const part of parts) {
      if ("run" in part) {
        try {
          // Verification events to the flow now (a request then comes as `verification.request`).
          await user.client.emitDeferredToDevice(part.run.emitted);
        } catch (e) {
          host.giveUp(user, txnId, e);
        }
      } else if (!fed) {
        await feedWithAttempts(host, user, txnId, { ...NOTHING, toDevice: part.plain });
      }
    }
    if (!fed)
      await feedWithAttempts(host, user, txnId, { ...NOTHING, events, ephemeral: receipts, toDevice: tail });
  }
}

async function feedWithAttempts<U extends StartedUser>(
  host: HandoverHost<U>,
  user: U,
  txnId: string,
  txn: Transaction,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await host.feed(user, txnId, txn);
      return;
    } catch (e) {
      if (attempt < host.attempts) continue;
      host.giveUp(user, txnId, e);
      return;
    }
  }
}
