// What a command may touch besides the client: where its output goes, and a signal that asks a
// long-running command (tail, devserver) to stop.
export interface CommandIo {
  /** Writes to stdout (each call is whole lines). */
  out(text: string): void;
  /** Writes to stderr (whole lines). */
  err(text: string): void;
  /** Aborted on SIGINT / SIGTERM. */
  signal?: AbortSignal;
}
