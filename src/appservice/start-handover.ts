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
// `verification.request` goes to the caller's handler, as a plaintext request's does.
// The device-list changes of the window go with them: a message the caller sends at once must
// find the devices of the room's members as they are now. If some were dropped (more users than
// held), every list the device tracks is taken as outdated first.
//
// After `user()` has given the client to its caller (who puts its handlers on it at once), in a
// later macrotask: those events emitted again, then each transaction held from, as the user's
// share of it would have been: its room events, read receipts and other to-device messages (a
// verification request, which the client's verification service then takes and emits as
// `verification.request`; an app's own event). Fed before these, a verification request's
// `verification.request` and the other events' `toDevice` went out before any handler of the
// caller's was there.
import type { MatrixClient } from "../index.ts";
import { syncResponseSchema, type ToDeviceEvent } from "../wire/index.ts";
import type { HeldTxn, HeldWhileStarting } from "./starting-users.ts";
import type { Transaction } from "./transaction.ts";
import { type KnownKeyCounts, userSyncFor } from "./user-sync.ts";

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

/**
 * The part fed before `user()` returns, as one sync response whose token is `nextBatch()`. Returns
 * the to-device events the client emitted for it, to be emitted again by `handAfterReturn`.
 */
export async function feedBeforeReturn(
  user: StartedUser,
  held: HeldWhileStarting,
  nextBatch: () => string,
): Promise<ToDeviceEvent[]> {
  const { encryptedToDevice: toDevice, deviceLists, deviceListsOverflowed } = held;
  const client = user.client;
  // Changes past the bound were dropped, for users unknown: every tracked list is asked for again.
  if (deviceListsOverflowed && client.isEncryptionEnabled) await client.crypto.markAllDeviceListsOutdated();
  if (toDevice.length === 0 && deviceLists.changed.length === 0 && deviceLists.left.length === 0) return [];
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
 * The part handed over once `user()`'s caller has had the client: the to-device events of the
 * part before emitted again, then each held transaction's share, in order (one the user was
 * already fed is skipped). A share that fails is tried `host.attempts` times, then given up.
 */
export async function handAfterReturn<U extends StartedUser>(
  host: HandoverHost<U>,
  user: U,
  emitted: readonly ToDeviceEvent[],
  txns: readonly HeldTxn[],
): Promise<void> {
  // Verification events to the flow now (a request then comes as `verification.request`).
  await user.client.emitDeferredToDevice(emitted);
  for (const { txnId, events, receipts, toDevice } of txns) {
    if (user.fed.has(txnId)) continue;
    for (let attempt = 1; ; attempt++) {
      try {
        await host.feed(user, txnId, { ...NOTHING, events, ephemeral: receipts, toDevice });
        break;
      } catch (e) {
        if (attempt < host.attempts) continue;
        host.giveUp(user, txnId, e);
        break;
      }
    }
  }
}
