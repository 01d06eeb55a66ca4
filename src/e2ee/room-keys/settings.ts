/** Per-room encryption settings, from `m.room.encryption` and the room's history visibility. */
import { MEGOLM_ALGORITHM } from "../devices/device.ts";

/** Spec defaults for `rotation_period_ms` and `rotation_period_msgs`. */
export const DEFAULT_ROTATION_PERIOD_MS = 7 * 24 * 60 * 60 * 1000;
export const DEFAULT_ROTATION_PERIOD_MSGS = 100;
/** Bounds on what a room state event may ask for (a hostile value must not disable rotation). */
export const MAX_ROTATION_PERIOD_MS = DEFAULT_ROTATION_PERIOD_MS;
export const MIN_ROTATION_PERIOD_MS = 60 * 60 * 1000;
export const MAX_ROTATION_PERIOD_MSGS = 10_000;

export type HistoryVisibility = "invited" | "joined" | "shared" | "world_readable";

export interface RoomEncryptionSettings {
  readonly algorithm?: string;
  readonly rotationPeriodMs?: number;
  readonly rotationPeriodMsgs?: number;
  readonly historyVisibility?: HistoryVisibility;
  /** Overrides the machine-wide `verifyDevices` for this room. */
  readonly verifyDevices?: boolean;
}

export interface RoomMember {
  readonly userId: string;
  readonly membership: "join" | "invite";
}

export interface ResolvedSettings {
  readonly algorithm: string;
  readonly rotationPeriodMs: number;
  readonly rotationPeriodMsgs: number;
  readonly historyVisibility: HistoryVisibility;
  readonly verifyDevices: boolean;
}

function clamp(value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || !Number.isFinite(value)) return fallback;
  return Math.min(max, Math.max(min, Math.floor(value)));
}

export function resolveSettings(s: RoomEncryptionSettings, verifyDevicesDefault: boolean): ResolvedSettings {
  return {
    algorithm: s.algorithm ?? MEGOLM_ALGORITHM,
    rotationPeriodMs: clamp(
      s.rotationPeriodMs,
      DEFAULT_ROTATION_PERIOD_MS,
      MIN_ROTATION_PERIOD_MS,
      MAX_ROTATION_PERIOD_MS,
    ),
    rotationPeriodMsgs: clamp(
      s.rotationPeriodMsgs,
      DEFAULT_ROTATION_PERIOD_MSGS,
      1,
      MAX_ROTATION_PERIOD_MSGS,
    ),
    historyVisibility: s.historyVisibility ?? "shared",
    verifyDevices: s.verifyDevices ?? verifyDevicesDefault,
  };
}

/** Who gets the room key: joined members, plus invited ones unless history is visible only from joining. */
export function recipientsOf(members: readonly RoomMember[], visibility: HistoryVisibility): string[] {
  const users = new Set<string>();
  for (const m of members) {
    if (m.membership === "join" || visibility !== "joined") users.add(m.userId);
  }
  return [...users];
}
