// The rooms a bot joins by itself: invitations it follows or declines (the invite policy, the
// allow / deny lists, and `inviteLimits` on those only `invites: anyone` lets in), and room upgrades
// it follows (a tombstone, or an invitation to the successor of a room it is in), carrying the
// room's bot state along.
import type { Clock, Logger, MatrixClient, Room, StrippedStateEvent } from "../index.ts";
import { allowedBy, listed } from "./dispatch.ts";
import {
  type BotOptions,
  DEFAULT_INVITES_PER_INVITER_PER_HOUR,
  DEFAULT_MAX_ROOMS_ON_INVITE,
} from "./options.ts";
import { RateLimiter } from "./rate-limit.ts";
import type { BotState } from "./state.ts";

/** What invitations and upgrades take of the bot. */
export interface InvitationHost {
  readonly client: MatrixClient;
  readonly options: BotOptions;
  readonly owners: ReadonlySet<string>;
  readonly logger: Logger;
  readonly state: BotState;
  isRunning(): boolean;
}

export class Invitations {
  readonly #host: InvitationHost;
  /** Invitations per inviter (bounded by `MAX_RATE_LIMITED_USERS`, least recently seen forgotten). */
  readonly #inviteLimiter: RateLimiter;
  readonly #maxRoomsOnInvite: number;
  /** Rooms joined on invitation that sync does not show joined yet (counted against `maxRooms`). */
  readonly #joining = new Set<string>();

  constructor(host: InvitationHost, clock: Clock) {
    this.#host = host;
    const limits = host.options.inviteLimits;
    const perHour = limits?.perInviterPerHour ?? DEFAULT_INVITES_PER_INVITER_PER_HOUR;
    this.#inviteLimiter = new RateLimiter({ perMinute: perHour / 60, burst: perHour }, clock);
    this.#maxRoomsOnInvite = limits?.maxRooms ?? DEFAULT_MAX_ROOMS_ON_INVITE;
  }

  async onInvite(
    room: Room,
    inviter: string | undefined,
    state: readonly StrippedStateEvent[],
  ): Promise<void> {
    const { client, options, owners, logger } = this.#host;
    if (!this.#host.isRunning()) return;
    const policy = options.invites ?? (owners.size > 0 ? "owners" : "anyone");
    const predecessor = await this.#upgradedFrom(room.roomId, state);
    const ok =
      predecessor !== undefined ||
      (inviter !== undefined &&
        allowedBy(options.users, inviter) &&
        allowedBy(options.rooms, room.roomId) &&
        (policy === "anyone" || (policy === "owners" ? owners.has(inviter) : listed(policy.allow, inviter))));
    // Invitations only `invites: anyone` lets in count against `inviteLimits`.
    const limited = ok && predecessor === undefined && policy === "anyone" && !owners.has(inviter as string);
    const declined = !ok
      ? "invitation declined by the invite policy"
      : limited
        ? this.#overInviteLimits(inviter as string)
        : undefined;
    if (declined !== undefined) {
      logger.info({ roomId: room.roomId, inviter }, declined);
      await client.leaveRoom(room.roomId).catch((err) => logger.warn({ err }, "could not decline"));
      return;
    }
    try {
      await client.joinRoom(room.roomId);
      if (limited) this.#joining.add(room.roomId);
      logger.info({ roomId: room.roomId, inviter }, "joined on invitation");
      // A direct chat is recorded in m.direct, so `verify` and DMs to the inviter reuse it.
      const mine = state.find((e) => e.type === "m.room.member" && e.state_key === client.userId);
      if (inviter !== undefined && mine?.content.is_direct === true)
        await client.markDirect(room.roomId, inviter);
      if (predecessor !== undefined) await this.#carryState(predecessor, room.roomId);
    } catch (err) {
      logger.warn({ err, roomId: room.roomId }, "could not join on invitation");
    }
  }

  /**
   * Why an invitation that only `invites: anyone` lets in is declined, if it is: the bot is in
   * `maxRooms` rooms already (those it joined and sync does not show yet included), or the inviter
   * has used up their invitations for now.
   */
  #overInviteLimits(inviter: string): string | undefined {
    const { client } = this.#host;
    for (const id of this.#joining) if (client.getRoom(id)?.membership !== "invite") this.#joining.delete(id);
    const rooms = client.getRooms("join").length + this.#joining.size;
    if (rooms >= this.#maxRoomsOnInvite)
      return "invitation declined: the bot is in inviteLimits.maxRooms rooms";
    if (!this.#inviteLimiter.take(inviter).allowed)
      return "invitation declined: the inviter is over inviteLimits.perInviterPerHour";
    return undefined;
  }

  /**
   * The room the bot is in that `roomId` replaces, when `roomId` is its upgrade: its create event
   * names a predecessor the bot is joined to, whose tombstone (asked of the server, not taken from
   * the invitation) points here. Such an invitation is followed whatever the invite policy.
   */
  async #upgradedFrom(roomId: string, state: readonly StrippedStateEvent[]): Promise<string | undefined> {
    const { client } = this.#host;
    const pred = state.find((e) => e.type === "m.room.create")?.content.predecessor as
      | { room_id?: unknown }
      | undefined;
    const predId = typeof pred?.room_id === "string" ? pred.room_id : undefined;
    if (predId === undefined || client.getRoom(predId)?.membership !== "join") return undefined;
    try {
      const tombstone = await client.fetchStateEvent(predId, "m.room.tombstone");
      return tombstone?.replacement_room === roomId ? predId : undefined;
    } catch {
      return undefined;
    }
  }

  async #carryState(from: string, to: string): Promise<void> {
    const carried = await this.#host.state.carry(from, to);
    this.#host.logger.info({ from, to, state: carried }, "followed a room upgrade");
  }

  /**
   * A room the bot is in was upgraded: join the successor (a private successor sends an invitation
   * instead, see `#upgradedFrom`) and carry the room's bot state along.
   */
  async onTombstone(room: Room, successor: string): Promise<void> {
    const { client, logger } = this.#host;
    if (!this.#host.isRunning() || room.membership !== "join") return;
    try {
      const newest = await client.followTombstone(room.roomId);
      if (newest !== room.roomId) await this.#carryState(room.roomId, newest);
    } catch (err) {
      if (client.getRoom(successor)?.membership === "join") return; // joined on its invitation
      logger.info(
        { err, from: room.roomId, to: successor },
        "cannot join the upgraded room yet; waiting for an invitation",
      );
    }
  }

  /** What was kept for a room the bot is no longer in. */
  forgetRoom(roomId: string): void {
    this.#joining.delete(roomId);
  }

  /** Rooms joined on invitation that sync does not show joined yet (for `Bot.roomMemory`). */
  get joining(): number {
    return this.#joining.size;
  }
}
