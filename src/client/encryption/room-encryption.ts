// The driver's per-room encryption: each room's `m.room.encryption` recorded in the engine (which
// then refuses a downgrade), its trust requirements, its full member list, and the send loop that
// gets devices, Olm sessions and the room key's shares out before an event is encrypted.
import { E2eeError } from "../../e2ee/errors.ts";
import type { HistoryVisibility, OlmMachine, RoomEventPlan, RoomMember } from "../../e2ee/index.ts";
import { type JsonObject, membersResponseSchema, type StateEvent } from "../../wire/index.ts";
import { errorSummary } from "../events/emitter.ts";
import { type HttpClient, path } from "../http.ts";
import type { Logger } from "../logger.ts";
import type { Room } from "../rooms/room.ts";
import type { FetchedMember } from "../sync/hooks.ts";
import type { RoomTrustRequirements } from "./client-crypto-types.ts";
import { ClientCryptoError } from "./errors.ts";
import type { OutgoingRequestLoop } from "./outgoing.ts";

/** Attempts at the Olm session claims a room key share needs, before sharing without them. */
export const CLAIM_ATTEMPTS = 3;
/** Attempts at fetching the device lists of a room's members before a send is refused. */
export const QUERY_ATTEMPTS = 2;
/** Attempts at sending a room key's shares before a send is refused. */
export const SHARE_ATTEMPTS = 2;

const HISTORY_VISIBILITIES: ReadonlySet<string> = new Set(["invited", "joined", "shared", "world_readable"]);

export interface RoomEncryptionOptions {
  readonly machine: OlmMachine;
  readonly http: HttpClient;
  readonly logger: Logger;
  readonly loop: OutgoingRequestLoop;
  /** Reports a failure nobody awaits (a refused `m.room.encryption` from sync). */
  reportError(error: unknown): void;
  /** A member list fetch corrected the room (`news`: what changed); see `ClientCryptoHost`. */
  membersFetched?(room: Room, news: readonly FetchedMember[]): void;
}

export class RoomEncryption {
  readonly #machine: OlmMachine;
  readonly #opts: RoomEncryptionOptions;
  /** Rooms whose `m.room.encryption` was recorded in the engine during this process. */
  readonly #recorded = new Map<string, string>();
  /** The refused `m.room.encryption` of each room, reported once. */
  readonly #refused = new Map<string, string>();
  /**
   * Rooms whose full member list was fetched in this process. With lazy-loaded members, sync
   * only names the members it must; a room key must still reach every member, so the list is
   * fetched before the first share. Sync keeps it current after that, but for a limited timeline:
   * members who came and went in its gap may be in neither `state` nor the events fetched for it
   * (gap filling off, or the gap past its bound), so the list is fetched again before the next
   * share (as matrix-rust-sdk marks a room's members missing after a limited sync).
   */
  readonly #membersLoaded = new Set<string>();
  /** Rooms whose member list was fetched, then a limited sync came: to be fetched again. */
  readonly #membersStale = new Set<string>();
  /** Per-room trust requirements (persisted in the engine), read once per room per process. */
  readonly #roomTrust = new Map<string, RoomTrustRequirements>();
  /**
   * Each room's `stateVersion` when `settingsChanged` last found its settings recorded (or none to
   * record): asked for every room after every sync response, it then answers without looking at
   * the state. Keyed by the object, whose version starts again at 0.
   */
  #unchangedAt = new WeakMap<Room, number>();
  /**
   * Each room's recipients (`recipientsOf`) at its `stateVersion`: every send reads them, and
   * building them walks the room's state; rebuilt once the state changed.
   */
  #recipients = new WeakMap<Room, { version: number; recipients: Recipients }>();

  constructor(opts: RoomEncryptionOptions) {
    this.#machine = opts.machine;
    this.#opts = opts;
  }

  /** Another process wrote: what was derived from the engine and the server goes. */
  reset(): void {
    // Members may have joined in the range the other process synced: fetch the lists again.
    this.#membersLoaded.clear();
    this.#membersStale.clear();
    this.#recorded.clear();
    this.#roomTrust.clear();
    this.#unchangedAt = new WeakMap();
    this.#recipients = new WeakMap();
  }

