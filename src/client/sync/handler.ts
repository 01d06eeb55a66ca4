// Applies one validated sync response: E2EE hook first, then room state, then events to listeners,
// and hands back what remains: the `sync.settle` work listeners started, after which the caller
// (the sync loop) saves the token with the state it produced, in one atomic save. A failure
// anywhere before the save leaves the token where it was, so the response comes again.
import type {
  BasicEvent,
  ClientEvent,
  JoinedRoomSync,
  LeftRoomSync,
  Membership,
  StateEvent,
  SyncResponse,
  ToDeviceEvent,
} from "../../wire/index.ts";
import type { ClientStore, SyncChanges } from "../client-store/index.ts";
import type { RoomEvent, RoomEventMeta } from "../events/types.ts";
import type { Logger } from "../logger.ts";
import { presenceOf } from "../presence.ts";
import { receiptsOf, typingUsersOf } from "../rooms/ephemeral.ts";
import { boundInviteState, type Room } from "../rooms/room.ts";
import type { DecryptionResult, SyncCryptoChanges, SyncProcessor, SyncTimeline } from "./hooks.ts";
import type { ListenerEmitter } from "./listener-waits.ts";
import type { SyncedState } from "./state.ts";

export interface SyncContext {
  userId: string;
  /** The rooms and account data the responses update. */
  synced: SyncedState;
  /** The client's, or one that stops waiting for listeners at a stop (listener-waits.ts). */
  emitter: ListenerEmitter;
  store: ClientStore;
  logger: Logger;
  processor: () => SyncProcessor | undefined;
  /**
   * Fetches the events a limited timeline skipped (between the previous sync token `to` and the
   * chunk's `prev_batch`), oldest first. Absent: gaps are left to the application.
   */
  fetchGap?: (roomId: string, from: string, to: string) => Promise<ClientEvent[]>;
}

type Emit = () => Promise<void>;

/** A handled response whose position is not saved yet. */
export interface HandledSync {
  /**
   * Settles once every `sync.settle` listener finished (it never rejects: the emitter reports
   * failing listeners). The response's position may be saved only then.
   */
  readonly settled: Promise<void>;
  /** The position and the state the response produced (snapshots taken when it was handled). */
  readonly changes: SyncChanges;
}

const MEMBERSHIPS: ReadonlySet<string> = new Set(["join", "invite", "leave", "ban", "knock"]);

export function membershipOf(ev: StateEvent): Membership | undefined {
  const m = ev.content.membership;
  return typeof m === "string" && MEMBERSHIPS.has(m) ? (m as Membership) : undefined;
}

/**
 * `since` is the token the response was requested with (undefined for an initial sync). `shared`:
 * another process sharing the crypto store already handled this range (see `handleSyncUnit`), so
 * only the rooms are applied here (its to-device messages, device lists and key counts were
 * consumed there), and the position to save is the shared one.
 *
 * Resolves once the response's state is applied, its crypto persisted and its events emitted (each
 * listener awaited); the `sync.settle` listeners are then called but not awaited: the caller saves
 * `changes` once `settled`, and may fetch and handle the next response meanwhile.
 */
