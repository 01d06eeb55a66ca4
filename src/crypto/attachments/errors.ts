/** Why an encrypted attachment was refused. */
export type AttachmentErrorCode =
  | "BAD_FILE_INFO" // the EncryptedFile description is malformed or of an unsupported version/algorithm
  | "HASH_MISMATCH"; // the ciphertext is not the one the sender described (tampered or truncated)

export class AttachmentError extends Error {
  override readonly name = "AttachmentError";
  constructor(
    readonly code: AttachmentErrorCode,
    message: string,
  ) {
    super(message);
  }
}
