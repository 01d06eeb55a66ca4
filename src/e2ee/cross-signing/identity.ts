/**
 * A user's cross-signing identity as we know it: the checked public keys from the last
 * `/keys/query`, and what we decided about it (the pinned master key, whether we verified it).
 * Its persisted form is a versioned JSON record, validated when read back.
 */
import type { JsonObject } from "../../store/json.ts";
import { isRecord } from "../../wire/json.ts";
import type { DeviceRecord } from "../devices/device.ts";
import { type CrossSigningKey, checkUserKeys, isSignedBy, type KeyJson } from "./keys.ts";

/** What is stored per user (inside the store's `CrossSigningIdentityRecord.identity`). */
export interface UserIdentityRecord {
  readonly userId: string;
  readonly master: KeyJson;
  readonly selfSigning: KeyJson | undefined;
  readonly userSigning: KeyJson | undefined;
  /** The master key accepted for this user: the first one seen, until the app accepts another. */
  readonly pinnedMasterKey: string;
  /** The master key verified locally (an interactive verification, recovery, or the app's say-so). */
  readonly locallyVerifiedMasterKey: string | undefined;
  /** We verified this user and have not withdrawn it: losing verification is then a violation. */
  readonly wasVerified: boolean;
}

/** How a user's identity stands, for apps (and the `identity` of decrypted events). */
export type IdentityState =
  /** We know no cross-signing identity for the user. */
  | "none"
  /** Known and unchanged since first seen, not verified. */
  | "pinned"
  /** Verified (by our user-signing key, or locally). */
  | "verified"
  /** The master key changed since it was pinned; the app has not accepted the new one. */
  | "changed"
  /** We had verified the user and the identity is no longer verified (it changed). */
  | "violation";

/** The public view of a user's identity. */
export interface UserIdentityInfo {
  readonly userId: string;
  readonly masterKey: string;
  readonly selfSigningKey: string | undefined;
  readonly userSigningKey: string | undefined;
  readonly verified: boolean;
  /** The master key differs from the pinned one. */
  readonly changed: boolean;
  /** Verified before, not now, and not withdrawn. */
  readonly violation: boolean;
  readonly state: IdentityState;
}

/** A loaded identity: the record and its checked keys, plus memoised signature checks. */
export class UserIdentity {
  readonly record: UserIdentityRecord;
  readonly master: CrossSigningKey;
  readonly selfSigning: CrossSigningKey | undefined;
  readonly userSigning: CrossSigningKey | undefined;
  /** Device record → whether the self-signing key signed it (records are replaced when they change). */
  readonly #devices = new WeakMap<DeviceRecord, boolean>();
  /** Whether `signer`'s key (by public key) signed this master key. */
  readonly #masterSignedBy = new Map<string, boolean>();

  private constructor(
    record: UserIdentityRecord,
    master: CrossSigningKey,
    selfSigning: CrossSigningKey | undefined,
    userSigning: CrossSigningKey | undefined,
  ) {
    this.record = record;
    this.master = master;
    this.selfSigning = selfSigning;
    this.userSigning = userSigning;
  }

  /** Checks the record's keys again (they are signed data); undefined if the master key is unusable. */
  static fromRecord(record: UserIdentityRecord): UserIdentity | undefined {
    const keys = checkUserKeys(record.userId, record.master, record.selfSigning, record.userSigning);
    if (typeof keys === "string") return undefined;
    return new UserIdentity(record, keys.master, keys.selfSigning, keys.userSigning);
  }

  get userId(): string {
    return this.record.userId;
  }

  get masterKey(): string {
    return this.master.publicKey;
  }

  get changed(): boolean {
    return this.record.pinnedMasterKey !== this.master.publicKey;
  }

  get locallyVerified(): boolean {
    return this.record.locallyVerifiedMasterKey === this.master.publicKey;
  }

  /** Whether the device carries a valid signature of this user's self-signing key. */
  signedDevice(device: DeviceRecord): boolean {
    if (device.userId !== this.userId || this.selfSigning === undefined) return false;
    let signed = this.#devices.get(device);
    if (signed === undefined) {
      signed = isSignedBy(device.keys, this.userId, this.selfSigning);
      this.#devices.set(device, signed);
    }
    return signed;
  }

