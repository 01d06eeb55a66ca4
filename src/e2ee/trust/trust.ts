/**
 * Per-device trust, set by the user and persisted with the device. Cross-signing joins this in
 * the verification layer; until then these four states are the whole model.
 */
import { DEVICE_TRUST_STATES, type DeviceTrust } from "../../store/records.ts";

export type { DeviceTrust };

export function isDeviceTrust(value: unknown): value is DeviceTrust {
  return typeof value === "string" && (DEVICE_TRUST_STATES as readonly string[]).includes(value);
}

/** Whether a device may receive room keys at all (blacklisted devices never do). */
export function mayReceiveKeys(trust: DeviceTrust): boolean {
  return trust !== "blacklisted";
}

/** Under `verifyDevices`, a device whose trust is still unset blocks sending. */
export function isUnseen(trust: DeviceTrust): boolean {
  return trust === "unset";
}

/** How much a decrypted event can be trusted, given the device that holds its session. */
export type SenderTrust =
  /** The sending device is verified and its keys match the session. */
  | "verified"
  /** The sending device is known, its keys match, but it is not verified (or the key was forwarded). */
  | "unverified"
  /** No device we know holds the session's sender key (yet). */
  | "unknown_device"
  /** The device named by the event does not hold the keys the session came from. */
  | "mismatched_sender_key";
