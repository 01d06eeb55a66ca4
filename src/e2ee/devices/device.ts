/**
 * A remote device as we know it from `/keys/query`: its identity keys (checked against its
 * self-signature), its display name, and the trust the user gave it.
 */
import type { DeviceRecord } from "../../store/records.ts";
import type { DeviceTrust } from "../trust/trust.ts";

export type { DeviceRecord };

export const OLM_ALGORITHM = "m.olm.v1.curve25519-aes-sha2";
export const MEGOLM_ALGORITHM = "m.megolm.v1.aes-sha2";
export const SUPPORTED_ALGORITHMS: readonly string[] = [OLM_ALGORITHM, MEGOLM_ALGORITHM];

/** The device keys say `dehydrated: true` (MSC3814): a device kept on the server while its user is away. */
export function isDehydrated(d: DeviceRecord): boolean {
  return d.keys.dehydrated === true;
}

/** The public parts of a device, for callers and error messages. */
export interface DeviceInfo {
  readonly userId: string;
  readonly deviceId: string;
  readonly curve25519: string;
  readonly ed25519: string;
  readonly displayName: string | undefined;
  /** The trust marked locally (`setDeviceTrust`). */
  readonly trust: DeviceTrust;
  /** Its owner's self-signing key signed it. */
  readonly crossSigned: boolean;
  /** Marked verified, or cross-signed by a user we verified (ourselves included). */
  readonly verified: boolean;
  readonly deleted: boolean;
}

export function deviceInfo(
  d: DeviceRecord,
  crossSigning: { readonly crossSigned: boolean; readonly verified: boolean } = {
    crossSigned: false,
    verified: d.trust === "verified",
  },
): DeviceInfo {
  return {
    userId: d.userId,
    deviceId: d.deviceId,
    curve25519: d.curve25519Key,
    ed25519: d.ed25519Key,
    displayName: d.keys.unsigned?.device_display_name,
    trust: d.trust,
    crossSigned: crossSigning.crossSigned,
    verified: crossSigning.verified,
    deleted: d.deleted,
  };
}
