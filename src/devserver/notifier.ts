// Wakes long-polling /sync requests when something that concerns their user happened.
// Writers call `notify(users)` after committing; waiters re-run their sync computation.

export class Notifier {
  private readonly waiters = new Map<string, Set<() => void>>();

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
    for (const u of userIds) {
      const set = this.waiters.get(u);
      if (!set) continue;
      for (const w of [...set]) w();
    }
  }

  /** Wakes every waiter (used on shutdown). */
  notifyAll(): void {
    for (const set of [...this.waiters.values()]) for (const w of [...set]) w();
  }
}
