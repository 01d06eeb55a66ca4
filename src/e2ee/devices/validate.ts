/**
 * Checks one device from a `/keys/query` response before we believe it: it must be the user and
 * device it is filed under, carry both identity keys, and be signed by its own Ed25519 key.
 */
import { decodeBase64 } from "../../crypto/primitives/index.ts";
import { storableWithin } from "../../wire/json.ts";
import { MAX_KEYS_JSON_DEPTH } from "../limits.ts";
import { parseDeviceKeys, type ValidDeviceKeys } from "../requests.ts";
import { hasValidSignature } from "../signing.ts";

/**
 * Characters of one device's keys as JSON: an honest device's are about 1 KiB (a display name and
 * two or three signatures). The `unsigned` part is not signed, so any server on the way could make
 * it as large as the response; everything kept is stored and held in memory, per device.
 */
export const MAX_DEVICE_KEYS_JSON_LENGTH = 16 * 1024;

export type DeviceKeysProblem =
  | "MALFORMED"
  | "TOO_LARGE"
  | "USER_ID_MISMATCH"
  | "DEVICE_ID_MISMATCH"
  | "MISSING_KEYS"
  | "BAD_SIGNATURE";

export interface CheckedDeviceKeys {
  readonly json: ValidDeviceKeys;
  readonly curve25519: string;
  readonly ed25519: string;
}

function isKey32(value: string | undefined): value is string {
  if (value === undefined) return false;
  try {
    return decodeBase64(value).length === 32;
  } catch {
    return false;
  }
}

export function checkDeviceKeys(
  raw: unknown,
  userId: string,
  deviceId: string,
): CheckedDeviceKeys | DeviceKeysProblem {
  const json = parseDeviceKeys(raw);
  if (json === undefined || !storableWithin(raw, MAX_KEYS_JSON_DEPTH)) return "MALFORMED";
  if (JSON.stringify(raw).length > MAX_DEVICE_KEYS_JSON_LENGTH) return "TOO_LARGE";
  if (json.user_id !== userId) return "USER_ID_MISMATCH";
  if (json.device_id !== deviceId) return "DEVICE_ID_MISMATCH";
  const curve25519 = json.keys[`curve25519:${deviceId}`];
  const ed25519 = json.keys[`ed25519:${deviceId}`];
  if (!isKey32(curve25519) || !isKey32(ed25519)) return "MISSING_KEYS";
  if (!hasValidSignature(raw, userId, `ed25519:${deviceId}`, ed25519)) return "BAD_SIGNATURE";
  return { json, curve25519, ed25519 };
}
