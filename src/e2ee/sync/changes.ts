/**
 * One sync response's E2EE changes, taken in one machine step (see
 * `OlmMachine.receiveSyncChanges`): one-time and fallback key counts, device-list changes, the
 * to-device events (`to-device.ts`) and what follows them (verification, secret requests, events
 * that waited for a key that came or was withheld), and the sync token. Apart from the machine so
 * that the order of these stages reads in one place.
 */
import { isRecord } from "../../wire/json.ts";
import type { PendingEvents } from "../decryption/pending.ts";
import { keyArrived, keyWithheld } from "../decryption/redecrypt.ts";
import { isId } from "../limits.ts";
import type { MachineContext } from "../machine-context.ts";
import type { Parts } from "../machine-parts.ts";
import { SECRET_REQUEST_TYPE } from "../secret-storage/sharing.ts";
import type { VerificationApi } from "../verification/api.ts";
import { receiveToDevice, type SyncChanges, type SyncChangesResult } from "./to-device.ts";

/** Runs inside the step of `OlmMachine.receiveSyncChanges`. */
export async function receiveSyncChanges(
  ctx: MachineContext,
  p: Parts,
  pending: PendingEvents,
  verification: Pick<VerificationApi, "receiveToDevice">,
  changes: SyncChanges,
): Promise<SyncChangesResult> {
  // Servers leave out algorithms whose count is zero: a present map without the key means 0.
  // Sync data is the server's word: anything that is not the shape the spec gives is ignored.
  const counts: unknown = changes.oneTimeKeyCounts;
  if (isRecord(counts)) p.own.updateServerCount(counts.signed_curve25519 ?? 0);
  const fallbackTypes: unknown = changes.unusedFallbackKeyTypes;
  if (fallbackTypes === undefined || Array.isArray(fallbackTypes)) {
    p.own.updateUnusedFallbackKeys(fallbackTypes?.filter((t): t is string => typeof t === "string"));
  }
  const lists: unknown = changes.deviceLists;
  if (isRecord(lists)) {
    p.devices.markOutdated(idsIn(lists.changed));
    p.devices.stopTracking(idsIn(lists.left));
  }

  const result: SyncChangesResult = {
    ...emptySyncChangesResult(),
    // Backup keys refused earlier and released since, as no version is known to be current here.
    secrets: p.secrets.takeReleasedBackupKeys(),
  };
  const toDevice: unknown = changes.toDevice;
  const events = Array.isArray(toDevice) ? toDevice : [];
  for (const raw of events) await receiveToDevice(p, raw, result);
  // Only once the server's to-device backlog is drained: after a time offline, messages made on
  // the previous fallback key wait there, maybe over several syncs, past its hour.
  if (events.length === 0) p.own.expireOldFallbackKey();
  if (changes.deferVerification !== true) await verification.receiveToDevice(p, result.toDevice);
  // After the verification events: a device verified in this sync may ask for secrets in it.
  for (const e of result.toDevice) {
    if (e.type === SECRET_REQUEST_TYPE) await p.secrets.receiveRequest(e.sender, e.content);
  }
  for (const update of result.roomKeys) await keyArrived(p, pending, update, result.redecrypted);
  for (const update of result.withheldSessions) await keyWithheld(p, pending, update, result.withheldEvents);
  if (changes.nextBatch !== undefined) ctx.tx.nextBatch = changes.nextBatch;
  // Found in this step or in steps since the last sync (encrypting, claiming).
  result.damagedOlmSessions.push(...p.olm.takeDamaged());
  result.damagedInboundSessions.push(...p.inbound.takeDamaged());
  return result;
}

/** The IDs in a list from sync; anything else (not a list, non-IDs in it) counts for nothing. */
function idsIn(value: unknown): string[] {
  return Array.isArray(value) ? value.filter(isId) : [];
}

/** A sync step's result with nothing in it. */
export function emptySyncChangesResult(): SyncChangesResult {
  return {
    toDevice: [],
    failures: [],
    roomKeys: [],
    redecrypted: [],
    withheldSessions: [],
    withheldEvents: [],
    heldKeyRequests: [],
    secrets: [],
    refusedSecrets: [],
    roomKeyBundles: [],
    damagedOlmSessions: [],
    damagedInboundSessions: [],
  };
}
