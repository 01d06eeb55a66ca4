// What comes for virtual users that are being started. A user's device has its keys on the server
// as soon as its client is restored, but it gets transactions only once its start is over (key
// counts read, rooms and account data caught up): what came in between was in transactions it had
// no share of, and was lost once they were acknowledged. A room key sent to it then (a to-device
// message) left it unable to read the message it was for; the room's events of that window (its
// messages, encrypted or not, and state changes: the start fetches a room's state, not its
// timeline) never reached it; a device-list change (MSC3202) left it a stale list of someone's
// devices, so its room keys could go to a removed device and miss a new one. All of these are held
// here, per starting user and bounded, until its start hands them to its client
// (start-handover.ts): the Olm-encrypted to-device messages (room keys travel in them, and which of
// them are keys is known only once decrypted, which happens once) are fed and the device-list
// changes applied before `user()` returns, everything else handed over once its caller has had the
// client, in the order it came.
//
// Of the ephemeral events, read receipts are held (each says something once: one missed is never
// told again); typing notices are not. Each of those gives who is typing in a room at the time,
// and is sent again when that changes: one of the window, handed over after it, could only show
// someone as typing who has stopped since, until the next notice, which a client that starts
// without it shows no sooner.
//
// A start that fails (the homeserver or the network failing while it catches up, encryption not
// starting) keeps what was held, and goes on holding, for a later start of the user: its device
// may have its keys on the server already, so room keys sent to it keep coming and could not be
// had again. Dropping them would leave the retried user unable to read those messages.
import type { AppserviceEphemeral, AppserviceToDevice } from "../wire/appservice.ts";
import type { ClientEvent } from "../wire/index.ts";
import type { Transaction } from "./transaction.ts";

/** To-device messages held for one starting user; more are dropped (and counted in the log). */
export const MAX_TO_DEVICE_HELD_WHILE_STARTING = 1_000;
/**
 * Room events held for one starting user (one full transaction's worth, `MAX_TXN_EVENTS`); more
 * are dropped (and counted in the log). Every room event of the window is held, since which rooms
 * the user is in is known only once its start has caught up: the events are the transactions' own
 * objects, shared by the users starting together.
 */
export const MAX_ROOM_EVENTS_HELD_WHILE_STARTING = 10_000;
/**
 * Read receipt events (`m.receipt`, one per room and transaction as servers send them) held for one
 * starting user, of every room as room events are; more are dropped (and counted in the log).
 */
export const MAX_RECEIPTS_HELD_WHILE_STARTING = 1_000;
/**
 * Users whose device-list change (changed or left, the last one of each user) is held for one
 * starting user; a change for a user past it is dropped (and counted in the log), one for a user
 * held already still replaces it. Once one was dropped, every user its device tracks has its list
 * taken as outdated when it starts (`HeldWhileStarting.deviceListsOverflowed`): no change is lost.
 */
export const MAX_DEVICE_LIST_USERS_HELD_WHILE_STARTING = 10_000;
/**
 * Transactions that brought a starting user nothing but device-list changes (no event or message
 * of theirs kept) recorded as held for it, as any other held transaction is: one the homeserver
 * sends again (its first attempt failed for another user) is held once, and once the user has
 * started it is known to have had it (it is not fed the same changes again). Past it, such a
 * transaction's changes are still held, the transaction not recorded.
 */
export const MAX_DEVICE_LIST_TXNS_HELD_WHILE_STARTING = 1_000;
/**
 * Users whose start failed and that are held for until started again. Past it, what was held for
 * the one that failed first is dropped (the caller logs it with the counts).
 */
export const MAX_FAILED_STARTS_HELD = 32;

const RECEIPT = "m.receipt";

/** What one transaction held from brought for a starting user, but its device lists. */
export interface HeldTxn {
  txnId: string;
  /** Its room events (those of every room: which the user is in is known once it is caught up). */
  events: ClientEvent[];
  /** Its read receipts (`m.receipt`), of every room too. */
  receipts: AppserviceEphemeral[];
  /** Its to-device messages for the user, Olm-encrypted (room keys among them) or not, in order. */
  toDevice: AppserviceToDevice[];
  /** Its to-device messages are on disk (held-to-device.ts): they outlive a crash. */
  onDisk?: boolean;
}

/** What was held for a user while it started. */
export interface HeldWhileStarting {
  /** The device-list changes of the window: each user's last one (a change, or no longer shared). */
  deviceLists: { changed: string[]; left: string[] };
  /**
   * Changes for more users than `MAX_DEVICE_LIST_USERS_HELD_WHILE_STARTING` came: some were
   * dropped, so every tracked user's list is to be taken as outdated.
   */
  deviceListsOverflowed: boolean;
  /** Each transaction held from, in order (each transaction once). */
  txns: HeldTxn[];
}

