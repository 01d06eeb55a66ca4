// Running the engine's outgoing requests: one loop at a time, and one more pass when someone asks
// while a pass is under way (a request queued mid-pass must not wait for the next sync). Requests
// go out one after another, so key claims never overlap: two concurrent claims for one device
// would each burn a one-time key.
import type { OlmMachine, OutgoingRequest } from "../../e2ee/index.ts";
import { MatrixError } from "../errors.ts";
import { ClientCryptoError } from "./errors.ts";

/** Passes per run at most: a pass that sent everything may have made new requests (a claim's `m.dummy`). */
export const MAX_OUTGOING_PASSES = 8;

/** Runs tasks one after another. */
export class Serial {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task, task);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

export interface OutgoingLoopOptions {
  machine: Pick<OlmMachine, "outgoingRequests" | "markRequestAsSent" | "markRequestAsFailed">;
  send: (request: OutgoingRequest) => Promise<unknown>;
  /** A request (or the engine) failed; failed requests stay in the engine and go out on the next run. */
  onError: (error: unknown, request: OutgoingRequest | undefined) => void;
  /**
   * The server refused a request and the engine made a new one in its place (a keys upload whose
   * key IDs the server holds other keys under): not a failure, it goes out in the next pass.
   */
  onRebuilt?: (request: OutgoingRequest) => void;
  /** Runs each pass as one unit of work on the crypto store (under its lease). */
  exclusive?: <T>(work: () => Promise<T>) => Promise<T>;
}

export class OutgoingRequestLoop {
  readonly #opts: OutgoingLoopOptions;
  /** Passes and `exclusive` tasks: one at a time, so a request never goes out twice at once. */
  readonly #lock = new Serial();
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;
  /** The last failure of the last pass, if it had one (for callers who need to explain a refusal). */
  lastError: unknown;

  constructor(opts: OutgoingLoopOptions) {
    this.#opts = opts;
  }

  /**
   * Asks for a run; resolves once a pass that started after this call has finished. Never rejects:
   * failed requests stay in the engine for the next run and are reported through `onError`.
   */
  run(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#again = true;
    this.#running ??= this.#loop();
    return this.#running;
  }

  /**
   * Runs `task` between passes, with `send` to send requests the engine just handed out (one at
   * a time, each marked sent; resolves with the last failure, undefined if all went out). No
   * pass runs meanwhile, so nothing `task` sends is sent twice at once.
   */
  exclusive<T>(
    task: (send: (requests: readonly OutgoingRequest[]) => Promise<unknown>) => Promise<T>,
  ): Promise<T> {
    return this.#lock.run(() => task(async (requests) => (await this.#sendAll(requests)).error));
  }

  /** Stops starting passes and waits for the current one. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#running;
  }

  async #loop(): Promise<void> {
    let passes = 0;
    try {
      while (this.#again && !this.#closed) {
        this.#again = false;
        const exclusive = this.#opts.exclusive;
        const pass = (): Promise<PassResult> => this.#lock.run(() => this.#pass());
        const { sent, failed, rebuilt } = exclusive === undefined ? await pass() : await exclusive(pass);
        passes++;
        // Keep going while passes make progress: a sent claim can queue to-device messages, a
        // rebuilt request goes out in the next pass.
        if (!failed && (sent > 0 || rebuilt) && passes < MAX_OUTGOING_PASSES) this.#again = true;
      }
    } finally {
      // In the step that ends the loop: a `run()` after it starts a new loop, never one that is over.
      this.#running = undefined;
    }
  }

  async #pass(): Promise<PassResult> {
    this.lastError = undefined;
    let requests: OutgoingRequest[];
    try {
      requests = await this.#opts.machine.outgoingRequests();
    } catch (e) {
      this.lastError = e;
      this.#opts.onError(e, undefined);
      return { sent: 0, failed: true, rebuilt: false };
    }
    const { sent, error, rebuilt } = await this.#sendAll(requests);
    this.lastError = error;
    return { sent, failed: error !== undefined, rebuilt };
  }

  async #sendAll(
    requests: readonly OutgoingRequest[],
  ): Promise<{ sent: number; error: unknown; rebuilt: boolean }> {
    const { machine, send, onError } = this.#opts;
    let sent = 0;
    let error: unknown;
    let rebuilt = false;
    for (const request of requests) {
      if (this.#closed) {
        error ??= new ClientCryptoError("CLOSED", "the client's encryption was closed");
        break;
      }
      try {
        const response = await send(request);
        await machine.markRequestAsSent(request, response);
        sent++;
      } catch (e) {
        const failure = await this.#refused(request, e);
        if (failure === undefined) {
          rebuilt = true;
          this.#opts.onRebuilt?.(request);
          continue;
        }
        error = failure;
        onError(failure, request);
      }
    }
    return { sent, error, rebuilt };
  }

  /**
   * Hands the server's error answer to the engine (`markRequestAsFailed`). Undefined when the
   * engine rebuilt the request; else the failure to report: the server's, or the engine's own
   * (it gave up on a request the server kept refusing).
   */
  async #refused(request: OutgoingRequest, error: unknown): Promise<unknown> {
    if (!(error instanceof MatrixError)) return error;
    try {
      const failure = { status: error.httpStatus, body: error.body };
      return (await this.#opts.machine.markRequestAsFailed(request, failure)) === "rebuilt"
        ? undefined
        : error;
    } catch (e) {
      return e;
    }
  }
}

interface PassResult {
  sent: number;
  failed: boolean;
  /** The engine rebuilt a request the server refused: another pass sends the new one. */
  rebuilt: boolean;
}
