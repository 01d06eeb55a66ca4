/** The machine's parts, built from the store (at open, and again after a failed step). */
import { KeyBackup } from "./backup/key-backup.ts";
import { CrossSigning, type PendingSignatureUploads } from "./cross-signing/manager.ts";
import type { OwnEchoes } from "./decryption/own-echoes.ts";
import type { ReplayGuard } from "./decryption/replay.ts";
import { RoomEventDecryptor } from "./decryption/room-events.ts";
import { DeviceManager } from "./devices/manager.ts";
import { HistorySharingState } from "./history-sharing/pending.ts";
import { OwnDevice } from "./identity/own-device.ts";
import type { HeldKeyRequests } from "./key-requests/held.ts";
import { KeyRequests, type SharedKeyLookup } from "./key-requests/manager.ts";
import type { MachineContext } from "./machine-context.ts";
import { OlmSessions } from "./olm-sessions/sessions.ts";
import { InboundSessions } from "./room-keys/inbound.ts";
import { OutboundSessions } from "./room-keys/outbound.ts";
import { RoomSettings } from "./room-keys/room-settings.ts";
import { resolveSettings, type SettingsDefaults } from "./room-keys/settings.ts";
import { VerificationSessions } from "./room-keys/verification-sessions.ts";
import { SecretGossip, type SecretGossipState } from "./secret-storage/gossip.ts";
import { queuedToDevice, ToDeviceQueue } from "./to-device-queue.ts";

export interface Parts {
  readonly own: OwnDevice;
  readonly devices: DeviceManager;
  readonly olm: OlmSessions;
  readonly inbound: InboundSessions;
  readonly outbound: OutboundSessions;
  /** In-room verification events' own sessions (memory only). */
  readonly verificationKeys: VerificationSessions;
  readonly decryptor: RoomEventDecryptor;
  readonly gossip: KeyRequests;
  readonly crossSigning: CrossSigning;
  readonly secrets: SecretGossip;
  readonly backup: KeyBackup;
  readonly historySharing: HistorySharingState;
  readonly queue: ToDeviceQueue;
  /** Rooms' saved settings, read from the store once each. */
  readonly roomSettings: RoomSettings;
}

/** Runs `fn` as one machine step over the current parts (one at a time, saved at its end). */
export type RunStep = <T>(fn: (p: Parts) => Promise<T>) => Promise<T>;

/** What outlives a rebuild of the parts: memory-only state that the store does not hold. */
export interface Kept {
  readonly replays: ReplayGuard;
  /** Events encrypted here, until their echo comes back (see decryption/own-echoes.ts). */
  readonly ownEchoes: OwnEchoes;
  readonly heldKeyRequests: HeldKeyRequests;
  readonly signatureUploads: PendingSignatureUploads;
  readonly secretGossip: SecretGossipState;
  /** The machine's defaults for rooms' settings (its options). */
  readonly settingsDefaults: SettingsDefaults;
}

export async function buildParts(ctx: MachineContext, kept: Kept): Promise<Parts> {
  const own = await OwnDevice.load(ctx);
  const devices = new DeviceManager(ctx);
  await devices.load();
  const crossSigning = await CrossSigning.load(ctx, own, kept.signatureUploads);
  const olm = new OlmSessions(ctx, own, devices);
  const inbound = new InboundSessions(ctx);
  await inbound.loadRivals();
  const outbound = new OutboundSessions(ctx, own, devices, olm, inbound, crossSigning, kept.ownEchoes);
  const decryptor = new RoomEventDecryptor(
    ctx,
    own,
    inbound,
    devices,
    crossSigning,
    kept.replays,
    kept.ownEchoes,
  );
  const queue = new ToDeviceQueue();
  for (const r of await ctx.store.getQueuedRequests()) {
    const q = queuedToDevice(r);
    if (q !== undefined) queue.set(q.request.id, q);
  }
  const roomSettings = new RoomSettings(ctx);
  // Another user's key request is judged by the rules a share in the room would follow now.
  // Rooms without settings stop here (none of our keys was shared there): a request naming random
  // rooms costs lookups in the bounded settings cache, not in the outbound sessions'.
  const sharedKeys: SharedKeyLookup = async ({ userId, deviceId, roomId, sessionId }) => {
    const recorded = await roomSettings.recorded(roomId);
    if (recorded === undefined) return undefined;
    const settings = resolveSettings(recorded, kept.settingsDefaults);
    return outbound.sharedKeyFor(userId, deviceId, roomId, sessionId, settings);
  };
  const gossip = new KeyRequests(
    ctx,
    devices,
    crossSigning,
    olm,
    inbound,
    kept.heldKeyRequests,
    queue,
    sharedKeys,
  );
  await gossip.load();
  const secrets = new SecretGossip(ctx, devices, olm, crossSigning, kept.secretGossip, queue);
  const backup = await KeyBackup.load(ctx, own, devices, crossSigning, gossip);
  const historySharing = new HistorySharingState(ctx);
  return {
    own,
    devices,
    olm,
    inbound,
    outbound,
    verificationKeys: new VerificationSessions(ctx, own, devices, olm, inbound, kept.ownEchoes),
    decryptor,
    gossip,
    crossSigning,
    secrets,
    backup,
    historySharing,
    queue,
    roomSettings,
  };
}
