/**
 * A room's last share that found nothing to do (every device that should hold the room key holds
 * it, every device refused it was told, nothing to give again), kept with what it was judged on,
 * so the next send into the room can skip the judging while none of that changed: one room-key
 * share per encrypted send otherwise rebuilds its device lists and sets every time.
 *
 * What a share's decision reads, and how each change is noticed here:
 * - the members and the settings the caller passes: compared by value (copies are kept: the
 *   caller's array may be reused and changed);
 * - device records (new, deleted, new keys or signatures, trust, an ID taken by a new device):
 *   `DeviceManager.version`;
 * - identities and our private cross-signing keys (verification, violations, cross-signed
 *   devices): `CrossSigning.version`;
 * - devices that started a new Olm session (keys to give again): `RenewedSessions.version`;
 * - the session's own lists (who holds it, who was told it was withheld): kept on the session's
 *   entry and dropped at every change of them; a new session starts without one;
 * - its age and message count (rotation): checked at every send, never kept.
 */
import type { ResolvedSettings, RoomMember } from "./settings.ts";

/** The versions of what a share judged devices by (see the list above). */
export interface ShareVersions {
  readonly devices: number;
  readonly identities: number;
  readonly renewed: number;
}

export interface SettledShare {
  readonly members: readonly RoomMember[];
  readonly settings: ResolvedSettings;
  readonly versions: ShareVersions;
}

export function settledShare(
  members: readonly RoomMember[],
  settings: ResolvedSettings,
  versions: ShareVersions,
): SettledShare {
  return {
    members: members.map(({ userId, membership }) => ({ userId, membership })),
    settings: { ...settings },
    versions,
  };
}

/** Whether `settled` was judged on these members, settings and versions. */
export function stillSettled(
  settled: SettledShare,
  members: readonly RoomMember[],
  settings: ResolvedSettings,
  versions: ShareVersions,
): boolean {
  const v = settled.versions;
  if (
    v.devices !== versions.devices ||
    v.identities !== versions.identities ||
    v.renewed !== versions.renewed
  )
    return false;
  if (!sameSettings(settled.settings, settings)) return false;
  const kept = settled.members;
  if (kept.length !== members.length) return false;
  for (let i = 0; i < kept.length; i++) {
    const a = kept[i] as RoomMember;
    const b = members[i] as RoomMember;
    if (a.userId !== b.userId || a.membership !== b.membership) return false;
  }
  return true;
}

/** Field by field (all of them, whatever fields the settings gain), every value a primitive. */
function sameSettings(a: ResolvedSettings, b: ResolvedSettings): boolean {
  const x = a as unknown as Record<string, unknown>;
  const y = b as unknown as Record<string, unknown>;
  let count = 0;
  for (const key in y) {
    if (!Object.hasOwn(y, key)) continue;
    if (!Object.hasOwn(x, key) || x[key] !== y[key]) return false;
    count++;
  }
  return count === Object.keys(x).length;
}
