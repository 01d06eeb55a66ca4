// Pushes transactions to one application service: `PUT {url}/_matrix/app/v1/transactions/{txnId}`
// with `Authorization: Bearer hs_token`. One transaction in flight at a time; a failure (network,
// timeout, any non-2xx answer) is retried with the same ID and body after an exponential backoff,
// so the appservice can deduplicate. The transaction is recorded before it is sent and its stream
// position only once it was accepted, so a restart resends it rather than skipping or changing it.
import type { Homeserver } from "../homeserver.ts";
import type { Appservice, AppserviceRegistry } from "./registry.ts";
import { buildTransaction } from "./transaction.ts";

export interface PushRetryPolicy {
  /** First retry delay; doubled per failure. */
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_PUSH_RETRY: PushRetryPolicy = Object.freeze({ baseMs: 500, maxMs: 60_000 });
/** How long one transaction request may take before it counts as failed. */
export const TXN_REQUEST_TIMEOUT_MS = 30_000;

interface Pending {
  txn: number;
  body: string;
  upTo: number;
  /** Typing serial reported (in memory only: typing does not survive a restart). */
  typingSerial: number;
  acks: [string, string, number][];
  toDeviceSent: Map<string, number>;
  keySnapshots: Map<string, string>;
}

export class AppservicePusher {
  readonly #hs: Homeserver;
  readonly #registry: AppserviceRegistry;
  readonly #as: Appservice;
  readonly #url: string;
  readonly #retry: PushRetryPolicy;
  readonly #abort = new AbortController();
  #dirty = true;
  #wake: (() => void) | undefined;
  #running: Promise<void> | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(
    hs: Homeserver,
    registry: AppserviceRegistry,
    as: Appservice,
    url: string,
    retry?: PushRetryPolicy,
  ) {
    this.#hs = hs;
    this.#registry = registry;
    this.#as = as;
    this.#url = url.replace(/\/+$/, "");
    this.#retry = retry ?? DEFAULT_PUSH_RETRY;
  }

  start(): void {
    this.#unsubscribe = this.#hs.notifier.onAny(() => this.#kick());
    this.#running = this.#run().catch((e: unknown) => {
      // A closed database while shutting down is expected; anything else is reported, not thrown.
      if (!this.#abort.signal.aborted)
        process.emitWarning(
          `devserver: appservice ${this.#as.reg.id} pusher stopped (${e instanceof Error ? e.name : "error"})`,
        );
    });
  }

  async close(): Promise<void> {
    this.#unsubscribe?.();
    this.#abort.abort();
    this.#wake?.();
    await this.#running;
  }

  #kick(): void {
    this.#dirty = true;
    this.#wake?.();
  }

  async #run(): Promise<void> {
    const hs = this.#hs;
    const id = this.#as.reg.id;
    const state = hs.appserviceState.load(id, hs.stream.current);
    let lastPos = state.last_pos;
    let nextTxn = state.next_txn;
    const sentKeys = new Map<string, string>();
    /** To-device messages delivered but kept for their devices (see `BuiltTransaction.toDeviceSent`). */
    const sentToDevice = new Map<string, number>();
    let typingSince = hs.typing.serial;
    let pending: Pending | undefined =
      state.pending_txn !== null && state.pending_body !== null && state.pending_upto !== null
        ? {
            txn: state.pending_txn,
            body: state.pending_body,
            upTo: state.pending_upto,
            acks: JSON.parse(state.pending_acks ?? "[]") as [string, string, number][],
            toDeviceSent: new Map(),
            keySnapshots: new Map(),
            typingSerial: typingSince,
          }
        : undefined;
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      if (pending === undefined) {
        if (!this.#dirty) {
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
          });
          this.#wake = undefined;
          continue;
        }
        this.#dirty = false;
        const built = buildTransaction(
          hs,
          this.#registry,
          this.#as,
          lastPos,
          sentKeys,
          typingSince,
          sentToDevice,
        );
        if (built.empty) {
          lastPos = built.upTo;
          typingSince = built.typingSerial;
          // A full page of events that concern no one here: look at the next page right away.
          if (built.more) this.#dirty = true;
          continue;
        }
        pending = {
          txn: nextTxn,
          body: JSON.stringify(built.body),
          upTo: built.upTo,
          acks: built.acks,
          toDeviceSent: built.toDeviceSent,
          keySnapshots: built.keySnapshots,
          typingSerial: built.typingSerial,
        };
        hs.appserviceState.setPending(
          id,
          pending.txn,
          pending.body,
          pending.upTo,
          JSON.stringify(pending.acks),
        );
      }
      if (!(await this.#deliver(pending))) return;
      const done = pending;
      hs.tx(() => {
        for (const [u, d, pos] of done.acks) hs.ackToDevice(u, d, pos);
        hs.appserviceState.done(id, done.upTo);
      });
      for (const [k, v] of done.keySnapshots) sentKeys.set(k, v);
      for (const [k, v] of done.toDeviceSent) sentToDevice.set(k, v);
      lastPos = done.upTo;
      typingSince = done.typingSerial;
      nextTxn = done.txn + 1;
      pending = undefined;
      // More may have happened while this one was in flight (or it was cut at the size limit).
      this.#dirty = true;
    }
  }

  /** Sends until accepted (true) or the pusher is closed (false). */
  async #deliver(p: Pending): Promise<boolean> {
    const signal = this.#abort.signal;
    const url = `${this.#url}/_matrix/app/v1/transactions/${encodeURIComponent(String(p.txn))}`;
    for (let failures = 0; !signal.aborted; failures++) {
      try {
        const res = await fetch(url, {
          method: "PUT",
          headers: { Authorization: `Bearer ${this.#as.reg.hs_token}`, "Content-Type": "application/json" },
          body: p.body,
          signal: AbortSignal.any([signal, AbortSignal.timeout(TXN_REQUEST_TIMEOUT_MS)]),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return true;
      } catch {
        // Network error or timeout: retried below.
      }
      const delay = Math.min(this.#retry.maxMs, this.#retry.baseMs * 2 ** Math.min(failures, 30));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, delay);
        function done(): void {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          resolve();
        }
        signal.addEventListener("abort", done, { once: true });
      });
    }
    return false;
  }
}
