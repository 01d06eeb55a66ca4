/**
 * One encrypted room send as one machine step: what must go out first (device queries, then
 * Olm session claims, then the room key's shares), and the encrypted event once it may follow.
 */

import type { DeviceRecord } from "../devices/device.ts";
import { E2eeError } from "../errors.ts";
import type { MachineContext } from "../machine-context.ts";
import type { Parts } from "../machine-parts.ts";
import type { KeysClaimRequest, KeysQueryRequest, ToDeviceRequest } from "../requests.ts";
import { queuedInStep, queuedToDevice } from "../to-device-queue.ts";
import { isVerificationEvent } from "../verification/events.ts";
import type { ResolvedSettings, RoomEncryptionSettings, RoomMember } from "./settings.ts";

/**
 * What one encrypted room send needs next (`OlmMachine.prepareRoomEvent`). Send `requests` in
 * order, marking each sent; at `"devices"` or `"sessions"` ask again afterwards. At `"ready"` the
 * event may go out once every request was sent: they carry the room key to its recipients.
 */
export type RoomEventPlan =
  | { readonly stage: "devices"; readonly requests: KeysQueryRequest[] }
  | { readonly stage: "sessions"; readonly requests: KeysClaimRequest[] }
  | {
      readonly stage: "ready";
      readonly requests: ToDeviceRequest[];
      /** The `m.room.encrypted` content. */
      readonly content: Record<string, unknown>;
    };

/** The room a send goes to, as the caller knows it. */
export interface RoomEventRecipients {
  /** Joined and invited members. */
  readonly members: readonly RoomMember[];
  /** Settings for this send (history visibility, `shareWith`); merged with what is recorded. */
  readonly settings?: RoomEncryptionSettings;
  /** Whether to claim one-time keys for members' devices we have no Olm session with (default true). */
  readonly claimSessions?: boolean;
}

/** What the machine supplies to a plan: the room's resolved settings, and who may be claimed. */
export interface PlanInputs {
  readonly settings: ResolvedSettings;
  /** These users' devices whose sessions may be claimed now (not ours, not blacklisted, not backing off). */
  readonly claimable: (userIds: readonly string[]) => Promise<DeviceRecord[]>;
}

export async function planRoomEvent(
  ctx: MachineContext,
  p: Parts,
  event: { roomId: string; type: string; content: Record<string, unknown> },
  recipients: RoomEventRecipients,
  inputs: PlanInputs,
): Promise<RoomEventPlan> {
  const { roomId } = event;
  const userIds = [...new Set(recipients.members.map((m) => m.userId))];
  p.devices.trackUsers(userIds);
  // A member whose server could not answer for them (backing off) does not hold the room up: the
  // key goes to the devices we know of theirs, and to the rest once their list comes (the next
  // send shares the session with them). Otherwise one unreachable server would stop every
  // encrypted send in a federated room.
  if (userIds.some((u) => p.devices.isOutdated(u) && !p.devices.isBackingOff(u))) {
    return { stage: "devices", requests: [...p.devices.inFlightRequests(), ...p.devices.queryRequests()] };
  }
  if (recipients.claimSessions !== false) {
    // Claims in flight count too (one that failed earlier, in a sync's pass, is still owed).
    const claims = p.olm.inFlightClaims();
    const claim = p.olm.claimRequest(await p.olm.devicesNeedingSessions(await inputs.claimable(userIds)));
    if (claim !== undefined) claims.push(claim);
    if (claims.length > 0) return { stage: "sessions", requests: claims };
  }
  await p.outbound.share(roomId, recipients.members, inputs.settings);
  const requests: ToDeviceRequest[] = [];
  for (const id of await p.outbound.pendingShares(roomId)) {
    const queued = p.queue.get(id) ?? queuedInStep(ctx, id);
    if (queued === undefined) throw new E2eeError("ROOM_KEY_NOT_SHARED", "a room key share went missing");
    requests.push(queued.request);
  }
  for (const r of ctx.tx.queuedRequests) {
    const queued = queuedToDevice(r);
    // The withheld notices this share made (its room keys are listed above).
    if (queued !== undefined && queued.roomId === undefined) requests.push(queued.request);
  }
  const content = await p.outbound.encrypt(roomId, event.type, event.content, true);
  return { stage: "ready", requests, content };
}

/**
 * One in-room verification event (the request, or a later event of its flow) to `partner`: like
 * `planRoomEvent`, but with the flow's own session, shared with the partner's devices and ours
 * whatever the room's trust settings (see verification-sessions.ts for why).
 */
export async function planVerificationEvent(
  ctx: MachineContext,
  p: Parts,
  event: { roomId: string; type: string; content: Record<string, unknown> },
  partner: string,
  recipients: Pick<RoomEventRecipients, "members" | "claimSessions">,
  claimable: PlanInputs["claimable"],
): Promise<RoomEventPlan> {
  const { roomId, type, content } = event;
  if (!isVerificationEvent(type, content)) {
    throw new E2eeError("BAD_ARGUMENT", "only verification events go out with a verification session");
  }
  if (partner === ctx.userId || !recipients.members.some((m) => m.userId === partner)) {
    throw new E2eeError("BAD_ARGUMENT", "the verification partner is not another member of the room");
  }
  const userIds = [partner, ctx.userId];
  p.devices.trackUsers(userIds);
  if (userIds.some((u) => p.devices.isOutdated(u) && !p.devices.isBackingOff(u))) {
    return { stage: "devices", requests: [...p.devices.inFlightRequests(), ...p.devices.queryRequests()] };
  }
  if (recipients.claimSessions !== false) {
    const claims = p.olm.inFlightClaims();
    const claim = p.olm.claimRequest(await p.olm.devicesNeedingSessions(await claimable(userIds)));
    if (claim !== undefined) claims.push(claim);
    if (claims.length > 0) return { stage: "sessions", requests: claims };
  }
  // A new request opens a new flow: a new session (an earlier flow's devices need not read it).
  const fresh = type === "m.room.message";
  const requests = await p.verificationKeys.share(
    roomId,
    partner,
    fresh,
    (id) => (p.queue.get(id) ?? queuedInStep(ctx, id))?.request,
  );
  return { stage: "ready", requests, content: p.verificationKeys.encrypt(roomId, partner, type, content) };
}
