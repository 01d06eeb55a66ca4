// What comes for virtual users that are being started. A user's device has its keys on the server
// as soon as its client is restored, but it gets transactions only once its start is over (key
// counts read, rooms and account data caught up): what came in between was in transactions it had
// no share of, and was lost once they were acknowledged. A room key sent to it then (a to-device
// message) left it unable to read the message it was for; the room's events of that window (its
// messages, encrypted or not, and state changes: the start fetches a room's state, not its
// timeline) never reached it. Both are held here, per starting user and bounded, until its start
// hands them to its client (start-handover.ts): the Olm-encrypted to-device messages (room keys
// travel in them, and which of them are keys is known only once decrypted, which happens once)
// before `user()` returns, everything else once its caller has had the client.
//
// A start that fails (the homeserver or the network failing while it catches up, encryption not
// starting) keeps what was held, and goes on holding, for a later start of the user: its device
// may have its keys on the server already, so room keys sent to it keep coming and could not be
// had again. Dropping them would leave the retried user unable to read those messages.
import type { AppserviceToDevice } from "../wire/appservice.ts";
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
 * Users whose start failed and that are held for until started again. Past it, what was held for
 * the one that failed first is dropped (the caller logs it with the counts).
 */
export const MAX_FAILED_STARTS_HELD = 32;

/** To-device messages that may carry a room key: Olm-encrypted ones. */
const ENCRYPTED_TO_DEVICE = "m.room.encrypted";

/** What one transaction held from brought for a starting user, but its room keys. */
export interface HeldTxn {
  txnId: string;
  /** Its room events (those of every room: which the user is in is known once it is caught up). */
  events: ClientEvent[];
  /** Its to-device messages for the user that are not Olm-encrypted (verification, key requests, an app's own), in order. */
  toDevice: AppserviceToDevice[];
}

/** What was held for a user while it started. */
export interface HeldWhileStarting {
  /** Its Olm-encrypted to-device messages (room keys among them), in order. */
  encryptedToDevice: AppserviceToDevice[];
  /** Each transaction held from, in order (each transaction once). */
  txns: HeldTxn[];
}

/** What one transaction brought for a starting user beyond the bounds, dropped. */
export interface DroppedWhileStarting {
  userId: string;
  /** To-device messages past `MAX_TO_DEVICE_HELD_WHILE_STARTING`. */
  toDevice: number;
  /** Room events past `MAX_ROOM_EVENTS_HELD_WHILE_STARTING`. */
  roomEvents: number;
}

interface Held extends HeldWhileStarting {
  /** To-device messages held, of both kinds (bounded by MAX_TO_DEVICE_HELD_WHILE_STARTING). */
  toDevice: number;
  roomEvents: number;
  /** The IDs of `txns` (one that failed for others comes again: held once). */
  ids: Set<string>;
}

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
    if (!this.#held.has(userId))
      this.#held.set(userId, { encryptedToDevice: [], txns: [], toDevice: 0, roomEvents: 0, ids: new Set() });
  }

  /**
   * Holds, for each starting user, a transaction's room events and the to-device messages
   * addressed to the user; returns what the bounds dropped, by user. A transaction held from is
   * recorded only if something of it was kept, so at most one per event or message held.
   */
  hold(txnId: string, txn: Transaction): DroppedWhileStarting[] {
    const dropped: DroppedWhileStarting[] = [];
    for (const [userId, held] of this.#held) {
      if (held.ids.has(txnId)) continue;
      const toDevice = txn.toDevice.filter((m) => m.to_user_id === userId);
      const keptToDevice = toDevice.slice(0, MAX_TO_DEVICE_HELD_WHILE_STARTING - held.toDevice);
      const events = txn.events.slice(0, MAX_ROOM_EVENTS_HELD_WHILE_STARTING - held.roomEvents);
      const lost = {
        toDevice: toDevice.length - keptToDevice.length,
        roomEvents: txn.events.length - events.length,
      };
      if (lost.toDevice > 0 || lost.roomEvents > 0) dropped.push({ userId, ...lost });
      if (keptToDevice.length === 0 && events.length === 0) continue;
      held.ids.add(txnId);
      const encrypted = keptToDevice.filter((m) => m.type === ENCRYPTED_TO_DEVICE);
      held.txns.push({ txnId, events, toDevice: keptToDevice.filter((m) => m.type !== ENCRYPTED_TO_DEVICE) });
      held.encryptedToDevice.push(...encrypted);
      held.toDevice += keptToDevice.length;
      held.roomEvents += events.length;
    }
    return dropped;
  }

  /** What is held for `userId` so far; it is still held for. */
  held(userId: string): HeldWhileStarting {
    const held = this.#held.get(userId);
    return { encryptedToDevice: held?.encryptedToDevice ?? [], txns: held?.txns ?? [] };
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
  failed(userId: string): { kept: { toDevice: number; roomEvents: number }; dropped?: DroppedWhileStarting } {
    const held = this.#held.get(userId);
    if (held === undefined) return { kept: { toDevice: 0, roomEvents: 0 } };
    this.#failed.delete(userId);
    this.#failed.add(userId);
    const kept = { toDevice: held.toDevice, roomEvents: held.roomEvents };
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
    return { userId, toDevice: held?.toDevice ?? 0, roomEvents: held?.roomEvents ?? 0 };
  }
}
