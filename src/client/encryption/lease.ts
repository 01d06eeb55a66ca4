// Taking the crypto store's lease around the client's units of work (one sync response, one send,
// a key upload...), so processes and tabs sharing a store take turns, after matrix-rust-sdk's
// cross-process lock. The store says whether someone else wrote since we last held it; then the
// engine's caches are reloaded before the work runs. See docs/stores.md ("Sharing a store").
import { StoreLockedError } from "../../store/errors.ts";
import type { StoreLease } from "../../store/store.ts";
import type { Clock } from "../clock.ts";

/** A taken lease lasts this long unless renewed; it is renewed every third of it while held. */
export const DEFAULT_LEASE_DURATION_MS = 10_000;
/**
 * How long a unit of work waits for another process's lease before failing with
 * `StoreLockedError("LEASE_TIMEOUT")`. Not a measure of this machine's speed: the other process
 * holds the lease for one unit of work at a time (or until its lease expires, if it died); raise
 * it where units of work are long (big key imports) or the machine is very loaded.
 */
export const DEFAULT_LEASE_TIMEOUT_MS = 120_000;
/** Between attempts while another process holds the lease: doubling from the first to the last. */
const RETRY_FIRST_MS = 5;
const RETRY_MAX_MS = 100;

export interface LeaseOptions {
  /** See `DEFAULT_LEASE_DURATION_MS`. */
  readonly durationMs?: number;
  /** See `DEFAULT_LEASE_TIMEOUT_MS` (`Infinity` waits for ever). */
  readonly timeoutMs?: number;
}

/**
 * Holds the lease while any unit of work of this client runs: units nest and overlap freely in one
 * process (the engine orders its own steps); the lease is released when the last one ends.
 */
export class LeaseKeeper {
  readonly #store: StoreLease;
  readonly #clock: Clock;
  readonly #location: string;
  readonly #durationMs: number;
  readonly #timeoutMs: number;
  /** Called (under the lease) when another process wrote since we last held it. */
  onStale: () => Promise<void> = async () => {};
  #depth = 0;
  /** Settles when the lease is held (or could not be taken). */
  #taking: Promise<void> | undefined;
  #renewal: ReturnType<typeof setInterval> | undefined;
  /** Times the lease was taken after another process had written: a unit compares it (sync position). */
  reloads = 0;

  constructor(store: StoreLease, clock: Clock, location: string, options: LeaseOptions = {}) {
    this.#store = store;
    this.#clock = clock;
    this.#location = location;
    this.#durationMs = options.durationMs ?? DEFAULT_LEASE_DURATION_MS;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_LEASE_TIMEOUT_MS;
    if (!(this.#durationMs > 0) || !(this.#timeoutMs >= 0)) {
      throw new RangeError("lease durationMs must be positive and timeoutMs not negative");
    }
  }

  /** Runs `work` holding the lease (taking it first, and reloading if stale, when not held yet). */
  async run<T>(work: () => Promise<T>): Promise<T> {
    this.#depth++;
    try {
      this.#taking ??= this.#take();
      await this.#taking;
    } catch (e) {
      await this.#leave();
      throw e;
    }
    try {
      return await work();
    } finally {
      await this.#leave();
    }
  }

  async #leave(): Promise<void> {
    if (--this.#depth > 0) return;
    this.#taking = undefined;
    if (this.#renewal !== undefined) clearInterval(this.#renewal);
    this.#renewal = undefined;
    // A failed release leaves the lease to expire; the work itself succeeded or failed already.
    await this.#store.releaseLease().catch(() => {});
  }

  async #take(): Promise<void> {
    const started = this.#clock.now();
    let wait = RETRY_FIRST_MS;
    for (;;) {
      const grant = await this.#store.tryAcquireLease(this.#durationMs);
      if (grant !== undefined) {
        this.#renewal = setInterval(() => this.#renew(), this.#durationMs / 3);
        (this.#renewal as { unref?: () => void }).unref?.();
        if (grant.stale) {
          this.reloads++;
          await this.onStale();
        }
        return;
      }
      if (this.#clock.now() - started >= this.#timeoutMs) {
        throw new StoreLockedError(this.#location, { code: "LEASE_TIMEOUT" });
      }
      await this.#clock.sleep(wait);
      wait = Math.min(wait * 2, RETRY_MAX_MS);
    }
  }

  #renew(): void {
    // Lost (we stalled past the expiry and another process took it): our next save is refused as
    // STALE and the engine reloads; nothing to do here.
    this.#store.renewLease(this.#durationMs).catch(() => false);
  }
}