  /** These rooms' timelines were limited: their member lists are fetched again before a share. */
  membersMayHaveChanged(roomIds: readonly string[]): void {
    for (const roomId of roomIds) {
      if (this.#membersLoaded.delete(roomId)) this.#membersStale.add(roomId);
    }
  }

  /**
   * Whether the room is encrypted and its `m.room.encryption` differs from what this process
   * recorded. Asked for every room after each sync response: a room whose state did not change
   * since the last "no" costs a lookup (a bot in 1 000 rooms spent ~0.5 ms per response here).
   * An encrypted room whose `m.room.encryption` names no algorithm has nothing to record (`record`
   * skips it): that is a "no" too, or the room would be asked about again after every response.
   */
  settingsChanged(room: Room): boolean {
    const version = room.stateVersion;
    if (this.#unchangedAt.get(room) === version) return false;
    const changed = room.encryption !== undefined && this.#recorded.get(room.roomId) !== settingsKey(room);
    if (!changed) this.#unchangedAt.set(room, version);
    return changed;
  }

  /**
   * Encrypts one event: asks the engine what the send needs, sends that, and asks again until the
   * engine hands out the event (in steady state, one call and nothing to send). Only then may the
   * event go out, after every room-key share went out first.
   */
  encrypt(room: Room, type: string, content: JsonObject): Promise<{ type: string; content: JsonObject }> {
    return this.#encryptWith(room, (claimSessions) =>
      this.#machine.prepareRoomEvent(room.roomId, type, content, {
        ...this.#recipientsOf(room),
        claimSessions,
      }),
    );
  }

  /**
   * Encrypts an in-room verification event of a flow with `partner`: with the flow's own session,
   * which the engine shares with the partner's devices whatever this room's trust settings, as the
   * spec requires (see docs/verification.md). The same steps as `encrypt`.
   */
  encryptVerification(
    room: Room,
    type: string,
    content: JsonObject,
    partner: string,
  ): Promise<{ type: string; content: JsonObject }> {
    return this.#encryptWith(room, (claimSessions) =>
      this.#machine.prepareVerificationEvent(room.roomId, type, content, partner, {
        members: this.#recipientsOf(room).members,
        claimSessions,
      }),
    );
  }

  /** `recipientsOf(room)`, built again only when the room's state changed since. */
  #recipientsOf(room: Room): Recipients {
    const version = room.stateVersion;
    const kept = this.#recipients.get(room);
    if (kept?.version === version) return kept.recipients;
    const recipients = recipientsOf(room);
    this.#recipients.set(room, { version, recipients });
    return recipients;
  }

  async #encryptWith(
    room: Room,
    prepare: (claimSessions: boolean) => Promise<RoomEventPlan>,
  ): Promise<{ type: string; content: JsonObject }> {
    const roomId = room.roomId;
    const loop = this.#opts.loop;
    await this.record(room, { fromSync: false, track: false });
    await this.#loadMembers(room);
    const tries = { devices: 0, sessions: 0, ready: 0 };
    // A claim that went out without failing settles the sessions (an empty answer backs off in
    // the engine); a failed one is tried again, or those devices would get no room key
    // (complement-crypto's FailedKeysClaimRetries), then the key is shared without them.
    let claimed = false;
    for (;;) {
      const { plan, error } = await loop.exclusive(async (send) => {
        // Read at each step, not once: sync goes on while this send waits for the loop and for
        // device queries and claims; a member who left meanwhile must not get the key.
        const plan = await prepare(!claimed && tries.sessions < CLAIM_ATTEMPTS);
        // Device lists are fetched twice at most before the send is refused.
        if (plan.stage === "devices" && tries.devices >= QUERY_ATTEMPTS) return { plan, error: undefined };
        return { plan, error: await send(plan.requests) };
      });
      tries[plan.stage]++;
      switch (plan.stage) {
        case "devices":
          if (tries.devices > QUERY_ATTEMPTS) {
            throw new ClientCryptoError(
              "DEVICE_LIST_UNAVAILABLE",
              "the devices of the room's members could not be fetched",
              { cause: error ?? loop.lastError },
            );
          }
          break;
        case "sessions":
          if (error === undefined) claimed = true;
          break;
        case "ready":
          if (error === undefined) return { type: "m.room.encrypted", content: plan.content };
          // A share from this or an earlier attempt did not go out: once more, then give up.
          if (tries.ready >= SHARE_ATTEMPTS) {
            throw new ClientCryptoError(
              "ROOM_KEY_NOT_SHARED",
              `the room key of ${roomId} could not be sent to every member's devices; the event was not sent`,
              { cause: error },
            );
          }
          break;
      }
    }
  }

  /**
   * Claims the Olm sessions these users' devices lack. Claims are sent by the loop, which sends one
   * request at a time. A claim that failed (the request, not an empty answer: those back off in the
   * engine) is tried again, or those devices would get no key (complement-crypto's
   * FailedKeysClaimRetries).
   */
  async claimSessions(userIds: readonly string[]): Promise<void> {
    for (let i = 0; i < CLAIM_ATTEMPTS; i++) {
      // A claim that failed earlier (in a sync's pass) is still in flight in the engine: it counts.
      const missing = (await this.#machine.getMissingSessions(userIds)) !== undefined;
      if (!missing && !(await this.#machine.outgoingRequests()).some((r) => r.type === "keys_claim")) break;
      await this.#opts.loop.run();
      if (this.#opts.loop.lastError === undefined) break;
    }
  }

  /**
   * Fetches the room's members (once per process, and again after a limited sync) and applies
   * them. The server answers with its current state, at least as new as ours unless a sync
   * response changed the room's state while the request was out: then only the members sync has
   * not told us about are added (what sync delivered may be newer), and the list is fetched again
   * at the next share. Leaves come too: a member who left unseen must stop getting keys.
   *
   * The engine hears of the memberships that changed (joins tracked, a leave rotates the room
   * key). A leave of someone we never knew of says when it happened only on a fetch again after a
   * limited sync (the last fetch had every member): then they came and went in the gap, and may
   * hold the room key through another member's history bundle; on a first fetch it may be years
   * old, and rotating for it would rotate every room at every start.
   *
   * The engine saves first, then the room takes the events: had the engine's save failed after the
   * room took a leave, the next fetch would find nothing to tell it, and the leaver would keep the
   * room key. The client then saves the room (with the sync position it is at) and emits what
   * changed (`membersFetched`). A crash between the engine's save and the client's brings the old
   * list back and the next fetch tells the engine again (at worst one more rotation); the client's
   * save first could bring back the corrected list with a room key the leaver holds.
   */
  async #loadMembers(room: Room): Promise<void> {
    const roomId = room.roomId;
    if (this.#membersLoaded.has(roomId)) return;
    const again = this.#membersStale.has(roomId);
    const version = room.stateVersion;
    const res = await this.#opts.http.request({
      method: "GET",
      path: path`/_matrix/client/v3/rooms/${roomId}/members`,
      schema: membersResponseSchema,
    });
    const current = room.stateVersion === version;
    const changes: { roomId: string; userId: string; membership: string }[] = [];
    const taken: { event: StateEvent; previous: StateEvent | undefined; news: boolean }[] = [];
    for (const ev of res.chunk) {
      if (ev.type !== "m.room.member") continue;
      const ours = room.getState("m.room.member", ev.state_key);
      if (ours !== undefined && (!current || ours.event_id === ev.event_id)) continue;
      // A member we never knew of is news only when the last fetch had every member.
      taken.push({ event: ev, previous: ours, news: ours !== undefined || again });
      const membership = String(ev.content.membership);
      if (ours === undefined && membership === "leave" && !again) continue;
      if (ours?.content.membership !== membership) changes.push({ roomId, userId: ev.state_key, membership });
    }
    if (changes.length > 0) await this.#machine.receiveRoomMembership(changes);
    const news: FetchedMember[] = [];
    let applied = false;
    for (const { event, previous, news: isNews } of taken) {
      // Sync changed this member while the engine saved: its event is the newer.
      if (room.getState("m.room.member", event.state_key) !== previous) continue;
      room.applyState(event);
      applied = true;
      if (isNews) news.push({ event, previous });
    }
    if (applied) this.#opts.membersFetched?.(room, news);
    if (!current) return;
    this.#membersLoaded.add(roomId);
    this.#membersStale.delete(roomId);
  }

  /**
   * Trust requirements for one room (each overrides the client-wide option), persisted in the
   * crypto store so that they hold after a restart.
   */
  async setTrustRequirements(room: Room, requirements: RoomTrustRequirements): Promise<void> {
    const roomId = room.roomId;
    await this.record(room, { fromSync: false, track: false });
    const { shareWith, senderRequirement, errorOnVerifiedUserProblems } = requirements;
    await this.#machine.setRoomSettings(roomId, {
      ...(shareWith !== undefined ? { shareWith } : {}),
      ...(senderRequirement !== undefined ? { senderRequirement } : {}),
      ...(errorOnVerifiedUserProblems !== undefined ? { errorOnVerifiedUserProblems } : {}),
    });
    this.#roomTrust.set(roomId, { ...(await this.trustOf(roomId)), ...requirements });
  }

  /** The room's recorded trust requirements (empty when the client-wide options apply). */
  async trustOf(roomId: string): Promise<RoomTrustRequirements> {
    const cached = this.#roomTrust.get(roomId);
    if (cached !== undefined) return cached;
    const stored = await this.#machine.getRoomSettings(roomId);
    const trust: RoomTrustRequirements = {
      ...(stored?.shareWith !== undefined ? { shareWith: stored.shareWith } : {}),
      ...(stored?.senderRequirement !== undefined ? { senderRequirement: stored.senderRequirement } : {}),
      ...(stored?.errorOnVerifiedUserProblems !== undefined
        ? { errorOnVerifiedUserProblems: stored.errorOnVerifiedUserProblems }
        : {}),
    };
    this.#roomTrust.set(roomId, trust);
    return trust;
  }

  /** Per-room `verifyDevices` (overrides the client-wide option); persisted. */
  async setVerifyDevices(room: Room, verifyDevices: boolean): Promise<void> {
    await this.record(room, { fromSync: false, track: false });
    await this.#machine.setRoomSettings(room.roomId, { verifyDevices });
  }

  /**
   * Records the room's `m.room.encryption` in the engine (which refuses a later downgrade) and,
   * with `track`, follows its members' devices. A refusal from sync data is reported, not thrown:
   * throwing would make the client fetch the same sync forever.
   */
  async record(room: Room, opts: { fromSync: boolean; track: boolean }): Promise<void> {
    const version = room.stateVersion;
    // Recorded (or nothing to record) and the state unchanged since: what every send finds.
    if (!opts.track && this.#unchangedAt.get(room) === version) return;
    const settings = room.encryption;
    if (settings === undefined) return;
    const fingerprint = settingsKey(room);
    try {
      if (this.#recorded.get(room.roomId) !== fingerprint) {
        await this.#machine.setRoomSettings(room.roomId, {
          algorithm: settings.algorithm,
          ...(settings.rotationPeriodMs !== undefined ? { rotationPeriodMs: settings.rotationPeriodMs } : {}),
          ...(settings.rotationPeriodMessages !== undefined
            ? { rotationPeriodMessages: settings.rotationPeriodMessages }
            : {}),
        });
        this.#recorded.set(room.roomId, fingerprint);
      }
      this.#unchangedAt.set(room, version);
    } catch (e) {
      const refused =
        e instanceof E2eeError && (e.code === "ENCRYPTION_DOWNGRADE" || e.code === "UNSUPPORTED_ALGORITHM");
      if (!refused || !opts.fromSync) throw e;
      // Reported once per refused state, not at every sync; sending into the room stays refused.
      if (this.#refused.get(room.roomId) === fingerprint) return;
      this.#refused.set(room.roomId, fingerprint);
      this.#opts.logger.warn(
        { roomId: room.roomId, err: errorSummary(e) },
        "room encryption settings refused",
      );
      this.#opts.reportError(e);
      return;
    }
    if (opts.track) await this.#machine.updateTrackedUsers(room.joinedOrInvitedMemberIds);
  }
}

interface Recipients {
  readonly members: readonly RoomMember[];
  readonly settings: { readonly historyVisibility?: HistoryVisibility };
}

/** The room's joined and invited members and its history visibility, as its state has them now. */
function recipientsOf(room: Room): Recipients {
  const members: RoomMember[] = [];
  for (const m of room.members) {
    if (m.membership === "join" || m.membership === "invite") {
      members.push({ userId: m.userId, membership: m.membership });
    }
  }
  const visibility = historyVisibilityOf(room);
  // The room's recorded `shareWith` is applied by the engine.
  return { members, settings: visibility !== undefined ? { historyVisibility: visibility } : {} };
}

/** Identifies a room's `m.room.encryption` settings, to notice when they change. */
function settingsKey(room: Room): string {
  return JSON.stringify(room.encryption ?? null);
}

export function historyVisibilityOf(room: Room): HistoryVisibility | undefined {
  const v = room.getState("m.room.history_visibility")?.content.history_visibility;
  return typeof v === "string" && HISTORY_VISIBILITIES.has(v) ? (v as HistoryVisibility) : undefined;
}