export async function handleSyncResponse(
  ctx: SyncContext,
  res: SyncResponse,
  since: string | undefined,
  shared?: { readonly position: string },
): Promise<HandledSync> {
  const emits: Emit[] = [];
  const changedRooms = new Map<string, Room>();
  const changedMemberships: SyncCryptoChanges["changedMemberships"] = [];
  const encryptedSenders = new Set<string>();
  const limitedRooms: string[] = [];
  /** Joined and left rooms' filled gaps, fetched before the hook (see below). */
  const gaps = { join: new Map<string, ClientEvent[]>(), leave: new Map<string, ClientEvent[]>() };

  // Membership changes and encrypted events' senders are collected before the hook so the E2EE
  // layer sees them with the same response. A limited timeline's gap is fetched first: with
  // lazy-loaded members, a member who came and went in it is in neither `state` nor the timeline,
  // and the engine must still see the leave (it rotates the room key).
  for (const [roomId, r] of Object.entries(res.rooms?.join ?? {})) {
    if (r.timeline?.limited) limitedRooms.push(roomId);
    const gap = await fetchGapOf(ctx, roomId, r, since);
    if (gap.length > 0) gaps.join.set(roomId, gap);
    for (const ev of [...gap, ...(r.state?.events ?? []), ...(r.timeline?.events ?? [])]) {
      if (ev.type === "m.room.member" && ev.state_key !== undefined) {
        const membership = String(ev.content.membership);
        const prevMembership = ev.unsigned?.prev_content?.membership;
        const prevSender = ev.unsigned?.prev_sender;
        changedMemberships.push({
          roomId,
          userId: ev.state_key,
          membership,
          sender: ev.sender,
          ...(typeof prevMembership === "string" ? { prevMembership } : {}),
          ...(typeof prevSender === "string" ? { prevSender } : {}),
        });
      }
    }
    for (const ev of r.timeline?.events ?? [])
      if (ev.type === "m.room.encrypted") encryptedSenders.add(ev.sender);
  }

  // A left room's too, though the engine needs none of it: a fill that fails (the network gone)
  // must fail the response before the engine takes its to-device messages, which it hands back
  // once (an Olm message decrypts once): after it, the response coming again would lose them.
  for (const [roomId, r] of Object.entries(res.rooms?.leave ?? {})) {
    const gap = await fetchGapOf(ctx, roomId, r, since);
    if (gap.length > 0) gaps.leave.set(roomId, gap);
  }

  const processor = ctx.processor();
  let toDevice: ToDeviceEvent[] = shared === undefined ? (res.to_device?.events ?? []) : [];
  if (processor && shared === undefined) {
    toDevice = await processor.processSyncChanges({
      nextBatch: res.next_batch,
      toDeviceEvents: toDevice,
      deviceLists: { changed: res.device_lists?.changed ?? [], left: res.device_lists?.left ?? [] },
      oneTimeKeyCounts: res.device_one_time_keys_count,
      unusedFallbackKeyTypes: res.device_unused_fallback_key_types,
      changedMemberships,
      limitedRooms,
      encryptedSenders: [...encryptedSenders],
    });
  }
  for (const ev of toDevice) emits.push(() => ctx.emitter.emit("toDevice", ev));

  const changedAccountData: BasicEvent[] = [];
  for (const ev of res.account_data?.events ?? []) {
    ctx.synced.accountData.set(ev.type, ev);
    changedAccountData.push(ev);
    emits.push(() => ctx.emitter.emit("accountData", ev));
  }

  for (const ev of res.presence?.events ?? []) {
    const presence = presenceOf(ev);
    if (presence === undefined) continue; // not a well-formed m.presence: nothing to say
    ctx.synced.presence.set(presence);
    emits.push(() => ctx.emitter.emit("presence", { ...presence }));
  }

  // Every room's encrypted events (filled gaps included) decrypted at once, when the processor can:
  // one engine step for the response rather than one per room. After the to-device messages
  // (the keys they bring) and before any room is applied, which decryption does not read.
  const decrypted = await decryptResponse(ctx, processor, res, gaps);

  /** The room and the local user's membership in it before this response (undefined if new). */
  const roomFor = (roomId: string, membership: Membership): [Room, Membership | undefined] => {
    let room = ctx.synced.rooms.get(roomId);
    const prev = room?.membership;
    if (!room) {
      room = ctx.synced.newRoom(roomId, membership, ctx.userId);
      ctx.synced.rooms.set(roomId, room);
    }
    changedRooms.set(roomId, room);
    return [room, prev];
  };

  // Left rooms first: a room left (or kicked from) and then invited or knocked again since the last
  // sync comes in both sections, and the other one is the newer (Synapse sends the timeline up to
  // the leave). Handled after it, the leave made the room lose its invitation for good.
  for (const [roomId, r] of Object.entries(res.rooms?.leave ?? {})) {
    const [room, prev] = roomFor(roomId, "leave");
    const gap = gaps.leave.get(roomId) ?? [];
    await applyRoom(ctx, processor, room, prev, r, "leave", emits, since, gap, decrypted);
  }
  for (const [roomId, r] of Object.entries(res.rooms?.invite ?? {})) {
    const [room, prev] = roomFor(roomId, "invite");
    const events = boundInviteState(r.invite_state?.events ?? [], ctx.userId);
    room.setMembership("invite");
    room.setInviteState(events);
    const inviter = events.find((e) => e.type === "m.room.member" && e.state_key === ctx.userId)?.sender;
    if (prev !== "invite") {
      emits.push(() => ctx.emitter.emit("room.myMembership", room, "invite", prev));
      emits.push(() => ctx.emitter.emit("room.invite", room, inviter, events));
    }
  }

  for (const [roomId, r] of Object.entries(res.rooms?.join ?? {})) {
    const [room, prev] = roomFor(roomId, "join");
    const gap = gaps.join.get(roomId) ?? [];
    await applyRoom(ctx, processor, room, prev, r, "join", emits, since, gap, decrypted);
  }
  for (const [roomId] of Object.entries(res.rooms?.knock ?? {})) {
    const [room, prev] = roomFor(roomId, "knock");
    room.setMembership("knock");
    if (prev !== "knock") emits.push(() => ctx.emitter.emit("room.myMembership", room, "knock", prev));
  }

  // Past `MAX_LEFT_ROOMS`, the rooms left longest ago are forgotten (their snapshots are then left
  // out of the save, their removal added: `SyncedState.toSave`).
  for (const roomId of ctx.synced.noteMemberships(changedRooms.values()))
    emits.push(() => ctx.emitter.emit("room.forgotten", roomId));

  for (const emit of emits) await emit();
  // Events whose key came in this response are emitted here, newly encrypted rooms recorded.
  if (processor?.beforeSaveSyncToken) await processor.beforeSaveSyncToken(res.next_batch);
  const changes: SyncChanges = {
    nextBatch: shared?.position ?? res.next_batch,
    rooms: [
      ...[...changedRooms.values()].filter((r) => ctx.synced.rooms.has(r.roomId)).map((r) => r.toSnapshot()),
      // Rooms whose member list was fetched since the last save (`/members`) go in the same save.
      ...ctx.synced.takeUnsavedRooms(new Set(changedRooms.keys())),
    ],
    accountData: changedAccountData,
  };
  // Listeners may start work for events and finish it here, so events of different rooms (and of
  // the next response) run at once while this response's token still waits for its work.
  return { settled: ctx.emitter.emitTogether("sync.settle", { nextBatch: res.next_batch }), changes };
}

