// Failures the CLI itself detects (bad arguments, missing or broken profile, unreadable files).
// Server and client errors pass through unchanged; `output.ts` turns any of them into one line.

export type CliErrorCode =
  | "USAGE"
  | "NO_PROFILE"
  | "PROFILE_CORRUPT"
  | "PROFILE_WRITE"
  | "FILE_UNREADABLE"
  | "SYNC_FAILED"
  | "LOGGED_OUT"
  | "NOT_JOINED"
  | "VERIFICATION_CANCELLED"
  | "NOT_APPROVED";

export class CliError extends Error {
  override readonly name = "CliError";
  readonly code: CliErrorCode;
  constructor(code: CliErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
