/**
 * What every part of the machine shares during one step: who we are, the store, the clock, and
 * the change set the step is building (written in one `saveChanges` at its end).
 */
import { encodeBase64Url, randomBytes } from "../crypto/primitives/index.ts";
import type { MachineStore } from "./store/port.ts";
import type { MachineChanges } from "./store/records.ts";

export interface MachineContext {
  readonly userId: string;
  readonly deviceId: string;
  readonly store: MachineStore;
  /** Milliseconds since the epoch; injectable so rotation by age is testable. */
  readonly now: () => number;
  /** The change set of the step in progress. */
  tx: MachineChanges;
}

/** A fresh request / transaction ID: random, so IDs never collide across restarts. */
export function newRequestId(): string {
  return encodeBase64Url(randomBytes(12));
}