/** How much is held for a user (or was dropped), by kind. */
export interface HeldCounts {
  /** To-device messages (`MAX_TO_DEVICE_HELD_WHILE_STARTING`). */
  toDevice: number;
  /** Room events (`MAX_ROOM_EVENTS_HELD_WHILE_STARTING`). */
  roomEvents: number;
  /** Read receipt events (`MAX_RECEIPTS_HELD_WHILE_STARTING`). */
  receipts: number;
  /** Users of device-list changes (`MAX_DEVICE_LIST_USERS_HELD_WHILE_STARTING`). */
  deviceListUsers: number;
}

/** What one transaction brought for a starting user beyond the bounds (or what was held, dropped). */
export interface DroppedWhileStarting extends HeldCounts {
  userId: string;
}

/** Whether any of the counts is not zero. */
export const anyHeld = (c: HeldCounts): boolean =>
  c.toDevice + c.roomEvents + c.receipts + c.deviceListUsers > 0;

interface Held {
  /** By user ID (from the network: a Map, never an object), in the order first held. */
  deviceLists: Map<string, "changed" | "left">;
  /** A change was dropped past `MAX_DEVICE_LIST_USERS_HELD_WHILE_STARTING`. */
  deviceListsOverflowed: boolean;
  txns: HeldTxn[];
  /** To-device messages held. */
  toDevice: number;
  roomEvents: number;
  receipts: number;
  /** Transactions of `txns` recorded for their device-list changes alone. */
  listTxns: number;
  /** The IDs of `txns` (one that failed for others comes again: held once). */
  ids: Set<string>;
}

const countsOf = (held: Held | undefined): HeldCounts => ({
  toDevice: held?.toDevice ?? 0,
  roomEvents: held?.roomEvents ?? 0,
  receipts: held?.receipts ?? 0,
  deviceListUsers: held?.deviceLists.size ?? 0,
});

export class StartingUsers {
  /** By user ID: only users whose start is under way (keys come from our own calls, never the network). */
  readonly #held = new Map<string, Held>();
  /** Those of `#held` whose start failed, in the order they failed (bounded: MAX_FAILED_STARTS_HELD). */
  readonly #failed = new Set<string>();