async function applyRoom(
  ctx: SyncContext,
  processor: SyncProcessor | undefined,
  room: Room,
  prevMembership: Membership | undefined,
  r: JoinedRoomSync | LeftRoomSync,
  section: "join" | "leave",
  emits: Emit[],
  since: string | undefined,
  /** The events a limited timeline skipped, oldest first (`fetchGapOf`). */
  gap: readonly ClientEvent[],
  /** The response's decrypted events (`decryptResponse`); undefined: decrypted room by room here. */
  decryptedAll: Map<ClientEvent, DecryptionResult> | undefined,
): Promise<void> {
  const firstEmit = emits.length;
  const applyStateEvent = (ev: StateEvent) => {
    const prev = room.applyState(ev);
    // The same event again (a filled gap's state event comes again in the state block, which is
    // the state at the timeline's start): applied as the server sends it, but no news.
    if (prev?.event_id === ev.event_id) return;
    emits.push(() => ctx.emitter.emit("room.state", room, ev, prev));
    if (ev.type === "m.room.member") {
      const m = membershipOf(ev);
      const before = prev ? membershipOf(prev) : undefined;
      if (m && m !== before) emits.push(() => ctx.emitter.emit("room.member", room, ev.state_key, m, before));
    }
    if (ev.type === "m.room.tombstone") {
      const t = room.tombstone;
      if (t) emits.push(() => ctx.emitter.emit("room.tombstone", room, t));
    }
  };

  // An event the server sends twice (in the timeline, in both the filled gap and the timeline, or
  // in a gap fill after an earlier response had it) is applied as it comes but emitted once. It
  // counts as emitted when it is: the response may still fail before.
  const seen = (raw: ClientEvent) => ctx.synced.emittedLately(raw.event_id);
  const emitOnce = (raw: ClientEvent, ev: RoomEvent, meta: RoomEventMeta): Emit => {
    return async () => {
      if (ctx.synced.firstEmission(raw.event_id)) await ctx.emitter.emit("room.event", room, ev, meta);
    };
  };
  // A limited timeline after a gap (e.g. a long restart): what was skipped, so that every event
  // reaches listeners once. Gap events come before the state block, which is newer.
  if (gap.length > 0) {
    const decrypted = decryptedAll ?? (await decryptTimeline(ctx, processor, room, gap));
    for (const raw of gap) {
      // One an earlier response had is older than the state the room is at: not applied again.
      if (seen(raw)) continue;
      if (raw.state_key !== undefined) applyStateEvent(raw as StateEvent);
      else room.applyRedaction(raw);
      const ev = await toRoomEvent(ctx, processor, room, raw, decrypted.get(raw));
      emits.push(emitOnce(raw, ev, { source: "gap" }));
    }
  }
  for (const ev of r.state?.events ?? []) applyStateEvent(ev);
  if (r.timeline?.prev_batch !== undefined) room.prevBatch = r.timeline.prev_batch;
  const timeline = r.timeline?.events ?? [];
  const decrypted = decryptedAll ?? (await decryptTimeline(ctx, processor, room, timeline));
  for (const raw of timeline) {
    if (raw.state_key !== undefined) applyStateEvent(raw as StateEvent);
    // A redaction of a state event changes the room's state (what the redaction algorithm keeps).
    else room.applyRedaction(raw);
    if (seen(raw)) continue;
    const ev = await toRoomEvent(ctx, processor, room, raw, decrypted.get(raw));
    emits.push(emitOnce(raw, ev, { source: since === undefined ? "initial-sync" : "sync" }));
  }

  // The own member event is authoritative; the section is the fallback (e.g. state not in this chunk).
  const own = room.getState("m.room.member", ctx.userId);
  const ownMembership = own ? membershipOf(own) : undefined;
  const membership: Membership =
    section === "join" ? "join" : ownMembership && ownMembership !== "join" ? ownMembership : "leave";
  room.setMembership(membership);
  if (membership !== prevMembership) {
    // Announced before the room's other events, so listeners see the join before its messages.
    emits.splice(firstEmit, 0, () => ctx.emitter.emit("room.myMembership", room, membership, prevMembership));
  }

  for (const ev of r.account_data?.events ?? []) {
    room.setAccountData(ev);
    emits.push(() => ctx.emitter.emit("room.accountData", room, ev));
  }
  if ("summary" in r && r.summary !== undefined && room.applySummary(r.summary))
    emits.push(() => ctx.emitter.emit("room.summary", room, room.summary));
  if (section === "join" && room.applyUnread(r as JoinedRoomSync)) {
    const unread = room.unreadNotifications;
    emits.push(() => ctx.emitter.emit("room.unreadNotifications", room, unread));
  }
  if ("ephemeral" in r) {
    for (const ev of r.ephemeral?.events ?? []) {
      if (ev.type === "m.typing") {
        const users = typingUsersOf(ev.content);
        room.setTyping(users);
        emits.push(() => ctx.emitter.emit("room.typing", room, users));
      } else if (ev.type === "m.receipt") {
        const receipts = receiptsOf(ev.content);
        if (receipts !== undefined) emits.push(() => ctx.emitter.emit("room.receipt", room, receipts));
      }
    }
  }
}

