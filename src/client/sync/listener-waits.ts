// The sync loop's waiting for the application's listeners, where the platform cannot tell a
// listener's own calls (browsers: no async context, see platform/types.ts `WorkContext`). There a
// `close()`, `stopSync()` or `logout()` awaited from a listener of the response being handled (a
// bot's `!quit`) waits for the loop, and the loop waited for that listener: neither went on. So
// once a stop is asked for, the loop no longer waits for listeners: those running run on, those
// called after are called and not waited for. A response whose listeners were not waited for is
// not finished, and its position is not saved (see `SyncLoop`): it comes again at the next start.
import type { TypedEmitter } from "../events/emitter.ts";
import type { ClientEventMap } from "../events/types.ts";

/** The emitter calls sync handling makes: the client's own, or one that stops waiting (`ResponseListeners`). */
export type ListenerEmitter = Pick<TypedEmitter<ClientEventMap>, "emit" | "emitTogether" | "listenerCount">;

/** Waits for listeners until a stop is asked for (`release`); one per stop, renewed after it. */
export class ListenerWaits {
  #released = false;
  /** The waits under way: each ends (false) at the release. Not a race with one promise of the
   * release, which would keep a reaction per wait until a stop that may never come. */
  readonly #pending = new Set<(listened: boolean) => void>();

  /** Whether a stop was asked for: listeners are then no longer waited for. */
  get released(): boolean {
    return this.#released;
  }

  /** A stop was asked for: every wait under way ends now, and later ones at once. */
  release(): void {
    this.#released = true;
    for (const end of this.#pending) end(false);
    this.#pending.clear();
  }

  /**
   * Resolves true once `listening` (an emit, which never rejects) settled, false when released
   * before: the listeners then run on, not waited for.
   */
  wait(listening: Promise<void>): Promise<boolean> {
    if (this.#released) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      this.#pending.add(resolve);
      void listening.then(() => {
        this.#pending.delete(resolve);
        resolve(true);
      });
    });
  }
}

/**
 * One response's emits, waited for until `waits` is released; `cut` tells that a listener of the
 * response was not waited for (its work may not be done), so the response is not finished.
 */
export class ResponseListeners implements ListenerEmitter {
  cut = false;

  constructor(
    private readonly emitter: ListenerEmitter,
    private readonly waits: ListenerWaits,
  ) {}

  listenerCount(event: keyof ClientEventMap): number {
    return this.emitter.listenerCount(event);
  }

  emit<K extends keyof ClientEventMap>(event: K, ...args: ClientEventMap[K]): Promise<void> {
    return this.#wait(event, () => this.emitter.emit(event, ...args));
  }

  emitTogether<K extends keyof ClientEventMap>(event: K, ...args: ClientEventMap[K]): Promise<void> {
    return this.#wait(event, () => this.emitter.emitTogether(event, ...args));
  }

  async #wait(event: keyof ClientEventMap, emit: () => Promise<void>): Promise<void> {
    // Nothing listens: nothing to wait for, nothing cut short.
    if (this.emitter.listenerCount(event) > 0 && !(await this.waits.wait(emit()))) this.cut = true;
  }
}
