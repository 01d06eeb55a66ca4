// A small typed event emitter whose `emit` awaits async listeners in order (`emitTogether` starts
// them all at once). The sync loop relies on both: it saves the sync token only after every
// listener for the response has finished.
import { type Logger, silentLogger } from "../logger.ts";

type Listener<A extends unknown[]> = (...args: A) => void | Promise<void>;
/** Listeners of different events share one map; `on`/`emit` restore the per-event type. */
type StoredListener = { readonly __listener: unique symbol };

export class TypedEmitter<M extends { [K in keyof M]: unknown[] }> {
  private readonly listeners = new Map<keyof M, StoredListener[]>();
  /** Where listener failures go; they never stop the emitter or the sync loop. */
  protected onListenerError: (err: unknown, event: keyof M) => void;

  constructor(logger: Logger = silentLogger) {
    this.onListenerError = (err, event) =>
      logger.error({ event: String(event), err: errorSummary(err) }, "event listener failed");
  }

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof M>(event: K, listener: Listener<M[K]>): () => void {
    const list = this.listeners.get(event) ?? [];
    list.push(listener as unknown as StoredListener);
    this.listeners.set(event, list);
    return () => this.off(event, listener);
  }

  once<K extends keyof M>(event: K, listener: Listener<M[K]>): () => void {
    const off = this.on(event, (...args: M[K]) => {
      off();
      return listener(...args);
    });
    return off;
  }

  off<K extends keyof M>(event: K, listener: Listener<M[K]>): void {
    const list = this.listeners.get(event);
    if (!list) return;
    const i = list.indexOf(listener as unknown as StoredListener);
    if (i >= 0) list.splice(i, 1);
  }

  listenerCount(event: keyof M): number {
    return this.listeners.get(event)?.length ?? 0;
  }

  /** Calls the listeners one after another and awaits each; a failing listener is reported, not rethrown. */
  async emit<K extends keyof M>(event: K, ...args: M[K]): Promise<void> {
    const list = this.listeners.get(event);
    if (!list || list.length === 0) return;
    for (const l of [...list]) {
      try {
        await (l as unknown as Listener<M[K]>)(...args);
      } catch (err) {
        this.onListenerError(err, event);
      }
    }
  }

  /**
   * Calls every listener at once (each started in turn, none waiting for another) and resolves when
   * all have finished; failures reported as by `emit`. For events whose listeners only finish work
   * of their own (`sync.settle`): one that waits must not hold back the start of the others.
   */
  async emitTogether<K extends keyof M>(event: K, ...args: M[K]): Promise<void> {
    const list = this.listeners.get(event);
    if (!list || list.length === 0) return;
    await Promise.all(
      [...list].map(async (l) => {
        try {
          await (l as unknown as Listener<M[K]>)(...args);
        } catch (err) {
          this.onListenerError(err, event);
        }
      }),
    );
  }
}

/** Name, code and message of an error, for logs (never its cause chain, which may hold request data). */
export function errorSummary(err: unknown): Record<string, unknown> {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, ...(typeof code === "string" ? { code } : {}) };
  }
  return { value: typeof err };
}
