/**
 * The machine's device and identity calls, run inside its steps: which users' device lists are
 * tracked, devices as the application sees them (with their cross-signing trust), a user's
 * identity, and a device's trust changed (which key requests and secret requests it held then
 * follow). Apart from `OlmMachine` (the public API) so that the rules joining devices,
 * cross-signing and trust read in one place.
 */
import { CrossSigningError } from "./cross-signing/errors.ts";
import type { UserIdentityInfo } from "./cross-signing/identity.ts";
import { type DeviceInfo, type DeviceRecord, deviceInfo } from "./devices/device.ts";
import type { DeviceManager } from "./devices/manager.ts";
import { E2eeError } from "./errors.ts";
import type { Parts } from "./machine-parts.ts";
import type { SignatureUploadRequest } from "./requests.ts";
import type { DeviceTrust } from "./trust/trust.ts";

/**
 * See `OlmMachine.receiveRoomMembership`: joins and invites in encrypted rooms are tracked; any
 * other membership (a leave, a kick, a ban) discards the room's outbound session. The spec (v1.19)
 * asks for a rotation whenever a user is seen leaving: another member's history bundle (MSC4268)
 * may have given them our session, so the holders we shared it with do not tell who has it.
 */
export async function trackRoomMembers(
  p: Parts,
  changes: readonly { roomId: string; userId: string; membership: string }[],
): Promise<void> {
  const encrypted = new Map<string, boolean>();
  for (const { roomId, userId, membership } of changes) {
    let isEncrypted = encrypted.get(roomId);
    if (isEncrypted === undefined) {
      isEncrypted = await p.roomSettings.isRecorded(roomId);
      encrypted.set(roomId, isEncrypted);
    }
    if (!isEncrypted) continue;
    if (membership === "join" || membership === "invite") p.devices.trackUsers([userId]);
    else await p.outbound.discard(roomId);
  }
}

/** Whether any of these users' device lists still need a `/keys/query`. */
export function hasOutdatedUsers(devices: DeviceManager, userIds: Iterable<string>): boolean {
  for (const u of userIds) if (!devices.isTracked(u) || devices.isOutdated(u)) return true;
  return false;
}

export async function getUserDevices(p: Parts, userId: string): Promise<DeviceInfo[]> {
  const identity = await p.crossSigning.identity(userId);
  return (await p.devices.devicesOf(userId)).map((d) =>
    deviceInfo(d, p.crossSigning.deviceTrust(d, identity)),
  );
}

export async function getDevice(p: Parts, userId: string, deviceId: string): Promise<DeviceInfo | undefined> {
  const d = await p.devices.device(userId, deviceId);
  return d && deviceInfo(d, p.crossSigning.deviceTrust(d, await p.crossSigning.identity(userId)));
}

export async function getUserIdentity(p: Parts, userId: string): Promise<UserIdentityInfo | undefined> {
  const identity = await p.crossSigning.identity(userId);
  return identity && p.crossSigning.info(identity);
}

/** See `OlmMachine.setDeviceTrust` (the trust state already checked). */
export async function setDeviceTrust(
  p: Parts,
  userId: string,
  deviceId: string,
  trust: DeviceTrust,
): Promise<DeviceInfo> {
  const updated = await p.devices.setTrust(userId, deviceId, trust);
  if (updated === undefined) throw new E2eeError("BAD_ARGUMENT", "unknown device");
  await trustChanged(p, updated);
  return deviceInfo(updated, p.crossSigning.deviceTrust(updated, await p.crossSigning.identity(userId)));
}

/** See `OlmMachine.markDeviceVerified`. */
export async function markDeviceVerified(
  p: Parts,
  userId: string,
  deviceId: string,
): Promise<{ device: DeviceInfo; request: SignatureUploadRequest | undefined }> {
  const updated = await p.devices.setTrust(userId, deviceId, "verified");
  if (updated === undefined) throw new CrossSigningError("UNKNOWN_DEVICE", "unknown device");
  await trustChanged(p, updated);
  const request = p.crossSigning.signDevice(updated);
  const identity = await p.crossSigning.identity(userId);
  return { device: deviceInfo(updated, p.crossSigning.deviceTrust(updated, identity)), request };
}

/** Key requests and secret requests held for this device are answered or dropped. */
async function trustChanged(p: Parts, updated: DeviceRecord): Promise<void> {
  await p.gossip.trustChanged(updated);
  await p.secrets.trustChanged(updated);
}
