/** Why a key export file could not be read. */
export type KeyExportErrorCode =
  | "BAD_FORMAT" // not an armoured export, bad base64, truncated, or an unknown version
  | "BAD_PASSPHRASE" // the MAC does not match: wrong passphrase or a tampered file
  | "BAD_ROUNDS" // a PBKDF2 round count outside the accepted range
  | "BAD_CONTENT"; // decrypted, but the JSON inside is not a list of exported room keys

export class KeyExportError extends Error {
  override readonly name = "KeyExportError";
  constructor(
    readonly code: KeyExportErrorCode,
    message: string,
  ) {
    super(message);
  }
}
