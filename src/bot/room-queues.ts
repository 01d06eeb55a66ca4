// Work per room, in order within a room and concurrently across rooms, with a way to wait for all
// of it: the bot starts each event's handling without holding up the client's other listeners,
// and awaits everything in `sync.settle`, before the client saves its sync position.
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

  /** Resolves once every task pushed so far, and every task those pushed, has finished. */
  async settle(): Promise<void> {
    while (this.#tails.size > 0) await Promise.all([...this.#tails.values()]);
  }
}
