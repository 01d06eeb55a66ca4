/**
 * Reading a backup: the server's `GET /room_keys/keys[/{roomId}[/{sessionId}]]` answers flattened
 * to records, each decrypted on its own into a key export entry (one that does not decrypt is
 * counted and skipped, never spoiling the rest).
 */
import {
  BackupError,
  type DecryptedKeyBackupData,
  decryptKeyBackupData,
  type KeyBackupData,
  keyBackupDataFromPlaintext,
  keyBackupSessionData,
} from "../../crypto/backup/index.ts";
import type { ExportedRoomKey } from "../../crypto/key-export/index.ts";
import type { PkDecryption } from "../../crypto/pk/index.ts";
import { isRecord } from "../../wire/json.ts";
import { isId } from "../limits.ts";
import { KeyBackupError } from "./errors.ts";

/** Sessions one restore takes from the server's answer at most (the rest is ignored). */
export const MAX_RESTORE_SESSIONS = 1_000_000;

/**
 * Records per call of a `BackupRecordsDecryptor`: small enough that the first step's wait is
 * short, large enough that a call's fixed cost (a message to a worker and back) is spread thin.
 * `IMPORT_BATCH_SIZE` is a multiple of it.
 */
export const RESTORE_DECRYPT_CHUNK = 1000;

/** What a restore reads: everything, one room, or one session. */
export interface RestoreScope {
  readonly roomId?: string;
  readonly sessionId?: string;
}

export interface BackupRecord {
  readonly roomId: string;
  readonly sessionId: string;
  readonly data: unknown;
}

/** The records of an answer; throws `KeyBackupError("BAD_RESPONSE")` if its frame is malformed. */
export function backupRecords(body: unknown, scope: RestoreScope): BackupRecord[] {
  const bad = () => new KeyBackupError("BAD_RESPONSE", "malformed room_keys/keys answer");
  if (!isRecord(body)) throw bad();
  const { roomId, sessionId } = scope;
  if (roomId !== undefined && sessionId !== undefined) return [{ roomId, sessionId, data: body }];
  const out: BackupRecord[] = [];
  const addRoom = (room: string, sessions: unknown): void => {
    if (!isRecord(sessions)) return;
    for (const [session, data] of Object.entries(sessions)) {
      if (out.length >= MAX_RESTORE_SESSIONS) return;
      if (isId(session)) out.push({ roomId: room, sessionId: session, data });
    }
  };
  if (roomId !== undefined) {
    if (!isRecord(body.sessions)) throw bad();
    addRoom(roomId, body.sessions);
    return out;
  }
  if (!isRecord(body.rooms)) throw bad();
  for (const [room, value] of Object.entries(body.rooms)) {
    if (isId(room) && isRecord(value)) addRoom(room, value.sessions);
  }
  return out;
}

export interface DecryptedBackupRecord {
  readonly entry: ExportedRoomKey;
  /** The record's `first_message_index`: a stored copy from this index or later is as good. */
  readonly firstMessageIndex: number;
}

/**
 * Decrypts many records' `session_data` under one backup private key, possibly off the calling
 * thread (on Node the client hands the restore worker threads): each result is what
 * `PkDecryption.decryptString` gives for it (the same code, MAC check included), or undefined
 * where that throws (another key, a MAC that does not check, a malformed message). The key's
 * bytes stay the caller's: the decryptor must not keep them past its answer.
 */
export type BackupRecordsDecryptor = (
  privateKey: Uint8Array,
  sessionData: readonly KeyBackupData["session_data"][],
) => Promise<(string | undefined)[]>;

/** One record as a key export entry, or undefined when it does not decrypt under `key`. */
export function decryptBackupRecord(
  key: PkDecryption,
  record: BackupRecord,
): DecryptedBackupRecord | undefined {
  try {
    return asEntry(record, decryptKeyBackupData(key, record.data));
  } catch (e) {
    if (e instanceof BackupError) return undefined;
    throw e;
  }
}

/**
 * Records decrypted by a `BackupRecordsDecryptor`, as `decryptBackupRecord` gives them (undefined
 * where it gives none): the form of each record is checked here before its `session_data` goes
 * out, and each plaintext parsed here as it comes back.
 */
export async function decryptBackupRecordsWith(
  decryptor: BackupRecordsDecryptor,
  privateKey: Uint8Array,
  records: readonly BackupRecord[],
): Promise<(DecryptedBackupRecord | undefined)[]> {
  const sent: BackupRecord[] = [];
  const data: KeyBackupData["session_data"][] = [];
  for (const record of records) {
    try {
      data.push(keyBackupSessionData(record.data));
      sent.push(record);
    } catch (e) {
      if (!(e instanceof BackupError)) throw e;
    }
  }
  const plaintexts = data.length === 0 ? [] : await decryptor(privateKey, data);
  const decrypted = new Map<BackupRecord, DecryptedBackupRecord>();
  for (const [i, record] of sent.entries()) {
    const plaintext = plaintexts[i];
    if (typeof plaintext !== "string") continue;
    try {
      decrypted.set(record, asEntry(record, keyBackupDataFromPlaintext(record.data, plaintext)));
    } catch (e) {
      if (!(e instanceof BackupError)) throw e;
    }
  }
  return records.map((r) => decrypted.get(r));
}

function asEntry(record: BackupRecord, decrypted: DecryptedKeyBackupData): DecryptedBackupRecord {
  const { key: roomKey, firstMessageIndex } = decrypted;
  // The claimed keys and the chain were parsed from this record's plaintext just now, for this
  // entry alone: taken as they are, not copied.
  return {
    entry: {
      algorithm: roomKey.algorithm,
      room_id: record.roomId,
      session_id: record.sessionId,
      sender_key: roomKey.sender_key,
      session_key: roomKey.session_key,
      sender_claimed_keys: roomKey.sender_claimed_keys,
      forwarding_curve25519_key_chain: roomKey.forwarding_curve25519_key_chain as string[],
      ...(roomKey.shared_history === true ? { shared_history: true } : {}),
    },
    firstMessageIndex,
  };
}
