// Rooms on the server: create, join, membership, state, history, upgrades. Reads what sync knows
// (`SyncedState`) and asks the E2EE part, when there is one, around invites and joins.
import {
  type CreateRoomRequest,
  clientEventSchema,
  emptyResponseSchema,
  type JsonObject,
  joinedRoomsResponseSchema,
  jsonObjectSchema,
  membersResponseSchema,
  messagesResponseSchema,
  relationsResponseSchema,
  roomAliasResponseSchema,
  roomIdResponseSchema,
  roomStateResponseSchema,
  type StateEvent,
  upgradeRoomResponseSchema,
} from "../../wire/index.ts";
import type { AccountApi } from "../account.ts";
import type { ApiCall } from "../call.ts";
import { MatrixError } from "../errors.ts";
import type { RoomEvent } from "../events/types.ts";
import { path, type RequestPath } from "../http.ts";
import type { Logger } from "../logger.ts";
import { toRoomEvent } from "../sync/handler.ts";
import type { SyncProcessor } from "../sync/hooks.ts";
import type { SyncedState } from "../sync/state.ts";
import { Room } from "./room.ts";

/** Most rooms an upgrade chain is followed through (a loop of tombstones must end). */
export const MAX_TOMBSTONE_HOPS = 16;
/**
 * Most pages in a row `history` reads that the server left empty (a stretch of history we may not
 * see, e.g. while we were out of the room) before it ends: a server giving a new token with every
 * empty page would otherwise keep the walk asking for ever, never yielding.
 */
export const MAX_EMPTY_HISTORY_PAGES = 100;

export interface MessagesPage {
  events: RoomEvent[];
  state: StateEvent[];
  /** Token to continue in the same direction; absent at the end of history. */
  end?: string;
  start: string;
}

/** One page of the events relating to an event (`MatrixClient.relations`). */
export interface RelationsPage {
  /** Newest first. */
  events: RoomEvent[];
  /** Token for the next (older) page; absent on the last. */
  nextBatch?: string;
}

export interface CreateRoomOptions {
  name?: string;
  topic?: string;
  /** Users to invite. */
  invite?: string[];
  /** Public rooms are listed and joinable by anyone; the default is private. */
  visibility?: "public" | "private";
  /** Turn on Megolm encryption; default: on for private rooms, off for public ones. */
  encrypted?: boolean;
  /** Mark as a direct chat (`is_direct`) and record it in `m.direct`. */
  isDirect?: boolean;
  alias?: string;
  roomVersion?: string;
  preset?: CreateRoomRequest["preset"];
  initialState?: NonNullable<CreateRoomRequest["initial_state"]>;
  creationContent?: JsonObject;
}

/** What the E2EE part does around room membership (history sharing, MSC4268). */
export interface RoomsE2ee {
  /**
   * Whether the crypto store recorded the room as encrypted (then it stays so); false without
   * `encryption` configured. Never false for want of the crypto store: waits for a start under
   * way, and throws when encryption is configured but not running.
   */
  recordedEncrypted(roomId: string): Promise<boolean>;
  /** Before `userId` is invited to the room (`room` reads it); reports its own failures, never throws. */
  beforeInvite(room: () => Promise<Room>, userId: string): Promise<void>;
  /** After we joined `roomId`, to which `inviter` had invited us; reports its own failures. */
  afterJoin(roomId: string, inviter: string): Promise<void>;
}

export interface RoomsHost {
  readonly call: ApiCall;
  readonly synced: SyncedState;
  readonly account: Pick<AccountApi, "getAccountData" | "setAccountData">;
  readonly logger: Logger;
  /** The logged-in user (throws when there is none). */
  userId(): string;
  /** The hook that decrypts fetched events, if any. */
  decryptor(): SyncProcessor | undefined;
  /** The E2EE part (its hooks do nothing while encryption does not run). */
  readonly e2ee: RoomsE2ee;
}

export class RoomsApi {
  readonly #host: RoomsHost;
  readonly #call: ApiCall;

  constructor(host: RoomsHost) {
    this.#host = host;
    this.#call = host.call;
  }

