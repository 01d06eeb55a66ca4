// Work per room, in order within a room and concurrently across rooms, with a way to wait for what
// was pushed so far: the bot starts each event's handling without holding up the client's other
// listeners, and awaits it in `sync.settle`, before the client saves that response's position.
export class RoomQueues {
  readonly #tails = new Map<string, Promise<void>>();

  /** Runs `task` after the room's earlier tasks; a failing task goes to `onError`, never to the next. */
  push(roomId: string, task: () => Promise<void>, onError: (err: unknown) => void): void {
    const before = this.#tails.get(roomId) ?? Promise.resolve();
    const next = before.then(() => task().catch(onError));
    this.#tails.set(roomId, next);
    void next.then(() => {
      if (this.#tails.get(roomId) === next) this.#tails.delete(roomId);
    });
  }

  /** Rooms with tasks pending. */
  get size(): number {
    return this.#tails.size;
  }

  /**
   * Resolves once every task pushed so far has finished (each room's last task comes after its
   * earlier ones). Tasks pushed later are not waited for: the client fetches and handles the next
   * sync response while the last one's tasks run, and saves each response's position after its own.
   */
  async settle(): Promise<void> {
    await Promise.all([...this.#tails.values()]);
  }
}
