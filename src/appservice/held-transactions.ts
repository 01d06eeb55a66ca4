// The room part of transactions taken while the app that handles them was stopped: an operator's
// tool (`keyroom bot verify` with the bot stopped) serves the endpoint in hold mode, its clients
// handle each transaction at once (the verification needs its to-device and in-room events), and
// the room part (timeline and ephemeral events) is also kept here, one file each, until the app's
// next `listen()` hands it to the app's handlers before any new transaction. Without this, a
// command sent while the tool ran would have been acknowledged to the homeserver and never answered.
import { mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { TXN_EPHEMERAL } from "../wire/appservice.ts";
import { parseTransaction, type Transaction } from "./transaction.ts";

/** The folder under the appservice's `dataDir`. */
export const HELD_TRANSACTIONS_DIR = "held-transactions";
/**
 * Room parts held at most. Past it a transaction is refused (the homeserver keeps it and retries)
 * rather than growing the folder without bound while a tool runs.
 */
export const MAX_HELD_TRANSACTIONS = 1000;

const SUFFIX = ".json";

/** A held room part, in the order it was taken. */
export interface HeldTransaction {
  readonly name: string;
  readonly txn: Transaction;
}

export class HeldTransactions {
  readonly dir: string;
  #next = 0;
  /**
   * Transactions held by this process and not yet handled, so the homeserver's retry of one whose
   * handling failed is not held twice. Forgotten once handled (the seen-transaction IDs answer a
   * retry from then on): the homeserver sends one transaction at a time, so this stays tiny.
   */
  readonly #unhandled = new Set<string>();

  constructor(dataDir: string) {
    this.dir = join(dataDir, HELD_TRANSACTIONS_DIR);
  }

  /** Names held now, oldest first (names sort in the order they were written). */
  async #names(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((n) => n.endsWith(SUFFIX)).sort();
    } catch (e) {
      if ((e as { code?: unknown }).code === "ENOENT") return [];
      throw e;
    }
  }

  /** Whether another room part may be held now. */
  async hasRoom(): Promise<boolean> {
    return (await this.#names()).length < MAX_HELD_TRANSACTIONS;
  }

  /** Whether transaction `txnId` was held by `holdOnce` and not yet marked handled. */
  isHeld(txnId: string): boolean {
    return this.#unhandled.has(txnId);
  }

  /** Transactions held and not yet marked handled. */
  get unhandled(): number {
    return this.#unhandled.size;
  }

  /** `hold`, once per transaction ID until `handled(txnId)`. */
  async holdOnce(txnId: string, txn: Transaction): Promise<void> {
    if (this.#unhandled.has(txnId)) return;
    await this.hold(txn);
    this.#unhandled.add(txnId);
  }

  /** Transaction `txnId` was handled (acknowledged): its ID need not be remembered here. */
  handled(txnId: string): void {
    this.#unhandled.delete(txnId);
  }

  /**
   * Keeps `txn`'s room part on disk (synced, then renamed into place) before the transaction is
   * acknowledged. Nothing is written when it has none.
   */
  async hold(txn: Transaction): Promise<void> {
    if (txn.events.length === 0 && txn.ephemeral.length === 0) return;
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // Time first, then a counter within this process: names sort in the order they were taken.
    const name = `${Date.now().toString().padStart(15, "0")}-${String(this.#next++).padStart(9, "0")}`;
    const file = join(this.dir, `${name}${SUFFIX}`);
    const tmp = `${file}.tmp`;
    const handle = await open(tmp, "w", 0o600);
    try {
      await handle.writeFile(JSON.stringify({ events: txn.events, [TXN_EPHEMERAL]: txn.ephemeral }));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  }

  /**
   * The held room parts, oldest first, each checked again as a transaction body. A file that does
   * not parse is renamed `*.bad` and left out (reported through `onBad`), not retried for ever.
   */
  async list(onBad: (name: string) => void): Promise<HeldTransaction[]> {
    const out: HeldTransaction[] = [];
    for (const file of await this.#names()) {
      const name = file.slice(0, -SUFFIX.length);
      try {
        out.push({ name, txn: parseTransaction(JSON.parse(await readFile(join(this.dir, file), "utf8"))) });
      } catch {
        await rename(join(this.dir, file), join(this.dir, `${name}.bad`));
        onBad(name);
      }
    }
    return out;
  }

  /** Forgets a room part once it was handled. */
  async release(name: string): Promise<void> {
    await rm(join(this.dir, `${name}${SUFFIX}`), { force: true });
  }
}
