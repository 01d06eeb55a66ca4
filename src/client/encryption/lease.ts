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
/**
 * How long the lease stays held after the last unit of work ends, so that the next unit (a bot's
 * reply right after the sync response that asked for it, the key upload after a send) runs without
 * taking it again: taking and releasing are one SQLite write transaction each, which cost a bot
 * more CPU per command than decrypting it (bench/README.md, bots section). Another process waits
 * at most this much longer for it.
 */
export const DEFAULT_LEASE_LINGER_MS = 25;
/**
 * A lease held this long without a break is released when its units end, without lingering, so a
 * busy client cannot keep other processes out by starting each unit within the linger of the last.
 */
export const MAX_LEASE_HOLD_MS = 1_000;
/** Between attempts while another process holds the lease: doubling from the first to the last. */
const RETRY_FIRST_MS = 5;
const RETRY_MAX_MS = 100;

export interface LeaseOptions {
  /** See `DEFAULT_LEASE_DURATION_MS`. */
  readonly durationMs?: number;
  /** See `DEFAULT_LEASE_TIMEOUT_MS` (`Infinity` waits for ever). */
  readonly timeoutMs?: number;
  /** See `DEFAULT_LEASE_LINGER_MS` (0 releases as soon as the last unit ends). */
  readonly lingerMs?: number;
}

/**
 * Holds the lease while any unit of work of this client runs: units nest and overlap freely in one
 * process (the engine orders its own steps); the lease is released `lingerMs` after the last one
 * ends, unless another starts by then (at once when it was held `MAX_LEASE_HOLD_MS` in a row).
 */
export class LeaseKeeper {
  readonly #store: StoreLease;
  readonly #clock: Clock;
  readonly #location: string;
  readonly #durationMs: number;
  readonly #timeoutMs: number;
  readonly #lingerMs: number;
  /** Called (under the lease) when another process wrote since we last held it. */
  onStale: () => Promise<void> = async () => {};
  #depth = 0;
  /** Settles when the lease is held (or could not be taken). */
  #taking: Promise<void> | undefined;
  /** `#taking` settled and the lease is held (and reloaded if it was stale) until released. */
  #held = false;
  #renewal: ReturnType<typeof setInterval> | undefined;
  /** The pending release while the lease lingers after its last unit. */
  #linger: ReturnType<typeof setTimeout> | undefined;
  /** When the lease was taken (this clock). */
  #heldSince = 0;
  /** Times the lease was taken after another process had written: a unit compares it (sync position). */
  reloads = 0;

  constructor(store: StoreLease, clock: Clock, location: string, options: LeaseOptions = {}) {
    this.#store = store;
    this.#clock = clock;
    this.#location = location;
    this.#durationMs = options.durationMs ?? DEFAULT_LEASE_DURATION_MS;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_LEASE_TIMEOUT_MS;
    this.#lingerMs = options.lingerMs ?? DEFAULT_LEASE_LINGER_MS;
    if (!(this.#durationMs > 0) || !(this.#timeoutMs >= 0) || !(this.#lingerMs >= 0)) {
      throw new RangeError("lease durationMs must be positive, timeoutMs and lingerMs not negative");
    }
  }

  /** Runs `work` holding the lease (taking it first, and reloading if stale, when not held yet). */
  run<T>(work: () => Promise<T>): Promise<T> {
    this.#depth++;
    if (this.#linger !== undefined) {
      // Still held from the last unit: no need to take it again.
      clearTimeout(this.#linger);
      this.#linger = undefined;
    }
    // Held already (units following each other within the linger, the usual case): nothing to
    // wait for. Every unit of work of the client comes here, several per message.
    return this.#held ? this.#work(work) : this.#takeThenWork(work);
  }

  async #takeThenWork<T>(work: () => Promise<T>): Promise<T> {
    try {
      this.#taking ??= this.#take();
      await this.#taking;
    } catch (e) {
      await this.#leave(true);
      throw e;
    }
    return this.#work(work);
  }

  async #work<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } finally {
      const releasing = this.#leave();
      if (releasing !== undefined) await releasing;
    }
  }

  /**
   * Ends a unit; `failed`: it could not take the lease (or reload after taking it). Returns the
   * release when it lets the lease go now (nothing to wait for otherwise).
   */
  #leave(failed = false): Promise<void> | undefined {
    if (--this.#depth > 0) return undefined;
    if (!failed && this.#lingerMs > 0 && this.#clock.now() - this.#heldSince < MAX_LEASE_HOLD_MS) {
      this.#linger = setTimeout(() => {
        this.#linger = undefined;
        void this.#release();
      }, this.#lingerMs);
      (this.#linger as { unref?: () => void }).unref?.();
      return undefined;
    }
    return this.#release();
  }

  /** Lets the lease go now. */
  async #release(): Promise<void> {
    this.#held = false;
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
        this.#heldSince = this.#clock.now();
        this.#renewal = setInterval(() => this.#renew(), this.#durationMs / 3);
        (this.#renewal as { unref?: () => void }).unref?.();
        if (grant.stale) {
          this.reloads++;
          await this.onStale();
        }
        this.#held = true;
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
