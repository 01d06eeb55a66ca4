/** Why a key-backup record was refused. Messages never carry keys or plaintext. */
export type BackupErrorCode =
  /** A backup version (`GET /room_keys/version`) or `KeyBackupData` record is malformed. */
  | "BAD_FORMAT"
  /** The version uses an algorithm other than m.megolm_backup.v1.curve25519-aes-sha2. */
  | "UNSUPPORTED_ALGORITHM"
  /** The session_data MAC fails: the record was not encrypted for this backup key. */
  | "BAD_MAC"
  /** The session_data decrypts, but not to a well-formed backed-up room key. */
  | "BAD_ROOM_KEY"
  /** A caller-supplied argument is malformed. */
  | "BAD_ARGUMENT";

export class BackupError extends Error {
  override readonly name = "BackupError";
  readonly code: BackupErrorCode;

  constructor(code: BackupErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