  async joinedRoomIds(): Promise<string[]> {
    const res = await this.#call(
      { method: "GET", path: path`/_matrix/client/v3/joined_rooms`, schema: joinedRoomsResponseSchema },
      true,
    );
    return res.joined_rooms;
  }

  /** Resolves `#alias:server` to a room ID and the servers that know it. */
  async resolveRoomAlias(alias: string): Promise<{ roomId: string; servers: string[] }> {
    const res = await this.#call(
      {
        method: "GET",
        path: path`/_matrix/client/v3/directory/room/${alias}`,
        schema: roomAliasResponseSchema,
      },
      true,
    );
    return { roomId: res.room_id, servers: res.servers ?? [] };
  }

  /** Creates a room; private rooms are encrypted unless `encrypted: false`. Returns the room ID. */
  async createRoom(opts: CreateRoomOptions = {}): Promise<string> {
    const visibility = opts.visibility ?? "private";
    const encrypted = opts.encrypted ?? visibility === "private";
    const initialState = [...(opts.initialState ?? [])];
    if (encrypted)
      initialState.push({
        type: "m.room.encryption",
        state_key: "",
        content: { algorithm: "m.megolm.v1.aes-sha2" },
      });
    const body: CreateRoomRequest = {
      visibility,
      preset:
        opts.preset ??
        (visibility === "public" ? "public_chat" : opts.isDirect ? "trusted_private_chat" : "private_chat"),
      ...(opts.name !== undefined ? { name: opts.name } : {}),
      ...(opts.topic !== undefined ? { topic: opts.topic } : {}),
      ...(opts.invite ? { invite: opts.invite } : {}),
      ...(opts.alias !== undefined ? { room_alias_name: opts.alias } : {}),
      ...(opts.roomVersion !== undefined ? { room_version: opts.roomVersion } : {}),
      ...(opts.creationContent ? { creation_content: opts.creationContent } : {}),
      ...(opts.isDirect ? { is_direct: true } : {}),
      ...(initialState.length > 0 ? { initial_state: initialState } : {}),
    };
    const res = await this.#call({
      method: "POST",
      path: path`/_matrix/client/v3/createRoom`,
      body,
      schema: roomIdResponseSchema,
    });
    if (opts.isDirect) for (const u of opts.invite ?? []) await this.markDirect(res.room_id, u);
    return res.room_id;
  }

  /**
   * Opens a direct chat with `userId` (encrypted unless told otherwise); reuses an existing one: a
   * room `m.direct` records with them that we are joined to and they are joined or invited to (not
   * one they left, or whose state does not show them: what is sent there would not reach them).
   */
  async createDirectRoom(
    userId: string,
    opts: { encrypted?: boolean; reuse?: boolean } = {},
  ): Promise<string> {
    if (opts.reuse !== false) {
      const existing = this.getDirectRoomIds(userId).find((id) => {
        const room = this.#host.synced.room(id);
        const theirs = room?.getMember(userId)?.membership;
        return room?.membership === "join" && (theirs === "join" || theirs === "invite");
      });
      if (existing) return existing;
    }
    return this.createRoom({
      invite: [userId],
      isDirect: true,
      ...(opts.encrypted !== undefined ? { encrypted: opts.encrypted } : {}),
    });
  }

  /** Room IDs recorded in `m.direct` (for one user, or all). */
  getDirectRoomIds(userId?: string): string[] {
    const direct = this.#host.account.getAccountData("m.direct") ?? {};
    const lists = userId !== undefined ? [direct[userId]] : Object.values(direct);
    const out = new Set<string>();
    for (const l of lists) if (Array.isArray(l)) for (const id of l) if (typeof id === "string") out.add(id);
    return [...out];
  }

  /** Records `roomId` as a direct chat with `userId` in `m.direct`. */
  async markDirect(roomId: string, userId: string): Promise<void> {
    const direct: JsonObject = { ...(this.#host.account.getAccountData("m.direct") ?? {}) };
    const list = Array.isArray(direct[userId])
      ? (direct[userId] as unknown[]).filter((x) => typeof x === "string")
      : [];
    if (list.includes(roomId)) return;
    direct[userId] = [...list, roomId];
    await this.#host.account.setAccountData("m.direct", direct);
  }

  /**
   * Joins by room ID or alias; `via` names servers to join through. Returns the room ID. With
   * encryption, accepting an invite lets the inviter's history-sharing bundle in (MSC4268): it is
   * imported if it came, or when it comes within a day.
   */
  async joinRoom(roomIdOrAlias: string, opts: { via?: string[]; reason?: string } = {}): Promise<string> {
    const invited = this.#host.synced.room(roomIdOrAlias);
    // The sender of our membership event in the invite's stripped state invited us.
    const inviter =
      invited?.membership === "invite"
        ? invited.inviteState.find((e) => e.type === "m.room.member" && e.state_key === this.#host.userId())
            ?.sender
        : undefined;
    const roomId = await this.#join(roomIdOrAlias, opts);
    if (inviter !== undefined && inviter !== this.#host.userId())
      await this.#host.e2ee.afterJoin(roomId, inviter);
    return roomId;
  }

  async #join(roomIdOrAlias: string, opts: { via?: string[]; reason?: string }): Promise<string> {
    const via = opts.via?.length ? opts.via : undefined;
    const res = await this.#call({
      method: "POST",
      path: path`/_matrix/client/v3/join/${roomIdOrAlias}`,
      ...(via ? { query: { via: via.join(",") } } : {}),
      body: opts.reason !== undefined ? { reason: opts.reason } : {},
      schema: roomIdResponseSchema,
    });
    return res.room_id;
  }

  async leaveRoom(roomId: string, reason?: string): Promise<void> {
    await this.#membershipCall(roomId, "leave", undefined, reason);
  }
  async forgetRoom(roomId: string): Promise<void> {
    await this.#call({
      method: "POST",
      path: path`/_matrix/client/v3/rooms/${roomId}/forget`,
      body: {},
      schema: emptyResponseSchema,
    });
  }
  /**
   * Invites `userId`. With encryption, in an encrypted room whose history is `shared` or
   * `world_readable`, first sends them the room's shareable keys (MSC4268 history sharing) so
   * they can read what was said before; a failure there is reported (`error`), not thrown.
   */
  async invite(roomId: string, userId: string, reason?: string): Promise<void> {
    await this.#host.e2ee.beforeInvite(() => this.roomOrFetch(roomId), userId);
    await this.#membershipCall(roomId, "invite", userId, reason);
  }
  async kick(roomId: string, userId: string, reason?: string): Promise<void> {
    await this.#membershipCall(roomId, "kick", userId, reason);
  }
  async ban(roomId: string, userId: string, reason?: string): Promise<void> {
    await this.#membershipCall(roomId, "ban", userId, reason);
  }
  async unban(roomId: string, userId: string, reason?: string): Promise<void> {
    await this.#membershipCall(roomId, "unban", userId, reason);
  }

  async #membershipCall(
    roomId: string,
    action: "leave" | "invite" | "kick" | "ban" | "unban",
    userId?: string,
    reason?: string,
  ) {
    const body: JsonObject = {};
    if (userId !== undefined) body.user_id = userId;
    if (reason !== undefined) body.reason = reason;
    await this.#call({
      method: "POST",
      path: path`/_matrix/client/v3/rooms/${roomId}/${action}`,
      body,
      schema: emptyResponseSchema,
    });
    if (userId !== undefined) await this.#refreshMember(roomId, userId);
  }

  /**
   * After we changed someone's membership, their member event from the server, before sync brings
   * it: a message sent meanwhile must reach a user we just invited, and not one we just removed
   * (complement-crypto's DelayedInviteResponse).
   */
  async #refreshMember(roomId: string, userId: string): Promise<void> {
    const room = this.#host.synced.room(roomId);
    if (room === undefined) return;
    const res = await this.#call(
      {
        method: "GET",
        path: path`/_matrix/client/v3/rooms/${roomId}/members`,
        schema: membersResponseSchema,
      },
      true,
    );
    const ev = res.chunk.find((e) => e.type === "m.room.member" && e.state_key === userId);
    if (ev !== undefined) room.applyState(ev);
  }

  /**
   * The room as sync knows it, else one built from its current state on the server (not kept:
   * sync brings it in), e.g. for a one-shot send or invite before the first sync.
   */
  async roomOrFetch(roomId: string): Promise<Room> {
    const known = this.#host.synced.room(roomId);
    if (known !== undefined) return known;
    const room = this.#host.synced.newRoom(roomId);
    for (const ev of await this.fetchRoomState(roomId)) room.applyState(ev);
    return room;
  }

  /**
   * Whether the room is encrypted: recorded as such by the crypto store (then nothing the server
   * sends later turns it off), or with `m.room.encryption` in its state (from sync, else the server).
   * Only a joined room's synced state is taken for a "no": an invitation's stripped state shows
   * what the inviting server chose (a room joined since, whose state sync has not brought yet,
   * may be encrypted all the same), and a left room's state is that of when we left.
   * With `encryption` configured, a "no" needs the crypto store's: while encryption starts this
   * waits for it, and when it is not running (its start failed, or the client was closed) this
   * throws `ClientCryptoError` (`NOT_STARTED`, `CLOSED`) rather than guess.
   */
  async isRoomEncrypted(roomId: string): Promise<boolean> {
    if (this.#host.synced.room(roomId)?.encrypted === true) return true;
    if (await this.#host.e2ee.recordedEncrypted(roomId)) return true;
    // Read after the wait: a restore or login meanwhile replaced what sync knows.
    const room = this.#host.synced.room(roomId);
    if (room?.encrypted === true) return true;
    if (room?.membership === "join") return false;
    try {
      return (await this.fetchStateEvent(roomId, "m.room.encryption")) !== undefined;
    } catch (err) {
      // Not in the room (yet): nothing can be sent into it, and what sync showed is all we know.
      if (room !== undefined && err instanceof MatrixError && err.errcode === "M_FORBIDDEN") return false;
      throw err;
    }
  }

  /** Current state of a room, from the server. */
  async fetchRoomState(roomId: string): Promise<StateEvent[]> {
    return this.#call(
      {
        method: "GET",
        path: path`/_matrix/client/v3/rooms/${roomId}/state`,
        schema: roomStateResponseSchema,
      },
      true,
    );
  }

  /** One state event's content from the server, or undefined when the room has none. */
  async fetchStateEvent(roomId: string, type: string, stateKey = ""): Promise<JsonObject | undefined> {
    try {
      return await this.#call(
        {
          method: "GET",
          path: statePath(roomId, type, stateKey),
          schema: jsonObjectSchema,
        },
        true,
      );
    } catch (err) {
      if (err instanceof MatrixError && err.errcode === "M_NOT_FOUND") return undefined;
      throw err;
    }
  }

  /**
   * One event from the server (`/rooms/{roomId}/event/{eventId}`), decrypted when it is encrypted:
   * what a push notification names (a service worker shows it without syncing).
   */
  async fetchEvent(roomId: string, eventId: string): Promise<RoomEvent> {
    const raw = await this.#call(
      {
        method: "GET",
        path: path`/_matrix/client/v3/rooms/${roomId}/event/${eventId}`,
        schema: clientEventSchema,
      },
      true,
    );
    return toRoomEvent(
      { logger: this.#host.logger },
      this.#host.decryptor(),
      this.#host.synced.room(roomId) ?? new Room(roomId),
      raw,
    );
  }

  /**
   * One page of the events relating to `eventId` (`/relations`), newest first; encrypted ones go
   * through the E2EE hook. `relType` (`m.annotation`: reactions) narrows it, and `eventType` with
   * it (an encrypted event's type is `m.room.encrypted` until decrypted: filter after instead).
   */
  async relations(
    roomId: string,
    eventId: string,
    opts: { relType?: string; eventType?: string; from?: string; limit?: number } = {},
  ): Promise<RelationsPage> {
    const { relType, eventType } = opts;
    const at =
      relType === undefined
        ? path`/_matrix/client/v1/rooms/${roomId}/relations/${eventId}`
        : eventType === undefined
          ? path`/_matrix/client/v1/rooms/${roomId}/relations/${eventId}/${relType}`
          : path`/_matrix/client/v1/rooms/${roomId}/relations/${eventId}/${relType}/${eventType}`;
    const res = await this.#call(
      {
        method: "GET",
        path: at,
        query: { dir: "b", from: opts.from, limit: opts.limit },
        schema: relationsResponseSchema,
      },
      true,
    );
    const room = this.#host.synced.room(roomId) ?? new Room(roomId);
    const events: RoomEvent[] = [];
    for (const raw of res.chunk)
      events.push(await toRoomEvent({ logger: this.#host.logger }, this.#host.decryptor(), room, raw));
    return res.next_batch === undefined ? { events } : { events, nextBatch: res.next_batch };
  }

  /** One page of room history (`/messages`). Encrypted events go through the E2EE hook. */
  async messages(
    roomId: string,
    opts: { from?: string; dir?: "b" | "f"; limit?: number; to?: string; filter?: JsonObject } = {},
  ): Promise<MessagesPage> {
    const res = await this.#call(
      {
        method: "GET",
        path: path`/_matrix/client/v3/rooms/${roomId}/messages`,
        query: {
          dir: opts.dir ?? "b",
          from: opts.from,
          to: opts.to,
          limit: opts.limit,
          filter: opts.filter ? JSON.stringify(opts.filter) : undefined,
        },
        schema: messagesResponseSchema,
      },
      true,
    );
    const room = this.#host.synced.room(roomId) ?? new Room(roomId);
    const events: RoomEvent[] = [];
    for (const raw of res.chunk)
      events.push(await toRoomEvent({ logger: this.#host.logger }, this.#host.decryptor(), room, raw));
    const page: MessagesPage = { events, state: res.state ?? [], start: res.start };
    if (res.end !== undefined) page.end = res.end;
    return page;
  }

  /**
   * Walks history backwards from now (or `from`), newest first, page by page. It ends where the
   * server gives no further token, a token this walk already used (a server that points back to a
   * page already read would otherwise make the walk repeat it for ever), or after
   * `MAX_EMPTY_HISTORY_PAGES` empty pages in a row. An empty page with a token is not the end:
   * servers leave out the events we may not see (while we were out of the room), and older ones
   * may follow.
   */
  async *history(roomId: string, opts: { from?: string; pageSize?: number } = {}): AsyncGenerator<RoomEvent> {
    let from = opts.from;
    const used = new Set<string>();
    let empty = 0;
    for (;;) {
      const page = await this.messages(roomId, {
        dir: "b",
        limit: opts.pageSize ?? 50,
        ...(from !== undefined ? { from } : {}),
      });
      if (from !== undefined) used.add(from);
      yield* page.events;
      empty = page.events.length === 0 ? empty + 1 : 0;
      if (page.end === undefined || used.has(page.end) || empty >= MAX_EMPTY_HISTORY_PAGES) return;
      from = page.end;
    }
  }

  /** Upgrades a room to `newVersion`; returns the replacement room ID. */
  async upgradeRoom(roomId: string, newVersion: string): Promise<string> {
    const res = await this.#call({
      method: "POST",
      path: path`/_matrix/client/v3/rooms/${roomId}/upgrade`,
      body: { new_version: newVersion },
      schema: upgradeRoomResponseSchema,
    });
    return res.replacement_room;
  }

  /**
   * Follows `m.room.tombstone` links from `roomId` to the newest room, joining each successor
   * (unless `join: false`). Returns the last room ID (the argument itself when it was not upgraded).
   * A successor whose `m.room.create` names another room as its predecessor is not an upgrade of
   * this one (a tombstone may point anywhere): the walk stops before it, and a room joined only to
   * find that out is left again.
   */
  async followTombstone(roomId: string, opts: { join?: boolean } = {}): Promise<string> {
    let current = roomId;
    const seen = new Set([current]);
    for (let hop = 0; hop < MAX_TOMBSTONE_HOPS; hop++) {
      const local = this.#host.synced.room(current)?.tombstone?.replacementRoomId;
      let next = local;
      if (next === undefined) {
        try {
          next = str(await this.fetchStateEvent(current, "m.room.tombstone"), "replacement_room");
        } catch (err) {
          // A successor we are not in (`join: false`): its state is not ours to read, and it is
          // as far as we know the chain goes.
          if (current !== roomId && err instanceof MatrixError && err.errcode === "M_FORBIDDEN")
            return current;
          throw err;
        }
      }
      if (next === undefined || seen.has(next)) return current;
      const wasJoined = this.#host.synced.room(next)?.membership === "join";
      if (opts.join !== false) await this.joinRoom(next, { via: [serverOf(current)] });
      const predecessor = await this.#predecessorOf(next);
      if (predecessor !== undefined && predecessor !== current) {
        if (opts.join !== false && !wasJoined)
          await this.leaveRoom(next).catch((err: unknown) =>
            this.#host.logger.warn({ err, roomId: next }, "could not leave a room a tombstone wrongly named"),
          );
        return current;
      }
      seen.add(next);
      current = next;
    }
    return current;
  }

  /**
   * The predecessor `roomId`'s `m.room.create` names (`null` when it names none), from sync or
   * the server; undefined when its state is not ours to read (a successor not joined).
   */
  async #predecessorOf(roomId: string): Promise<string | null | undefined> {
    const synced = this.#host.synced.room(roomId);
    if (synced?.getState("m.room.create") !== undefined) return synced.predecessor?.roomId ?? null;
    try {
      const create = await this.fetchStateEvent(roomId, "m.room.create");
      const p = create?.predecessor;
      return typeof p === "object" && p !== null && !Array.isArray(p)
        ? (str(p as JsonObject, "room_id") ?? null)
        : null;
    } catch (err) {
      if (err instanceof MatrixError && (err.errcode === "M_FORBIDDEN" || err.errcode === "M_NOT_FOUND"))
        return undefined;
      throw err;
    }
  }
}

/** The state path; an empty state key is left out, as some servers do not route a trailing slash. */
export function statePath(roomId: string, type: string, stateKey: string): RequestPath {
  return stateKey === ""
    ? path`/_matrix/client/v3/rooms/${roomId}/state/${type}`
    : path`/_matrix/client/v3/rooms/${roomId}/state/${type}/${stateKey}`;
}

function str(c: JsonObject | undefined, k: string): string | undefined {
  const v = c?.[k];
  return typeof v === "string" ? v : undefined;
}

/** The server part of a room or user ID (`!abc:example.org` → `example.org`). */
function serverOf(id: string): string {
  const i = id.indexOf(":");
  return i >= 0 ? id.slice(i + 1) : id;
}
