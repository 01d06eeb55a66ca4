// Outgoing room events: one queue per room so events keep their order, a transaction ID fixed per
// event so a retry after a lost response is deduplicated by the server, and retries with backoff on
// transient failures. Encryption runs once per event, before the first attempt, so every retry
// sends the same ciphertext under the same transaction ID (a plaintext message whose room turned
// encrypted while it waited to retry is prepared again, encrypted).
import { eventIdResponseSchema, type JsonObject } from "../../wire/index.ts";
import { type BackoffPolicy, withRetry } from "../backoff.ts";
import type { Clock } from "../clock.ts";
import { errorSummary } from "../events/emitter.ts";
import { type HttpClient, path } from "../http.ts";
import type { Logger } from "../logger.ts";

export const SEND_BACKOFF: BackoffPolicy = Object.freeze({ baseMs: 500, maxMs: 30_000, maxAttempts: 6 });

export type OutgoingEvent =
  /** `verificationPartner`: an in-room verification event of a flow with that user. */
  | { kind: "message"; type: string; content: JsonObject; verificationPartner?: string }
  | { kind: "redaction"; eventId: string; reason?: string };

export interface SendQueueOptions {
  http: HttpClient;
  clock: Clock;
  logger: Logger;
  policy?: BackoffPolicy;
  /** Turns a message into what goes on the wire (encryption in encrypted rooms). */
  prepare: (
    roomId: string,
    type: string,
    content: JsonObject,
    verificationPartner?: string,
  ) => Promise<PreparedEvent>;
}

/** A message as it goes on the wire. */
export interface PreparedEvent {
  readonly type: string;
  readonly content: JsonObject;
  /**
   * True when this form must not go out any more (a plaintext message in a room that turned
   * encrypted meanwhile): asked before each retry, which then prepares the message again.
   */
  readonly outdated?: () => boolean;
}

let txnCounter = 0;

/** A transaction ID unique to this client instance and across restarts (random part). */
export function newTxnId(): string {
  const rnd = new Uint8Array(8);
  globalThis.crypto.getRandomValues(rnd);
  txnCounter = (txnCounter + 1) % 1_000_000;
  return `kr${Date.now().toString(36)}.${txnCounter}.${[...rnd].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export class SendQueue {
  private readonly tails = new Map<string, Promise<unknown>>();
  constructor(private readonly opts: SendQueueOptions) {}

  /** Queues `event` for `roomId`; resolves with the event ID once the server accepted it. */
  enqueue(roomId: string, event: OutgoingEvent, txnId: string = newTxnId()): Promise<string> {
    const prev = this.tails.get(roomId) ?? Promise.resolve();
    const job = prev.then(() => this.sendNow(roomId, event, txnId));
    const tail = job.catch(() => {});
    this.tails.set(roomId, tail);
    // Drop the map entry once the room's queue drains, so idle rooms cost nothing.
    void tail.then(() => {
      if (this.tails.get(roomId) === tail) this.tails.delete(roomId);
    });
    return job;
  }

  /** Resolves when every queued event was sent or failed. */
  async drain(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }

  private async sendNow(roomId: string, event: OutgoingEvent, txnId: string): Promise<string> {
    const { http, clock, logger } = this.opts;
    let wire: PreparedEvent | undefined;
    const res = await withRetry(
      async (attempt) => {
        if (event.kind === "redaction") {
          return http.request({
            method: "PUT",
            path: path`/_matrix/client/v3/rooms/${roomId}/redact/${event.eventId}/${txnId}`,
            body: event.reason !== undefined ? { reason: event.reason } : {},
            schema: eventIdResponseSchema,
          });
        }
        // Preparing (encrypting) is inside the retries: its own requests (the room's members,
        // device keys, one-time keys, the room key to devices) meet the same rate limits and
        // outages as the send. Sync may also have brought the room's m.room.encryption while
        // this waited to retry.
        if (wire === undefined || (attempt > 0 && wire.outdated?.() === true)) {
          wire = await this.opts.prepare(roomId, event.type, event.content, event.verificationPartner);
        }
        return http.request({
          method: "PUT",
          path: path`/_matrix/client/v3/rooms/${roomId}/send/${wire.type}/${txnId}`,
          body: wire.content,
          schema: eventIdResponseSchema,
        });
      },
      {
        policy: this.opts.policy ?? SEND_BACKOFF,
        clock,
        onRetry: (err, attempt, delayMs) =>
          logger.warn({ roomId, txnId, attempt, delayMs, err: errorSummary(err) }, "send failed, retrying"),
      },
    );
    return res.event_id;
  }
}
