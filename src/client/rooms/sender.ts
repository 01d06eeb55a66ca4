// Sending into rooms: messages and redactions through the per-room send queue (encrypted first in
// encrypted rooms), files (encrypted before upload there), and the unqueued calls (state, typing,
// receipts).
import { emptyResponseSchema, eventIdResponseSchema, type JsonObject } from "../../wire/index.ts";
import type { BackoffPolicy } from "../backoff.ts";
import type { ApiCall } from "../call.ts";
import type { Clock } from "../clock.ts";
import { encryptedFile, encryptUpload } from "../encryption/attachments.ts";
import { ClientError, MalformedResponseError } from "../errors.ts";
import { type HttpClient, path } from "../http.ts";
import type { Logger } from "../logger.ts";
import type { UploadData, UploadOptions } from "../media.ts";
import type { EventEncryptor } from "../sync/hooks.ts";
import type { SyncedState } from "../sync/state.ts";
import { type RoomsApi, statePath } from "./api.ts";
import {
  assertSendable,
  editContent,
  htmlContent,
  type MessageType,
  type RelationOptions,
  reactionContent,
  textContent,
  withRelations,
} from "./content.ts";
import { newTxnId, type PreparedEvent, SendQueue } from "./send-queue.ts";

export interface SendOptions extends RelationOptions {
  /** Fixed transaction ID (to make a send idempotent across restarts). */
  txnId?: string;
}

export interface SenderHost {
  readonly http: HttpClient;
  readonly call: ApiCall;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly sendBackoff: BackoffPolicy | undefined;
  readonly synced: SyncedState;
  readonly rooms: Pick<RoomsApi, "isRoomEncrypted" | "roomOrFetch">;
  /** The logged-in user (throws when there is none). */
  userId(): string;
  /** Uploads to the media repository (throws when no one is logged in). */
  uploadMedia(data: UploadData, opts: UploadOptions): Promise<string>;
  /** The hook that encrypts room events, if any. */
  encryptor(): EventEncryptor | undefined;
  /** Whether the client's encryption runs (attachments in encrypted rooms need it). */
  encryptionEnabled(): boolean;
}

export class Sender {
  readonly #host: SenderHost;
  readonly #queue: SendQueue;

