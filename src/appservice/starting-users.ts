// To-device messages for virtual users that are being started. A user's device has its keys on
// the server as soon as its client is restored, but it gets transactions only once its start is
// over (key counts read, rooms and account data caught up): a room key sent to it in between came
// in a transaction it had no share of, and was lost (the homeserver drops the to-device messages
// of an acknowledged transaction), so the user could not read the message it was for. They are
// held here, per starting user and bounded, until its start hands them to its client.
import type { AppserviceToDevice } from "../wire/appservice.ts";
import type { Transaction } from "./transaction.ts";

/** To-device messages held for one starting user; more are dropped (and counted in the log). */
export const MAX_TO_DEVICE_HELD_WHILE_STARTING = 1_000;

interface Held {
  messages: AppserviceToDevice[];
  /** Transactions held from (one that failed for others comes again: held once). */
  txns: Set<string>;
}

export class StartingUsers {
  /** By user ID: only users whose start is under way (keys come from our own calls, never the network). */
  readonly #held = new Map<string, Held>();

  /** `userId`'s start begins: its to-device messages are held from now on. */
  begin(userId: string): void {
    if (!this.#held.has(userId)) this.#held.set(userId, { messages: [], txns: new Set() });
  }

  /** Holds a transaction's to-device messages for starting users; returns how many were dropped. */
  hold(txnId: string, txn: Transaction): number {
    if (this.#held.size === 0) return 0;
    let dropped = 0;
    const seen = new Set<Held>();
    for (const m of txn.toDevice) {
      const held = this.#held.get(m.to_user_id);
      if (held === undefined || held.txns.has(txnId)) continue;
      seen.add(held);
      if (held.messages.length >= MAX_TO_DEVICE_HELD_WHILE_STARTING) dropped++;
      else held.messages.push(m);
    }
    for (const held of seen) if (held.txns.size < MAX_TO_DEVICE_HELD_WHILE_STARTING) held.txns.add(txnId);
    return dropped;
  }

  /** What was held for `userId`, in order; it is no longer starting (started, or its start failed). */
  take(userId: string): AppserviceToDevice[] {
    const held = this.#held.get(userId)?.messages ?? [];
    this.#held.delete(userId);
    return held;
  }
}
