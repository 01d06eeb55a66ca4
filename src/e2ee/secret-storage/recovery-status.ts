/**
 * Recovery's status: secret storage's problems (see `secretStorageStatus`) joined with what this
 * device holds and what the server has, so that every missing or broken piece comes with the one
 * call that repairs it. No state is a dead end: when nothing else can help, `resetIdentity` can.
 */
import {
  BACKUP_SECRET,
  CROSS_SIGNING_MASTER_SECRET,
  CROSS_SIGNING_SELF_SIGNING_SECRET,
  CROSS_SIGNING_USER_SIGNING_SECRET,
} from "./names.ts";
import { missingType, type SecretStorageProblem, type SecretStorageStatus } from "./status.ts";

/**
 * The call that repairs a problem:
 * - `recover`: with the recovery key (or passphrase), writes this device's copy of a secret back,
 *   and makes a new key backup when the backup key is held nowhere (unless backup is turned off);
 * - `changeRecoveryKey`: a new secret storage key (the old one is unusable, or has weak passphrase
 *   parameters and takes no writes), every secret this device holds stored under it;
 * - `resetIdentity`: new cross-signing keys, backup and secret storage key (a secret nobody holds).
 */
export type RecoveryRepair = "recover" | "changeRecoveryKey" | "resetIdentity";

export interface RecoveryProblem {
  /** The account-data type at fault (`m.secret_storage.default_key`, a key, or a secret name). */
  readonly name: string;
  /** What is wrong: a `SecretStorageProblem` kind, `identity_missing` or `backup_missing`. */
  readonly problem: SecretStorageProblem["kind"] | "identity_missing" | "backup_missing";
  readonly repair: RecoveryRepair;
}

export interface RecoveryStatus {
  /** disabled: no secret storage; enabled: every secret stored; incomplete: see `missing`. */
  readonly state: "disabled" | "enabled" | "incomplete";
  readonly missing: readonly RecoveryProblem[];
}

/** What recovery's status needs to know besides account data. */
export interface RecoveryFacts {
  /** Secrets this device holds, current ones only (a key matching the published key or backup). */
  readonly held: ReadonlySet<string>;
  /** The account has a published cross-signing identity. */
  readonly identityPublished: boolean;
  /** The server has a key backup version. */
  readonly backupVersion: boolean;
  /**
   * The user turned key backup off (`m.key_backup`, or the legacy
   * `m.org.matrix.custom.backup_disabled`): the backup and its secret are then not part of
   * recovery, so nothing about them is missing (matrix-rust-sdk counts recovery complete then too).
   */
  readonly backupOff?: boolean;
}

const CROSS_SIGNING_SECRETS = [
  CROSS_SIGNING_MASTER_SECRET,
  CROSS_SIGNING_SELF_SIGNING_SECRET,
  CROSS_SIGNING_USER_SIGNING_SECRET,
];

const KEY_PROBLEMS: ReadonlySet<SecretStorageProblem["kind"]> = new Set([
  "no_default_key",
  "default_key_malformed",
  "key_missing",
  "key_malformed",
  "wrong_key",
]);

export function recoveryStatus(storage: SecretStorageStatus, facts: RecoveryFacts): RecoveryStatus {
  if (storage.state === "disabled") return { state: "disabled", missing: [] };
  const holdsCrossSigning = CROSS_SIGNING_SECRETS.every((s) => facts.held.has(s));
  const keyUsable = !storage.problems.some((p) => KEY_PROBLEMS.has(p.kind));
  // Without a usable key nothing stored can be read: a new key, if this device can refill it.
  const newKey: RecoveryRepair = holdsCrossSigning ? "changeRecoveryKey" : "resetIdentity";
  // A weak key reads but takes no writes: `recover` (reading) until this device holds the
  // cross-signing keys, then a new key in place of every write-back `recover` would do.
  const keyWeak = storage.problems.some((p) => p.kind === "key_weak");
  const writeBack: RecoveryRepair = keyWeak && holdsCrossSigning ? "changeRecoveryKey" : "recover";
  const missing: RecoveryProblem[] = [];
  for (const p of storage.problems) {
    const name = missingType(p);
    if (facts.backupOff === true && name === BACKUP_SECRET && !KEY_PROBLEMS.has(p.kind)) continue;
    let repair: RecoveryRepair;
    if (KEY_PROBLEMS.has(p.kind) || !keyUsable) repair = newKey;
    else if (p.kind === "key_weak") repair = writeBack;
    else if (facts.held.has(name) || name === BACKUP_SECRET) repair = writeBack;
    else repair = "resetIdentity";
    missing.push({ name, problem: p.kind, repair });
  }
  const named = new Set(missing.map((m) => m.name));
  if (!facts.identityPublished && !named.has(CROSS_SIGNING_MASTER_SECRET)) {
    missing.push({ name: CROSS_SIGNING_MASTER_SECRET, problem: "identity_missing", repair: "resetIdentity" });
  }
  if (!facts.backupVersion && !named.has(BACKUP_SECRET) && facts.backupOff !== true) {
    missing.push({ name: BACKUP_SECRET, problem: "backup_missing", repair: keyUsable ? writeBack : newKey });
  }
  // `recover` fails while a cross-signing key is lost everywhere: then the reset repairs it all.
  const reset = missing.some((m) => m.repair === "resetIdentity");
  return {
    state: missing.length === 0 ? "enabled" : "incomplete",
    missing: reset ? missing.map((m) => ({ ...m, repair: "resetIdentity" })) : missing,
  };
}
