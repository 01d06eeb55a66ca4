// Wakes long-polling /sync requests when something that concerns their user happened.
// Writers call `notify(users)` after committing; waiters re-run their sync computation.

export class Notifier {
  private readonly waiters = new Map<string, Set<() => void>>();
  /** Called on every notification, whoever it names (appservice pushers). */
  private readonly everyone = new Set<() => void>();

  /** Calls `listener` after every `notify`; returns the function that removes it. */
  onAny(listener: () => void): () => void {
    this.everyone.add(listener);
    return () => this.everyone.delete(listener);
  }

  /** Resolves on the next `notify` naming `userId`, after `timeoutMs`, or when `signal` aborts. */
  wait(userId: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(userId);
      if (!set) {
        set = new Set();
        this.waiters.set(userId, set);
      }
      const waiters = set;
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        waiters.delete(done);
        if (waiters.size === 0 && this.waiters.get(userId) === waiters) this.waiters.delete(userId);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal.addEventListener("abort", done, { once: true });
      waiters.add(done);
    });
  }

  notify(userIds: Iterable<string>): void {
    for (const l of this.everyone) l();
    for (const u of userIds) {
      const set = this.waiters.get(u);
      if (!set) continue;
      for (const w of [...set]) w();
    }
  }

  /**
   * Tells only the `onAny` listeners: a change no sync waiter needs to wake for (one-time key
   * counts, which appservice transactions report).
   */
  poke(): void {
    for (const l of this.everyone) l();
  }

  /** Wakes every waiter (used on shutdown). */
  notifyAll(): void {
    for (const set of [...this.waiters.values()]) for (const w of [...set]) w();
  }
}
