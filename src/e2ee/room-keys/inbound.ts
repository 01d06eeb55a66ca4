/**
 * Inbound Megolm sessions: receiving `m.room_key` (and, through key requests, forwarded keys),
 * keeping the best copy of each session, withheld notices, and a bounded cache of live sessions.
 */
import { z } from "zod";
import { InboundGroupSession, MegolmError } from "../../crypto/megolm/index.ts";
import type { MachineContext } from "../context.ts";
import type { SessionReplays } from "../decryption/replay.ts";
import { MEGOLM_ALGORITHM } from "../devices/device.ts";
import { idSchema, MAX_REASON_LENGTH } from "../limits.ts";
import type { InboundGroupSessionRecord, WithheldRecord } from "../store/records.ts";

/** Live inbound sessions kept unpickled; older ones are re-read from the store on demand. */
export const INBOUND_SESSION_CACHE_SIZE = 2000;

export interface InboundEntry {
  record: InboundGroupSessionRecord;
  readonly session: InboundGroupSession;
  /** The session reached no store before this process: nothing was decrypted with it elsewhere. */
  readonly createdHere?: boolean;
  /** The replay guard's state for this session, kept here so decryption finds it without a lookup. */
  replays?: SessionReplays;
}

const roomKeySchema = z.object({
  algorithm: z.literal(MEGOLM_ALGORITHM),
  room_id: idSchema,
  session_id: idSchema,
  session_key: z.string().min(1),
});

const withheldSchema = z.object({
  algorithm: z.string(),
  code: idSchema,
  reason: z.string().max(MAX_REASON_LENGTH).optional(),
  room_id: idSchema.optional(),
  session_id: idSchema.optional(),
  sender_key: idSchema.optional(),
});

/** A key that entered the store: pending events for it can be retried. */
export interface RoomKeyUpdate {
  readonly roomId: string;
  readonly sessionId: string;
}

const cacheKey = (roomId: string, sessionId: string): string => `${roomId}\u0000${sessionId}`;

export class InboundSessions {
  readonly #ctx: MachineContext;
  readonly #cache = new Map<string, InboundEntry>();

  constructor(ctx: MachineContext) {
    this.#ctx = ctx;
  }

  /** The session if it is in memory, without touching the store (the decryption fast path). */
  cached(roomId: string, sessionId: string): InboundEntry | undefined {
    const key = cacheKey(roomId, sessionId);
    const hit = this.#cache.get(key);
    // Refresh recency (a Map keeps insertion order), which only matters once eviction is near.
    if (hit !== undefined && this.#cache.size > INBOUND_SESSION_CACHE_SIZE / 2) {
      this.#cache.delete(key);
      this.#cache.set(key, hit);
    }
    return hit;
  }

  async get(roomId: string, sessionId: string): Promise<InboundEntry | undefined> {
    return (await this.#load(roomId, sessionId)).entry;
  }

  /** The session, and whether the store holds a record of it (even one that does not unpickle). */
  async #load(
    roomId: string,
    sessionId: string,
  ): Promise<{ entry: InboundEntry | undefined; stored: boolean }> {
    const hit = this.cached(roomId, sessionId);
    if (hit !== undefined) return { entry: hit, stored: true };
    const record = await this.#ctx.store.getInboundGroupSession(roomId, sessionId);
    if (record === undefined) return { entry: undefined, stored: false };
    let session: InboundGroupSession;
    try {
      session = InboundGroupSession.fromPickle(record.pickle);
    } catch {
      return { entry: undefined, stored: true }; // unreadable: a good copy may replace it
    }
    const entry = { record, session };
    this.#remember(cacheKey(roomId, sessionId), entry);
    return { entry, stored: true };
  }

  #remember(key: string, entry: InboundEntry): void {
    this.#cache.set(key, entry);
    if (this.#cache.size > INBOUND_SESSION_CACHE_SIZE) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
  }

  /**
   * Adds a session unless we already hold one at least as good. A copy whose ratchet is not
   * connected to ours (a forgery under a known session ID) never replaces what we have, nor does a
   * forwarded copy replace one from the creator unless it reaches further back.
   */
  async add(
    meta: Omit<InboundGroupSessionRecord, "pickle" | "sessionId">,
    session: InboundGroupSession,
  ): Promise<RoomKeyUpdate | undefined> {
    const { entry: existing, stored } = await this.#load(meta.roomId, session.sessionId);
    if (existing !== undefined) {
      if (existing.record.senderKey !== meta.senderKey) return undefined;
      if (session.compare(existing.session) !== "better") return undefined;
    }
    const record: InboundGroupSessionRecord = {
      ...meta,
      sessionId: session.sessionId,
      pickle: session.toPickle(),
    };
    // Only a session no store ever held can have no replay records anywhere.
    const createdHere = !stored;
    this.#remember(cacheKey(meta.roomId, session.sessionId), { record, session, createdHere });
    this.#ctx.tx.inboundGroupSessions.push(record);
    return { roomId: meta.roomId, sessionId: session.sessionId };
  }

  /** An `m.room_key` that arrived over Olm from the device owning `senderKey`. */
  async receiveRoomKey(
    content: Record<string, unknown>,
    senderKey: string,
    senderClaimedEd25519: string,
  ): Promise<RoomKeyUpdate | undefined> {
    const parsed = roomKeySchema.safeParse(content);
    if (!parsed.success) return undefined;
    let session: InboundGroupSession;
    try {
      session = InboundGroupSession.fromSessionKey(parsed.data.session_key);
    } catch (e) {
      if (e instanceof MegolmError) return undefined;
      throw e;
    }
    if (session.sessionId !== parsed.data.session_id) return undefined;
    return this.add(
      {
        roomId: parsed.data.room_id,
        senderKey,
        senderClaimedEd25519,
        forwarded: false,
        imported: false,
        forwardingChain: [],
      },
      session,
    );
  }

  /** `m.room_key.withheld`: remembered so decryption failures can say why. */
  receiveWithheld(
    sender: string,
    content: Record<string, unknown>,
    senderKey: string | undefined,
  ): RoomKeyUpdate | undefined {
    const parsed = withheldSchema.safeParse(content);
    if (!parsed.success || parsed.data.algorithm !== MEGOLM_ALGORITHM) return undefined;
    const { room_id: roomId, session_id: sessionId } = parsed.data;
    if (roomId === undefined || sessionId === undefined) return undefined;
    const record: WithheldRecord = {
      roomId,
      sessionId,
      sender,
      senderKey: senderKey ?? parsed.data.sender_key,
      code: parsed.data.code,
      reason: parsed.data.reason,
    };
    this.#ctx.tx.withheld.push(record);
    return { roomId, sessionId };
  }
}
