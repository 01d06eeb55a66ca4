/**
 * The machine's steps: one at a time (a lock with its queue of waiters), each ending in one
 * `saveChanges`, and after a failed step the parts rebuilt from the store so memory never runs
 * ahead of what is saved. Apart from `OlmMachine` (the public API) so that these transaction rules
 * sit in one place every public call goes through.
 */
import { isEmptyChanges } from "../store/changes.ts";
import type { ReplayRecord } from "../store/records.ts";
import { E2eeError, UnknownDevicesError, VerifiedUserProblemError } from "./errors.ts";
import { emptyChanges, type MachineContext } from "./machine-context.ts";
import { buildParts, type Kept, type Parts } from "./machine-parts.ts";
import type { MachineRequests } from "./machine-requests.ts";
import { queuedToDevice } from "./to-device-queue.ts";

export class MachineSteps {
  readonly #ctx: MachineContext;
  /** Memory-only state that outlives a rebuild of the parts. */
  readonly #kept: Kept;
  #parts: Parts;
  /** Told which queued requests left the queue, and to drop the upload when memory is reloaded. */
  readonly #requests: Pick<MachineRequests, "removed" | "dropUpload">;
  /** A step is running; `#waiting` holds the resumptions of those queued behind it, in order. */
  #busy = false;
  readonly #waiting: (() => void)[] = [];
  #closed = false;

  constructor(
    ctx: MachineContext,
    parts: Parts,
    kept: Kept,
    requests: Pick<MachineRequests, "removed" | "dropUpload">,
  ) {
    this.#ctx = ctx;
    this.#parts = parts;
    this.#kept = kept;
    this.#requests = requests;
  }

  /** The current parts (read without a step). */
  get parts(): Parts {
    return this.#parts;
  }

  /**
   * Runs one step: steps never interleave, and each ends in one `saveChanges`. If the step or the
   * save fails, in-memory state is rebuilt from the store so it never runs ahead of what is saved.
   */
  async run<T>(fn: (parts: Parts) => T | Promise<T>): Promise<T> {
    // A lock rather than a promise chain, and one async frame for the whole step: an uncontended
    // step (most decryptions) then costs no extra promises or closures.
    if (this.#busy) await new Promise<void>((resume) => this.#waiting.push(resume));
    else this.#busy = true;
    let replays: ReplayRecord[] = [];
    try {
      if (this.#closed) throw new E2eeError("CLOSED", "the machine was closed");
      this.#resetChanges();
      // Not awaited when the work was synchronous (a decryption from memory): no turn of the queue.
      const pending = fn(this.#parts);
      const result = pending instanceof Promise ? await pending : pending;
      const tx = this.#ctx.tx;
      replays = this.#kept.replays.take(!isEmptyChanges(tx));
      tx.replays.push(...replays);
      if (!isEmptyChanges(tx)) await this.#ctx.store.saveChanges(tx);
      replays = [];
      if (tx.roomSettings.length > 0) this.#parts.roomSettings.saved(tx.roomSettings);
      if (tx.inboundGroupSessions.length > 0 || tx.resetBackedUp)
        this.#parts.backup.roomKeysSaved(tx.inboundGroupSessions);
      this.#parts.olm.trimCache();
      this.#parts.inbound.settle();
      for (const r of tx.queuedRequests) {
        const q = queuedToDevice(r);
        if (q !== undefined) this.#parts.queue.set(r.requestId, q);
      }
      for (const id of tx.deletedQueuedRequests) this.#parts.queue.delete(id);
      this.#requests.removed(tx.deletedQueuedRequests);
      return result;
    } catch (e) {
      await this.#rollBack(e, replays);
      throw e;
    } finally {
      this.#resetChanges();
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else this.#busy = false;
    }
  }

  /**
   * Inside a step: drops everything read from the store and reads it again (see
   * `OlmMachine.reload`). Returns the new parts.
   */
  async reread(): Promise<Parts> {
    this.#requests.dropUpload();
    this.#kept.replays.invalidate();
    this.#parts = await buildParts(this.#ctx, this.#kept);
    return this.#parts;
  }

  /** Saves what is still unsaved and stops accepting steps. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.run(async () => {
      this.#ctx.tx.replays.push(...this.#kept.replays.takeAll());
    }).catch(() => undefined);
    this.#closed = true;
    // Waits for the steps queued before this point (they end with CLOSED).
    await this.run(async () => undefined).catch(() => undefined);
    this.#kept.ownEchoes.clear();
  }

  /**
   * A step failed. A refusal before anything changed (unknown devices, a verified user's problem,
   * a malformed response) leaves memory as it was; anything else reloads from the store, which
   * holds the last complete step.
   */
  async #rollBack(error: unknown, replays: readonly ReplayRecord[]): Promise<void> {
    this.#kept.replays.restore(replays);
    const clean =
      !!isEmptyChanges(this.#ctx.tx) &&
      (error instanceof E2eeError ||
        error instanceof UnknownDevicesError ||
        error instanceof VerifiedUserProblemError);
    this.#resetChanges();
    if (clean) return;
    this.#requests.dropUpload();
    // (A save refused as STALE lands here too: another process wrote, so read everything again.)
    this.#kept.replays.invalidate();
    try {
      this.#parts = await buildParts(this.#ctx, this.#kept);
    } catch {
      this.#closed = true; // the store is unusable: refuse further steps rather than drift
    }
    this.#ctx.tx = emptyChanges();
  }

  /** A fresh change set, reusing the current one when nothing was added (most decryptions). */
  #resetChanges(): void {
    if (!isEmptyChanges(this.#ctx.tx)) this.#ctx.tx = emptyChanges();
  }
}
