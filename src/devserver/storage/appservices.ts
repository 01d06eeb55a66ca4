// What each application service was sent: the stream position pushed so far, the next transaction
// ID, and the transaction in flight, so a restart resends exactly that one (same ID, same body).
import type { Db } from "./db.ts";

export interface AppserviceStateRow {
  as_id: string;
  last_pos: number;
  next_txn: number;
  pending_txn: number | null;
  pending_body: string | null;
  pending_upto: number | null;
  /** JSON: `[userId, deviceId, upToPos][]`, to-device messages to drop once the transaction landed. */
  pending_acks: string | null;
}

export class AppserviceStore {
  private readonly s;
  constructor(db: Db) {
    this.s = {
      get: db.prepare("SELECT * FROM appservice_state WHERE as_id = ?"),
      init: db.prepare("INSERT OR IGNORE INTO appservice_state (as_id, last_pos, next_txn) VALUES (?, ?, 1)"),
      setPending: db.prepare(
        `UPDATE appservice_state SET pending_txn = ?, pending_body = ?, pending_upto = ?, pending_acks = ?
         WHERE as_id = ?`,
      ),
      done: db.prepare(
        `UPDATE appservice_state SET last_pos = ?, next_txn = next_txn + 1, pending_txn = NULL,
           pending_body = NULL, pending_upto = NULL, pending_acks = NULL WHERE as_id = ?`,
      ),
    };
  }

  /** The row, created at `startPos` for an appservice seen for the first time (no history pushed). */
  load(asId: string, startPos: number): AppserviceStateRow {
    this.s.init.run(asId, startPos);
    return this.s.get.get(asId) as AppserviceStateRow;
  }
  setPending(asId: string, txn: number, body: string, upTo: number, acks: string): void {
    this.s.setPending.run(txn, body, upTo, acks, asId);
  }
  done(asId: string, upTo: number): void {
    this.s.done.run(upTo, asId);
  }
}