  /**
   * `userId`'s start begins: what comes for it is held from now on (after what was held for a
   * start of it that failed).
   */
  begin(userId: string): void {
    this.#failed.delete(userId);
    if (this.#held.has(userId)) return;
    this.#held.set(userId, {
      deviceLists: new Map(),
      deviceListsOverflowed: false,
      txns: [],
      toDevice: 0,
      roomEvents: 0,
      receipts: 0,
      listTxns: 0,
      ids: new Set(),
    });
  }

  /**
   * Holds, for each starting user, a transaction's room events, read receipts and device-list
   * changes, and the to-device messages addressed to the user; returns what the bounds dropped, by
   * user. A transaction held from is recorded if an event or a message of it was kept (at most one
   * per event or message held), or if it carries device-list changes (at most
   * `MAX_DEVICE_LIST_TXNS_HELD_WHILE_STARTING` of those that carry nothing else kept).
   */
  hold(txnId: string, txn: Transaction): DroppedWhileStarting[] {
    const dropped: DroppedWhileStarting[] = [];
    const allReceipts = txn.ephemeral.filter((e) => e.type === RECEIPT);
    const carriesLists = (txn.deviceLists?.changed.length ?? 0) + (txn.deviceLists?.left.length ?? 0) > 0;
    for (const [userId, held] of this.#held) {
      if (held.ids.has(txnId)) continue;
      const deviceListUsers = holdDeviceLists(held.deviceLists, txn.deviceLists);
      if (deviceListUsers > 0) held.deviceListsOverflowed = true;
      const toDevice = txn.toDevice.filter((m) => m.to_user_id === userId);
      const keptToDevice = toDevice.slice(0, MAX_TO_DEVICE_HELD_WHILE_STARTING - held.toDevice);
      const events = txn.events.slice(0, MAX_ROOM_EVENTS_HELD_WHILE_STARTING - held.roomEvents);
      const receipts = allReceipts.slice(0, MAX_RECEIPTS_HELD_WHILE_STARTING - held.receipts);
      const lost: HeldCounts = {
        toDevice: toDevice.length - keptToDevice.length,
        roomEvents: txn.events.length - events.length,
        receipts: allReceipts.length - receipts.length,
        deviceListUsers,
      };
      if (anyHeld(lost)) dropped.push({ userId, ...lost });
      if (keptToDevice.length === 0 && events.length === 0 && receipts.length === 0) {
        if (!carriesLists || held.listTxns >= MAX_DEVICE_LIST_TXNS_HELD_WHILE_STARTING) continue;
        held.listTxns++;
      }
      held.ids.add(txnId);
      held.txns.push({ txnId, events, receipts, toDevice: keptToDevice });
      held.toDevice += keptToDevice.length;
      held.roomEvents += events.length;
      held.receipts += receipts.length;
    }
    return dropped;
  }

  /** What `userId` has held from transaction `txnId`, if it is starting and something was. */
  heldFrom(userId: string, txnId: string): HeldTxn | undefined {
    const held = this.#held.get(userId);
    if (held === undefined || !held.ids.has(txnId)) return undefined;
    // The transaction just held is the last one (a retry's is found further back).
    for (let i = held.txns.length - 1; i >= 0; i--) if (held.txns[i]?.txnId === txnId) return held.txns[i];
    return undefined;
  }

  /** Whether device-list changes are held for `userId` (or some were dropped). */
  holdsDeviceLists(userId: string): boolean {
    const held = this.#held.get(userId);
    return held !== undefined && (held.deviceLists.size > 0 || held.deviceListsOverflowed);
  }

  /** The users whose start is under way (or failed and is held for). */
  get userIds(): string[] {
    return [...this.#held.keys()];
  }

  /**
   * To-device messages a start of `userId` held on disk (in an earlier process, or before what was
   * held here was dropped) go before what is held now, each transaction once, within
   * `MAX_TO_DEVICE_HELD_WHILE_STARTING`. Returns how many messages that bound dropped.
   */
  restore(
    userId: string,
    txns: readonly { txnId: string; toDevice: AppserviceToDevice[] }[],
    listsOutdated = false,
  ): number {
    const held = this.#held.get(userId);
    if (held === undefined) return 0;
    // Device-list changes were held and lost: every list is to be asked for again.
    if (listsOutdated) held.deviceListsOverflowed = true;
    const restored: HeldTxn[] = [];
    let dropped = 0;
    for (const { txnId, toDevice: all } of txns) {
      if (held.ids.has(txnId)) continue;
      const toDevice = all.slice(0, MAX_TO_DEVICE_HELD_WHILE_STARTING - held.toDevice);
      dropped += all.length - toDevice.length;
      if (toDevice.length === 0) continue;
      held.ids.add(txnId);
      held.toDevice += toDevice.length;
      restored.push({ txnId, events: [], receipts: [], toDevice, onDisk: true });
    }
    held.txns.unshift(...restored);
    return dropped;
  }

  /** What is held for `userId` so far; it is still held for. */
  held(userId: string): HeldWhileStarting {
    const held = this.#held.get(userId);
    const deviceLists: HeldWhileStarting["deviceLists"] = { changed: [], left: [] };
    for (const [user, change] of held?.deviceLists ?? []) deviceLists[change].push(user);
    return {
      deviceLists,
      deviceListsOverflowed: held?.deviceListsOverflowed ?? false,
      txns: held?.txns ?? [],
    };
  }

  /** What was held for `userId`, now that it has started: it is no longer held for. */
  take(userId: string): HeldWhileStarting {
    const held = this.held(userId);
    this.#held.delete(userId);
    this.#failed.delete(userId);
    return held;
  }

  /**
   * `userId`'s start failed: what was held for it is kept, and it is still held for, until it
   * starts again (`begin`). Returns how much is kept, and what was dropped for the user whose
   * start failed first if more than MAX_FAILED_STARTS_HELD are kept.
   */
  failed(userId: string): { kept: HeldCounts; dropped?: DroppedWhileStarting } {
    const held = this.#held.get(userId);
    const kept = countsOf(held);
    if (held === undefined) return { kept };
    this.#failed.delete(userId);
    this.#failed.add(userId);
    if (this.#failed.size <= MAX_FAILED_STARTS_HELD) return { kept };
    for (const first of this.#failed) return { kept, dropped: this.#drop(first) };
    return { kept };
  }

  /** Drops everything held (the appservice closes); returns what was held, by user. */
  clear(): DroppedWhileStarting[] {
    return [...this.#held.keys()].map((userId) => this.#drop(userId));
  }

  #drop(userId: string): DroppedWhileStarting {
    const held = this.#held.get(userId);
    this.#held.delete(userId);
    this.#failed.delete(userId);
    return { userId, ...countsOf(held) };
  }
}

/**
 * A transaction's device-list changes into `held`: each user's last change replaces the one held
 * (one in both lists of a transaction ends as left: a sync's `changed` is applied before its
 * `left`). Returns how many users' changes were dropped, past
 * `MAX_DEVICE_LIST_USERS_HELD_WHILE_STARTING`.
 */
function holdDeviceLists(held: Map<string, "changed" | "left">, lists: Transaction["deviceLists"]): number {
  let dropped = 0;
  const put = (userId: string, change: "changed" | "left") => {
    if (held.has(userId) || held.size < MAX_DEVICE_LIST_USERS_HELD_WHILE_STARTING) held.set(userId, change);
    else dropped++;
  };
  for (const userId of lists?.changed ?? []) put(userId, "changed");
  for (const userId of lists?.left ?? []) put(userId, "left");
  return dropped;
}
