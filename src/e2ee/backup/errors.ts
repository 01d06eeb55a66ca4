/** Errors of server-side key backup in the machine. Messages never carry keys. */
export type KeyBackupErrorCode =
  /** There is no backup version (on the server, or set up on this device) to act on. */
  | "NO_BACKUP"
  /** We hold no backup private key (create a version, or `useKey` first). */
  | "NO_KEY"
  /** The private key given (or held) is not the key of the server's current version. */
  | "KEY_MISMATCH"
  /** The version is replaced or deleted on the server: uploading stopped. */
  | "VERSION_CHANGED"
  /** The server's answer does not have the shape the spec gives it. */
  | "BAD_RESPONSE"
  /** The version uses an algorithm other than m.megolm_backup.v1.curve25519-aes-sha2. */
  | "UNSUPPORTED_ALGORITHM"
  /** A caller-supplied argument is malformed (e.g. a private key that is not 32 bytes). */
  | "BAD_ARGUMENT";

export class KeyBackupError extends Error {
  override readonly name = "KeyBackupError";
  readonly code: KeyBackupErrorCode;

  constructor(code: KeyBackupErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