/**
 * The events a limited timeline skipped (e.g. after a long restart), oldest first; none when the
 * timeline is not limited, on a first sync, or when gaps are left to the application.
 */
function fetchGapOf(
  ctx: SyncContext,
  roomId: string,
  r: JoinedRoomSync | LeftRoomSync,
  since: string | undefined,
): Promise<ClientEvent[]> {
  const prevBatch = r.timeline?.prev_batch;
  if (!r.timeline?.limited || since === undefined || prevBatch === undefined || !ctx.fetchGap) {
    return Promise.resolve([]);
  }
  return ctx.fetchGap(roomId, prevBatch, since);
}

/**
 * The encrypted events of every joined and left room's timeline and filled gap, decrypted in one
 * `decryptTimelines` call; undefined when the processor does not have it (`applyRoom` then
 * decrypts room by room). Events it could not take stay out of the map: `toRoomEvent` marks them.
 */
async function decryptResponse(
  ctx: SyncContext,
  processor: SyncProcessor | undefined,
  res: SyncResponse,
  gaps: { join: Map<string, ClientEvent[]>; leave: Map<string, ClientEvent[]> },
): Promise<Map<ClientEvent, DecryptionResult> | undefined> {
  if (!processor?.decryptTimelines) return undefined;
  const out = new Map<ClientEvent, DecryptionResult>();
  const timelines: SyncTimeline[] = [];
  // In the order the rooms are applied: left rooms first, each room's gap before its timeline.
  for (const section of ["leave", "join"] as const) {
    for (const [roomId, r] of Object.entries(res.rooms?.[section] ?? {})) {
      for (const events of [gaps[section].get(roomId) ?? [], r.timeline?.events ?? []]) {
        const encrypted = events.filter((e) => e.type === "m.room.encrypted");
        if (encrypted.length > 0) timelines.push({ roomId, events: encrypted });
      }
    }
  }
  if (timelines.length === 0) return out;
  try {
    const results = await processor.decryptTimelines(timelines);
    timelines.forEach(({ events }, t) => {
      events.forEach((e, i) => {
        const result = results[t]?.[i];
        if (result !== undefined) out.set(e, result);
      });
    });
  } catch (err) {
    // The hook promised not to throw; if it does, the events still reach listeners as undecrypted.
    ctx.logger.warn({ timelines: timelines.length }, "decryptTimelines threw");
    const failed: DecryptionResult = {
      ok: false,
      code: "DECRYPTOR_FAILED",
      reason: err instanceof Error ? err.name : "error",
    };
    for (const { events } of timelines) for (const e of events) out.set(e, failed);
  }
  return out;
}