  /** Whether `signer` (a user-signing key of `signerUserId`) signed this master key. */
  masterSignedBy(signerUserId: string, signer: CrossSigningKey | undefined): boolean {
    if (signer === undefined) return false;
    const key = `${signerUserId} ${signer.publicKey}`;
    let signed = this.#masterSignedBy.get(key);
    if (signed === undefined) {
      signed = isSignedBy(this.master.json, signerUserId, signer);
      this.#masterSignedBy.set(key, signed);
    }
    return signed;
  }

  with(changes: Partial<UserIdentityRecord>): UserIdentity {
    const record = { ...this.record, ...changes };
    return new UserIdentity(record, this.master, this.selfSigning, this.userSigning);
  }

  /** The identity with newly received keys; the pin and verification decisions carry over. */
  withKeys(
    master: CrossSigningKey,
    selfSigning: CrossSigningKey | undefined,
    userSigning: CrossSigningKey | undefined,
  ): UserIdentity {
    const record: UserIdentityRecord = {
      ...this.record,
      master: master.json,
      selfSigning: selfSigning?.json,
      userSigning: userSigning?.json,
    };
    return new UserIdentity(record, master, selfSigning, userSigning);
  }

  static first(
    master: CrossSigningKey,
    selfSigning: CrossSigningKey | undefined,
    userSigning: CrossSigningKey | undefined,
  ): UserIdentity {
    const record: UserIdentityRecord = {
      userId: master.userId,
      master: master.json,
      selfSigning: selfSigning?.json,
      userSigning: userSigning?.json,
      pinnedMasterKey: master.publicKey,
      locallyVerifiedMasterKey: undefined,
      wasVerified: false,
    };
    return new UserIdentity(record, master, selfSigning, userSigning);
  }

  /** Whether the keys are the same as these (same public keys and signatures). */
  sameKeys(
    master: CrossSigningKey,
    selfSigning: CrossSigningKey | undefined,
    userSigning: CrossSigningKey | undefined,
  ): boolean {
    return (
      JSON.stringify([master.json, selfSigning?.json, userSigning?.json]) ===
      JSON.stringify([this.record.master, this.record.selfSigning, this.record.userSigning])
    );
  }
}

export function identityInfo(identity: UserIdentity, verified: boolean): UserIdentityInfo {
  const changed = identity.changed;
  const violation = identity.record.wasVerified && !verified;
  const state: IdentityState = violation
    ? "violation"
    : verified
      ? "verified"
      : changed
        ? "changed"
        : "pinned";
  return {
    userId: identity.userId,
    masterKey: identity.masterKey,
    selfSigningKey: identity.selfSigning?.publicKey,
    userSigningKey: identity.userSigning?.publicKey,
    verified,
    changed,
    violation,
    state,
  };
}

// ---- persisted form ----

const RECORD_VERSION = 1;

/** The record as stored (`CrossSigningIdentityRecord.identity`); the store checks it is plain JSON. */
export function identityToJson(r: UserIdentityRecord): JsonObject {
  const json: Record<string, unknown> = {
    version: RECORD_VERSION,
    master: r.master,
    ...(r.selfSigning === undefined ? {} : { self_signing: r.selfSigning }),
    ...(r.userSigning === undefined ? {} : { user_signing: r.userSigning }),
    pinned: r.pinnedMasterKey,
    ...(r.locallyVerifiedMasterKey === undefined ? {} : { locally_verified: r.locallyVerifiedMasterKey }),
    was_verified: r.wasVerified,
  };
  // Built from keys parsed out of JSON and our own strings: JSON throughout.
  return json as JsonObject;
}

/** The record read back from the store, or undefined if it is not one we wrote. */
export function identityFromJson(userId: string, json: unknown): UserIdentityRecord | undefined {
  if (!isRecord(json) || json.version !== RECORD_VERSION || !isRecord(json.master)) return undefined;
  const { self_signing: ssk, user_signing: usk, pinned, locally_verified: lv, was_verified: wv } = json;
  if (ssk !== undefined && !isRecord(ssk)) return undefined;
  if (usk !== undefined && !isRecord(usk)) return undefined;
  if (typeof pinned !== "string" || (lv !== undefined && typeof lv !== "string") || typeof wv !== "boolean") {
    return undefined;
  }
  return {
    userId,
    master: json.master,
    selfSigning: ssk,
    userSigning: usk,
    pinnedMasterKey: pinned,
    locallyVerifiedMasterKey: lv,
    wasVerified: wv,
  };
}
