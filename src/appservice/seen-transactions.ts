// The transaction IDs already handled, so a transaction the homeserver sends again (it retries
// until it gets a 200) is acknowledged without being handled twice. Bounded: the oldest IDs go
// first; the homeserver only ever retries its latest transaction.

/** Transaction IDs remembered. */
export const MAX_REMEMBERED_TXNS = 1000;

export class SeenTransactions {
  readonly #done = new Set<string>();
  /** Transactions being handled: a retry that arrives meanwhile waits for the same outcome. */
  readonly #running = new Map<string, Promise<void>>();
  readonly #limit: number;

  constructor(limit = MAX_REMEMBERED_TXNS) {
    this.#limit = limit;
  }

  get size(): number {
    return this.#done.size;
  }

  has(txnId: string): boolean {
    return this.#done.has(txnId);
  }

  /**
   * Runs `handle` once per transaction ID: a duplicate resolves without running it; a retry while
   * the first run is going waits for it. A run that fails is forgotten, so the retry runs again.
   * Returns whether `handle` ran for this call.
   */
  async once(txnId: string, handle: () => Promise<void>): Promise<boolean> {
    if (this.#done.has(txnId)) return false;
    const running = this.#running.get(txnId);
    if (running) {
      await running;
      return false;
    }
    const run = handle();
    this.#running.set(txnId, run);
    try {
      await run;
    } finally {
      this.#running.delete(txnId);
    }
    this.#done.add(txnId);
    if (this.#done.size > this.#limit) {
      const oldest = this.#done.values().next().value;
      if (oldest !== undefined) this.#done.delete(oldest);
    }
    return true;
  }
}
