/**
 * `m.megolm_backup.v1.curve25519-aes-sha2` records: a backup version's `auth_data`, and the
 * per-session `KeyBackupData` whose `session_data` is a PK-encrypted backed-up room key. Trusting
 * a version (its signatures) is the E2EE layer's business; this module checks forms and crypto.
 */
import { RUST_SHARED_HISTORY_FIELD, readSharedHistory } from "../key-export/exported-room-key.ts";
import { type PkDecryption, PkEncryption, PkError } from "../pk/index.ts";
import { BackupError } from "./errors.ts";

export const MEGOLM_BACKUP_V1_ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2";
/** Longest session_data ciphertext we decrypt (base64 characters); room keys are ~1 KB. */
export const MAX_BACKUP_CIPHERTEXT_LENGTH = 64 * 1024;
/** Largest `forwarded_count` / `first_message_index` accepted (Megolm indexes are 32-bit). */
const MAX_INDEX = 0xffff_ffff;

/** A Megolm session as stored in a backup (the room and session IDs are the record's path). */
export interface BackedUpRoomKey {
  readonly algorithm: string;
  readonly sender_key: string;
  /** The session in the v1 export format, unpadded base64. */
  readonly session_key: string;
  readonly sender_claimed_keys: Readonly<Record<string, string>>;
  readonly forwarding_curve25519_key_chain: readonly string[];
  /** MSC3061 / spec v1.19: whether the session may be shared with new members. */
  readonly shared_history?: boolean;
  /** The same flag under matrix-rust-sdk's name (`RUST_SHARED_HISTORY_FIELD`), written beside it. */
  readonly [RUST_SHARED_HISTORY_FIELD]?: boolean;
}

/** One session's backup record, as uploaded to and downloaded from `/room_keys/keys`. */
export interface KeyBackupData {
  readonly first_message_index: number;
  readonly forwarded_count: number;
  readonly is_verified: boolean;
  readonly session_data: { readonly ephemeral: string; readonly ciphertext: string; readonly mac: string };
}

/** A parsed backup version. */
export interface BackupVersion {
  readonly version: string;
  readonly algorithm: typeof MEGOLM_BACKUP_V1_ALGORITHM;
  /** `auth_data.public_key`, unpadded base64. */
  readonly publicKey: string;
  /** `auth_data` as received, for the caller's signature checks. */
  readonly authData: Readonly<Record<string, unknown>>;
  readonly count?: number;
  readonly etag?: string;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isIndex(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= MAX_INDEX;
}

/** Validates a `GET /room_keys/version` response body. */
export function parseBackupVersion(body: unknown): BackupVersion {
  if (!isObject(body) || typeof body.version !== "string" || body.version.length === 0) {
    throw new BackupError("BAD_FORMAT", "a backup version has a version string");
  }
  if (body.algorithm !== MEGOLM_BACKUP_V1_ALGORITHM) {
    throw new BackupError("UNSUPPORTED_ALGORITHM", "the backup does not use m.megolm_backup.v1");
  }
  if (!isObject(body.auth_data) || typeof body.auth_data.public_key !== "string") {
    throw new BackupError("BAD_FORMAT", "auth_data.public_key is missing");
  }
  try {
    new PkEncryption(body.auth_data.public_key);
  } catch {
    throw new BackupError("BAD_FORMAT", "auth_data.public_key is not a Curve25519 key");
  }
  return {
    version: body.version,
    algorithm: MEGOLM_BACKUP_V1_ALGORITHM,
    publicKey: body.auth_data.public_key,
    authData: body.auth_data,
    ...(isIndex(body.count) ? { count: body.count } : {}),
    ...(typeof body.etag === "string" ? { etag: body.etag } : {}),
  };
}

/** Whether `decryption` (from the recovery key or the `m.megolm_backup.v1` secret) opens `version`. */
export function backupKeyMatches(decryption: PkDecryption, version: BackupVersion): boolean {
  return decryption.publicKey === version.publicKey;
}

/** The `auth_data` for a new version, before the caller signs it (device and master key). */
export function buildBackupAuthData(decryption: PkDecryption): { public_key: string } {
  return { public_key: decryption.publicKey };
}

/** Encrypts one session for the backup. */
export function encryptKeyBackupData(
  encryption: PkEncryption,
  key: BackedUpRoomKey,
  meta: { readonly firstMessageIndex: number; readonly forwardedCount: number; readonly isVerified: boolean },
): KeyBackupData {
  if (!isIndex(meta.firstMessageIndex) || !isIndex(meta.forwardedCount)) {
    throw new BackupError("BAD_ARGUMENT", "indexes are 32-bit non-negative integers");
  }
  return {
    first_message_index: meta.firstMessageIndex,
    forwarded_count: meta.forwardedCount,
    is_verified: meta.isVerified,
    session_data: encryption.encrypt(JSON.stringify(key)),
  };
}

function parseRoomKey(json: string): BackedUpRoomKey {
  const bad = (why: string) => new BackupError("BAD_ROOM_KEY", `backed-up room key: ${why}`);
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw bad("not JSON");
  }
  if (!isObject(value)) throw bad("not an object");
  for (const field of ["algorithm", "sender_key", "session_key"] as const) {
    if (typeof value[field] !== "string" || value[field] === "") throw bad(`missing ${field}`);
  }
  const claimed = value.sender_claimed_keys ?? {};
  if (!isObject(claimed) || !Object.values(claimed).every((v) => typeof v === "string")) {
    throw bad("invalid sender_claimed_keys");
  }
  const chain = value.forwarding_curve25519_key_chain ?? [];
  if (!Array.isArray(chain) || !chain.every((k) => typeof k === "string")) {
    throw bad("invalid forwarding_curve25519_key_chain");
  }
  // The spec's name and the names other SDKs still write.
  const shared = readSharedHistory(value);
  return {
    algorithm: value.algorithm as string,
    sender_key: value.sender_key as string,
    session_key: value.session_key as string,
    sender_claimed_keys: claimed as Record<string, string>,
    forwarding_curve25519_key_chain: chain as string[],
    ...(typeof shared === "boolean" ? { shared_history: shared } : {}),
  };
}

