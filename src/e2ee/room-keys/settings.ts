/** Per-room encryption settings, from `m.room.encryption` and the room's history visibility. */

import type { RoomSettingsRecord, SenderRequirement, ShareWith } from "../../store/records.ts";
import { MEGOLM_ALGORITHM } from "../devices/device.ts";
import { E2eeError } from "../errors.ts";

/** Spec defaults for `rotation_period_ms` and `rotation_period_msgs`. */
export const DEFAULT_ROTATION_PERIOD_MS = 7 * 24 * 60 * 60 * 1000;
export const DEFAULT_ROTATION_PERIOD_MESSAGES = 100;
/** Bounds on what a room state event may ask for (a hostile value must not disable rotation). */
export const MAX_ROTATION_PERIOD_MS = DEFAULT_ROTATION_PERIOD_MS;
export const MIN_ROTATION_PERIOD_MS = 60 * 60 * 1000;
export const MAX_ROTATION_PERIOD_MESSAGES = 10_000;

export type HistoryVisibility = "invited" | "joined" | "shared" | "world_readable";

export { SHARE_WITH_VALUES, type ShareWith } from "../../store/records.ts";

export interface RoomEncryptionSettings {
  readonly algorithm?: string;
  readonly rotationPeriodMs?: number;
  readonly rotationPeriodMessages?: number;
  readonly historyVisibility?: HistoryVisibility;
  /** Overrides the machine-wide `verifyDevices` for this room. */
  readonly verifyDevices?: boolean;
  /**
   * Overrides the machine-wide `onlyVerifiedDevices`: devices not marked verified get
   * `m.room_key.withheld` (`m.unverified`) instead of the key.
   */
  readonly onlyVerifiedDevices?: boolean;
  /** Overrides the machine-wide `shareWith` (`onlyVerifiedDevices: true` means `"verified"`). */
  readonly shareWith?: ShareWith;
  /** Overrides the machine-wide `senderRequirement` for this room's events. */
  readonly senderRequirement?: SenderRequirement;
  /** Overrides the machine-wide `errorOnVerifiedUserProblems` (`VerifiedUserProblemError`). */
  readonly errorOnVerifiedUserProblems?: boolean;
}

export interface RoomMember {
  readonly userId: string;
  readonly membership: "join" | "invite";
}

export interface ResolvedSettings {
  readonly algorithm: string;
  readonly rotationPeriodMs: number;
  readonly rotationPeriodMessages: number;
  readonly historyVisibility: HistoryVisibility;
  readonly verifyDevices: boolean;
  readonly shareWith: ShareWith;
  readonly errorOnVerifiedUserProblems: boolean;
}

/** The machine-wide defaults a room's settings fall back to. */
export interface SettingsDefaults {
  readonly verifyDevices: boolean;
  readonly onlyVerifiedDevices: boolean;
  readonly shareWith: ShareWith;
  readonly errorOnVerifiedUserProblems: boolean;
}

function clamp(value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || !Number.isFinite(value)) return fallback;
  return Math.min(max, Math.max(min, Math.floor(value)));
}

export function resolveSettings(s: RoomEncryptionSettings, defaults: SettingsDefaults): ResolvedSettings {
  const onlyVerified =
    s.onlyVerifiedDevices ?? (s.shareWith === undefined ? defaults.onlyVerifiedDevices : false);
  return {
    algorithm: s.algorithm ?? MEGOLM_ALGORITHM,
    rotationPeriodMs: clamp(
      s.rotationPeriodMs,
      DEFAULT_ROTATION_PERIOD_MS,
      MIN_ROTATION_PERIOD_MS,
      MAX_ROTATION_PERIOD_MS,
    ),
    rotationPeriodMessages: clamp(
      s.rotationPeriodMessages,
      DEFAULT_ROTATION_PERIOD_MESSAGES,
      1,
      MAX_ROTATION_PERIOD_MESSAGES,
    ),
    historyVisibility: s.historyVisibility ?? "shared",
    verifyDevices: s.verifyDevices ?? defaults.verifyDevices,
    shareWith: onlyVerified ? "verified" : (s.shareWith ?? defaults.shareWith),
    errorOnVerifiedUserProblems: s.errorOnVerifiedUserProblems ?? defaults.errorOnVerifiedUserProblems,
  };
}

/** Keys created under this visibility may be shared with users invited later (MSC4268). */
export function isSharedHistory(visibility: HistoryVisibility): boolean {
  return visibility === "shared" || visibility === "world_readable";
}

/** Who gets the room key: joined members, plus invited ones unless history is visible only from joining. */
export function recipientsOf(members: readonly RoomMember[], visibility: HistoryVisibility): string[] {
  const users = new Set<string>();
  for (const m of members) {
    if (m.membership === "join" || visibility !== "joined") users.add(m.userId);
  }
  return [...users];
}

/**
 * What we recorded for a room, updated by what the caller passes now. The algorithm never changes
 * once recorded: a server (or a forged state event) cannot turn a room's encryption down.
 */
export function mergeRoomSettings(
  roomId: string,
  stored: RoomSettingsRecord | undefined,
  passed: RoomEncryptionSettings,
): RoomSettingsRecord {
  if (stored !== undefined && passed.algorithm !== undefined && passed.algorithm !== stored.algorithm) {
    throw new E2eeError("ENCRYPTION_DOWNGRADE", "the room's encryption algorithm cannot change");
  }
  const algorithm = stored?.algorithm ?? passed.algorithm ?? MEGOLM_ALGORITHM;
  if (algorithm !== MEGOLM_ALGORITHM) {
    throw new E2eeError("UNSUPPORTED_ALGORITHM", "the room uses an encryption algorithm we do not support");
  }
  // Field by field, what is passed now over what was recorded; a field neither gives stays absent.
  // (Written out: this runs on every send, and a generic copy over `Object.entries` was a tenth of it.)
  const record: { -readonly [K in keyof RoomSettingsRecord]: RoomSettingsRecord[K] } = { roomId, algorithm };
  const rotationPeriodMs = passed.rotationPeriodMs ?? stored?.rotationPeriodMs;
  if (rotationPeriodMs !== undefined) record.rotationPeriodMs = rotationPeriodMs;
  const rotationPeriodMessages = passed.rotationPeriodMessages ?? stored?.rotationPeriodMessages;
  if (rotationPeriodMessages !== undefined) record.rotationPeriodMessages = rotationPeriodMessages;
  const verifyDevices = passed.verifyDevices ?? stored?.verifyDevices;
  if (verifyDevices !== undefined) record.verifyDevices = verifyDevices;
  const shareWith = passed.shareWith ?? stored?.shareWith;
  if (shareWith !== undefined) record.shareWith = shareWith;
  const senderRequirement = passed.senderRequirement ?? stored?.senderRequirement;
  if (senderRequirement !== undefined) record.senderRequirement = senderRequirement;
  const errorOnProblems = passed.errorOnVerifiedUserProblems ?? stored?.errorOnVerifiedUserProblems;
  if (errorOnProblems !== undefined) record.errorOnVerifiedUserProblems = errorOnProblems;
  return record;
}

/** A room's recorded settings, as the machine's callers name them. */
export function roomSettingsOf(r: RoomSettingsRecord): RoomEncryptionSettings {
  return {
    algorithm: r.algorithm,
    rotationPeriodMs: r.rotationPeriodMs,
    rotationPeriodMessages: r.rotationPeriodMessages,
    verifyDevices: r.verifyDevices,
    shareWith: r.shareWith,
    senderRequirement: r.senderRequirement,
    errorOnVerifiedUserProblems: r.errorOnVerifiedUserProblems,
  };
}