/**
 * The encrypted events of a room's timeline decrypted in one `decryptRoomEvents` call, when the
 * processor has it (events it could not take stay out of the map: `toRoomEvent` marks them).
 */
async function decryptTimeline(
  ctx: SyncContext,
  processor: SyncProcessor | undefined,
  room: Room,
  events: readonly ClientEvent[],
): Promise<Map<ClientEvent, DecryptionResult>> {
  const out = new Map<ClientEvent, DecryptionResult>();
  if (!processor?.decryptRoomEvents) return out;
  const encrypted = events.filter((e) => e.type === "m.room.encrypted");
  if (encrypted.length === 0) return out;
  try {
    const results = await processor.decryptRoomEvents(room, encrypted);
    encrypted.forEach((e, i) => {
      const result = results[i];
      if (result !== undefined) out.set(e, result);
    });
  } catch (err) {
    // The hook promised not to throw; if it does, the events still reach listeners as undecrypted.
    ctx.logger.warn({ roomId: room.roomId, events: encrypted.length }, "decryptRoomEvents threw");
    const failed: DecryptionResult = {
      ok: false,
      code: "DECRYPTOR_FAILED",
      reason: err instanceof Error ? err.name : "error",
    };
    for (const e of encrypted) out.set(e, failed);
  }
  return out;
}

/** Builds the application-facing event, decrypting through the E2EE hook when there is one. */
export async function toRoomEvent(
  ctx: Pick<SyncContext, "logger">,
  processor: SyncProcessor | undefined,
  room: Room,
  raw: ClientEvent,
  /** The event's decryption when it was decrypted with its timeline (`decryptRoomEvents`). */
  decrypted?: DecryptionResult,
): Promise<RoomEvent> {
  const ev: RoomEvent = {
    roomId: room.roomId,
    eventId: raw.event_id,
    sender: raw.sender,
    type: raw.type,
    content: raw.content,
    originServerTs: raw.origin_server_ts,
    raw,
  };
  if (raw.state_key !== undefined) ev.stateKey = raw.state_key;
  if (raw.redacts !== undefined) ev.redacts = raw.redacts;
  if (raw.unsigned !== undefined) ev.unsigned = raw.unsigned;
  if (raw.type !== "m.room.encrypted") return ev;
  if (decrypted === undefined && !processor?.decryptRoomEvent) {
    ev.encryption = {
      decrypted: false,
      code: "NO_CRYPTO",
      reason: "encryption is not enabled on this client",
    };
    return ev;
  }
  try {
    const result = decrypted ?? (await (processor as Required<SyncProcessor>).decryptRoomEvent(room, raw));
    if (result.ok) {
      ev.type = result.type;
      ev.content = result.content;
      ev.encryption = result.info;
    } else {
      const { code, reason, withheldCode } = result;
      ev.encryption = {
        decrypted: false,
        code,
        reason,
        ...(withheldCode === undefined ? {} : { withheldCode }),
      };
    }
  } catch (err) {
    // The hook promised not to throw; if it does, the event still reaches listeners as undecrypted.
    ctx.logger.warn({ roomId: room.roomId, eventId: raw.event_id }, "decryptRoomEvent threw");
    ev.encryption = {
      decrypted: false,
      code: "DECRYPTOR_FAILED",
      reason: err instanceof Error ? err.name : "error",
    };
  }
  return ev;
}