/** What a downloaded record's plaintext gives, with the record's clear fields. */
export interface DecryptedKeyBackupData {
  readonly key: BackedUpRoomKey;
  readonly firstMessageIndex: number;
  readonly forwardedCount: number;
  readonly isVerified: boolean;
}

/**
 * The `session_data` of a downloaded record, checked for form before any decryption (the same
 * checks `decryptKeyBackupData` makes): throws `BAD_FORMAT`.
 */
export function keyBackupSessionData(record: unknown): KeyBackupData["session_data"] {
  if (!isObject(record) || !isObject(record.session_data)) {
    throw new BackupError("BAD_FORMAT", "a backup record has session_data");
  }
  const data = record.session_data;
  if (typeof data.ciphertext === "string" && data.ciphertext.length > MAX_BACKUP_CIPHERTEXT_LENGTH) {
    throw new BackupError("BAD_FORMAT", "session_data is too long to be a room key");
  }
  return data as unknown as KeyBackupData["session_data"];
}

/**
 * A record whose `session_data` (form checked by `keyBackupSessionData`) was decrypted elsewhere
 * to `plaintext` with `PkDecryption.decryptString`: its room key (`BAD_ROOM_KEY` if malformed).
 */
export function keyBackupDataFromPlaintext(record: unknown, plaintext: string): DecryptedKeyBackupData {
  const r = record as Record<string, unknown>;
  return {
    key: parseRoomKey(plaintext),
    firstMessageIndex: isIndex(r.first_message_index) ? r.first_message_index : 0,
    forwardedCount: isIndex(r.forwarded_count) ? r.forwarded_count : 0,
    isVerified: r.is_verified === true,
  };
}

/** Decrypts one downloaded record. `BAD_FORMAT`, `BAD_MAC` (wrong key) or `BAD_ROOM_KEY`. */
export function decryptKeyBackupData(decryption: PkDecryption, record: unknown): DecryptedKeyBackupData {
  const data = keyBackupSessionData(record);
  let json: string;
  try {
    json = decryption.decryptString(data);
  } catch (e) {
    if (!(e instanceof PkError)) throw e;
    if (e.code === "BAD_MAC") throw new BackupError("BAD_MAC", "this record was not encrypted for this key");
    if (e.code === "BAD_PLAINTEXT" || e.code === "DECRYPTION_FAILED") {
      throw new BackupError("BAD_ROOM_KEY", "session_data does not decrypt to text");
    }
    throw new BackupError("BAD_FORMAT", `session_data is malformed (${e.code})`);
  }
  return keyBackupDataFromPlaintext(record, json);
}