  constructor(host: SenderHost) {
    this.#host = host;
    this.#queue = new SendQueue({
      http: host.http,
      clock: host.clock,
      logger: host.logger,
      ...(host.sendBackoff ? { policy: host.sendBackoff } : {}),
      prepare: (roomId, type, content, partner) => this.#prepare(roomId, type, content, partner),
    });
  }

  /** Resolves when every queued event was sent or failed. */
  drain(): Promise<void> {
    return this.#queue.drain();
  }

  /** Turns an outgoing room event into what goes on the wire (encryption in encrypted rooms). */
  async #prepare(
    roomId: string,
    type: string,
    content: JsonObject,
    verificationPartner?: string,
  ): Promise<PreparedEvent> {
    const { synced, rooms } = this.#host;
    // A room whose state says encrypted needs no look-up in the crypto store. Without it, the
    // look-up waits for encryption to start, or refuses (encryption configured but not running).
    if (synced.room(roomId)?.encrypted !== true && !(await rooms.isRoomEncrypted(roomId))) {
      // Until it is sent: a retry after sync brought m.room.encryption prepares it again.
      return { type, content, outdated: () => synced.room(roomId)?.encrypted === true };
    }
    // Never fall back to plaintext in an encrypted room.
    const encryptor = this.#host.encryptor();
    if (!encryptor) {
      throw new ClientError("ENCRYPTION_UNAVAILABLE", "the room is encrypted and no event encryptor is set");
    }
    // Not synced yet (e.g. a one-shot send): the encryptor needs the members, so read the state.
    // (Read after the look-up: a restore or login meanwhile replaced what sync knows.)
    const room = synced.room(roomId) ?? (await rooms.roomOrFetch(roomId));
    if (verificationPartner !== undefined && encryptor.encryptVerificationEvent !== undefined) {
      return encryptor.encryptVerificationEvent(room, type, content, verificationPartner);
    }
    return encryptor.encryptRoomEvent(room, type, content);
  }

  /**
   * Sends an in-room verification event of a flow with `partner` through the room's queue; in an
   * encrypted room the encryptor makes sure the partner's devices can read it (see
   * `EventEncryptor.encryptVerificationEvent`).
   */
  sendVerificationEvent(roomId: string, type: string, content: JsonObject, partner: string): Promise<string> {
    try {
      this.#host.userId();
      assertSendable(content, "event content");
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#queue.enqueue(
      roomId,
      { kind: "message", type, content, verificationPartner: partner },
      newTxnId(),
    );
  }

  sendEvent(
    roomId: string,
    type: string,
    content: JsonObject,
    opts: { txnId?: string } = {},
  ): Promise<string> {
    try {
      this.#host.userId();
      assertSendable(content, "event content");
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#queue.enqueue(roomId, { kind: "message", type, content }, opts.txnId ?? newTxnId());
  }

  sendMessage(roomId: string, content: JsonObject, opts: SendOptions = {}): Promise<string> {
    return this.sendEvent(
      roomId,
      "m.room.message",
      withRelations(content, opts),
      opts.txnId ? { txnId: opts.txnId } : {},
    );
  }

  sendText(roomId: string, body: string, msgtype: "m.text" | "m.notice" | "m.emote", opts: SendOptions) {
    return this.sendMessage(roomId, textContent(body, msgtype), opts);
  }

  sendHtml(
    roomId: string,
    html: string,
    opts: SendOptions & { body?: string; msgtype?: MessageType },
  ): Promise<string> {
    return this.sendMessage(roomId, htmlContent(html, opts.body, opts.msgtype), opts);
  }

  editMessage(roomId: string, eventId: string, newContent: string | JsonObject, opts: { txnId?: string }) {
    const c = typeof newContent === "string" ? textContent(newContent) : newContent;
    return this.sendEvent(roomId, "m.room.message", editContent(eventId, c), opts);
  }

  react(roomId: string, eventId: string, key: string, opts: { txnId?: string }): Promise<string> {
    return this.sendEvent(roomId, "m.reaction", reactionContent(eventId, key), opts);
  }

  redact(roomId: string, eventId: string, opts: { reason?: string; txnId?: string }): Promise<string> {
    this.#host.userId();
    const ev =
      opts.reason !== undefined
        ? { kind: "redaction" as const, eventId, reason: opts.reason }
        : { kind: "redaction" as const, eventId };
    return this.#queue.enqueue(roomId, ev, opts.txnId ?? newTxnId());
  }

  async sendStateEvent(roomId: string, type: string, stateKey: string, content: JsonObject): Promise<string> {
    assertSendable(content, "state event content");
    const res = await this.#host.call({
      method: "PUT",
      path: statePath(roomId, type, stateKey),
      body: content,
      schema: eventIdResponseSchema,
    });
    return res.event_id;
  }

  async sendTyping(roomId: string, typing: boolean, timeoutMs: number): Promise<void> {
    const userId = this.#host.userId();
    await this.#host.call({
      method: "PUT",
      path: path`/_matrix/client/v3/rooms/${roomId}/typing/${userId}`,
      body: typing ? { typing: true, timeout: timeoutMs } : { typing: false },
      schema: emptyResponseSchema,
    });
  }

  async sendReadReceipt(
    roomId: string,
    eventId: string,
    opts: { private?: boolean; threadId?: string },
  ): Promise<void> {
    const type = opts.private ? "m.read.private" : "m.read";
    await this.#host.call({
      method: "POST",
      path: path`/_matrix/client/v3/rooms/${roomId}/receipt/${type}/${eventId}`,
      body: opts.threadId !== undefined ? { thread_id: opts.threadId } : {},
      schema: emptyResponseSchema,
    });
  }

  async sendFile(
    roomId: string,
    data: UploadData,
    opts: { filename: string; contentType?: string; size?: number; msgtype?: string } & SendOptions,
  ): Promise<string> {
    const contentType = opts.contentType ?? "application/octet-stream";
    const size =
      opts.size ??
      (data instanceof Uint8Array ? data.byteLength : data instanceof Blob ? data.size : undefined);
    // MIME types are case-insensitive: `Image/PNG` is an image.
    const major = contentType.split("/")[0]?.trim().toLowerCase();
    const msgtype =
      opts.msgtype ??
      (major === "image"
        ? "m.image"
        : major === "audio"
          ? "m.audio"
          : major === "video"
            ? "m.video"
            : "m.file");
    const info: JsonObject = { mimetype: contentType };
    if (size !== undefined) info.size = size;
    const content: JsonObject = { msgtype, body: opts.filename, filename: opts.filename, info };
    if (await this.#host.rooms.isRoomEncrypted(roomId)) {
      // Checked before uploading: a plaintext upload must never precede a refused encrypted send.
      if (!this.#host.encryptionEnabled()) {
        throw new ClientError(
          "ENCRYPTION_UNAVAILABLE",
          "the room is encrypted and encryption is not enabled",
        );
      }
      const upload = await encryptUpload(data, size);
      const url = await this.#host.uploadMedia(upload.data, {
        contentType: "application/octet-stream",
        ...(upload.size !== undefined ? { size: upload.size } : {}),
      });
      // Answered before it read the whole stream: the hash would never come (nor match).
      if (!upload.settled()) {
        throw new MalformedResponseError("POST /_matrix/media/v3/upload", 200, [
          "answered before the whole file was sent",
        ]);
      }
      content.file = { ...encryptedFile(await upload.info, url) };
    } else {
      content.url = await this.#host.uploadMedia(data, {
        filename: opts.filename,
        contentType,
        ...(opts.size !== undefined ? { size: opts.size } : {}),
      });
    }
    return this.sendMessage(roomId, content, opts);
  }
}
