/**
 * Whether a backup version may be uploaded to (spec "Server-side key backups": a client should
 * check `auth_data`'s signatures). A server can present any `auth_data`, and keys uploaded under a
 * public key the server chose are keys the server can read, so a version is trusted only when:
 * - a signature by this device, by another own device we verified (and did not blacklist), or by
 *   our trusted master key checks out; or
 * - its public key is the one of the private key we hold (the user gave us that key).
 * A signature we can check that fails is a forgery: the version is then not trusted at all.
 */
import type { BackupVersion } from "../../crypto/backup/index.ts";
import type { PkDecryption } from "../../crypto/pk/index.ts";
import { isRecord } from "../../wire/json.ts";
import type { CrossSigning } from "../cross-signing/manager.ts";
import type { DeviceManager } from "../devices/manager.ts";
import type { OwnDevice } from "../identity/own-device.ts";
import type { MachineContext } from "../machine-context.ts";
import { hasValidSignature } from "../signing.ts";

/** Signatures of one `auth_data` checked at most (the server controls how many there are). */
export const MAX_BACKUP_SIGNATURES_CHECKED = 32;

export type BackupTrustSource = "this_device" | "verified_device" | "master_key" | "private_key";

export interface BackupTrust {
  readonly trusted: boolean;
  /** What made it trusted. */
  readonly by?: BackupTrustSource;
  /** A signature by one of our keys failed to check out. */
  readonly forged: boolean;
}

export interface TrustDeps {
  readonly ctx: MachineContext;
  readonly own: OwnDevice;
  readonly devices: DeviceManager;
  readonly crossSigning: CrossSigning;
}

export async function backupVersionTrust(
  deps: TrustDeps,
  version: BackupVersion,
  key: PkDecryption | undefined,
): Promise<BackupTrust> {
  const { ctx, own, devices, crossSigning } = deps;
  const signatures = isRecord(version.authData.signatures) ? version.authData.signatures : {};
  const ours = isRecord(signatures[ctx.userId]) ? signatures[ctx.userId] : {};
  const master = crossSigning.trustedOwnMasterKey();
  const identity = await crossSigning.identity(ctx.userId);
  let by: BackupTrustSource | undefined;
  let forged = false;
  let checked = 0;
  for (const keyId of Object.keys(isRecord(ours) ? ours : {})) {
    if (checked >= MAX_BACKUP_SIGNATURES_CHECKED) break;
    if (!keyId.startsWith("ed25519:")) continue;
    const name = keyId.slice("ed25519:".length);
    let signer: { key: string; source: BackupTrustSource } | undefined;
    if (name === ctx.deviceId) signer = { key: own.identityKeys.ed25519, source: "this_device" };
    else if (master !== undefined && name === master) signer = { key: master, source: "master_key" };
    else {
      const device = await devices.device(ctx.userId, name);
      // A device we blacklisted (lost, stolen) is not trusted, even cross-signed by our identity.
      if (
        device !== undefined &&
        !device.deleted &&
        device.trust !== "blacklisted" &&
        crossSigning.deviceTrust(device, identity).verified
      ) {
        signer = { key: device.ed25519Key, source: "verified_device" };
      }
    }
    if (signer === undefined) continue; // a key we do not trust says nothing either way
    checked++;
    if (hasValidSignature(version.authData, ctx.userId, keyId, signer.key)) by ??= signer.source;
    else forged = true;
  }
  if (forged) return { trusted: false, forged };
  if (by === undefined && key !== undefined && key.publicKey === version.publicKey) by = "private_key";
  return by === undefined ? { trusted: false, forged } : { trusted: true, by, forged };
}
